import type { Lab, ServiceIds } from '../../topology/model.js';
import type { Family, ServiceProtocol } from '../../topology/schema.js';

/** One backend address of a service port: a pod's address in one family and the target port. */
export interface PlanBackend {
  /** Id in the backends map (1-based; 0 means none in the C). */
  id: number;
  node: string;
  pod: string;
  addr: string;
  port: number;
  family: Family;
}

/** One frontend: a service's ClusterIP of one family and one of its ports. */
export interface Frontend {
  /** Id of the frontend (affinity entries carry it). */
  svcId: number;
  service: string;
  family: Family;
  vip: string;
  port: number;
  protocol: ServiceProtocol;
  targetPort: number;
  affinitySeconds: number;
  /** Backend ids with their weights, in the file's order. */
  backends: { id: number; weight: number }[];
}

export interface ServicePlan {
  frontends: Frontend[];
  backends: PlanBackend[];
  /** NodePort of a frontend (by svcId), where its port has one. */
  nodePorts?: Map<number, number>;
}

/**
 * The lab's services as frontends and backends, the same on every node: a backend id per
 * distinct (family, address, port), a frontend per (service, family, port). A pod without
 * an address of the frontend's family is left out of that family's backends.
 */
export function servicePlan(lab: Pick<Lab, 'services' | 'nodes' | 'serviceIds'>): ServicePlan {
  const backends = new Map<string, PlanBackend>();
  const frontends: Frontend[] = [];
  const nodePorts = new Map<number, number>();
  // Ids from the lab's own (after `lab svc`): kept for what stays, fresh ones for what is new.
  const known = lab.serviceIds;
  let nextFe = known?.nextFrontend ?? 1;
  let nextBe = known?.nextBackend ?? 1;
  const feId = (key: string) => known?.frontends[key] ?? nextFe++;
  for (const s of lab.services)
    for (const family of ['ipv4', 'ipv6'] as const) {
      const vip = family === 'ipv4' ? s.ipv4 : s.ipv6;
      if (!vip) continue;
      for (const p of s.ports) {
        const ids = s.backends.flatMap((b) => {
          const pod = lab.nodes.find((n) => n.name === b.node)?.pods.find((x) => x.name === b.pod);
          const addr = family === 'ipv4' ? pod?.ipv4 : pod?.ipv6;
          if (!addr) return [];
          const key = `${family}/${addr}/${p.targetPort}`;
          let be = backends.get(key);
          if (!be) {
            be = { id: known?.backends[key] ?? nextBe++, node: b.node, pod: b.pod, addr, port: p.targetPort, family };
            backends.set(key, be);
          }
          return [{ id: be.id, weight: b.weight }];
        });
        const svcId = feId(frontendKey(s.name, family, p.port, p.protocol));
        if (p.nodePort) nodePorts.set(svcId, p.nodePort);
        frontends.push({
          svcId,
          service: s.name,
          family,
          vip,
          port: p.port,
          protocol: p.protocol,
          targetPort: p.targetPort,
          affinitySeconds: s.affinitySeconds ?? 0,
          backends: ids,
        });
      }
    }
  return { frontends, backends: [...backends.values()], nodePorts };
}

/** A frontend's backend slots: each backend id repeated by its weight (a connect picks one slot at random). */
export function slotsOf(f: Pick<Frontend, 'backends'>): number[] {
  return f.backends.flatMap((b) => Array<number>(b.weight).fill(b.id));
}

/** A frontend's key among the lab's service ids. */
export const frontendKey = (service: string, family: Family, port: number, protocol: ServiceProtocol) =>
  `${service}/${family}/${port}/${protocol}`;

/** The ids a plan gave, to keep them through the next change (never reusing one handed out before). */
export function planIds(plan: ServicePlan, before?: ServiceIds): ServiceIds {
  const frontends = Object.fromEntries(plan.frontends.map((f) => [frontendKey(f.service, f.family, f.port, f.protocol), f.svcId]));
  const backends = Object.fromEntries(plan.backends.map((b) => [`${b.family}/${b.addr}/${b.port}`, b.id]));
  const max = (xs: number[], floor = 1) => Math.max(floor, ...xs.map((x) => x + 1));
  return {
    frontends,
    backends,
    nextFrontend: max(Object.values(frontends), before?.nextFrontend),
    nextBackend: max(Object.values(backends), before?.nextBackend),
  };
}
