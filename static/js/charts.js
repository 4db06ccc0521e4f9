// Charts on the analytics page and the piece page's feedback breakdown (Chart.js).
// Data and translated labels come from <script type="application/json"> blocks and data-*
// attributes: the CSP allows no inline script.
(function () {
  if (typeof Chart === 'undefined') { return; }

  function json(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // Piece page: reads, likes, comments and shares per day.
  var timeline = document.getElementById('piece-timeline');
  if (timeline) {
    var rows = JSON.parse(timeline.dataset.timeline);
    var tlLabels = JSON.parse(timeline.dataset.labels);
    new Chart(timeline, {type: 'line', data: {labels: rows.map(function (r) { return r.day; }),
      datasets: Object.keys(tlLabels).map(function (k) {
        return {label: tlLabels[k], data: rows.map(function (r) { return r[k]; }), tension: 0.2};
      })}, options: {maintainAspectRatio: false, animation: false}});
  }

  // Analytics page: totals over time and engagement rate by channel.
  var data = json('analytics-data');
  if (!data) { return; }
  var overTime = data.over_time || [];
  var el = document.getElementById('chart-over-time');
  if (el && overTime.length) {
    var series = data.labels.series;
    new Chart(el, {type: 'line', data: {labels: overTime.map(function (r) { return r.day; }),
      datasets: Object.keys(series).map(function (k) {
        return {label: series[k], data: overTime.map(function (r) { return r[k]; }), tension: 0.2,
                yAxisID: k === 'reads' ? 'y' : 'y1'};
      })},
      options: {maintainAspectRatio: false, animation: false, interaction: {mode: 'index', intersect: false},
        scales: {y: {position: 'left', beginAtZero: true}, y1: {position: 'right', beginAtZero: true, grid: {drawOnChartArea: false}}}}});
  }
  var channels = data.channels || [];
  var ch = document.getElementById('chart-channels');
  if (ch && channels.length) {
    new Chart(ch, {type: 'bar', data: {labels: channels.map(function (r) { return r.name; }),
      datasets: [{label: data.labels.engagement_rate + ' %',
                  data: channels.map(function (r) { return r.engagement_rate === null ? 0 : +(r.engagement_rate * 100).toFixed(2); })}]},
      options: {maintainAspectRatio: false, animation: false, indexAxis: 'y', plugins: {legend: {display: false}}}});
  }
})();
