import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { drive } from '../../src/cli/drive.js';
import { LabError } from '../../src/errors.js';
import { labMachine } from '../../src/lifecycle/lab-machine.js';
import { nodeMachine, type NodeInput } from '../../src/lifecycle/node-machine.js';
import { CLI, cli, quickstart, residue, topo } from './helpers.js';

const reportDir = () => mkdtempSync(join(tmpdir(), 'dpl-rpt-'));
const readJson = (dir: string) => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));

describe('reports are written when the lab fails', () => {
  it('a deploy that fails on a real lab: report.json and junit.xml name the step and node, then teardown', async () => {
    // The real node machines wire their nodes on this kernel; deploying the datapath then fails.
    const node = nodeMachine.provide({
      actors: {
        deploy: fromPromise<void, NodeInput>(async () => Promise.reject(new LabError('E_COMMAND', 'bpftool refused the program'))),
      },
    });
    const dir = reportDir();
    const { code, out } = await drive(
      { mode: 'run', file: topo(quickstart('rpt-deploy')), reportDir: dir },
      { quiet: true },
      labMachine.provide({ actors: { node } }),
    );
    expect(code, String(out.error)).toBe(3);
    expect(out.reports?.json).toBe(join(dir, 'report.json'));
    const json = readJson(dir);
    expect(json).toMatchObject({ lab: 'rpt-deploy', backend: 'local', outcome: 'failed' });
    expect(json.failure).toMatchObject({ step: 'deploy', node: 'node1', code: 'E_COMMAND', message: 'bpftool refused the program' });
    // Probe ran on this kernel: the report names it.
    expect(json.kernel.release).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
    expect(json.kernel.identity).toMatchObject({ source: 'host', procVersion: readFileSync('/proc/version', 'utf8').trim() });
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(1);
    expect(xml).toContain('name="deploy"');
    expect(xml).toContain('<error type="E_COMMAND"');
    expect(out.teardown?.removed).toBeGreaterThan(0);
    expect(await residue('rpt-deploy')).toEqual([]);
  });

  it('lab run of a topology that does not validate: exit 2, reports named after the lab, paths printed', async () => {
    const dir = reportDir();
    const r = await cli(['run', topo(quickstart('rpt-bad').replace('rate: 200mbit', 'rate: fast')), '--report-dir', dir, '-q']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain(`reports: ${join(dir, 'report.json')}`);
    expect(r.stdout).toContain(join(dir, 'junit.xml'));
    const json = readJson(dir);
    expect(json).toMatchObject({ lab: 'rpt-bad', outcome: 'failed', failure: { step: 'validate', code: 'E_TOPOLOGY' } });
    expect(json.failure.message).toMatch(/lab\.yaml:\d+:\d+: nodes\[0\]\.uplink\.rate/);
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('name="validate"');
    expect(await residue('rpt-bad')).toEqual([]);
  });

  it('lab check of a lab that is not up: the attach step is reported', async () => {
    const dir = reportDir();
    const r = await cli(['check', 'rpt-nothere', '--report-dir', dir, '-q']);
    expect(r.code).toBe(2);
    expect(existsSync(join(dir, 'junit.xml'))).toBe(true);
    expect(readJson(dir)).toMatchObject({ lab: 'rpt-nothere', failure: { step: 'attach', code: 'E_LAB_UNKNOWN' } });
    expect(r.stdout).toContain('reports:');
  });

  it('a refusal without --report-dir writes no report anywhere: nothing in the working dir, nothing under the default folder', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'dpl-rpt-cwd-'));
    const env = { ...process.env };
    delete env.DPL_REPORTS_DIR;
    const bad = topo(quickstart('rpt-refd').replace('rate: 200mbit', 'rate: fast'));
    for (const args of [
      ['run', bad, '-q'],
      ['check', 'rpt-nothere', '-q'],
    ]) {
      const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).not.toContain('reports:');
    }
    expect(readdirSync(cwd)).toEqual([]);
  });
});
