import { describe, expect, it } from 'vitest';
import { parsePortSpec } from '../../src/cli/svc.js';
import { planIds, servicePlan } from '../../src/datapath/kpr/plan.js';
import { mapDelta } from '../../src/datapath/kpr/update.js';
import type { Lab, LabNode, Service } from '../../src/topology/model.js';
import { labPrefixes, specOf, validateServices } from '../../src/topology/services-live.js';

const pod = (name: string, i: number) => ({
  name,
  node: 'node1',
  netns: `dpl-t.node1.${name}`,
  hostDev: `p-${name}`,
  dev: 'eth0',
  ipv4: `10.244.1.${i + 2}`,
});
const node = {
  name: 'node1',
  netns: 'dpl-t.node1',
  datapath: { kubeProxy: 'bpf', hostRouting: 'bpf' },
  podCidr4: '10.244.1.0/24',
  pods: ['client', 'web1', 'web2'].map(pod),
} as unknown as LabNode;
const svc = (name: string, ip: string, backends: string[]): Service => ({
  name,
  ipv4: ip,
  ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }],
  backends: backends.map((p) => ({ node: 'node1', pod: p, weight: 1 })),
});
const lab = (services: Service[], serviceIds?: Lab['serviceIds']) =>
  ({ name: 't', families: ['ipv4'], nodes: [node], links: [], services, serviceIds }) as unknown as Lab;

describe('lab svc: --port', () => {
  it('reads PORT[/PROTO][:TARGET], TCP by default', () => {
    expect(parsePortSpec('80')).toEqual({ port: 80, protocol: 'TCP', targetPort: 80 });
    expect(parsePortSpec('53/udp:5353')).toEqual({ port: 53, protocol: 'UDP', targetPort: 5353 });
  });
  it('refuses anything else', () => {
    for (const bad of ['', 'http', '80/SCTP', '80:', '-1']) expect(() => parsePortSpec(bad), bad).toThrow(/expected PORT/);
  });
});

describe('lab svc: validation with the topology rules', () => {
  const base = lab([svc('web', '10.96.0.10', ['web1'])]);
  it('accepts a new service and resolves its pods', () => {
    const out = validateServices(base, [
      ...base.services.map(specOf),
      { name: 'api', clusterIP: '10.96.0.20', ports: [{ port: 80 }], backends: ['web2'] },
    ]);
    expect(out.map((s) => [s.name, s.backends.map((b) => b.pod)])).toEqual([
      ['web', ['web1']],
      ['api', ['web2']],
    ]);
  });
  it('refuses an unknown pod, a duplicate frontend and a ClusterIP in a pod prefix', () => {
    const add = (x: object) => () => validateServices(base, [...base.services.map(specOf), { name: 'x', ports: [{ port: 80 }], ...x }]);
    expect(add({ clusterIP: '10.96.0.30', backends: ['nope'] })).toThrow(/unknown pod 'nope'/);
    expect(add({ clusterIP: '10.96.0.10' })).toThrow(/already a frontend/);
    expect(add({ clusterIP: '10.244.1.200' })).toThrow(/inside 10.244.1.0\/24/);
    expect(add({ clusterIP: '10.96.0.30', ports: [{ port: 70000 }] })).toThrow(/services\[1\]\.ports/);
  });
  it('finds the pod prefixes of the lab', () => {
    expect(labPrefixes(base)).toHaveLength(1);
  });
});

describe('lab svc: map ids and the delta', () => {
  it('keeps ids of what stays and never reuses one of what went', () => {
    const before = lab([svc('a', '10.96.0.1', ['web1']), svc('b', '10.96.0.2', ['web2'])]);
    const ids = planIds(servicePlan(before));
    const after = lab([svc('b', '10.96.0.2', ['web2']), svc('c', '10.96.0.3', ['client'])], ids);
    const plan = servicePlan(after);
    expect(plan.frontends.map((f) => [f.service, f.svcId])).toEqual([
      ['b', 2],
      ['c', 3],
    ]);
    expect(plan.backends.map((b) => [b.pod, b.id])).toEqual([
      ['web2', 2],
      ['client', 3],
    ]);
    const next = planIds(plan, ids);
    expect([next.nextFrontend, next.nextBackend]).toEqual([4, 4]);
  });
  it('puts new and changed frontends, drops gone ones, and the backends no slot names', () => {
    const before = lab([svc('a', '10.96.0.1', ['web1']), svc('b', '10.96.0.2', ['web1', 'web2'])]);
    const ids = planIds(servicePlan(before));
    const after = lab([svc('b', '10.96.0.2', ['web2']), svc('c', '10.96.0.3', ['client'])], ids);
    const d = mapDelta(servicePlan({ ...before, serviceIds: ids }), servicePlan(after));
    expect(d.put.map((f) => f.service)).toEqual(['b', 'c']);
    expect(d.drop.map((f) => f.service)).toEqual(['a']);
    expect(d.addBackends.map((b) => b.pod)).toEqual(['client']);
    expect(d.dropBackends).toEqual([1]);
  });
  it('changes nothing when the set is the same', () => {
    const l = lab([svc('a', '10.96.0.1', ['web1'])]);
    const d = mapDelta(servicePlan(l), servicePlan({ ...l, serviceIds: planIds(servicePlan(l)) }));
    expect([d.put, d.drop, d.addBackends, d.dropBackends]).toEqual([[], [], [], []]);
  });
});
