import { describe, expect, it } from 'vitest';
import type { MatrixRow } from '../../src/report/matrix.js';
import { type MatrixCell, type MatrixFile, matrixJunit, mergeMatrices, parseShard, shardCells } from '../../src/report/shard.js';

const cells = (topologies: string[], kernels: string[]): MatrixCell[] =>
  topologies.flatMap((topology) => kernels.map((kernel) => ({ topology, kernel })));

const row = (kernel: string, statuses: MatrixRow['checks'][number]['status'][] = ['pass']): MatrixRow => ({
  kernel,
  release: `${kernel}.0-test`,
  code: statuses.includes('fail') ? 1 : 0,
  features: [],
  checks: statuses.map((status, i) => ({
    id: ['bigtcp', 'backpressure', 'netkit'][i] as 'bigtcp',
    status,
    reason: `${status} on ${kernel}`,
  })),
  reportDir: `/r/${kernel}`,
});
const shardFile = (...rows: MatrixRow[]): MatrixFile => ({ generatedAt: '2026-11-29T00:00:00Z', kernels: rows as MatrixFile['kernels'] });

describe('--shard I/N', () => {
  it('parses I/N and refuses what is not a share', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard('1/1')).toEqual({ index: 1, count: 1 });
    for (const bad of ['0/3', '4/3', '3', '1/0', 'a/b', '-1/2', '1.5/3']) expect(() => parseShard(bad), bad).toThrow(/want I\/N/);
  });

  it('every cell goes to exactly one shard, and shard sizes differ by at most one', () => {
    const all = cells(['a.yaml', 'b.yaml'], ['6.1', '6.12', '7.3', '6.6']);
    for (const n of [1, 2, 3, 5, 8, 11]) {
      const shares = Array.from({ length: n }, (_, i) => shardCells(all, { index: i + 1, count: n }));
      const keys = shares.flat().map((c) => `${c.topology} ${c.kernel}`);
      expect(keys.sort()).toEqual(all.map((c) => `${c.topology} ${c.kernel}`).sort());
      const sizes = shares.map((s) => s.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `n=${n}`).toBeLessThanOrEqual(1);
    }
  });

  it('the split depends on the cells, not on the order they were named (each runner computes it alone)', () => {
    const all = cells(['a.yaml'], ['6.1', '6.12', '7.3']);
    const shuffled = [all[2], all[0], all[1]];
    for (let i = 1; i <= 2; i++) expect(shardCells(shuffled, { index: i, count: 2 })).toEqual(shardCells(all, { index: i, count: 2 }));
    expect(shardCells(all, { index: 1, count: 3 }).map((c) => c.kernel)).toEqual(['6.1']);
    expect(shardCells(all, { index: 3, count: 3 }).map((c) => c.kernel)).toEqual(['7.3']);
    // More shards than cells: the extra ones run nothing.
    expect(shardCells(all, { index: 5, count: 5 })).toEqual([]);
  });
});

describe('lab report merge', () => {
  it('joins the shards in kernel version order', () => {
    const rows = mergeMatrices([
      { dir: 's2', file: shardFile(row('7.3'), row('6.12')) },
      { dir: 's1', file: shardFile(row('6.1', ['fail'])) },
    ]);
    expect(rows.map((r) => r.kernel)).toEqual(['6.1', '6.12', '7.3']);
    expect(rows[0].checks[0].status).toBe('fail');
  });

  it('refuses a kernel answered by two shards, and shards with nothing in them', () => {
    expect(() =>
      mergeMatrices([
        { dir: 's1', file: shardFile(row('6.1')) },
        { dir: 's2', file: shardFile(row('6.1')) },
      ]),
    ).toThrow(/kernel 6\.1 is in two shards: s1 and s2/);
    expect(() => mergeMatrices([{ dir: 's1', file: shardFile() }])).toThrow(/no kernel rows in s1/);
  });

  it('JUnit: a suite per kernel, a case per check, a failed lab as one error', () => {
    const failedLab: MatrixRow = { ...row('6.1'), checks: [], code: 3, error: 'boot: no agent <after 90 s>' };
    const xml = matrixJunit([failedLab, row('7.3', ['pass', 'fail', 'skip'])]);
    expect(xml).toContain('<testsuite name="kernel 6.1 (6.1.0-test)" tests="1" failures="0" errors="1" skipped="0">');
    expect(xml).toContain('<error message="boot: no agent &lt;after 90 s&gt;"/>');
    expect(xml).toContain('<testsuite name="kernel 7.3 (7.3.0-test)" tests="3" failures="1" errors="0" skipped="1">');
    expect(xml.match(/<testcase /g)).toHaveLength(4);
  });
});
