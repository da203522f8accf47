import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../kernel/helpers.js';

/** A shard's report dir as a CI artifact holds it: matrix.json naming the runner's paths, each kernel's report beside it. */
function shard(root: string, name: string, index: number, kernels: [string, 'pass' | 'fail'][]): string {
  const dir = join(root, name);
  for (const [k] of kernels) {
    mkdirSync(join(dir, k), { recursive: true });
    writeFileSync(join(dir, k, 'report.html'), '<!DOCTYPE html><title>r</title>');
  }
  const rows = kernels.map(([kernel, status]) => ({
    kernel,
    release: `${kernel}.9-cloud-amd64`,
    code: status === 'pass' ? 0 : 1,
    features: [{ feature: 'host-routing', node: 'node1', status: 'applied', mode: 'bpf', detail: 'tcx' }],
    checks: [{ id: 'bigtcp', status, reason: `${status} on ${kernel}` }],
    // Where the shard ran (another runner): gone here.
    reportDir: `/home/runner/work/lab/reports/shard/${kernel}`,
  }));
  writeFileSync(
    join(dir, 'matrix.json'),
    JSON.stringify({ generatedAt: '2026-11-29T00:00:00Z', kernels: rows, shard: { index, count: 2 } }),
  );
  return dir;
}

describe('lab report merge', () => {
  it('joins shards into one matrix.json, matrix.html and junit.xml, finding each report beside its shard', async () => {
    const root = mkdtempSync(join(tmpdir(), 'dem-merge-'));
    const a = shard(root, 'shard-1', 1, [
      ['6.1', 'pass'],
      ['7.3', 'pass'],
    ]);
    const b = shard(root, 'shard-2', 2, [['6.12', 'fail']]);
    const out = join(root, 'merged');
    const r = await cli(['report', 'merge', b, a, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kernel matrix \(2 shards\)/);
    const m = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8'));
    expect(m.kernels.map((k: { kernel: string }) => k.kernel)).toEqual(['6.1', '6.12', '7.3']);
    expect(m.kernels[1].reportDir).toBe(join(b, '6.12'));
    expect(m.shard).toBeUndefined();
    const html = readFileSync(join(out, 'matrix.html'), 'utf8');
    expect(html).toContain('../shard-2/6.12/report.html');
    const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(junit.match(/<testsuite /g)).toHaveLength(3);
    expect(junit).toContain('<failure message="fail on 6.12"/>');
  });

  it('bad input: a dir without matrix.json, or a kernel in two shards, exits 2 and writes nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'dem-merge-'));
    const a = shard(root, 'shard-1', 1, [['6.1', 'pass']]);
    const twice = shard(root, 'shard-2', 2, [['6.1', 'pass']]);
    const none = await cli(['report', 'merge', a, join(root, 'nowhere'), '-o', join(root, 'out1')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nowhere\/matrix\.json: no matrix\.json/);
    const dup = await cli(['report', 'merge', a, twice, '-o', join(root, 'out2')]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/kernel 6\.1 is in two shards/);
    expect(() => readFileSync(join(root, 'out2', 'matrix.json'))).toThrow();
  });
});
