import type { ClaimResult } from './claims.js';
import { esc } from './svg.js';
import { table } from './table.js';

const where = (c: ClaimResult) => (c.where ? `${c.where.backend}, ${c.where.kernel}, ${c.where.accelerator}` : '-');
/** What to run next, for a claim the reports could not answer. */
const open = (c: ClaimResult) => c.verdict === 'not measured' || c.verdict === 'no answer' || c.verdict === 'not judged';

/** The claims for a terminal: one row each; the last column says what was measured, or how to measure it. */
export function claimsTable(results: readonly ClaimResult[], width?: number): string {
  return table(
    ['CLAIM', 'VERDICT', 'WHERE', 'MEASURED'],
    results.map((c) => [c.id, c.verdict.toUpperCase(), where(c), `${c.measured}${open(c) ? ` (to measure: ${c.howTo})` : ''}`]),
    width,
  );
}

const CLASS: Record<ClaimResult['verdict'], string> = {
  holds: 'pass',
  refuted: 'fail',
  'no answer': 'error',
  'not judged': 'skip',
  'not measured': 'skip',
  'not built yet': 'skip',
};

/** The claims as an HTML table for the report page. */
export function claimsHtml(results: readonly ClaimResult[]): string {
  const rows = results.map(
    (c) =>
      `<tr data-claim="${esc(c.id)}"><td>${esc(c.claim)}</td><td><span class="badge ${CLASS[c.verdict]}">${esc(c.verdict)}</span></td>` +
      `<td>${esc(where(c))}</td><td>${esc(c.measured)}${open(c) ? `<br><em>to measure: ${esc(c.howTo)}</em>` : ''}</td></tr>`,
  );
  return (
    '<p>The seed’s claims as this report measured them (<code>lab claims</code> reads the newest reports on the machine).</p>' +
    '<table class="claims"><thead><tr><th scope="col">claim</th><th scope="col">verdict</th><th scope="col">where</th>' +
    `<th scope="col">measured</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}
