// Live compliance checks in the piece editor: ask the server as the editor types.
(function () {
  const box = document.getElementById('compliance-checks');
  if (!box) return;
  const form = box.closest('form') || document.querySelector('form[data-piece-form]') ||
    document.querySelector('main form textarea[name="body"]')?.closest('form');
  if (!form) return;
  const list = box.querySelector('[data-findings]');
  const empty = box.querySelector('[data-empty]');
  const counts = {
    errors: box.querySelector('[data-count="errors"]'),
    warnings: box.querySelector('[data-count="warnings"]'),
  };
  const value = (name) => {
    const el = form.elements.namedItem(name);
    return el && 'value' in el ? el.value : '';
  };
  const channelIds = () => {
    const ids = [];
    form.querySelectorAll('[name="channel_ids"], [name="channels"]').forEach((el) => {
      if (el.tagName === 'SELECT') {
        Array.from(el.selectedOptions).forEach((o) => ids.push(o.value));
      } else if ((el.type === 'checkbox' || el.type === 'radio') ? el.checked : el.value) {
        ids.push(el.value);
      }
    });
    return ids;
  };
  let timer = null;
  let seq = 0;
  async function run() {
    const mine = ++seq;
    const body = {
      title: value('title'), body: value('body'), summary: value('summary'),
      audience_id: value('audience_id') || value('audience'),
      style_id: value('style_id') || value('style'), channel_ids: channelIds(),
    };
    const res = await window.ContentOps.api('POST', box.dataset.url, body);
    if (mine !== seq || !res.ok || !res.data) return;
    list.querySelectorAll('[data-finding]').forEach((li) => li.remove());
    for (const f of res.data.findings) {
      const li = document.createElement('li');
      li.className = 'list-group-item ' + (f.severity === 'error' ? 'text-danger' : 'text-warning-emphasis');
      li.dataset.finding = f.code;
      li.dataset.severity = f.severity;
      const icon = document.createElement('i');
      icon.className = 'bi me-1 ' + (f.severity === 'error' ? 'bi-x-octagon' : 'bi-exclamation-triangle');
      li.append(icon, document.createTextNode((f.params.channel ? '[' + f.params.channel + '] ' : '') + f.message));
      list.appendChild(li);
    }
    empty.classList.toggle('d-none', res.data.findings.length > 0);
    for (const key of ['errors', 'warnings']) {
      counts[key].textContent = res.data[key];
      counts[key].classList.toggle('d-none', !res.data[key]);
    }
    box.dataset.checked = String(seq);
  }
  const schedule = () => { clearTimeout(timer); timer = setTimeout(run, 350); };
  form.addEventListener('input', schedule);
  form.addEventListener('change', schedule);
  run();
})();
