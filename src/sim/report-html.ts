import { readFile, writeFile } from 'node:fs/promises';
import { pageAssets } from '../report/assets.js';
import { evaluateClaims } from '../report/claims.js';
import { claimsHtml } from '../report/claims-view.js';
import { ReportDoc } from '../report/doc.js';
import { type PageSection, reportHtml } from '../report/html.js';
import { esc, thead, tr } from '../report/svg.js';
import type { Fidelity } from './fidelity.js';

/** What report.json's `simulated` block holds (src/backends/sim/run.ts). */
export interface SimulatedMeta {
  model: string;
  seed: number;
  cpu: string;
  virtualMs: number;
  events: number;
}

/** The section that marks a page as a prediction: model version, seed, CPU profile, virtual time. */
export function simulatedSection(s: SimulatedMeta): PageSection {
  return {
    id: 'simulated',
    title: 'Simulated',
    html:
      `<p><strong>Simulated: these results are the model's predictions, not measurements of a kernel.</strong> ` +
      'The checks and their verdict functions are the same as on a kernel; the measurement API was answered by ' +
      `the simulator (src/sim). A check's time is virtual time.</p>` +
      `<table>${thead(['model', 'seed', 'CPU profile', 'virtual time', 'events'])}<tbody>` +
      `${tr([s.model, String(s.seed), s.cpu, `${s.virtualMs} ms`, String(s.events)])}</tbody></table>`,
  };
}

const pct = (x?: number) => (x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const num = (x?: number) => (x === undefined ? '-' : String(x));

/** Prediction beside measurement: each check's verdict both ways, then its key metrics with the relative error. */
export function fidelitySection(f: Fidelity, model: string): PageSection {
  const v = f.verdicts.map((x) => tr([x.check, x.kernel ?? '-', x.sim ?? '-', x.agree ? 'yes' : 'NO'], x.agree ? '' : ' class="disagree"'));
  const m = f.metrics.map((x) => tr([x.check, x.metric, num(x.kernel), num(x.sim), pct(x.relErr)]));
  return {
    id: 'fidelity',
    title: 'Fidelity: kernel vs simulator',
    html:
      `<p>The same checks on this kernel (measured) and in the simulator ${esc(model)} (predicted). A verdict that differs ` +
      'is a finding: the kernel departed from the model, or the model is wrong.</p>' +
      `<table>${thead(['check', 'kernel', 'simulator', 'agree'])}<tbody>${v.join('')}</tbody></table>` +
      `<h3>Key metrics</h3><table>${thead(['check', 'metric', 'kernel', 'simulator', 'rel. err'])}<tbody>${m.join('')}</tbody></table>`,
  };
}

/** Write report.html for a report.json with extra sections (the claims section as a kernel run's page has it, first). */
export async function writeReportHtml(jsonPath: string, htmlPath: string, extra: PageSection[]): Promise<void> {
  const saved = ReportDoc.parse(JSON.parse(await readFile(jsonPath, 'utf8')));
  const claims = { id: 'claims', title: "The seed's claims", html: claimsHtml(evaluateClaims([{ path: jsonPath, doc: saved }])) };
  await writeFile(htmlPath, reportHtml(saved, await pageAssets(), [claims, ...extra]));
}
