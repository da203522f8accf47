import type { z } from 'zod';
import { LabError } from '../errors.js';
import { parsePrefix, type Prefix } from './ip.js';
import type { Addr, Lab, Service } from './model.js';
import { ServiceSchema } from './schema.js';
import { resolveServices } from './services.js';

/** A service as the topology file writes it (after the schema's defaults). */
export type ServiceSpec = z.output<typeof ServiceSchema>;

/** A resolved service written back as the file would hold it (backends as node/pod, so they stay unambiguous). */
export function specOf(s: Service): ServiceSpec {
  return {
    name: s.name,
    clusterIP: s.ipv4,
    clusterIP6: s.ipv6,
    ports: s.ports.map((p) => ({ port: p.port, protocol: p.protocol, targetPort: p.targetPort, nodePort: p.nodePort })),
    sessionAffinity: s.affinitySeconds ? { timeoutSeconds: s.affinitySeconds } : undefined,
    backends: s.backends.map((b) => ({ pod: `${b.node}/${b.pod}`, weight: b.weight })),
    loadBalancer: s.loadBalancer && { ...s.loadBalancer },
  };
}

/** The prefixes a running lab put addresses in (pod prefixes, node links, uplinks): no ClusterIP may fall inside one. */
export function labPrefixes(lab: Lab): { p: Prefix; path: (string | number)[] }[] {
  const of = (a: Addr | undefined) => (a ? parsePrefix(`${a.addr}/${a.len}`) : undefined);
  const out: { p: Prefix | undefined; path: (string | number)[] }[] = [];
  lab.nodes.forEach((n, i) => {
    out.push({ p: n.podCidr4 ? parsePrefix(n.podCidr4) : undefined, path: ['nodes', i, 'podCidr'] });
    out.push({ p: n.podCidr6 ? parsePrefix(n.podCidr6) : undefined, path: ['nodes', i, 'podCidr6'] });
    out.push({ p: of(n.uplink?.node4), path: ['nodes', i, 'uplink'] }, { p: of(n.uplink?.node6), path: ['nodes', i, 'uplink'] });
  });
  lab.links.forEach((l, i) => {
    out.push({ p: of(l.a4), path: ['links', i] }, { p: of(l.a6), path: ['links', i] });
  });
  return out.flatMap((x) => (x.p ? [{ p: x.p, path: x.path }] : []));
}

/**
 * A running lab's next service set, validated as the topology file's services are (the
 * schema, then resolveServices against the lab's pods and prefixes). Throws E_USAGE with
 * every problem; nothing is changed by a call.
 */
export function validateServices(lab: Lab, specs: unknown[]): Service[] {
  const problems: string[] = [];
  const parsed = specs.flatMap((s, i) => {
    const r = ServiceSchema.safeParse(s);
    if (!r.success) problems.push(...r.error.issues.map((e) => `services[${i}].${e.path.join('.')}: ${e.message}`));
    return r.success ? [r.data] : [];
  });
  if (problems.length) throw new LabError('E_USAGE', problems.join('\n  '));
  // What resolveServices reads of the file's nodes: the LB marks (a loadBalancer service needs an LB node with an uplink).
  const nodes = lab.nodes.map((n) => ({ name: n.name, loadBalancer: n.loadBalancer ?? false, uplink: n.uplink && {} }));
  const err = (path: (string | number)[], message: string) => problems.push(`service ${parsed[path[1] as number]?.name}: ${message}`);
  const out = resolveServices({ services: parsed, families: lab.families, nodes } as never, lab.nodes, labPrefixes(lab), err);
  if (problems.length) throw new LabError('E_USAGE', problems.join('\n  '));
  return out;
}
