import { join } from 'node:path';
import { nodeLinks } from '../../backends/wiring.js';
import { all, needKernel, needTool, type KernelFacts, type Verdict } from '../../kernel/facts.js';
import type { Exec } from '../../exec/exec.js';
import { factsOf, type LabContext } from '../../lifecycle/context.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Family } from '../../topology/schema.js';
import { LabError } from '../../errors.js';
import { type DecideLab, type Decision, decisionOf, type Feature } from '../feature.js';
import { attachPinned, chooseHook, type Hook, nodeHook, objectFor, TC_PREF } from '../hook.js';
import { hostRouting, nodePinDir, pins as hostRoutingPins } from '../host-routing/host-routing.js';
import { servicePlan } from '../kpr/plan.js';
import { removedMembers, staleCtKeys } from './ct.js';
import { isMaglevSize, type MaglevSize } from './maglev.js';
import { cfgValue, u32Key, vipKey } from './maps.js';
import { routeVipOnPeer } from './peer-route.js';
import { dsrLines, dsrPodEntries, type XlBackend, type XlDsrEntry, type XlFrontend, type XlNodePlan, xdpLbPlan } from './plan.js';
import { readyRedirectTargets } from './redirect-targets.js';

export type XdpLbMode = 'xdp' | 'none';

/** bpf/xdp_lb.c: xl_xdp (native XDP, uplink), xl_snat_rev (links' tc ingress). */
export const XDP_LB_OBJ = 'xdp_lb';
/** bpf/xl_decap.c: xl_decap alone, for nodes with DSR backends (without xdp_lb.o's ~26 MB of LB maps). */
export const XL_DECAP_OBJ = 'xl_decap';
/** Cilium's default Maglev table size (pkg/maglev DefaultTableSize). */
export const DEFAULT_MAGLEV_SIZE: MaglevSize = 16381;

export function xdpLbPins(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  const dir = join(nodePinDir(ctx, node), 'xdplb');
  const maps = join(dir, 'maps');
  return {
    dir,
    progs: join(dir, 'prog'),
    maps,
    cfg: join(maps, 'xl_cfg'),
    backends: join(maps, 'xl_backends'),
    vips: join(maps, 'xl_vips'),
    maglev: join(maps, 'xl_maglev'),
    counters: join(maps, 'xl_counters'),
    vipStats: join(maps, 'xl_vip_stats'),
    beStats: join(maps, 'xl_be_stats'),
    /** Backend nodes: the VIP ports each local pod serves by DSR. */
    dsr: join(maps, 'xl_dsr'),
  };
}

export function xdpLbVerdict(facts: KernelFacts): Verdict {
  const h = chooseHook(facts);
  return all(
    // bpf_fib_lookup from XDP, map-in-map and native XDP on veth all predate 5.10; tc hooks as host routing has them.
    needKernel(facts, 5, 10, 'native XDP on veth with bpf_fib_lookup'),
    needTool(facts, 'bpftool'),
    needTool(facts, 'ethtool'),
    h.hook ? { ok: true } : { ok: false, reason: h.reason },
  );
}

/** Does the lab have a load-balancer VIP at all? */
export const hasLoadBalancer = (lab: Pick<Lab, 'services'>) => lab.services.some((s) => s.loadBalancer);

/**
 * What a node does for the XDP load balancer: an LB node runs xl_xdp; a backend node of a loadBalancer service, or a
 * node an LB node forwards to over a link, takes the frames xl_xdp redirects (prepareBackendNode); any other node none.
 */
export function xdpLbPart(lab: DecideLab, node: string): { role: string } | { unused: string } {
  const lbServices = lab.services.filter((s) => s.loadBalancer);
  if (lbServices.length === 0) return { unused: 'no service has a loadBalancer' };
  if (lab.nodes.find((n) => n.name === node)?.loadBalancer) return { role: 'xl_xdp natively on the uplink, xl_snat_rev on the links' };
  const lbs = new Set(lab.nodes.filter((n) => n.loadBalancer).map((n) => n.name));
  const services = lbServices.filter((s) => s.backends.some((b) => b.node === node)).map((s) => s.name);
  const facing = lab.links.flatMap((l) => (l.a === node && lbs.has(l.b) ? [l.b] : l.b === node && lbs.has(l.a) ? [l.a] : []));
  if (services.length === 0 && facing.length === 0)
    return { unused: 'not a loadBalancer node, no backend of a loadBalancer service, no link to a loadBalancer node' };
  const roles = [
    ...(services.length ? [`backends of ${services.join(', ')}`] : []),
    ...(facing.length ? [`receives frames redirected by ${facing.join(', ')}`] : []),
  ];
  return { role: roles.join('; ') };
}

/** The frontends and backends one LB node serves: the service ports of each family the service has a loadBalancer VIP of. */
export function xdpLbInputs(lab: Lab): { frontends: XlFrontend[]; backends: XlBackend[] } {
  const plan = servicePlan(lab);
  const byName = new Map(lab.services.map((s) => [s.name, s]));
  const frontends: XlFrontend[] = plan.frontends.flatMap((f) => {
    const lb = byName.get(f.service)?.loadBalancer;
    const lbVip = f.family === 'ipv4' ? lb?.vip : lb?.vip6;
    if (!lb || !lbVip) return [];
    return [{ svcId: f.svcId, family: f.family, port: f.port, protocol: f.protocol, backends: f.backends, lbVip, mode: lb.mode }];
  });
  const used = new Set(frontends.flatMap((f) => f.backends.map((b) => b.id)));
  // DSR: the IPIP outer destination is the pod itself, as Cilium's dsr_set_ipip4 (bpf/lib/nodeport.h) writes the
  // backend's address: the LB routes it like any packet to that pod, and the pod's node learns which pod the inner
  // VIP:port is for from the outer header alone (no option or extra header to carry it). SNAT rewrites to it too.
  const backends = plan.backends
    .filter((b) => used.has(b.id))
    .map((b) => ({ id: b.id, addr: b.addr, port: b.port, family: b.family, nodeAddr: b.addr }));
  return { frontends, backends };
}

/** The xl_dsr entries of a node: DSR frontends served by its own pods. */
export function dsrEntriesOf(lab: Lab, node: LabNode): XlDsrEntry[] {
  const { frontends, backends } = xdpLbInputs(lab);
  return dsrPodEntries(frontends, backends, new Set(node.pods.flatMap((p) => [p.ipv4, p.ipv6].filter((a) => a !== undefined))));
}

/** The map contents of an LB node (its uplink address is the SNAT source). */
export function lbNodePlan(ctx: Pick<LabContext, 'bpfDir' | 'lab'>, node: LabNode): XlNodePlan {
  const p = xdpLbPins(ctx, node);
  const { frontends, backends } = xdpLbInputs(ctx.lab);
  const m = ctx.lab.maglevSize ?? DEFAULT_MAGLEV_SIZE;
  const size = isMaglevSize(m) ? m : DEFAULT_MAGLEV_SIZE;
  return xdpLbPlan(p, frontends, backends, size, { addr4: node.uplink?.node4?.addr, addr6: node.uplink?.node6?.addr });
}

/**
 * Cilium's XDP service load balancer (bpf/bpf_xdp.c + lib/nodeport.h) as the lab builds it: on nodes with
 * `loadBalancer: true`, xl_xdp natively on the uplink picks a backend by Maglev and forwards by SNAT, in XDP;
 * replies are turned back by xl_snat_rev at tc ingress of the node's links.
 */
export const xdpLoadBalancer: Feature<XdpLbMode> = {
  id: 'xdp-lb',
  title: 'XDP load balancer (Maglev, SNAT or DSR) on the uplink of load-balancer nodes',
  requires: xdpLbVerdict,
  decide(facts, _dp, node, lab): Decision<XdpLbMode> {
    const base = { feature: 'xdp-lb', node };
    const part = lab ? xdpLbPart(lab, node) : { role: 'xl_xdp natively on the uplink of loadBalancer nodes (only when a service has one)' };
    if ('unused' in part) return { ...base, status: 'off', mode: 'none', detail: `not used: ${part.unused}` };
    const v = xdpLbVerdict(facts);
    if (!v.ok) return { ...base, status: 'declined', mode: 'none', detail: `XDP load balancer: ${v.reason}` };
    return { ...base, status: 'applied', mode: 'xdp', detail: `xdp: ${part.role}` };
  },
  async apply(ctx, node, decision) {
    if (decision.mode !== 'xdp' || !hasLoadBalancer(ctx.lab)) return;
    if (node.loadBalancer) await deployLbNode(ctx, node);
    else await prepareBackendNode(ctx, node);
  },
};

/**
 * A backend node: its link ends toward LB nodes receive XDP_REDIRECTed frames, which veth queues only to a
 * peer with NAPI (drivers/net/veth.c veth_xdp_xmit: -ENXIO without rq->napi); GRO on gives it one
 * (veth_set_features). The setting goes with the node's namespace. With pods behind a DSR VIP: xl_decap too.
 */
async function prepareBackendNode(ctx: LabContext, node: LabNode): Promise<void> {
  const lbs = new Set(ctx.lab.nodes.filter((n) => n.loadBalancer).map((n) => n.name));
  const exec = ctx.backend.exec(node.netns);
  for (const l of nodeLinks(ctx.lab, node))
    if (lbs.has(l.other)) await exec.run(['ethtool', '-K', l.dev, 'gro', 'on'], { signal: ctx.signal });
  const entries = dsrEntriesOf(ctx.lab, node);
  if (entries.length) await deployDsrBackend(ctx, node, entries);
}

/**
 * DSR to this node's pods: xl_decap.o loaded with its dsr_ct and dsr_ct6 being host routing's pinned ones (bpftool `map
 * name dsr_ct pinned`), xl_dsr filled, xl_decap first on the links' tc ingress, before host routing's from_netdev, which then
 * delivers the decapsulated, DNATed packet to the pod; host routing's from_pod turns the reply back to VIP:port.
 */
async function deployDsrBackend(ctx: LabContext, node: LabNode, entries: readonly XlDsrEntry[]): Promise<void> {
  const hr = decisionOf(ctx.decisions, hostRouting, node.name);
  // The resolver refuses hostRouting: legacy here; this is the kernel declining BPF host routing.
  if (hr?.mode !== 'bpf')
    throw new LabError(
      'E_REQUIREMENT',
      `node ${node.name} holds DSR backends (${entries.map((e) => e.label).join(', ')}) but BPF host routing is off there ` +
        `(${hr?.detail ?? 'not decided'}): its from_pod turns the pods' replies back to the VIP`,
      'use mode: snat for these services, or a kernel with BPF host routing',
    );
  const hook = nodeHook(ctx, node.name);
  const p = xdpLbPins(ctx, node);
  const { signal } = ctx;
  ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'pin', path: p.dir }]);
  const root = ctx.backend.root(node.name);
  await root.run(['mkdir', '-p', p.dir], { signal });
  const ct = join(hostRoutingPins(ctx, node).maps, 'dsr_ct');
  const ct6 = join(hostRoutingPins(ctx, node).maps, 'dsr_ct6');
  await root.run(
    [
      'bpftool',
      'prog',
      'loadall',
      join(ctx.objDir, objectFor(XL_DECAP_OBJ, hook)),
      p.progs,
      'map',
      'name',
      'dsr_ct',
      'pinned',
      ct,
      'map',
      'name',
      'dsr_ct6',
      'pinned',
      ct6,
      'pinmaps',
      p.maps,
    ],
    { signal },
  );
  // xl_cfg stays without an address: IPIP to this node itself is not the pods' DSR.
  const lines = [`map update pinned ${p.cfg} key hex ${u32Key(0)} value hex ${cfgValue()}`, ...dsrLines(p.dsr, [], entries)];
  await root.run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, signal });
  const devs = nodeLinks(ctx.lab, node).map((l) => l.dev);
  await attachFirst(ctx, ctx.backend.exec(node.netns), hook, devs, join(p.progs, 'xl_decap'), TC_PREF.xlDecap);
}

/**
 * Attach prog at the ingress of devs, ahead of what is there: nkctl puts a tcx program first (bpf/user/nkctl.c); on
 * clsact a lower pref runs first.
 */
async function attachFirst(ctx: LabContext, exec: Exec, hook: Hook, devs: readonly string[], prog: string, pref: number): Promise<void> {
  const { signal } = ctx;
  if (hook !== 'tcx')
    return attachPinned(
      exec,
      hook,
      'ingress',
      devs.map((d): [string, string] => [d, prog]),
      signal,
      pref,
    );
  const nk = devs.map((d) => `attach tcx-ingress ${d} ${prog}`);
  if (nk.length) await exec.run([join(ctx.objDir, 'nkctl'), 'batch'], { input: `${nk.join('\n')}\n`, signal, needsBpffs: true });
}

async function deployLbNode(ctx: LabContext, node: LabNode): Promise<void> {
  const up = node.uplink;
  if (!up) return;
  const hook = chooseHook(ctx.facts).hook ?? 'tcx';
  const p = xdpLbPins(ctx, node);
  // Programs and maps outlive the namespace: journaled before they exist. The XDP and tc attachments, neighbour
  // entries and offload settings live on the node's and peer's devices and go with their namespaces.
  ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'pin', path: p.dir }]);
  const root = ctx.backend.root(node.name);
  const { signal } = ctx;
  await root.run(['mkdir', '-p', p.dir], { signal });
  await root.run(['bpftool', 'prog', 'loadall', join(ctx.objDir, objectFor(XDP_LB_OBJ, hook)), p.progs, 'pinmaps', p.maps], { signal });
  const plan = lbNodePlan(ctx, node);
  await root.run(['bpftool', 'batch', 'file', '-'], { input: `${plan.mapLines.join('\n')}\n`, signal });
  if (plan.tableLines.length)
    await root.run([join(ctx.objDir, 'xlctl'), p.maglev], { input: `${plan.tableLines.join('\n')}\n`, signal, needsBpffs: true });
  const exec = ctx.backend.exec(node.netns);
  // xl_xdp drops when bpf_fib_lookup finds no neighbour (it cannot hand the rewritten packet to the stack):
  // the link peers' addresses are resolved first, from their devices' MACs.
  const links = nodeLinks(ctx.lab, node);
  for (const l of links) {
    const other = ctx.lab.nodes.find((n) => n.name === l.other);
    const addrs = [l.peer4?.addr, l.peer6?.addr].filter((a) => a !== undefined);
    if (!other || !addrs.length) continue;
    const otherDev = ctx.lab.links.find((x) => (x.a === node.name && x.b === other.name) || (x.b === node.name && x.a === other.name));
    const dev = otherDev && (otherDev.a === node.name ? otherDev.devB : otherDev.devA);
    if (!dev) continue;
    const mac = await macOf(ctx, other, dev);
    for (const a of addrs) await exec.run(['ip', 'neigh', 'replace', a, 'lladdr', mac, 'dev', l.dev, 'nud', 'permanent'], { signal });
  }
  const prog = (name: string) => join(p.progs, name);
  await attachFirst(
    ctx,
    exec,
    hook,
    links.map((l) => l.dev),
    prog('xl_snat_rev'),
    TC_PREF.nodePort,
  );
  await readyRedirectTargets(ctx, node, links, p.dir);
  // xdpdrv fails rather than falling back to generic XDP.
  await exec.run(['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', prog('xl_xdp'), 'dev', up.nodeDev], { signal, needsBpffs: true });
  const peer = ctx.lab.peers.find((x) => x.node === node.name);
  if (!peer) return;
  const pexec = ctx.backend.exec(peer.netns);
  // A local socket's frame over veth is CHECKSUM_PARTIAL; XDP turns it into an xdp_frame without that state, so the
  // client computes checksums itself (Cilium test/l4lb/test.sh: ethtool -K rx off tx off on its veths).
  await pexec.run(['ethtool', '-K', up.peerDev, 'tx', 'off'], { signal });
  const vips = lbVips(ctx.lab).map(({ vip, mode }) => ({ vip, attrs: vipRouteMtu(mode, vip.includes(':') ? 'ipv6' : 'ipv4') }));
  await routeVipOnPeer(ctx.lab, node, pexec, peer.netns, vips, signal);
}

/** Each VIP once (either family), with its mode. */
const lbVips = (lab: Lab) => [
  ...new Map(
    lab.services.flatMap(({ loadBalancer: lb }) =>
      lb ? [lb.vip, lb.vip6].flatMap((vip) => (vip ? [[vip, { vip, mode: lb.mode }] as const] : [])) : [],
    ),
  ).values(),
];

/** The outer header: IPIP's IPv4 one (RFC 2003: 20 bytes, no options), IPv6-in-IPv6's (RFC 2473: 40 bytes). */
const ENCAP_OVERHEAD = { ipv4: 20, ipv6: 40 } as const;
/** IPv4 (20) or IPv6 (40) header + TCP header (20): what the MSS leaves of the MTU (ipv4_default_advmss, ip6_default_advmss). */
const MSS_OVERHEAD = { ipv4: 40, ipv6: 60 } as const;
/** The lab's veth default MTU: uplinks and node links alike. */
const LINK_MTU = 1500;

/**
 * The client's route to a DSR VIP leaves room for the outer header (IPIP 20 bytes, IPv6-in-IPv6 40): the LB encapsulates in XDP and drops what then
 * exceeds the link (bpf_fib_lookup's FRAG_NEEDED; Cilium answers ICMP frag-needed instead, nodeport.h dsr_reply_icmp4,
 * and Documentation/network/kubernetes/kubeproxy-free.rst names DSR's cost: "advertising a lower MTU"). A route MTU caps the client's TCP MSS (tcp_sync_mss) and its
 * advertised MSS follows it (advmss defaults to the route's MTU - 40, ipv4_default_advmss; IPv6 - 60, ip6_default_advmss); written both.
 */
export function vipRouteMtu(mode: 'dsr' | 'snat', family: Family = 'ipv4'): string[] {
  if (mode !== 'dsr') return [];
  const mtu = LINK_MTU - ENCAP_OVERHEAD[family];
  return ['mtu', String(mtu), 'advmss', String(mtu - MSS_OVERHEAD[family])];
}

async function macOf(ctx: LabContext, node: LabNode, dev: string): Promise<string> {
  const r = await ctx.backend.exec(node.netns).run(['ip', '-j', 'link', 'show', 'dev', dev], { signal: ctx.signal });
  const [link] = JSON.parse(r.stdout) as { address: string }[];
  return link.address;
}

/**
 * After `lab svc`: an LB node's maps and tables as the new service set has them. Each table is swapped whole by xlctl
 * (a reader sees the old table or the new one); VIP entries of frontends that went away are deleted, and so are backend
 * entries no frontend names any more: a conntrack entry whose backend is gone then picks again (xdp_lb.c snat), as
 * Cilium's lb4_local does when lb4_lookup_backend fails, instead of sending a reused 5-tuple to a removed pod.
 */
export async function syncXdpLb(ctx: LabContext, node: LabNode, before: Lab, after: Lab): Promise<void> {
  if (!node.loadBalancer) return syncDsrBackend(ctx, node, before, after);
  if (!hasLoadBalancer(after)) return;
  const p = xdpLbPins(ctx, node);
  const root = ctx.backend.root(node.name);
  const { signal } = ctx;
  if ((await root.run(['test', '-e', p.vips], { nothrow: true, signal })).code !== 0) return;
  const plan = lbNodePlan({ ...ctx, lab: after }, node);
  const now = xdpLbInputs(after);
  const keep = new Set(now.frontends.map((f) => f.svcId));
  const old = xdpLbInputs(before);
  const gone = old.frontends.filter((f) => !keep.has(f.svcId));
  const stillUsed = new Set(now.backends.map((b) => b.id));
  const lines = [
    ...plan.mapLines,
    ...gone.map(
      (f) => `map delete pinned ${p.vips} key hex ${vipKey({ family: f.family, addr: f.lbVip, proto: f.protocol, port: f.port })}`,
    ),
    ...old.backends.filter((b) => !stillUsed.has(b.id)).map((b) => `map delete pinned ${p.backends} key hex ${u32Key(b.id)}`),
  ];
  await root.run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, signal });
  const tables = [...plan.tableLines, ...gone.map((f) => `del ${f.svcId}`)];
  if (tables.length) await root.run([join(ctx.objDir, 'xlctl'), p.maglev], { input: `${tables.join('\n')}\n`, signal, needsBpffs: true });
  await purgeCt(ctx, node, removedMembers(old.frontends, now.frontends));
}

/**
 * Delete the SNAT conntrack entries of (service, backend) pairs a change removed (src/datapath/xdp-lb/ct.ts). The LRU
 * map may drop an entry between the dump and the delete, which stops bpftool's batch: one more round then.
 */
async function purgeCt(ctx: LabContext, node: LabNode, removed: ReadonlySet<string>): Promise<void> {
  if (!removed.size) return;
  const root = ctx.backend.root(node.name);
  const pin = join(xdpLbPins(ctx, node).maps, 'xl_ct');
  for (let round = 0; round < 2; round++) {
    const dump = await root.run(['bpftool', '-j', 'map', 'dump', 'pinned', pin], { signal: ctx.signal });
    const keys = staleCtKeys(JSON.parse(dump.stdout), removed);
    if (!keys.length) return;
    const lines = keys.map((k) => `map delete pinned ${pin} key hex ${k}`);
    const r = await root.run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, nothrow: true, signal: ctx.signal });
    if (r.code === 0) return;
  }
}

/** After `lab svc` on a node that is no LB node: its xl_dsr as the new service set has it (xl_decap loaded if it was not). */
async function syncDsrBackend(ctx: LabContext, node: LabNode, before: Lab, after: Lab): Promise<void> {
  const prev = dsrEntriesOf(before, node);
  const next = dsrEntriesOf(after, node);
  if (!prev.length && !next.length) return;
  const p = xdpLbPins(ctx, node);
  const root = ctx.backend.root(node.name);
  if ((await root.run(['test', '-e', p.dsr], { nothrow: true, signal: ctx.signal })).code !== 0) {
    if (!next.length) return;
    // A node that played no part at lab up is 'off' without its kernel judged: decided again for the new service set.
    const d = decisionOf(ctx.decisions, xdpLoadBalancer, node.name);
    const now = d?.status === 'off' ? xdpLoadBalancer.decide(factsOf(ctx, node.name), node.datapath, node.name, after) : d;
    if (now?.mode !== 'xdp')
      throw new LabError(
        'E_REQUIREMENT',
        `node ${node.name} would hold DSR backends (${next.map((e) => e.label).join(', ')}) but the XDP load balancer is not ` +
          `applied there (${now?.detail ?? 'not decided'}): nothing would take the IPIP packets out for its pods`,
        'use mode: snat for these services',
      );
    await deployDsrBackend({ ...ctx, lab: after }, node, next);
    return;
  }
  const lines = dsrLines(p.dsr, prev, next);
  if (lines.length) await root.run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, signal: ctx.signal });
}
