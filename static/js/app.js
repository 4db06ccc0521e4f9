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
