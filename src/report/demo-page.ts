import type { PageAssets } from './assets.js';
import { CLIENT_JS } from './client.js';
import type { Demo } from './demos.js';
import type { ReportCheck, ReportDoc } from './doc.js';
import { CSS, metricsHtml, plotHtml, scriptJson } from './html.js';
import { plotsFor } from './plots.js';
import { pageHead } from './head.js';
import { esc } from './svg.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', error: 'ERROR' } as const;

const DEMO_CSS = `
.explain p { max-width: 860px; } .verdict { font-size: 15px; margin: 10px 0; }
.control { color: #444; }
`;

function verdictHtml(c: ReportCheck | undefined, check: string): string {
  if (!c) return `<p class="verdict"><span class="badge error">ERROR</span> the check ${esc(check)} has no result in this report</p>`;
  return `<p class="verdict" data-status="${c.status}"><span class="badge ${c.status}">${MARK[c.status]}</span> ${esc(c.reason)}</p>
${c.threshold ? `<p class="threshold"><strong>Threshold:</strong> ${esc(c.threshold)}</p>` : ''}`;
}

/**
 * The demo's page: what the plot shows and why the kernel does it, the check's plots
 * (the report's shaping and rendering), its verdict, and a link to the full report.
 */
export function demoHtml(demo: Demo, doc: ReportDoc, assets: PageAssets, reportHref = 'report.html'): string {
  const c = doc.checks.find((x) => x.id === demo.check);
  const plots = c ? plotsFor(c) : [];
  const lines = plots.filter((p) => p.kind === 'lines');
  // A check without a plot of its own (bwm-rate) shows its numbers instead.
  const figures = plots.length
    ? plots.map(plotHtml).join('\n')
    : c
      ? `<details class="metrics" open><summary>Measured</summary>${metricsHtml(c.metrics)}</details>`
      : '';
  const where = `${doc.backend}${doc.timing ? ` (${doc.timing})` : ''}, kernel ${doc.kernel.release}`;
  return (
    `${pageHead(`datapath-lab demo: ${demo.id}`, [assets.uplotCss, CSS + DEMO_CSS])}<body>
<header>
<h1>${esc(demo.title)}</h1>
<p class="control">lab demo ${esc(demo.id)}: check <code>${esc(demo.check)}</code> on topologies/${esc(demo.topology)}, ` +
    `beside its control (${esc(demo.control)}); ${esc(where)}, ${esc(doc.generatedAt)}.</p>
</header>
<main>
<section class="explain" id="explain">
<h2>What you are looking at</h2>
${demo.explain.map((p) => `<p>${esc(p)}</p>`).join('\n')}
</section>
<section class="check ${c?.status ?? 'error'}" id="check-${esc(demo.check)}" data-check="${esc(demo.check)}">
<h2>What the kernel showed</h2>
${verdictHtml(c, demo.check)}
${figures}
<details class="evidence"><summary>Evidence (${c?.evidence.length ?? 0})</summary>${
      c?.evidence.map((e) => `<pre>${esc(e)}</pre>`).join('') || '<p><em>none</em></p>'
    }</details>
</section>
<p><a href="${esc(reportHref)}">The full report</a> (topology graph, datapath decisions, kernel facts).</p>
</main>
<script type="application/json" id="plot-data">${scriptJson(lines)}</script>
<script>${assets.uplotJs.replace(/<\/script/gi, '<\\/script')}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`
  );
}
