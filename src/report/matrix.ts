import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CheckResult } from '../checks/check.js';
import type { Decision } from '../datapath/feature.js';
import { matrixHtml } from './matrix-html.js';
import { table } from './table.js';

/** One kernel's run in a matrix: what each feature did and how each check ended. */
export interface MatrixRow {
  kernel: string;
  release?: string;
  /** Exit code of that kernel's run. */
  code: number;
  error?: string;
  features: Decision[];
  checks: Pick<CheckResult, 'id' | 'status' | 'reason'>[];
  reportDir: string;
}

/** `shard`: this matrix is that share of a larger one (lab run --shard); lab report merge joins them. */
export async function writeMatrix(dir: string, rows: MatrixRow[], shard?: { index: number; count: number }): Promise<string> {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const file = join(out, 'matrix.json');
  const generatedAt = new Date().toISOString();
  await writeFile(file, JSON.stringify({ generatedAt, kernels: rows, ...(shard ? { shard } : {}) }, null, 2) + '\n');
  // The same grid as a page, each cell linking to the check in that kernel's report.html.
  await writeFile(join(out, 'matrix.html'), matrixHtml(rows, out, generatedAt));
  return file;
}

/** A terminal table: a row per kernel, a column per feature (status) and per check. */
export function matrixTable(rows: MatrixRow[]): string {
  const features = [...new Set(rows.flatMap((r) => r.features.map((f) => f.feature)))];
  const checks = [...new Set(rows.flatMap((r) => r.checks.map((c) => c.id)))];
  const body = rows.map((r) => [
    r.kernel,
    r.release ?? '-',
    ...features.map((f) => [...new Set(r.features.filter((d) => d.feature === f).map((d) => d.status))].join('/') || '-'),
    ...checks.map((c) => r.checks.find((x) => x.id === c)?.status ?? (r.error ? 'error' : '-')),
    r.error ?? notes(r),
  ]);
  return table(['KERNEL', 'RELEASE', ...features, ...checks.map((c) => `check:${c}`), 'NOTES'], body);
}

/** What fell back or was declined, in a few words. */
function notes(r: MatrixRow): string {
  return r.features
    .filter((d) => d.status === 'fallback' || d.status === 'declined')
    .map((d) => `${d.feature}: ${d.detail}`)
    .join('; ');
}
