import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPrefix, parsePrefix } from '../../src/topology/ip.js';
import { parseTopology } from '../../src/topology/loader.js';
import type { Addr, Lab, LabNode, NodeLink } from '../../src/topology/model.js';
import { resolve } from '../../src/topology/resolver.js';
import { labRoutes, parts, planRoutes, type RoutePlan, type Route } from '../../src/topology/routes.js';

// The plan as first written (a search over every link for every hop, O(nodes^2 x links)), kept as the
// oracle the linear-time plan must match on any topology.
const netOf = (a: Addr): string => formatPrefix(parsePrefix(`${a.addr}/${a.len}`)!);
function behindOf(node: LabNode): { v4: string[]; v6: string[] } {
  const u = node.uplink;
  return {
    v4: [node.podCidr4, u?.node4 && netOf(u.node4)].filter((p): p is string => !!p),
    v6: [node.podCidr6, u?.node6 && netOf(u.node6)].filter((p): p is string => !!p),
  };
}
function hopsRef(to: string, links: readonly NodeLink[]): Map<string, number> {
  const dist = new Map([[to, 0]]);
  const queue = [to];
  while (queue.length) {
    const x = queue.shift()!;
    for (const l of links) {
      const y = l.a === x ? l.b : l.b === x ? l.a : undefined;
      if (y !== undefined && !dist.has(y)) {
        dist.set(y, dist.get(x)! + 1);
        queue.push(y);
      }
    }
  }
  return dist;
}
function planRef(lab: Pick<Lab, 'nodes' | 'links'>): RoutePlan {
  const nodes: Record<string, Route[]> = {};
  const peers: Record<string, Route[]> = {};
  const dists = new Map(lab.nodes.map((d) => [d.name, hopsRef(d.name, lab.links)]));
  for (const n of lab.nodes) {
    const routes: Route[] = [];
    const u = n.uplink;
    if (u?.peer4) routes.push({ prefix: '0.0.0.0/0', via: u.peer4.addr, dev: u.nodeDev });
    if (u?.peer6) routes.push({ prefix: '::/0', via: u.peer6.addr, dev: u.nodeDev });
    for (const d of lab.nodes) {
      const dist = dists.get(d.name)!;
      const h = dist.get(n.name);
      if (h === undefined || h === 0) continue;
      const l = lab.links.find((x) => (x.a === n.name && dist.get(x.b) === h - 1) || (x.b === n.name && dist.get(x.a) === h - 1))!;
      const mine = l.a === n.name;
      const [dev, via4, via6] = mine ? [l.devA, l.b4, l.b6] : [l.devB, l.a4, l.a6];
      const behind = behindOf(d);
      if (via4) routes.push(...behind.v4.map((prefix) => ({ prefix, via: via4.addr, dev })));
      if (via6) routes.push(...behind.v6.map((prefix) => ({ prefix, via: via6.addr, dev })));
    }
    nodes[n.name] = routes;
  }
  for (const n of lab.nodes) {
    const u = n.uplink;
    if (!u) continue;
    const reach = dists.get(n.name)!;
    const routes: Route[] = [];
    for (const d of lab.nodes.filter((m) => reach.has(m.name))) {
      const behind = behindOf(d);
      const skip = (p: string) => d === n && p !== d.podCidr4 && p !== d.podCidr6;
      if (u.node4) routes.push(...behind.v4.filter((p) => !skip(p)).map((prefix) => ({ prefix, via: u.node4!.addr, dev: u.peerDev })));
      if (u.node6) routes.push(...behind.v6.filter((p) => !skip(p)).map((prefix) => ({ prefix, via: u.node6!.addr, dev: u.peerDev })));
    }
    peers[u.peer] = routes;
  }
  const seen = new Set<string>();
  const groups: string[][] = [];
  for (const n of lab.nodes) {
    if (seen.has(n.name)) continue;
    const dist = hopsRef(n.name, lab.links);
    const part = lab.nodes.map((m) => m.name).filter((m) => dist.has(m));
    for (const m of part) seen.add(m);
    groups.push(part);
  }
  return { nodes, peers, parts: groups };
}

/** A resolved lab of `n` nodes (one pod each), these links and uplinks, in one or both families. */
function lab(n: number, links: [number, number][], up: boolean[], families: string): Lab {
  const text =
    `name: t\nfamilies: ${families}\nnodes:\n` +
    Array.from(
      { length: n },
      (_, i) => `  - name: n${i}\n    pods: [{ name: p${i} }]\n` + (up[i] ? `    uplink: { peer: w${i} }\n` : ''),
    ).join('') +
    (links.length ? `links:\n${links.map(([a, b]) => `  - endpoints: [n${a}, n${b}]\n`).join('')}` : '');
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  const r = resolve(p.value);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** Random topologies: up to 14 nodes, any set of distinct links between them (so trees, rings, meshes, several parts). */
const topologies = fc.integer({ min: 1, max: 14 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    links:
      n < 2
        ? fc.constant([] as [number, number][])
        : fc.uniqueArray(
            fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: n - 1 })).map(([a, d]): [number, number] => {
              const b = (a + d) % n;
              return a < b ? [a, b] : [b, a];
            }),
            { selector: ([a, b]) => `${a}-${b}`, maxLength: Math.min(30, (n * (n - 1)) / 2) },
          ),
    // The file lists a link's ends in either order.
    flip: fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
    up: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    families: fc.constantFrom('[ipv4]', '[ipv6]', '[ipv4, ipv6]'),
  }),
);

describe('routing plan: the linear-time plan against the first one', () => {
  it('gives the same routes, in the same order, and the same parts on random topologies', () => {
    fc.assert(
      fc.property(topologies, ({ n, links, flip, up, families }) => {
        const l = lab(
          n,
          links.map(([a, b], i): [number, number] => (flip[i] ? [b, a] : [a, b])),
          up,
          families,
        );
        expect(planRoutes(l)).toEqual(planRef(l));
        expect(parts(l)).toEqual(planRef(l).parts);
        // The wiring's memo: the same plan, computed once per lab object.
        expect(labRoutes(l)).toEqual(planRef(l));
        expect(labRoutes(l)).toBe(labRoutes(l));
      }),
      { numRuns: 80, seed: 20261130 },
    );
  });
});
