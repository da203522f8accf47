import { z } from 'zod';
import type { Exec } from '../../exec/exec.js';
import type { Lab, LabNode } from '../../topology/model.js';

/** One next hop of a VIP route on a client peer: an LB node's uplink address, on the peer's device toward it. */
export interface VipHop {
  via: string;
  dev: string;
}

/** The LB nodes a peer reaches, as next hops, in file order. */
export function lbHops(lab: Pick<Lab, 'nodes'>, peer: string): VipHop[] {
  return lab.nodes.flatMap((n) => (n.loadBalancer && n.uplink?.peer === peer && n.uplink.node4 ? [hopOf(n)] : []));
}

const hopOf = (n: LabNode): VipHop => ({ via: n.uplink!.node4!.addr, dev: n.uplink!.peerDev });

/** A VIP to route on the peer, with route attributes of its own (a DSR VIP's mtu and advmss). */
export interface PeerVip {
  vip: string;
  /** `ip route` attributes written before the next hops (iproute2 reads everything after `nexthop` as next hops). */
  attrs?: readonly string[];
}

/**
 * `ip route replace` argv of a VIP route over these next hops: one next hop as a plain route, several as one ECMP
 * route (RTA_MULTIPATH) the peer spreads flows over by its fib_multipath_hash_policy.
 */
export function vipRouteArgv(v: PeerVip, hops: readonly VipHop[]): string[] {
  const head = ['ip', 'route', 'replace', `${v.vip}/32`, ...(v.attrs ?? [])];
  if (hops.length === 1) return [...head, 'via', hops[0].via, 'dev', hops[0].dev];
  return [...head, ...hops.flatMap((h) => ['nexthop', 'via', h.via, 'dev', h.dev])];
}

/** `ip -j route show` of one prefix: a plain route (gateway, dev) or a multipath one (nexthops). */
const Shown = z.array(
  z.object({
    gateway: z.string().optional(),
    dev: z.string().optional(),
    nexthops: z.array(z.object({ gateway: z.string(), dev: z.string() })).optional(),
  }),
);

/** The next hops of a route as `ip -j route show` printed it. */
export function hopsShown(json: string): VipHop[] {
  return Shown.parse(JSON.parse(json || '[]')).flatMap((r) =>
    r.nexthops ? r.nexthops.map((h) => ({ via: h.gateway, dev: h.dev })) : r.gateway && r.dev ? [{ via: r.gateway, dev: r.dev }] : [],
  );
}

/** Per peer namespace: the last VIP route change, so two LB nodes deploying at once do not lose each other's hop. */
const pending = new Map<string, Promise<void>>();

/**
 * Route a VIP on an LB node's client peer through that node. A peer behind several LB nodes gets one ECMP route over
 * the ones deployed so far (each node's deploy adds its hop, in file order), hashed on L4 like a router in front of an
 * LB fleet: net.ipv4.fib_multipath_hash_policy=1 hashes the 5-tuple (Documentation/networking/ip-sysctl.rst), so a
 * flow keeps its LB node and flows spread over all of them. The peer's namespace holds the route and the sysctl.
 */
export function routeVipOnPeer(
  lab: Pick<Lab, 'nodes'>,
  node: LabNode,
  peerExec: Exec,
  netns: string,
  vips: readonly PeerVip[],
  signal?: AbortSignal,
) {
  const peer = node.uplink?.peer;
  if (!peer || !node.uplink?.node4 || !vips.length) return Promise.resolve();
  const all = lbHops(lab, peer);
  const step = async () => {
    if (all.length > 1) await peerExec.run(['sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1'], { signal });
    for (const v of vips) {
      const shown = await peerExec.run(['ip', '-j', 'route', 'show', `${v.vip}/32`], { signal });
      const have = new Set(hopsShown(shown.stdout).map((h) => `${h.via} ${h.dev}`));
      const hops = all.filter((h) => have.has(`${h.via} ${h.dev}`) || h.dev === node.uplink!.peerDev);
      await peerExec.run(vipRouteArgv(v, hops), { signal });
    }
  };
  const next = (pending.get(netns) ?? Promise.resolve()).catch(() => undefined).then(step);
  pending.set(netns, next);
  const forget = () => {
    if (pending.get(netns) === next) pending.delete(netns);
  };
  next.then(forget, forget);
  return next;
}
