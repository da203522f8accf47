import type { PageAssets } from '../report/assets.js';
import { GRAPH_CSS } from '../report/graph.js';
import { pageHead } from '../report/head.js';

/** The page's own style sheet. */
const DASHBOARD_CSS = `
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
form, .lab-actions { margin: 6px 0; } button { font: inherit; padding: 2px 10px; }
#action-error { color: #c62828; white-space: pre-wrap; }
.action { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; margin: 8px 0; }
.action pre { max-height: 220px; overflow: auto; background: #f7f7f7; padding: 6px; font-size: 12px; margin: 4px 0; }
.action[data-state="running"] { border-left: 6px solid #f9a825; } .action[data-code="0"] { border-left: 6px solid #2e7d32; }
.action[data-state="done"]:not([data-code="0"]) { border-left: 6px solid #c62828; }
.st-pass { color: #2e7d32; } .st-fail, .st-error { color: #c62828; } .st-skip { color: #777; }
`;

/** The dashboard page: one HTML file, its scripts inline (uPlot too); everything it shows arrives over /events. */
export function dashboardHtml(assets: PageAssets): string {
  return `${pageHead('datapath-lab dashboard', [assets.uplotCss, DASHBOARD_CSS])}<body>
<h1>datapath-lab dashboard</h1>
<p id="conn">connecting…</p>
<p id="empty">No labs on this machine yet: <code>lab up topologies/quickstart.yaml</code> or <code>lab run …</code>
in a terminal, and they appear here.</p>
<form id="up-form"><label>bring up a topology from topologies/ <select id="topology" name="topology"></select></label>
<button type="submit" id="up">bring up</button></form>
<p id="action-error" role="alert"></p>
<section id="actions-wrap"><h2>actions from this page</h2><div id="actions"></div></section>
<main id="labs"></main>
<section id="reports-wrap"><h2>past reports</h2>
<table id="reports"><thead><tr><th scope="col">lab</th><th scope="col">written</th><th scope="col">checks</th>
<th scope="col">pages</th></tr></thead><tbody></tbody></table></section>
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
      var acts = el('div', { 'class': 'lab-actions' });
      var only = el('input', { 'class': 'only', placeholder: 'checks (all when empty), e.g. connectivity', size: '40' });
      only.setAttribute('aria-label', 'checks to run');
      var chk = el('button', { type: 'button', 'data-verb': 'check' }, 'run checks');
      chk.addEventListener('click', function () {
        var ids = only.value.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
        act(ids.length ? { verb: 'check', lab: name, only: ids } : { verb: 'check', lab: name });
      });
      var dn = el('button', { type: 'button', 'data-verb': 'down' }, 'tear down');
      dn.addEventListener('click', function () { act({ verb: 'down', lab: name }); });
      acts.appendChild(only); acts.appendChild(chk); acts.appendChild(dn);
      s.appendChild(acts);
      s.appendChild(el('ul', { 'class': 'lab-reports' }));
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
    s.querySelector('.lab-actions').hidden = !lab.present;
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
  var reports = [];
  function link(r, p) {
    return el('a', { href: '/r/' + encodeURIComponent(token) + '/' + encodeURIComponent(r.dir) + '/' + encodeURIComponent(p),
      target: '_blank', rel: 'noopener' }, p);
  }
  function summaryText(r) {
    if (!r.summary) return '';
    return Object.keys(r.summary).filter(function (k) { return r.summary[k] > 0; })
      .map(function (k) { return r.summary[k] + ' ' + k; }).join(', ');
  }
  function renderReports() {
    var body = document.querySelector('#reports tbody');
    body.textContent = '';
    reports.forEach(function (r) {
      var tr = el('tr', { 'data-dir': r.dir, 'data-lab': r.lab });
      tr.appendChild(el('td', {}, r.lab));
      tr.appendChild(el('td', {}, r.generatedAt ? new Date(r.generatedAt).toLocaleString() : new Date(r.mtime).toLocaleString()));
      tr.appendChild(el('td', {}, summaryText(r)));
      var td = el('td');
      r.pages.forEach(function (p, i) { if (i) td.appendChild(document.createTextNode(' ')); td.appendChild(link(r, p)); });
      if (r.plots && r.plots.length) {
        // SVG the server built from report.json's samples, its text escaped there (as the topology graph).
        var d = el('details', { 'class': 'report-plots' });
        d.appendChild(el('summary', {}, 'latency CDF'));
        var box = el('div', { 'class': 'graph' });
        box.innerHTML = r.plots.join('');
        d.appendChild(box);
        td.appendChild(d);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    });
    labs.forEach(function (l) {
      var ul = section(l.name).querySelector('.lab-reports');
      ul.textContent = '';
      reports.filter(function (r) { return r.lab === l.name; }).forEach(function (r) {
        var li = el('li', { 'data-dir': r.dir }, 'report ' + (r.generatedAt || '') + ' ' + summaryText(r) + ': ');
        r.pages.forEach(function (p) { li.appendChild(link(r, p)); li.appendChild(document.createTextNode(' ')); });
        ul.appendChild(li);
      });
    });
  }
  // Actions: the page asks the server, which runs the lab CLI; its output and end arrive over /events.
  function act(body) {
    var err = document.getElementById('action-error');
    err.textContent = '';
    fetch('/api/actions?token=' + encodeURIComponent(token), {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    }).then(function (r) {
      if (r.ok) return;
      return r.json().then(function (j) { err.textContent = 'refused: ' + j.error + (j.hint ? '\\n  to fix: ' + j.hint : ''); });
    }, function (e) { err.textContent = 'could not reach the dashboard: ' + e; });
  }
  function actionBox(a) {
    var d = document.getElementById('action-' + a.id);
    if (!d) {
      d = el('div', { id: 'action-' + a.id, 'class': 'action' });
      d.appendChild(el('code', { 'class': 'command' }, a.command));
      d.appendChild(el('span', { 'class': 'outcome' }));
      d.appendChild(el('pre', { 'class': 'output' }));
      d.appendChild(el('table', { 'class': 'verdicts' }));
      var list = document.getElementById('actions');
      list.insertBefore(d, list.firstChild);
    }
    return d;
  }
  function renderAction(a) {
    var d = actionBox(a);
    d.setAttribute('data-verb', a.verb);
    if (a.lab) d.setAttribute('data-lab', a.lab);
    d.setAttribute('data-state', a.endedAt === undefined ? 'running' : 'done');
    if (a.endedAt !== undefined) d.setAttribute('data-code', String(a.code));
    d.querySelector('.outcome').textContent = a.endedAt === undefined ? ' running…'
      : a.code === 0 ? ' done' : a.code === 2 ? ' refused by the CLI (exit 2; its message above)' : ' ended with exit ' + a.code;
    var t = d.querySelector('.verdicts');
    t.textContent = '';
    (a.verdicts || []).forEach(function (v) {
      var tr = el('tr', { 'data-check': v.id, 'data-status': v.status });
      tr.appendChild(el('td', {}, v.id));
      tr.appendChild(el('td', { 'class': 'st-' + v.status }, v.status));
      tr.appendChild(el('td', {}, v.reason));
      t.appendChild(tr);
    });
    document.querySelectorAll('section.lab').forEach(function (s) {
      var busy = document.querySelector('.action[data-state="running"][data-lab="' + s.getAttribute('data-lab') + '"]');
      s.querySelectorAll('.lab-actions button').forEach(function (b) { b.disabled = !!busy; });
    });
  }
  document.getElementById('up-form').addEventListener('submit', function (e) {
    e.preventDefault();
    act({ verb: 'up', topology: document.getElementById('topology').value });
  });
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
    renderReports();
  });
  es.addEventListener('topologies', function (m) {
    var sel = document.getElementById('topology');
    var was = sel.value;
    sel.textContent = '';
    JSON.parse(m.data).forEach(function (t) {
      var o = el('option', { value: t.file }, t.file + (t.name ? ' (lab ' + t.name + ', ' + t.backend + ')' : ''));
      sel.appendChild(o);
    });
    if (was) sel.value = was;
  });
  es.addEventListener('reports', function (m) { reports = JSON.parse(m.data); renderReports(); });
  es.addEventListener('action', function (m) { renderAction(JSON.parse(m.data)); });
  es.addEventListener('output', function (m) {
    var o = JSON.parse(m.data);
    var pre = actionBox({ id: o.id, command: '' }).querySelector('pre');
    pre.textContent += o.chunk;
    pre.scrollTop = pre.scrollHeight;
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
