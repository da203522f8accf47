/**
 * The page's own script (plain ES2017, run by the browser after uPlot): draws every line
 * plot from the JSON in #plot-data and marks each host data-rendered, which the UI test reads.
 */
export const CLIENT_JS = `(function () {
  'use strict';
  function bytes(v) {
    if (v == null) return '-';
    if (v >= 1e6) return (v / 1e6).toFixed(1) + ' MB';
    if (v >= 1e3) return (v / 1e3).toFixed(0) + ' KB';
    return String(Math.round(v)) + ' B';
  }
  function val(unit) {
    return function (u, v) { return v == null ? '-' : unit === 'B' ? bytes(v) : v.toFixed(1) + ' ' + unit; };
  }
  var plots = JSON.parse(document.getElementById('plot-data').textContent);
  plots.forEach(function (p) {
    var host = document.getElementById('plot-' + p.id);
    if (!host) return;
    var width = Math.max(360, Math.min(860, host.clientWidth || 860));
    var opts = {
      width: width,
      height: 280,
      scales: { x: { time: false }, y: { range: [0, p.yMax ? p.yMax * 1.05 : null] } },
      axes: [
        { label: p.xLabel },
        { label: p.yLabel, size: 70, values: function (u, vals) { return vals.map(p.yUnit === 'B' ? bytes : String); } }
      ],
      series: [{ label: 's', value: function (u, v) { return v == null ? '-' : v.toFixed(2) + ' s'; } }].concat(
        p.series.map(function (s) {
          return { label: s.label, stroke: s.color, width: 2, points: { show: true, size: 5 }, spanGaps: false, value: val(p.yUnit) };
        })
      )
    };
    new uPlot(opts, [p.x].concat(p.series.map(function (s) { return s.values; })), host);
    host.setAttribute('data-rendered', String(host.querySelectorAll('canvas').length));
  });
})();
`;
