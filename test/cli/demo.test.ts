import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cli, residue } from '../kernel/helpers.js';

describe('lab demo', () => {
  it('refuses an unknown demo, and a VM demo whose kernel is not cached, naming the fix and creating nothing', async () => {
    const bad = await cli(['demo', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no demo 'nope'[\s\S]*backpressure, bigtcp, netkit, services, bandwidth/);
    const cache = mkdtempSync(join(tmpdir(), 'dem-cache-'));
    const dir = join(mkdtempSync(join(tmpdir(), 'dem-')), 'out');
    const vm = spawnSync(process.execPath, [CLI, 'demo', 'netkit', '--report-dir', dir], {
      env: { ...process.env, DPL_CACHE_DIR: cache },
      encoding: 'utf8',
    });
    expect(vm.status).toBe(2);
    expect(vm.stderr).toMatch(/kernel 6\.12, which is not in the cache\n {2}to fix: lab kernels fetch 6\.12/);
    expect(existsSync(dir)).toBe(false);
  });

  it('bigtcp: runs the one check on the local backend and writes demo.html with its plot and verdict', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'dem-')), 'out');
    const r = await cli(['demo', 'bigtcp', '--name', 'dem-bt', '--report-dir', dir, '-q']);
    // 1: the kernel went against the claim; the page must still say so.
    expect([0, 1], r.stderr).toContain(r.code);
    expect(r.stdout).toContain(`demo:    ${join(dir, 'demo.html')}`);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.lab).toBe('dem-bt');
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual(['bigtcp']);
    const page = readFileSync(join(dir, 'demo.html'), 'utf8');
    expect(page).toContain(`<span class="badge ${report.checks[0].status}">`);
    expect(page).toContain('id="plot-bigtcp-skbs"');
    expect(await residue('dem-bt')).toEqual([]);
  }, 120_000);
});
