import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulated } from '../../src/backends/sim/run.js';
import type { Frontend, ServicePlan } from '../../src/datapath/kpr/plan.js';
import type { Rng } from '../../src/sim/rng.js';
import { SockLb } from '../../src/sim/socklb.js';
import { loadTopologyFile } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

/** An Rng that hands out the given draws in turn (bpf_get_prandom_u32's stand-in). */
const draws = (...xs: number[]) => ({ u32: () => xs.shift() ?? 0 }) as unknown as Rng;

const fe = (over: Partial<Frontend>): Frontend => ({
  svcId: 1,
  service: 'web',
  family: 'ipv4',
  vip: '10.96.0.10',
  port: 80,
  protocol: 'TCP',
  targetPort: 8080,
  affinitySeconds: 0,
  backends: [],
  ...over,
});
const be = (id: number, addr: string) => ({ id, node: 'n1', pod: `p${id}`, addr, port: 8080, family: 'ipv4' as const });
const plan = (...frontends: Frontend[]): ServicePlan => ({ frontends, backends: [be(1, '10.0.0.1'), be(2, '10.0.0.2')] });
const dial = (lb: SockLb, rng: Rng, over: Partial<Parameters<SockLb['connect']>[1]> = {}) =>
  lb.connect(rng, { netnsCookie: 'pod', socketCookie: 1, family: 'ipv4', proto: 'TCP', addr: '10.96.0.10', port: 80, nowNs: 0, ...over });
const picked = (x: ReturnType<SockLb['connect']>) => (x.kind === 'xlate' ? x.backend.id : x.kind);

describe('socket-LB model (bpf/sock_lb.c xlate_fwd)', () => {
  it('a service without backends refuses the call with EHOSTUNREACH; a non-service is left alone', () => {
    const lb = new SockLb(plan(fe({})));
    expect(dial(lb, draws())).toEqual({ kind: 'reject', errno: 'EHOSTUNREACH' });
    expect(dial(lb, draws(), { port: 81 })).toEqual({ kind: 'none' });
    expect(dial(lb, draws(), { proto: 'UDP' })).toEqual({ kind: 'none' });
    expect(lb.counters.noBackend).toBe(1);
  });
  it('slots by weight: weights 1 and 3 give slots [1,2,2,2], drawn as prandom % count + 1', () => {
    const lb = new SockLb(
      plan(
        fe({
          backends: [
            { id: 1, weight: 1 },
            { id: 2, weight: 3 },
          ],
        }),
      ),
    );
    const rng = draws(0, 1, 2, 3, 4, 7);
    expect([0, 1, 2, 3, 4, 5].map(() => picked(dial(lb, rng)))).toEqual([1, 2, 2, 2, 1, 2]);
  });
  it('affinity keeps a netns on its backend within the timeout, and picks anew after it', () => {
    const lb = new SockLb(
      plan(
        fe({
          affinitySeconds: 10,
          backends: [
            { id: 1, weight: 1 },
            { id: 2, weight: 1 },
          ],
        }),
      ),
    );
    const rng = draws(1, 0, 0, 0);
    expect(picked(dial(lb, rng, { nowNs: 0 }))).toBe(2);
    expect(picked(dial(lb, rng, { nowNs: 5e9 }))).toBe(2);
    expect(picked(dial(lb, rng, { nowNs: 5e9, netnsCookie: 'other' }))).toBe(1);
    expect(picked(dial(lb, rng, { nowNs: 16e9 }))).toBe(1);
    expect(lb.counters.affinityHit).toBe(1);
  });
  it('a new revision replaces the slots whole: the removed backend is never drawn', () => {
    const f = fe({
      backends: [
        { id: 1, weight: 1 },
        { id: 2, weight: 1 },
      ],
    });
    const lb = new SockLb(plan(f));
    lb.setFrontend({ ...f, backends: [{ id: 1, weight: 1 }] }, 2);
    expect(lb.revOf(f)).toBe(2);
    const rng = draws(0, 1, 2, 3, 5);
    expect([0, 1, 2, 3, 4].map(() => picked(dial(lb, rng)))).toEqual([1, 1, 1, 1, 1]);
  });
  it('revnat: getpeername on the translated socket gives the ClusterIP back, another socket the address as is', () => {
    const lb = new SockLb(plan(fe({ backends: [{ id: 2, weight: 1 }] })));
    dial(lb, draws(0), { socketCookie: 7 });
    expect(lb.peer(7, '10.0.0.2', 8080)).toEqual({ addr: '10.96.0.10', port: 80 });
    expect(lb.peer(8, '10.0.0.2', 8080)).toEqual({ addr: '10.0.0.2', port: 8080 });
  });
});

async function servicesLab(name: string, kubeProxy?: 'iptables') {
  const loaded = await loadTopologyFile(join(import.meta.dirname, '../../topologies/services.yaml'));
  if (!loaded.ok) throw new Error('services.yaml did not load');
  const t = loaded.value.topology;
  const topology = { ...t, name, datapath: { ...t.datapath, ...(kubeProxy ? { kubeProxy, hostRouting: 'legacy' as const } : {}) } };
  const lab = resolve({ ...loaded.value, topology });
  if (!lab.ok) throw new Error('services.yaml did not resolve');
  return lab.value;
}

const SVC = ['svc-clusterip', 'svc-getpeername', 'svc-no-backend', 'svc-affinity', 'svc-backend-removal'] as const;

describe('sim backend: the service checks through the socket-LB model', () => {
  it('services.yaml: the five socket-LB checks judge the model and pass', async () => {
    process.env.DPL_SIM_STATE_DIR = mkdtempSync(join(tmpdir(), 'sim-state-'));
    const r = await runSimulated(await servicesLab('s3-svc'), { only: [...SVC], reportDir: mkdtempSync(join(tmpdir(), 's3-svc-')) });
    expect(Object.fromEntries(r.results.map((x) => [x.id, x.status]))).toEqual(Object.fromEntries(SVC.map((id) => [id, 'pass'])));
    const removal = r.results.find((x) => x.id === 'svc-backend-removal')!;
    expect((removal.metrics as { after: Record<string, number> }).after['node2/web3']).toBeUndefined();
  }, 60_000);
  it('under kube-proxy iptables the model has no netfilter: they skip, naming it', async () => {
    process.env.DPL_SIM_STATE_DIR = mkdtempSync(join(tmpdir(), 'sim-state-'));
    const r = await runSimulated(await servicesLab('s3-svc-ipt', 'iptables'), {
      only: ['svc-clusterip'],
      reportDir: mkdtempSync(join(tmpdir(), 's3-svc-')),
    });
    expect(r.results[0]).toMatchObject({ status: 'skip', reason: expect.stringContaining('no netfilter model') });
  }, 60_000);
});
