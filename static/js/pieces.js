// Live Markdown preview for the piece editor: the server renders (the same sanitiser as
// everywhere), so the preview shows exactly what will be published. Debounced; the latest
// request wins even when answers arrive out of order.
(function () {
  const form = document.getElementById('piece-form');
  if (!form) return;
  const url = form.dataset.previewUrl;
  const DELAY = 300;

  function attach(source) {
    const target = document.getElementById(source.dataset.previewTarget);
    if (!target) return;
    const state = document.querySelector('[data-preview-state="' + target.id + '"]');
    let timer = null;
    let seq = 0;

    async function render() {
      const mine = ++seq;
      if (state) state.textContent = '…';
      try {
        const res = await window.ContentOps.api('POST', url, { body: source.value });
        if (mine !== seq) return;  // a newer keystroke already asked again
        if (res.ok && res.data) {
          // The HTML was sanitised by the server's renderer (rendering.py, nh3).
          target.innerHTML = res.data.html;
          target.dataset.rendered = String(mine);
          if (state) state.textContent = '';
        } else if (state) {
          state.textContent = (res.data && res.data.error) || '!';
        }
      } catch (e) {
        if (mine === seq && state) state.textContent = '!';
      }
    }

    source.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(render, DELAY);
    });
  }

  form.querySelectorAll('textarea[data-preview-target]').forEach(attach);
})();
