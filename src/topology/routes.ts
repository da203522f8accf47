import { formatPrefix, parsePrefix } from './ip.js';
import type { Addr, Lab, LabNode, NodeLink } from './model.js';

/**
 * The routing plan of a lab: which prefix each node and peer sends where, as a pure
 * function of the resolved lab (no kernel involved), so it can be tested on any
 * topology and emitted by the wiring as `ip route add PREFIX via VIA dev DEV`.
 *
 * Paths: shortest in hops over the links (a breadth-first search from every node).
 * Ties: among the neighbours one hop closer to the destination, the one whose link
 * comes first in the file's `links` list. At most one link joins two nodes (the
 * resolver refuses duplicates), so the link's position settles every tie; each node
 * decides alone, and since every hop gets one hop closer, no choice can loop.
 * BPF host routing follows the same routes: from_pod asks bpf_fib_lookup on the
 * node, and a transit node's from_netdev hands the packet to the stack (TCX_NEXT),
 * which forwards it by these routes (bpf/host_routing.c).
 */

/** One route: prefix (`0.0.0.0/0` and `::/0` for defaults) through a next hop on a device. */
export interface Route {
  /** Destination prefix, in canonical form. */
  prefix: string;
  /** Next-hop address (the far end of a link or uplink). */
  via: string;
  /** Device the next hop is on. */
  dev: string;
}

/** Every route the lab installs beyond connected ones. */
export interface RoutePlan {
  /** By node name: routes of the node's namespace. */
  nodes: Record<string, Route[]>;
  /** By peer name: routes of the remote peer's namespace. */
  peers: Record<string, Route[]>;
  /** Groups of nodes joined by paths of links, in file order; more than one means pods in different groups cannot reach each other. */
  parts: string[][];
}

/** The network a point-to-point address sits in (the uplink's prefix). */
const netOf = (a: Addr): string => formatPrefix(parsePrefix(`${a.addr}/${a.len}`)!);

/** Prefixes a node is the way to: its pod prefixes and its peer's uplink prefix. */
function prefixesBehind(node: LabNode): { v4: string[]; v6: string[] } {
  const u = node.uplink;
  return {
    v4: [node.podCidr4, u?.node4 && netOf(u.node4)].filter((p): p is string => !!p),
    v6: [node.podCidr6, u?.node6 && netOf(u.node6)].filter((p): p is string => !!p),
  };
}

/** Hop counts from `to` to every node over the links (absent: no path). */
export function hopsTo(to: string, links: readonly NodeLink[]): Map<string, number> {
  return hopsOver(to, adjacency(links));
}

/** A node's links in file order, each with the node at its other end. */
type Adjacency = Map<string, { link: NodeLink; other: string }[]>;

function adjacency(links: readonly NodeLink[]): Adjacency {
  const adj: Adjacency = new Map();
  const add = (x: string, link: NodeLink, other: string) => {
    const list = adj.get(x);
    if (list) list.push({ link, other });
    else adj.set(x, [{ link, other }]);
  };
  for (const l of links) {
    add(l.a, l, l.b);
    add(l.b, l, l.a);
  }
  return adj;
}

/** Hop counts from `to` to every node over the links (absent: no path); a breadth-first search, O(nodes + links). */
function hopsOver(to: string, adj: Adjacency): Map<string, number> {
  const dist = new Map([[to, 0]]);
  const queue = [to];
  for (let i = 0; i < queue.length; i++) {
    const x = queue[i];
    for (const { other } of adj.get(x) ?? []) {
      if (!dist.has(other)) {
        dist.set(other, dist.get(x)! + 1);
        queue.push(other);
      }
    }
  }
  return dist;
}

/** nextHop over an adjacency: `from`'s links are in file order, so the first one closer is the file's first. */
function firstHop(from: string, dist: Map<string, number>, adj: Adjacency): NodeLink | undefined {
  const d = dist.get(from);
  if (d === undefined || d === 0) return undefined;
  return adj.get(from)?.find(({ other }) => dist.get(other) === d - 1)?.link;
}

/** The first hop from `from` towards `to`: the first link in file order to a neighbour one hop closer. */
export function nextHop(from: string, to: string, links: readonly NodeLink[], dist?: Map<string, number>): NodeLink | undefined {
  const adj = adjacency(links);
  return firstHop(from, dist ?? hopsOver(to, adj), adj);
}

/** Connected groups of nodes, in the order the file names them. */
export function parts(lab: Pick<Lab, 'nodes' | 'links'>, adj = adjacency(lab.links)): string[][] {
  const partOf = new Map<string, string[]>();
  const out: string[][] = [];
  for (const n of lab.nodes) {
    if (partOf.has(n.name)) continue;
    const part: string[] = [];
    out.push(part);
    for (const m of hopsOver(n.name, adj).keys()) partOf.set(m, part);
  }
  // In file order within each group too (the search visits them by distance).
  for (const n of lab.nodes) partOf.get(n.name)!.push(n.name);
  return out;
}

/**
 * The plan. A node routes every other node's pod and uplink prefixes (both families)
 * to the first hop of its shortest path. A node with an uplink also keeps a default
 * route through its peer: the peer stands for the world outside the lab. A node
 * without one has no default: every address in the lab is routed, and one outside it
 * is unreachable at once (an ICMP error) instead of wandering to another node.
 * A peer routes every pod prefix and every other peer's prefix in its nodes' groups
 * through its node. A peer behind several nodes (shared) goes through the nearest of
 * them (ties: the node listed first); each of those nodes routes the peer's addresses
 * on the other uplinks to the peer itself (host routes): the peer is one host, and
 * what it sends from any of its addresses through a node comes back the same way.
 */
export function planRoutes(lab: Pick<Lab, 'nodes' | 'links'>): RoutePlan {
  const nodes: Record<string, Route[]> = {};
  const peers: Record<string, Route[]> = {};
  // One search per node, O(nodes x (nodes + links)); the plan itself holds O(nodes^2) routes.
  const adj = adjacency(lab.links);
  const dists = new Map(lab.nodes.map((d) => [d.name, hopsOver(d.name, adj)]));
  const behindOf = new Map(lab.nodes.map((d) => [d.name, prefixesBehind(d)]));
  const uplinksOf = new Map<string, LabNode[]>();
  for (const n of lab.nodes) if (n.uplink) uplinksOf.set(n.uplink.peer, [...(uplinksOf.get(n.uplink.peer) ?? []), n]);
  for (const n of lab.nodes) {
    const routes: Route[] = [];
    const u = n.uplink;
    if (u?.peer4) routes.push({ prefix: '0.0.0.0/0', via: u.peer4.addr, dev: u.nodeDev });
    if (u?.peer6) routes.push({ prefix: '::/0', via: u.peer6.addr, dev: u.nodeDev });
    for (const m of u ? (uplinksOf.get(u.peer) ?? []).filter((x) => x !== n) : []) {
      if (u?.peer4 && m.uplink?.peer4) routes.push({ prefix: `${m.uplink.peer4.addr}/32`, via: u.peer4.addr, dev: u.nodeDev });
      if (u?.peer6 && m.uplink?.peer6) routes.push({ prefix: `${m.uplink.peer6.addr}/128`, via: u.peer6.addr, dev: u.nodeDev });
    }
    for (const d of lab.nodes) {
      const l = firstHop(n.name, dists.get(d.name)!, adj);
      if (!l) continue;
      const mine = l.a === n.name;
      const dev = mine ? l.devA : l.devB;
      const via4 = mine ? l.b4 : l.a4;
      const via6 = mine ? l.b6 : l.a6;
      const behind = behindOf.get(d.name)!;
      if (via4) routes.push(...behind.v4.map((prefix) => ({ prefix, via: via4.addr, dev })));
      if (via6) routes.push(...behind.v6.map((prefix) => ({ prefix, via: via6.addr, dev })));
    }
    nodes[n.name] = routes;
  }
  for (const [peer, ups] of uplinksOf) {
    const routes: Route[] = [];
    for (const d of lab.nodes) {
      // The uplink nearest to d; the list is in file order, so a tie keeps the first.
      let best: LabNode | undefined;
      for (const n of ups) {
        const h = dists.get(n.name)!.get(d.name);
        if (h !== undefined && (!best || h < dists.get(best.name)!.get(d.name)!)) best = n;
      }
      const u = best?.uplink;
      if (!u) continue;
      const behind = behindOf.get(d.name)!;
      // The peer's own uplink prefixes are connected.
      const skip = (p: string) => d.uplink?.peer === peer && p !== d.podCidr4 && p !== d.podCidr6;
      if (u.node4) routes.push(...behind.v4.filter((p) => !skip(p)).map((prefix) => ({ prefix, via: u.node4!.addr, dev: u.peerDev })));
      if (u.node6) routes.push(...behind.v6.filter((p) => !skip(p)).map((prefix) => ({ prefix, via: u.node6!.addr, dev: u.peerDev })));
    }
    peers[peer] = routes;
  }
  return { nodes, peers, parts: parts(lab, adj) };
}

const planned = new WeakMap<Pick<Lab, 'nodes' | 'links'>, RoutePlan>();

/**
 * planRoutes once per lab object, for callers that read one node's or peer's routes each (the wiring of every node
 * and peer): a resolved lab's nodes and links do not change, and a changed lab is a new object.
 */
export function labRoutes(lab: Pick<Lab, 'nodes' | 'links'>): RoutePlan {
  let plan = planned.get(lab);
  if (!plan) {
    plan = planRoutes(lab);
    planned.set(lab, plan);
  }
  return plan;
}

/** `ip -batch` lines for a list of routes. */
export const routeLines = (routes: readonly Route[]): string[] => routes.map((r) => `route add ${r.prefix} via ${r.via} dev ${r.dev}`);
