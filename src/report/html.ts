import type { PageAssets } from './assets.js';
import { CLIENT_JS } from './client.js';
import type { ReportCheck, ReportDoc } from './doc.js';
import { GRAPH_CSS, topologyLayout, topologySvg } from './graph.js';
import { pageHead } from './head.js';
import { type Plot, plotsFor } from './plots.js';
import { barSvg, esc, fmt, thead, tr } from './svg.js';
import { cdfSvg } from './cdf-svg.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', error: 'ERROR' } as const;

/** The report's stylesheet (the demo page uses it too). */
export const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 16px 24px; color: #222; }
h1 { font-size: 22px; margin: 8px 0; } h2 { font-size: 18px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 12px 0 4px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 16px; }
.meta dt { color: #666; } .meta dd { margin: 0; }
.summary span { margin-right: 12px; }
.badge { display: inline-block; min-width: 48px; text-align: center; padding: 1px 6px; border-radius: 4px;
  font: bold 12px monospace; color: #fff; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
.badge.error { background: #ef6c00; } .badge.skip { background: #757575; }
section.check { border: 1px solid #ddd; border-left: 6px solid #757575; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
section.check.pass { border-left-color: #2e7d32; } section.check.fail { border-left-color: #c62828; }
section.check.error { border-left-color: #ef6c00; }
.reason { margin: 4px 0; } .threshold { color: #444; margin: 4px 0; } .ms { color: #777; font-size: 12px; }
figure { margin: 10px 0; } figcaption { color: #555; font-size: 13px; max-width: 860px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; white-space: pre-wrap;
  word-break: break-all; }
table { border-collapse: collapse; font-size: 12px; margin: 4px 0; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
details { margin: 6px 0; } summary { cursor: pointer; color: #1a4f8b; }
.topology-wrap, .bars-wrap { overflow-x: auto; }
${GRAPH_CSS}
`;

/** Any metrics value as HTML: tables for lists of records, definition rows for records; plotted series left out. */
export function metricsHtml(v: unknown, depth = 0): string {
  if (v === null || v === undefined) return '<em>none</em>';
  if (typeof v === 'number') return esc(fmt(v));
  if (typeof v !== 'object') return esc(String(v));
  if (Array.isArray(v)) {
    if (!v.length) return '<em>none</em>';
    if (v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) {
      const keys = [...new Set(v.flatMap((x) => Object.keys(x as object)))];
      const head = keys.map((k) => `<th scope="col">${esc(k)}</th>`).join('');
      const rows = v.map(
        (x) => `<tr>${keys.map((k) => `<td>${metricsHtml((x as Record<string, unknown>)[k], depth + 1)}</td>`).join('')}</tr>`,
      );
      return `<table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
    }
    return v.map((x) => metricsHtml(x, depth + 1)).join(', ');
  }
  const rows = Object.entries(v as Record<string, unknown>).map(([k, x]) =>
    (k === 'series' || k === 'cdf') && depth > 0
      ? `<tr><th scope="row">${esc(k)}</th><td><em>plotted above</em></td></tr>`
      : `<tr><th scope="row">${esc(k)}</th><td>${metricsHtml(x, depth + 1)}</td></tr>`,
  );
  return rows.length ? `<table><tbody>${rows.join('')}</tbody></table>` : '<em>none</em>';
}

/** One plot as a figure: a uPlot host (drawn by CLIENT_JS) or a static SVG bar chart. */
export function plotHtml(p: Plot): string {
  const body =
    p.kind === 'lines'
      ? `<div class="uplot-host" id="plot-${esc(p.id)}" data-plot="${esc(p.id)}"></div>`
      : p.kind === 'cdf'
        ? `<div class="bars-wrap" id="plot-${esc(p.id)}" data-plot="${esc(p.id)}">${cdfSvg(p)}</div>`
        : `<div class="bars-wrap" id="plot-${esc(p.id)}" data-plot="${esc(p.id)}">${barSvg(p)}</div>`;
  const title = `${p.title}${p.kind === 'bars' && p.log ? ' (log scale)' : ''}`;
  return `<figure><h3>${esc(title)}</h3>${body}<figcaption>${esc(p.caption)}</figcaption></figure>`;
}

function checkHtml(c: ReportCheck, plots: Plot[]): string {
  // tc's lines end in spaces: shown without them (the page validates; the text is the same to a reader).
  const evidence = c.evidence.map((e) => `<pre>${esc(e.replace(/[ \t]+$/gm, ''))}</pre>`).join('');
  return `<section class="check ${c.status}" id="check-${esc(c.id)}" data-check="${esc(c.id)}" data-status="${c.status}">
<h2><span class="badge ${c.status}">${MARK[c.status]}</span> ${esc(c.id)}: ${esc(c.title)}</h2>
<p class="reason">${esc(c.reason)}</p>
${c.threshold ? `<p class="threshold"><strong>Threshold:</strong> ${esc(c.threshold)}</p>` : ''}
<p class="ms">${(c.ms / 1000).toFixed(1)} s</p>
${plots.map(plotHtml).join('\n')}
<details class="metrics" open><summary>Metrics</summary>${metricsHtml(c.metrics)}</details>
<details class="evidence"><summary>Evidence (${c.evidence.length})</summary>${evidence || '<p><em>none</em></p>'}</details>
</section>`;
}

/** A JSON value safe inside a <script> element (no "</script", no HTML comment openers). */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/** Extra sections a caller adds (the claims). */
export interface PageSection {
  /** Anchor of the section. */
  id: string;
  /** Its heading and entry in the page navigation. */
  title: string;
  /** Its body, already escaped. */
  html: string;
}

/** The whole report as one self-contained page: no request leaves it (uPlot and the data are inline). */
export function reportHtml(doc: ReportDoc, assets: PageAssets, extra: PageSection[] = []): string {
  const plots = doc.checks.map((c) => plotsFor(c));
  const lines = plots.flat().filter((p) => p.kind === 'lines');
  const summary = (['pass', 'fail', 'error', 'skip'] as const)
    .map((s) => `<span><span class="badge ${s}">${MARK[s]}</span> ${doc.summary[s] ?? 0}</span>`)
    .join('');
  const topo = doc.network
    ? `<div class="topology-wrap">${topologySvg(topologyLayout(doc.network, doc.datapath))}</div>`
    : '<p><em>This report predates the topology in report.json: no graph.</em></p>';
  const decisions = doc.datapath.map((d) => tr([d.node, d.feature, d.mode, d.status, d.detail])).join('');
  const meta: [string, string][] = [
    ['topology', doc.topology],
    ['backend', doc.backend + (doc.timing ? ` (timing ${doc.timing})` : '')],
    ['kernel', `${doc.kernel.release}${doc.kernel.arch ? ` ${doc.kernel.arch}` : ''}`],
    ['generated', doc.generatedAt],
  ];
  const nav = [...doc.checks.map((c) => [`check-${c.id}`, c.id]), ['topology', 'topology'], ...extra.map((s) => [s.id, s.title])]
    .map(([id, t]) => `<a href="#${esc(id)}">${esc(t)}</a>`)
    .join(' · ');
  return `${pageHead(`datapath-lab report: ${doc.lab}`, [assets.uplotCss, CSS])}<body>
<header>
<h1>datapath-lab report: ${esc(doc.lab)}</h1>
<dl class="meta">${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<p class="summary">${summary}</p>
<nav>${nav}</nav>
</header>
<main>
${doc.checks.map((c, i) => checkHtml(c, plots[i])).join('\n')}
<section id="topology">
<h2>Topology</h2>
${topo}
<h3>Datapath decisions</h3>
<table>${thead(['node', 'feature', 'mode', 'status', 'why'])}<tbody>${decisions}</tbody></table>
<details><summary>Kernel facts</summary>${metricsHtml(doc.kernel)}</details>
</section>
${extra.map((s) => `<section id="${esc(s.id)}">\n<h2>${esc(s.title)}</h2>\n${s.html}\n</section>`).join('\n')}
</main>
<script type="application/json" id="plot-data">${scriptJson(lines)}</script>
<script>${assets.uplotJs.replace(/<\/script/gi, '<\\/script')}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;
}
