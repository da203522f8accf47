import type { PageAssets } from '../report/assets.js';
import { GRAPH_CSS } from '../report/graph.js';

/** The dashboard page: one HTML file, its scripts inline (uPlot too); everything it shows arrives over /events. */
export function dashboardHtml(assets: PageAssets): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>datapath-lab dashboard</title>
<style>${assets.uplotCss}</style>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 16px 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin: 0 0 6px; }
#conn { color: #777; font-size: 12px; }
section.lab { border: 1px solid #ddd; border-left: 6px solid #1a4f8b; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
section.lab.gone { border-left-color: #999; }
.meta { color: #555; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
th { background: #f2f2f2; }
.status-done { color: #2e7d32; } .status-error { color: #c62828; } .status-stopped { color: #777; }
.graph { overflow-x: auto; }
${GRAPH_CSS}
summary { cursor: pointer; color: #1a4f8b; }
</style>
</head>
<body>
<h1>datapath-lab dashboard</h1>
<p id="conn">connecting…</p>
<p id="empty">No labs on this machine yet: <code>lab up topologies/quickstart.yaml</code> or <code>lab run …</code>
in a terminal, and they appear here.</p>
<main id="labs"></main>
<script>${assets.uplotJs.replace(/<\/script/gi, '<\\/script')}</script>
<script>
(function () {
  'use strict';
  var token = new URLSearchParams(location.search).get('token') || '';
  var labs = [];
  var states = {};
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function section(name) {
    var id = 'lab-' + name;
    var s = document.getElementById(id);
    if (!s) {
      s = el('section', { id: id, 'class': 'lab', 'data-lab': name });
      s.appendChild(el('h2', {}, name));
      s.appendChild(el('p', { 'class': 'meta' }));
      var t = el('table', { 'class': 'machines' });
      t.innerHTML = '<thead><tr><th scope="col">machine</th><th scope="col">state</th><th scope="col">status</th>' +
        '<th scope="col">since</th></tr></thead><tbody></tbody>';
      s.appendChild(t);
      var live = el('div', { 'class': 'live', hidden: 'hidden' });
      live.appendChild(el('h3', {}, 'live flow: sender socket-owned bytes vs bottleneck backlog'));
      live.appendChild(el('p', { 'class': 'live-caption' }));
      live.appendChild(el('div', { 'class': 'live-plot' }));
      s.appendChild(live);
      var d = el('details', { 'class': 'graph-wrap' });
      d.appendChild(el('summary', {}, 'topology'));
      d.appendChild(el('div', { 'class': 'graph' }));
      s.appendChild(d);
      document.getElementById('labs').appendChild(s);
    }
    return s;
  }
  function renderLab(lab) {
    var s = section(lab.name);
    s.className = 'lab' + (lab.present ? '' : ' gone');
    s.querySelector('.meta').textContent = lab.present
      ? (lab.backend || '?') + ' lab, ' + (lab.phase || 'no state file') +
        (lab.nodes.length ? ', nodes ' + lab.nodes.join(', ') : '') + (lab.createdAt ? ', up since ' + lab.createdAt : '')
      : 'not on this machine any more (its last recorded states below)';
    // The graph is SVG the server built from the lab's state file, its text escaped there.
    var g = s.querySelector('.graph');
    if (g.getAttribute('data-svg') !== (lab.svg || '')) {
      g.innerHTML = lab.svg || '';
      g.setAttribute('data-svg', lab.svg || '');
      // A lab of a hundred pods would fill the page: its graph starts folded.
      s.querySelector('details').open = g.querySelectorAll('.box.pod').length <= 12;
    }
  }
  function renderStates(name) {
    var body = section(name).querySelector('tbody');
    body.textContent = '';
    var actors = Object.keys(states[name]).sort(function (a, b) { return a === 'lab' ? -1 : b === 'lab' ? 1 : a < b ? -1 : 1; });
    actors.forEach(function (a) {
      var st = states[name][a];
      var tr = el('tr', { 'data-actor': a, 'data-state': st.value, 'data-status': st.status });
      tr.appendChild(el('td', {}, a));
      tr.appendChild(el('td', {}, st.value));
      tr.appendChild(el('td', { 'class': 'status-' + st.status }, st.status));
      tr.appendChild(el('td', {}, new Date(st.t).toLocaleTimeString()));
      body.appendChild(tr);
    });
  }
  var lives = {};
  // Each sampled flow of a lab plotted as its records arrive; a new flow replaces the last.
  function addSample(sm) {
    var s = section(sm.lab);
    var box = s.querySelector('.live');
    var lv = lives[sm.lab];
    if (!lv || lv.flow !== sm.flow) {
      box.querySelector('.live-plot').textContent = '';
      lv = lives[sm.lab] = { flow: sm.flow, x: [], wmem: [], backlog: [], u: null };
      box.querySelector('.live-caption').textContent = 'flow ' + sm.flow + ' from ' + sm.from + ' (sk_wmem_alloc from ss, backlog from tc)';
    }
    lv.x.push(sm.st / 1000);
    lv.wmem.push(sm.wmem);
    lv.backlog.push(sm.backlog);
    box.hidden = false;
    var data = [lv.x, lv.wmem, lv.backlog];
    if (!lv.u) {
      lv.u = new uPlot({
        width: 760, height: 240,
        scales: { x: { time: false } },
        axes: [{ label: 's (node clock)' }, { label: 'bytes', size: 70 }],
        series: [{ label: 's' }, { label: 'sk_wmem_alloc', stroke: '#1f77b4', width: 2 }, { label: 'qdisc backlog', stroke: '#d62728', width: 2 }]
      }, data, box.querySelector('.live-plot'));
    } else {
      lv.u.setData(data);
    }
    box.setAttribute('data-flow', sm.flow);
    box.setAttribute('data-points', String(lv.x.length));
  }
  var es = new EventSource('/events?token=' + encodeURIComponent(token));
  es.onopen = function () {
    document.getElementById('conn').textContent = 'live: machine states stream from the lab processes (xstate inspection)';
  };
  es.onerror = function () { document.getElementById('conn').textContent = 'disconnected; retrying…'; };
  es.addEventListener('labs', function (m) {
    labs = JSON.parse(m.data);
    document.getElementById('empty').hidden = labs.length > 0;
    labs.forEach(function (l) {
      renderLab(l);
      if (states[l.name]) renderStates(l.name);
    });
  });
  es.addEventListener('sample', function (m) {
    var sm = JSON.parse(m.data);
    if (labs.some(function (l) { return l.name === sm.lab; })) addSample(sm);
  });
  es.addEventListener('state', function (m) {
    var st = JSON.parse(m.data);
    states[st.lab] = states[st.lab] || {};
    // A new run of the lab starts its story again.
    if (st.actor === 'lab' && st.value === 'validating') states[st.lab] = {};
    states[st.lab][st.actor] = st;
    // Only listed labs are shown (labs gone for over an hour are not); a new lab is listed within a poll.
    if (labs.some(function (l) { return l.name === st.lab; })) renderStates(st.lab);
  });
})();
</script>
</body>
</html>
`;
}
