import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { xdpLbPart, xdpLoadBalancer } from '../../src/datapath/xdp-lb/feature.js';
import type { KernelFacts } from '../../src/kernel/facts.js';
import { decideAll } from '../../src/lifecycle/steps.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const load = (text: string, file = 'lab.yaml') => {
  const p = parseTopology(text, file);
  const r = p.ok ? resolve(p.value) : p;
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const shipped = readFileSync('topologies/xdp-lb.yaml', 'utf8');
/** The shipped lab with a node that plays no part: no link to an LB node, no backend of a loadBalancer service. */
const withBystander = shipped
  .replace('links:\n', '  - name: w3\n    pods: [{ name: other }]\nlinks:\n  - endpoints: [w1, w3]\n')
  .replace('checks: [connectivity, ', 'checks: [');
/** A kernel the feature cannot run on (no bpftool, no ethtool). */
const oldKernel = { release: '4.19.0', version: [4, 19], config: {}, tools: {}, bpffs: true } as unknown as KernelFacts;
const xdpLb = (lab: ReturnType<typeof load>, facts: KernelFacts) =>
  Object.fromEntries(
    decideAll(lab, facts).flatMap((d) => (d.feature === 'xdp-lb' ? [[d.node, `${d.status} ${d.mode}: ${d.detail}`]] : [])),
  );

describe('xdp-lb decisions follow the topology', () => {
  it('names each node part: LB nodes run xl_xdp, backend and linked nodes take redirected frames, others none', () => {
    const lab = load(withBystander);
    expect(Object.fromEntries(lab.nodes.map((n) => [n.name, xdpLbPart(lab, n.name)]))).toEqual({
      lb1: { role: 'xl_xdp natively on the uplink, xl_snat_rev on the links' },
      lb2: { role: 'xl_xdp natively on the uplink, xl_snat_rev on the links' },
      w1: { role: 'backends of web, webdsr, maint; receives frames redirected by lb1, lb2' },
      w2: { role: 'backends of web, webdsr, maint; receives frames redirected by lb1, lb2' },
      w3: { unused: 'not a loadBalancer node, no backend of a loadBalancer service, no link to a loadBalancer node' },
    });
  });

  it('a node that plays no part is off with the reason, not declined, on a kernel that cannot run the feature', () => {
    const d = xdpLb(load(withBystander), oldKernel);
    expect(d.w3).toBe('off none: not used: not a loadBalancer node, no backend of a loadBalancer service, no link to a loadBalancer node');
    expect(d.lb1).toMatch(/^declined none: XDP load balancer: kernel 4\.19\.0 is older than 5\.10/);
    expect(d.w1).toMatch(/^declined none/);
  });

  it('a lab without a loadBalancer service: off on every node (was applied; declined on an old kernel, which refuses the lab)', () => {
    const lab = load(readFileSync('topologies/quickstart.yaml', 'utf8'), 'topologies/quickstart.yaml');
    const d = xdpLb(lab, oldKernel);
    expect(Object.keys(d)).toEqual(lab.nodes.map((n) => n.name));
    for (const n of lab.nodes) expect(d[n.name]).toBe('off none: not used: no service has a loadBalancer');
  });

  it('without a topology (lab doctor) it decides from the kernel alone', () => {
    expect(xdpLoadBalancer.decide(oldKernel, {} as never, '-')).toMatchObject({ status: 'declined', mode: 'none' });
  });
});
