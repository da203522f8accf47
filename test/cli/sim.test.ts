import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../kernel/helpers.js';

const QUICKSTART = join(import.meta.dirname, '../../topologies/quickstart.yaml');

/** A directory nobody (uid 65534) can read and write: its topology copy and its reports. */
function sandbox(lab: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), `${lab}-`));
  chmodSync(dir, 0o777);
  const file = join(dir, 'topo.yaml');
  writeFileSync(file, readFileSync(QUICKSTART, 'utf8').replace(/^name: quickstart$/m, `name: ${lab}`));
  chmodSync(file, 0o644);
  return { dir, file };
}

/** Run the built CLI as nobody (setpriv drops root's uid, gid and groups), with a clean environment. */
function asNobody(args: string[]) {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mine = (lab: string) => [
  ...(existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`dpl-${lab}.`)) : []),
  ...[`/sys/fs/bpf/dpl/${lab}`, `/run/datapath-lab/${lab}`].filter((d) => existsSync(d)),
];

describe.skipIf(process.getuid?.() !== 0)('cli: the simulator as a user without root', () => {
  it('lab run quickstart --backend sim: the four checks pass, the report says simulated, nothing is created', () => {
    const lab = 'sim-cli';
    const { dir, file } = sandbox(lab);
    const reports = join(dir, 'reports');
    const r = asNobody(['run', file, '--backend', 'sim', '--report-dir', reports, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/simulated \(dpl-sim\/[\d.]+\)/);
    const report = JSON.parse(readFileSync(join(reports, 'report.json'), 'utf8'));
    expect(report.backend).toBe('sim');
    expect(report.simulated).toMatchObject({ model: expect.stringMatching(/^dpl-sim\//), seed: 1 });
    const status = Object.fromEntries(report.checks.map((c: { id: string; status: string }) => [c.id, c.status]));
    expect(status).toMatchObject({ 'tso-probe': 'pass', connectivity: 'pass', backpressure: 'pass', bigtcp: 'pass' });
    expect(report.checks.find((c: { id: string }) => c.id === 'netkit').reason).toMatch(/^simulated: /);
    // No namespace, pin or root state; the journal under the user's temp dir is gone again.
    expect(mine(lab)).toEqual([]);
    expect(existsSync(join(tmpdir(), 'datapath-lab-sim-65534', lab))).toBe(false);
  });
  it('without --backend sim the same user is refused (exit 2) and told about the simulator', () => {
    const { file } = sandbox('sim-cli2');
    const r = asNobody(['run', file, '-q']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('run it as root');
    expect(r.stderr).toContain('--backend sim');
    expect(mine('sim-cli2')).toEqual([]);
  });
  it('lab up of a backend: sim file says that the simulator runs in one go', () => {
    const { file } = sandbox('sim-cli4');
    writeFileSync(file, `${readFileSync(file, 'utf8')}backend: sim\n`);
    const r = asNobody(['up', file, '-q']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('a simulated lab runs in one go');
    const run = asNobody(['run', file, '--only', 'tso-probe', '--report-dir', join(file, '..', 'r'), '-q']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('simulated');
  });
  it('--backend takes only sim', () => {
    const { file } = sandbox('sim-cli3');
    const r = asNobody(['run', file, '--backend', 'qemu', '-q']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--backend takes sim');
  });
});
