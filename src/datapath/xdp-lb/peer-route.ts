import { z } from 'zod';
import type { Exec } from '../../exec/exec.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Family } from '../../topology/schema.js';

/** One next hop of a VIP route on a client peer: an LB node's uplink address, on the peer's device toward it. */
export interface VipHop {
  via: string;
  dev: string;
}

/** The LB nodes a peer reaches, as next hops of one family (their uplink addresses of it), in file order. */
export function lbHops(lab: Pick<Lab, 'nodes'>, peer: string, family: Family = 'ipv4'): VipHop[] {
  return lab.nodes.flatMap((n) => {
    const via = family === 'ipv4' ? n.uplink?.node4?.addr : n.uplink?.node6?.addr;
    return n.loadBalancer && n.uplink?.peer === peer && via ? [{ via, dev: n.uplink.peerDev }] : [];
  });
}

const familyOf = (addr: string): Family => (addr.includes(':') ? 'ipv6' : 'ipv4');

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
  const head = ['ip', 'route', 'replace', hostPrefix(v.vip), ...(v.attrs ?? [])];
  if (hops.length === 1) return [...head, 'via', hops[0].via, 'dev', hops[0].dev];
  return [...head, ...hops.flatMap((h) => ['nexthop', 'via', h.via, 'dev', h.dev])];
}

const hostPrefix = (vip: string) => `${vip}/${familyOf(vip) === 'ipv4' ? 32 : 128}`;

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
 * flow keeps its LB node and flows spread over all of them; net.ipv6.fib_multipath_hash_policy=1 does the same for an
 * IPv6 VIP (same file). The peer's namespace holds the routes and the sysctls.
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
  const up = node.uplink;
  const mine = (family: Family) => (family === 'ipv4' ? up?.node4 : up?.node6) !== undefined;
  const routed = vips.filter((v) => mine(familyOf(v.vip)));
  if (!peer || !up || !routed.length) return Promise.resolve();
  const step = async () => {
    for (const family of ['ipv4', 'ipv6'] as const)
      if (lbHops(lab, peer, family).length > 1 && routed.some((v) => familyOf(v.vip) === family))
        await peerExec.run(['sysctl', '-qw', `net.${family}.fib_multipath_hash_policy=1`], { signal });
    for (const v of routed) {
      // ip lists IPv4 routes unless told the family (iproute2 ip/iproute.c: AF_UNSPEC with a table means AF_INET).
      const six = familyOf(v.vip) === 'ipv6' ? ['-6'] : [];
      const shown = await peerExec.run(['ip', '-j', ...six, 'route', 'show', hostPrefix(v.vip)], { signal });
      const have = new Set(hopsShown(shown.stdout).map((h) => `${h.via} ${h.dev}`));
      const hops = lbHops(lab, peer, familyOf(v.vip)).filter((h) => have.has(`${h.via} ${h.dev}`) || h.dev === up.peerDev);
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
