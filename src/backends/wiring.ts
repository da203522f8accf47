import type { PodDeviceMode } from '../datapath/devices/devices.js';

type DevKind = PodDeviceMode;
import { LabError } from '../errors.js';
import type { Addr, Lab, LabNode, Pod } from '../topology/model.js';
import { labRoutes, routeLines } from '../topology/routes.js';
import { TBF_HANDLE } from '../topology/impair.js';

/**
 * Batch files for iproute2 and tc: each function returns the lines one `ip -batch`
 * or `tc -batch` runs, so a node is wired with a handful of processes.
 */

export const lines = (...ls: (string | false | undefined)[]) => ls.filter(Boolean).join('\n') + '\n';

/** Root-namespace batch: every namespace, then every device pair created directly inside them. */
export function provisionBatch(
  lab: Lab,
  namespaces: string[],
  kindOf: (n: LabNode) => DevKind,
  nodes: readonly LabNode[] = lab.nodes,
  vethUplinks = true,
  /** Size attributes of a device of this kind on this node (sizeAttrs; '' leaves the defaults). */
  attrs: (n: LabNode, kind: DevKind) => string = () => '',
): string {
  const out = namespaces.map((ns) => `netns add ${ns}`);
  const names = new Set(nodes.map((n) => n.name));
  for (const n of nodes) {
    for (const p of n.pods) {
      // netkit in L3 mode (Cilium's default), the primary in the node; the peer (pod) side
      // blackholes until the datapath attaches its program (Cilium's peer policy).
      const type = kindOf(n) === 'netkit' ? 'netkit mode l3 forward peer blackhole' : 'veth peer';
      const sz = attrs(n, kindOf(n));
      out.push(`link add ${p.hostDev} netns ${n.netns}${sz} type ${type} name ${p.dev} netns ${p.netns}${sz}`);
    }
    if (n.uplink && vethUplinks) {
      const peer = lab.peers.find((x) => x.node === n.name)!;
      // The peer's end sized as its node's (the peer has no profile of its own).
      const sz = attrs(n, 'veth');
      out.push(`link add ${n.uplink.nodeDev} netns ${n.netns}${sz} type veth peer name ${n.uplink.peerDev} netns ${peer.netns}${sz}`);
    }
  }
  for (const l of lab.links.filter((x) => names.has(x.a) && names.has(x.b))) {
    const a = lab.nodes.find((n) => n.name === l.a)!;
    const b = lab.nodes.find((n) => n.name === l.b)!;
    const [sa, sb] = [attrs(a, 'veth'), attrs(b, 'veth')];
    out.push(`link add ${l.devA} netns ${a.netns}${sa} type veth peer name ${l.devB} netns ${b.netns}${sb}`);
  }
  return lines(...out);
}

/** One end of a node-to-node link, seen from its node. */
export interface LinkEnd {
  side: 'a' | 'b';
  dev: string;
  my4?: Addr;
  my6?: Addr;
  peer4?: Addr;
  peer6?: Addr;
  other: string;
  rate?: string;
}

/** Devices of a node facing other nodes, with addresses and the node at the far end. */
export function nodeLinks(lab: Lab, node: LabNode): LinkEnd[] {
  return lab.links.flatMap((l): LinkEnd[] => {
    if (l.a === node.name) return [{ side: 'a', dev: l.devA, my4: l.a4, my6: l.a6, peer4: l.b4, peer6: l.b6, other: l.b, rate: l.rate }];
    if (l.b === node.name) return [{ side: 'b', dev: l.devB, my4: l.b4, my6: l.b6, peer4: l.a4, peer6: l.a6, other: l.a, rate: l.rate }];
    return [];
  });
}

/**
 * Link-local addresses for node devices. Devices come up without an automatic one
 * (addrgenmode none: no 1 s of duplicate address detection each), but a forwarding
 * node needs one: ndisc_solicit() sends a neighbour solicitation for a forwarded
 * packet from the device's link-local address, and without one never sends it
 * (net/ipv6/ndisc.c), so IPv6 next hops stay INCOMPLETE.
 */
export const LL_A = 'fe80::1/64';
export const LL_B = 'fe80::2/64';

/** The node side of one pod: the gateway address on its device, up, and a route to the pod. */
export function podHostLines(node: LabNode, p: Pod, kind: DevKind): (string | false | undefined)[] {
  // Every pod device carries the node's gateway address, so each pod reaches it on-link.
  return [
    kind === 'veth' && `link set ${p.hostDev} addrgenmode none`,
    node.gw4 && `addr add ${node.gw4}/32 dev ${p.hostDev}`,
    node.gw6 && `addr add ${node.gw6}/128 dev ${p.hostDev} nodad`,
    node.gw6 && kind === 'veth' && `addr add ${LL_A} dev ${p.hostDev} nodad`,
    `link set ${p.hostDev} up`,
    p.ipv4 && `route add ${p.ipv4}/32 dev ${p.hostDev}`,
    p.ipv6 && `route add ${p.ipv6}/128 dev ${p.hostDev}`,
  ];
}

/** The node namespace: gateway addresses on pod devices, routes to pods, uplink, links, then the routing plan's routes. */
export function nodeBatch(lab: Lab, node: LabNode, kind: DevKind): string {
  const out: (string | undefined | false)[] = ['link set lo up'];
  for (const p of node.pods) out.push(...podHostLines(node, p, kind));
  const u = node.uplink;
  if (u) {
    out.push(
      // No link-local address: avoids 1 s of duplicate address detection on every device.
      `link set ${u.nodeDev} addrgenmode none`,
      u.node4 && `addr add ${u.node4.addr}/${u.node4.len} dev ${u.nodeDev}`,
      u.node6 && `addr add ${u.node6.addr}/${u.node6.len} dev ${u.nodeDev} nodad`,
      u.node6 && `addr add ${LL_A} dev ${u.nodeDev} nodad`,
      `link set ${u.nodeDev} up`,
    );
  }
  for (const l of nodeLinks(lab, node)) {
    out.push(
      `link set ${l.dev} addrgenmode none`,
      l.my4 && `addr add ${l.my4.addr}/${l.my4.len} dev ${l.dev}`,
      l.my6 && `addr add ${l.my6.addr}/${l.my6.len} dev ${l.dev} nodad`,
      l.my6 && `addr add ${l.side === 'a' ? LL_A : LL_B} dev ${l.dev} nodad`,
      `link set ${l.dev} up`,
    );
  }
  // Every device is up with its address first: a route's next hop must be on-link.
  out.push(...routeLines(labRoutes(lab).nodes[node.name]));
  return lines(...out);
}

/** Bottleneck qdiscs on the node's side of its uplink and rate-limited links. */
export function tbfBatch(lab: Lab, node: LabNode): string | undefined {
  const devs = [
    ...(node.uplink?.rate ? [{ dev: node.uplink.nodeDev, rate: node.uplink.rate, netem: !!node.uplink.impair }] : []),
    ...nodeLinks(lab, node)
      .filter((l) => l.rate)
      .map((l) => ({ dev: l.dev, rate: l.rate!, netem: !!lab.links.find((x) => x.devA === l.dev || x.devB === l.dev)?.impair })),
  ];
  if (!devs.length) return undefined;
  // burst 64kb holds one full legacy GSO skb, so tbf does not have to segment it;
  // latency 50ms bounds the queue (rate x 50 ms of bytes), enough to show a backlog.
  // With a netem under it (src/datapath/impair/netem.ts), the tbf gets a handle for netem's parent.
  return lines(
    ...devs.map((d) => `qdisc add dev ${d.dev} root ${d.netem ? `handle ${TBF_HANDLE} ` : ''}tbf rate ${d.rate} burst 64kb latency 50ms`),
  );
}

/**
 * The remote peer behind a node's uplink: its device toward the node, and the routes through that device (to every
 * pod and peer prefix of its node's group; a peer behind several nodes gets the rest in their wirings).
 */
export function peerBatch(lab: Lab, node: LabNode): string {
  const u = node.uplink!;
  return lines(
    'link set lo up',
    `link set ${u.peerDev} addrgenmode none`,
    u.peer4 && `addr add ${u.peer4.addr}/${u.peer4.len} dev ${u.peerDev}`,
    u.peer6 && `addr add ${u.peer6.addr}/${u.peer6.len} dev ${u.peerDev} nodad`,
    u.peer6 && `addr add ${LL_B} dev ${u.peerDev} nodad`,
    `link set ${u.peerDev} up`,
    ...routeLines(labRoutes(lab).peers[u.peer].filter((r) => r.dev === u.peerDev)),
  );
}

/** A pod: its address and a default route through the node's gateway. */
export function podBatch(node: LabNode, pod: Pod, kind: DevKind): string {
  // netkit in L3 mode has no neighbours: routes point at the device, not a gateway.
  const via = (gw?: string) => (kind === 'netkit' ? `dev ${pod.dev}` : `via ${gw} dev ${pod.dev}`);
  return lines(
    'link set lo up',
    kind === 'veth' && `link set ${pod.dev} addrgenmode none`,
    pod.ipv4 && `addr add ${pod.ipv4}/32 dev ${pod.dev}`,
    pod.ipv6 && `addr add ${pod.ipv6}/128 dev ${pod.dev} nodad`,
    `link set ${pod.dev} up`,
    pod.ipv4 && kind === 'veth' && `route add ${node.gw4} dev ${pod.dev} scope link`,
    pod.ipv4 && `route add default ${via(node.gw4)}`,
    pod.ipv6 && kind === 'veth' && `route add ${node.gw6} dev ${pod.dev}`,
    pod.ipv6 && `route add ::/0 ${via(node.gw6)}`,
  );
}

/**
 * A pod for bpf/user/nsconf.c, which configures every pod of a node in one process: the
 * same steps as podBatch, in nsconf's commands, after `ns` enters the pod's namespace.
 */
export function podConf(node: LabNode, pod: Pod, kind: DevKind): string[] {
  const via = (gw?: string) => (kind === 'netkit' ? `dev ${pod.dev}` : `via ${gw} dev ${pod.dev}`);
  return [
    `ns ${pod.netns}`,
    'link up lo',
    kind === 'veth' && `addrgenmode none ${pod.dev}`,
    pod.ipv4 && `addr add ${pod.ipv4}/32 dev ${pod.dev}`,
    pod.ipv6 && `addr add ${pod.ipv6}/128 dev ${pod.dev} nodad`,
    `link up ${pod.dev}`,
    pod.ipv4 && kind === 'veth' && `route add ${node.gw4} dev ${pod.dev} scope link`,
    pod.ipv4 && `route add default ${via(node.gw4)}`,
    pod.ipv6 && kind === 'veth' && `route add ${node.gw6} dev ${pod.dev}`,
    pod.ipv6 && `route add ::/0 ${via(node.gw6)}`,
  ].filter((l): l is string => !!l);
}

/** nsconf's input for one node: forwarding on in the node, then every pod. */
export function nodeConf(node: LabNode, kind: DevKind): string {
  return lines(`ns ${node.netns}`, ...FORWARDING, ...node.pods.flatMap((p) => podConf(node, p, kind)));
}

/** A node forwards between its pods, uplink and links. */
const FORWARDING = ['sysctl net.ipv4.ip_forward 1', 'sysctl net.ipv6.conf.all.forwarding 1'];

/**
 * iproute2 batch lines in nsconf's words. Only the forms the wiring writes are known
 * (`link set DEV up|addrgenmode none`, `addr add`, `route add`, and provisionBatch's netkit
 * pairs); anything else is a bug here.
 */
export function ipToNsconf(batch: string): string[] {
  return batch
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^link set (\S+) (up|addrgenmode none)$/.exec(l);
      if (m) return m[2] === 'up' ? `link up ${m[1]}` : `addrgenmode none ${m[1]}`;
      if (/^(addr|route) add /.test(l)) return l;
      const nk = /^link add (\S+) netns (\S+)(.*) type netkit mode l3 forward peer blackhole name (\S+) netns (\S+)/.exec(l);
      if (nk) {
        const size = / gso_max_size (\d+)/.exec(nk[3]!)?.[1];
        const size4 = / gso_ipv4_max_size (\d+)/.exec(nk[3]!)?.[1];
        return `netkit add ${nk[1]} netns ${nk[2]} peer ${nk[4]} netns ${nk[5]}${size ? ` size ${size}` : ''}${size4 ? ` size4 ${size4}` : ''}`;
      }
      throw new LabError('E_INTERNAL', `nsconf has no form for the iproute2 line: ${l}`);
    });
}

/**
 * Everything one node's wiring sets, for one nsconf process: the node (forwarding, its side of
 * each pod device, uplink, links, routes), every pod, then the node's remote peer.
 */
export function wireConf(lab: Lab, node: LabNode, kind: DevKind): string {
  const peer = node.uplink && lab.peers.find((p) => p.node === node.name);
  return lines(
    `ns ${node.netns}`,
    ...FORWARDING,
    ...ipToNsconf(nodeBatch(lab, node, kind)),
    ...node.pods.flatMap((p) => podConf(node, p, kind)),
    ...(peer ? [`ns ${peer.netns}`, ...ipToNsconf(peerBatch(lab, node))] : []),
  );
}
