import { relative } from 'node:path';
import type { MatrixRow } from './matrix.js';
import { esc, thead } from './svg.js';
import { pageHead } from './head.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', error: 'ERROR' } as const;
const badge = (cls: string, text: string, title: string) => `<span class="badge ${cls}" title="${esc(title)}">${esc(text)}</span>`;
const FEATURE_CLASS: Record<string, string> = { applied: 'pass', fallback: 'error', declined: 'fail', off: 'skip' };

/** The page's own style sheet. */
const MATRIX_CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 24px; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f2f2f2; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 4px; font: bold 12px monospace; color: #fff; white-space: nowrap; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
.badge.error { background: #ef6c00; } .badge.skip { background: #757575; }
`;

/**
 * A kernel matrix as one page: a row per kernel, a column per datapath feature (what it
 * did there) and per check (its status, linking to that check in the kernel's report.html).
 */
export function matrixHtml(rows: readonly MatrixRow[], dir: string, generatedAt = new Date().toISOString()): string {
  const features = [...new Set(rows.flatMap((r) => r.features.map((f) => f.feature)))];
  const checks = [...new Set(rows.flatMap((r) => r.checks.map((c) => c.id)))];
  const head = thead(['kernel', 'release', ...features.map((f) => `feature: ${f}`), ...checks, 'notes']);
  const body = rows.map((r) => {
    const page = relative(dir, `${r.reportDir}/report.html`);
    const feats = features.map((f) => {
      const ds = r.features.filter((d) => d.feature === f);
      const cell = ds.map((d) => badge(FEATURE_CLASS[d.status] ?? 'skip', `${d.mode} (${d.status})`, `${d.node}: ${d.detail}`));
      return `<td>${cell.join(' ') || '-'}</td>`;
    });
    const cks = checks.map((id) => {
      const c = r.checks.find((x) => x.id === id);
      if (!c) return `<td>${r.error ? '<span class="badge error">ERROR</span>' : '-'}</td>`;
      return `<td><a href="${esc(`${page}#check-${id}`)}">${badge(c.status, MARK[c.status], c.reason)}</a></td>`;
    });
    const notes =
      r.error ??
      r.features
        .filter((d) => d.status === 'fallback' || d.status === 'declined')
        .map((d) => `${d.feature}: ${d.detail}`)
        .join('; ');
    const kernel = `<th scope="row"><a href="${esc(page)}">${esc(r.kernel)}</a></th><td>${esc(r.release ?? '-')}</td>`;
    return `<tr data-kernel="${esc(r.kernel)}">${kernel}${feats.join('')}${cks.join('')}<td>${esc(notes)}</td></tr>`;
  });
  return `${pageHead('datapath-lab kernel matrix', [MATRIX_CSS])}<body>
<h1>Kernel matrix</h1>
<p>Each kernel's run: what each datapath feature did there, and how each check ended
(a link to the check in that kernel's report). Generated ${esc(generatedAt)}.</p>
<table>${head}<tbody>${body.join('')}</tbody></table>
</body>
</html>
`;
}
