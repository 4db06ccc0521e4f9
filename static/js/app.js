// Shared helpers for ContentOps pages.
window.ContentOps = {
  csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  },
  // fetch() with the CSRF header the JSON API expects for cookie-authenticated calls.
  async api(method, url, body) {
    const opts = { method, headers: { 'Accept': 'application/json', 'X-CSRFToken': this.csrfToken() }, credentials: 'same-origin' };
    if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
    const res = await fetch(url, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { ok: res.ok, status: res.status, data };
  },
};

// Buttons and links with data-confirm ask before they act (delete, deactivate ...).
document.addEventListener('click', (event) => {
  const el = event.target.closest('[data-confirm]');
  if (el && !window.confirm(el.dataset.confirm)) {
    event.preventDefault();
    event.stopPropagation();
  }
});

// Buttons with data-copy-target="#id" copy that element's text to the clipboard.
document.addEventListener('click', (event) => {
  const btn = event.target.closest('[data-copy-target]');
  if (!btn) return;
  const el = document.querySelector(btn.dataset.copyTarget);
  if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent);
});

// Read-only fields with data-select-on-click select their whole value (links to copy).
document.addEventListener('click', (event) => {
  const el = event.target.closest('[data-select-on-click]');
  if (el && typeof el.select === 'function') el.select();
});
