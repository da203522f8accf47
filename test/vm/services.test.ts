import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, residue, topo } from '../kernel/helpers.js';

const LAB = 'svc-vm';
const topology = readFileSync(new URL('../../topologies/vm-services.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${LAB}`);

// One boot (TCG, kernel 6.12): the guest mounts cgroup v2, so socket-LB applies there.
describe('socket-LB in a VM (kernel 6.12)', () => {
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
  });

  it('decides bpf for kube-proxy and passes kube-proxy-free, svc-clusterip, svc-no-backend in the guest', async () => {
    expect((await cli(['kernels', 'fetch', '6.12'])).code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'dpl-report-'));
    const only = 'kube-proxy-free,svc-clusterip,svc-no-backend';
    const r = await cli(['run', topo(topology), '--only', only, '--report-dir', dir, '-q']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const kpr = out.datapath.find((d: { feature: string }) => d.feature === 'kube-proxy');
    expect([kpr.status, kpr.mode]).toEqual(['applied', 'bpf']);
    const byId = Object.fromEntries(out.checks.map((c: { id: string; status: string }) => [c.id, c]));
    expect(['kube-proxy-free', 'svc-clusterip', 'svc-no-backend'].map((id) => byId[id].status)).toEqual(['pass', 'pass', 'pass']);
    expect(byId['svc-no-backend'].metrics.errnos).toEqual(['EHOSTUNREACH']);
    expect(await residue(LAB)).toEqual([]);
  });
});
