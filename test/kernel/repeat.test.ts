import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { drive } from '../../src/cli/drive.js';
import { runArgv } from '../../src/exec/exec.js';
import { withSignal, type LabContext } from '../../src/lifecycle/context.js';
import { labMachine } from '../../src/lifecycle/lab-machine.js';
import { runChecks } from '../../src/lifecycle/steps.js';
import type { CheckId } from '../../src/topology/ids.js';
import { cli, quickstart, residue, topo } from './helpers.js';

const reportDir = () => mkdtempSync(join(tmpdir(), 'dpl-rpt-'));
const readJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));

describe('--repeat: flake rates on one lab', () => {
  it('a healthy quickstart: tso-probe and connectivity pass 3 of 3, with counts, rates and spreads in every output', async () => {
    const dir = reportDir();
    const r = await cli([
      'run',
      topo(quickstart('rpt-rep')),
      '--only',
      'tso-probe,connectivity',
      '--repeat',
      '3',
      '--report-dir',
      dir,
      '-q',
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/3 runs\nCHECK\s+RUNS\s+PASS\s+FAIL\s+ERROR\s+SKIP\s+RATE/);
    expect(r.stdout).toMatch(/tso-probe\s+3\s+3\s+0\s+0\s+0\s+100%/);
    expect(r.stdout).toMatch(/connectivity\s+3\s+3\s+0\s+0\s+0\s+100%/);
    const json = readJson(dir);
    expect(json.checks).toHaveLength(6);
    expect(json.repeat.runs).toBe(3);
    const conn = json.repeat.checks.find((c: { id: string }) => c.id === 'connectivity');
    expect(conn.counts).toEqual({ pass: 3, fail: 0, error: 0, skip: 0 });
    // The quickstart has 2 pods, a peer and two families: the same matrix each run.
    expect(conn.metrics.attempts.n).toBe(3);
    expect(conn.metrics.attempts.min).toBe(conn.metrics.attempts.max);
    expect(conn.metrics.attempts.min).toBeGreaterThan(0);
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml.match(/<property name="passRate" value="1.0000"\/>/g)).toHaveLength(2);
    expect(await residue('rpt-rep')).toEqual([]);
  });

  it('lab check NAME --repeat 2 on a lab that is up: two runs, the lab stays up', async () => {
    const up = await cli(['up', topo(quickstart('rpt-chk')), '-q']);
    expect(up.code, up.stderr).toBe(0);
    try {
      const dir = reportDir();
      const r = await cli(['check', 'rpt-chk', '--only', 'tso-probe', '--repeat', '2', '--report-dir', dir, '-q']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toMatch(/2 runs\n/);
      expect(readJson(dir).repeat.checks[0].counts).toEqual({ pass: 2, fail: 0, error: 0, skip: 0 });
      expect((await residue('rpt-chk')).length).toBeGreaterThan(0);
    } finally {
      expect((await cli(['down', 'rpt-chk', '-q'])).code).toBe(0);
    }
    expect(await residue('rpt-chk')).toEqual([]);
  });

  it('a device size changed behind the lab every other run: tso-probe fails exactly in those runs', async () => {
    const ns = 'dpl-rpt-flk.node1.server';
    let run = 0;
    // The seam: before runs 2 and 4 a person shrinks the server's GSO size; after the run it is put back.
    const check = fromPromise<unknown, { ctx: LabContext; only?: CheckId[] }>(async ({ input, signal }) => {
      run++;
      const [link] = JSON.parse((await runArgv(['ip', '-n', ns, '-d', '-j', 'link', 'show', 'dev', 'eth0'])).stdout);
      if (run % 2 === 0) await runArgv(['ip', '-n', ns, 'link', 'set', 'dev', 'eth0', 'gso_max_size', '65536']);
      try {
        return await runChecks(withSignal(input.ctx, signal), input.only);
      } finally {
        // Lowering gso_max_size lowers gso_ipv4_max_size too (net/core/dev.c, netif_set_gso_max_size): put both back.
        const sizes = ['gso_max_size', String(link.gso_max_size), 'gso_ipv4_max_size', String(link.gso_ipv4_max_size)];
        await runArgv(['ip', '-n', ns, 'link', 'set', 'dev', 'eth0', ...sizes]);
      }
    });
    const dir = reportDir();
    const { code, out } = await drive(
      { mode: 'run', file: topo(quickstart('rpt-flk')), only: ['tso-probe'], repeat: 4, reportDir: dir },
      { quiet: true },
      labMachine.provide({ actors: { check } as never }),
    );
    expect(code, String(out.error)).toBe(1);
    expect(out.runs?.map((r) => r.map((c) => c.status))).toEqual([['pass'], ['fail'], ['pass'], ['fail']]);
    const [tso] = readJson(dir).repeat.checks;
    expect(tso.counts).toEqual({ pass: 2, fail: 2, error: 0, skip: 0 });
    expect(tso.passRate).toBe(0.5);
    expect(tso.problems).toHaveLength(1);
    expect(tso.problems[0].runs).toEqual([2, 4]);
    expect(tso.problems[0].reason).toContain(`${ns}/eth0`);
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<failure message="passed 2 of 4 runs (50%)">');
    expect(await residue('rpt-flk')).toEqual([]);
  });
});
