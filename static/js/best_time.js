// "Best time to post" suggestions next to a scheduling field (analytics/_best_time_hint.html).
// The box carries the API address and the button label in data-* attributes: no inline script.
(function () {
  function setup(box) {
    var form = box.closest('form');
    if (!form) { return; }
    var list = box.querySelector('[data-best-time-list]');
    var useLabel = box.dataset.useLabel;
    var url = box.dataset.url;
    function refresh() {
      var audience = form.querySelector('[name=audience_id]');
      var channels = Array.prototype.slice.call(form.querySelectorAll('[name=channel_ids]:checked'));
      list.textContent = '';
      box.hidden = true;
      channels.forEach(function (input) {
        var q = '?channel_id=' + encodeURIComponent(input.value) +
                (audience && audience.value ? '&audience_id=' + encodeURIComponent(audience.value) : '');
        fetch(url + q, {credentials: 'same-origin'})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (!data || !data.suggestion) { return; }
            var s = data.suggestion;
            var label = (input.labels && input.labels[0] ? input.labels[0].textContent.trim().split('\n')[0] : '');
            var item = document.createElement('span');
            item.className = 'me-3';
            item.dataset.channelId = input.value;
            item.textContent = label + ': ' + s.next_at_local.replace('T', ' ') + ' ';
            var target = form.querySelector('[name=scheduled_at]');
            if (target) {
              var btn = document.createElement('button');
              btn.type = 'button';
              btn.className = 'btn btn-link btn-sm p-0 align-baseline';
              btn.textContent = useLabel;
              btn.addEventListener('click', function () { target.value = s.next_at_local; });
              item.appendChild(btn);
            }
            list.appendChild(item);
            box.hidden = false;
          }).catch(function () {});
      });
    }
    form.addEventListener('change', function (e) {
      if (e.target.name === 'audience_id' || e.target.name === 'channel_ids') { refresh(); }
    });
    refresh();
  }
  function init() {
    document.querySelectorAll('[data-best-time-hint]').forEach(setup);
  }
  // The hint sits inside the form; wait for the rest of the form before the first refresh.
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); }
  else { init(); }
})();
