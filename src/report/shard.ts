import { z } from 'zod';
import { LabError } from '../errors.js';
import type { MatrixRow } from './matrix.js';

export { parseShard, shardCells, type MatrixCell, type Shard } from './shard-split.js';

const Decision = z
  .object({ feature: z.string(), node: z.string(), status: z.string(), mode: z.string(), detail: z.string() })
  .passthrough();

/** matrix.json as `lab run --kernel` writes it (a shard adds `shard`). */
export const MatrixFile = z.object({
  generatedAt: z.string(),
  kernels: z.array(
    z.object({
      kernel: z.string(),
      release: z.string().optional(),
      code: z.number(),
      error: z.string().optional(),
      features: z.array(Decision),
      checks: z.array(z.object({ id: z.string(), status: z.enum(['pass', 'fail', 'error', 'skip']), reason: z.string() })),
      reportDir: z.string(),
    }),
  ),
  shard: z.object({ index: z.number(), count: z.number() }).optional(),
});
export type MatrixFile = z.infer<typeof MatrixFile>;

/** Version order for kernel names (6.1 < 6.12 < 7.3), then plain text. */
const byKernel = (a: MatrixRow, b: MatrixRow) => a.kernel.localeCompare(b.kernel, 'en', { numeric: true });

/**
 * The shards' rows as one matrix, in kernel order. A kernel in two shards is an error
 * (the split gives each cell to one shard: two answers mean the inputs are mixed up).
 */
export function mergeMatrices(shards: readonly { dir: string; file: MatrixFile }[]): MatrixRow[] {
  const seen = new Map<string, string>();
  const rows: MatrixRow[] = [];
  for (const { dir, file } of shards)
    for (const row of file.kernels) {
      const other = seen.get(row.kernel);
      if (other !== undefined)
        throw new LabError('E_USAGE', `kernel ${row.kernel} is in two shards: ${other} and ${dir}`, 'merge the shards of one run');
      seen.set(row.kernel, dir);
      rows.push(row as MatrixRow);
    }
  if (!rows.length) throw new LabError('E_USAGE', `no kernel rows in ${shards.map((s) => s.dir).join(', ')}`, 'merge the shards of a run');
  return rows.sort(byKernel);
}

const xmlEsc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** JUnit XML of a matrix: a testsuite per kernel, a testcase per check; a kernel whose lab failed is one error. */
export function matrixJunit(rows: readonly MatrixRow[]): string {
  const suites = rows.map((r) => {
    const cases = r.checks.length
      ? r.checks.map((c) => ({ name: c.id, status: c.status, reason: c.reason }))
      : [{ name: 'lab', status: 'error' as const, reason: r.error ?? `exit ${r.code}, no checks ran` }];
    const n = (s: string) => cases.filter((c) => c.status === s).length;
    const body = cases.map((c) => {
      const inner =
        c.status === 'skip'
          ? `<skipped message="${xmlEsc(c.reason)}"/>`
          : c.status === 'fail' || c.status === 'error'
            ? `<${c.status === 'fail' ? 'failure' : 'error'} message="${xmlEsc(c.reason)}"/>`
            : `<system-out>${xmlEsc(c.reason)}</system-out>`;
      return `    <testcase classname="datapath-lab.kernel-${xmlEsc(r.kernel)}" name="${xmlEsc(c.name)}">${inner}</testcase>`;
    });
    const attrs = `tests="${cases.length}" failures="${n('fail')}" errors="${n('error')}" skipped="${n('skip')}"`;
    return [
      `  <testsuite name="kernel ${xmlEsc(r.kernel)}${r.release ? ` (${xmlEsc(r.release)})` : ''}" ${attrs}>`,
      ...body,
      '  </testsuite>',
    ];
  });
  return ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites name="datapath-lab matrix">', ...suites.flat(), '</testsuites>', ''].join(
    '\n',
  );
}
