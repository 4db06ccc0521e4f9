// The web channel's public post page: read beacon and "copy link" share button.
// External (not inline) so the page runs under a CSP without 'unsafe-inline'.
(function () {
  var section = document.getElementById('feedback');
  if (!section) { return; }
  var slug = section.dataset.slug;
  // One read per visitor per day is counted by the server; the beacon only says "seen".
  try {
    if (navigator.sendBeacon) { navigator.sendBeacon('/p/' + slug + '/read'); }
    else { fetch('/p/' + slug + '/read', {method: 'POST', keepalive: true}); }
  } catch (e) { /* counting must never break the page */ }
  var copy = section.querySelector('[data-share="copy"]');
  if (copy) {
    copy.addEventListener('click', function () {
      var url = location.href.split('#')[0];
      fetch('/p/' + slug + '/share/copy', {method: 'POST'});
      if (navigator.clipboard) { navigator.clipboard.writeText(url).catch(function () {}); }
      copy.textContent = copy.dataset.copied;
    });
  }
})();
