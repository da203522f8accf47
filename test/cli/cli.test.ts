import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli, quickstart, topo } from '../kernel/helpers.js';

const namespaces = (lab: string) => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`dpl-${lab}.`)) : []);

/** Bad input: exit 2, a message naming file:line and field, and nothing created. */
async function rejects(text: string, ...expected: (string | RegExp)[]) {
  const lab = /^name: (\S+)/m.exec(text)?.[1] ?? 'none';
  const file = topo(text);
  const r = await cli(['run', file, '-q']);
  expect(r.code, r.stderr).toBe(2);
  for (const e of expected) expect(r.stderr).toMatch(typeof e === 'string' ? new RegExp(e.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('FILE', file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))) : e);
  expect(namespaces(lab)).toEqual([]);
}

describe('cli: bad input gets exit 2, a located message, and changes nothing', () => {
  it('malformed YAML', () => rejects('name: x\nnodes:\n  - name: [oops\n', 'FILE:4:1: YAML:'));
  it('unknown field', () => rejects(quickstart('c1') + 'colour: red\n', "FILE:11:1: colour: unknown field 'colour'"));
  it('missing field', () => rejects('name: c2\n', 'FILE:1:1: nodes: missing required field'));
  it('duplicate names', () => rejects(quickstart('c3').replace('name: server', 'name: client'), "FILE:7:15: nodes[0].pods[1].name: duplicate pod name 'client'"));
  it('overlapping prefixes', () =>
    rejects('name: c4\nnodes:\n  - name: n1\n    podCidr: 10.0.0.0/8\n  - name: n2\n    podCidr: 10.1.0.0/16\n', 'FILE:6:14: nodes[1].podCidr: 10.1.0.0/16 overlaps 10.0.0.0/8'));
  it('a name too long for an interface', () =>
    rejects(quickstart('c5').replace('name: server', 'name: serverserverserver'), 'nodes[0].pods[1].name: pod name is at most 11 characters'));
  it('an unknown backend', () => rejects(quickstart('c6') + 'backend: firecracker\n', "FILE:11:10: backend: unknown backend 'firecracker'; known: local, qemu"));
  it('a missing file', () => rejects('', /error: invalid topology/));
  it('an unknown check in --only', async () => {
    const r = await cli(['run', topo(quickstart('c7')), '--only', 'speed']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown check speed; checks are: backpressure, tso-probe, bigtcp');
  });
  it('an unknown verb, and down/status/check of a lab that does not exist', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    for (const args of [['down', 'nosuchlab'], ['status', 'nosuchlab'], ['check', 'nosuchlab']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/no lab named 'nosuchlab'/);
    }
    expect((await cli(['down'])).code).toBe(2);
  });
  it('not root: refused with exit 2 before anything is created', async () => {
    const { spawnSync } = await import('node:child_process');
    const { CLI } = await import('../kernel/helpers.js');
    const file = topo(quickstart('c8'));
    const { chmodSync } = await import('node:fs');
    const { dirname } = await import('node:path');
    chmodSync(dirname(file), 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'up', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('run it as root');
  });
});

describe('cli: help and doctor', () => {
  it('--help lists every verb and the exit codes', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const v of ['up', 'status', 'check', 'down', 'run', 'demo', 'doctor', 'schema']) expect(r.stdout).toMatch(new RegExp(`\\n  ${v} `));
    expect(r.stdout).toContain('Exit codes');
  });
  it('doctor --json reads the kernel: features and checks with reasons', async () => {
    const r = await cli(['doctor', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.kernel.release).toMatch(/^\d+\.\d+/);
    const nk = d.features.find((f: { id: string }) => f.id === 'pod-device');
    // The verdict follows this kernel's own config (FACTS.md: no CONFIG_NETKIT here).
    const { readFileSync } = await import('node:fs');
    const { gunzipSync } = await import('node:zlib');
    const hasNetkit = /^CONFIG_NETKIT=[ym]$/m.test(gunzipSync(readFileSync('/proc/config.gz')).toString());
    expect(nk.supported).toBe(hasNetkit);
    if (!hasNetkit) expect(nk.reason).toBe('kernel lacks CONFIG_NETKIT');
    expect(d.checks.map((c: { id: string }) => c.id).sort()).toEqual(['backpressure', 'bigtcp', 'connectivity', 'netkit', 'netkit-throughput', 'tso-probe']);
    expect(d.checks.find((c: { id: string }) => c.id === 'netkit').supported).toBe(hasNetkit);
    expect(d.qemuBackend.kernels.map((k: { name: string }) => k.name)).toEqual(expect.arrayContaining(['6.1', '6.12', '7.3']));
  });
});
