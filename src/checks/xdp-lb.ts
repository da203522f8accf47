import { vipKey, XL_COUNTERS, type XlMode } from '../datapath/xdp-lb/maps.js';
import { hasLoadBalancer, xdpLbInputs, xdpLbPins } from '../datapath/xdp-lb/feature.js';
import { vipPort, type XlFrontend } from '../datapath/xdp-lb/plan.js';
import { servicePlan } from '../datapath/kpr/plan.js';
import type { Exec } from '../exec/exec.js';
import type { LabContext } from '../lifecycle/context.js';
import { serviceAttempts, type SvcAttempt } from '../measure/services.js';
import type { Lab, LabNode } from '../topology/model.js';
import type { Family } from '../topology/schema.js';
import { type Check, couldNotEstablish, skip } from './check.js';
import { backendNames, backendServers, showAttempts } from './svc-common.js';
import { type InXdpRun, judgeInXdp, MIN_REQUESTS } from './xdp-lb-verdicts.js';

/** One burst from an LB node's client peer to one VIP frontend, through that node. */
export interface XlReachRun {
  /** LB node the client's VIP route goes through. */
  node: string;
  /** VIP:port/proto (mode). */
  frontend: string;
  vip: string;
  /** Servers (node/pod) of the frontend's backends with weight > 0. */
  backends: string[];
  /** snat: the pod must see the LB node's address; dsr: the client's own address and port. */
  mode: XlMode;
  /** The client's address on its device toward this LB node (its sockets' source). */
  client: string;
  /** This LB node's uplink address: the SNAT source (xl_cfg, lbNodePlan). */
  snatAddr: string;
  attempts: SvcAttempt[];
}

const REACH_RULE =
  "every attempt answered, from the VIP, by a server of one of its weighted backends; the pod saw the LB node's uplink address " +
  "as the client (snat) or the client's own address and port (dsr)";

/** What is wrong with the source a pod saw for one answered attempt; undefined when it is what the mode calls for. */
function wrongSource(r: XlReachRun, a: SvcAttempt): string | undefined {
  const saw = `the pod saw ${a.seen}:${a.seenPort}`;
  if (r.mode === 'snat') {
    if (a.seen === r.client) return `${saw}, the client's own address: not SNATed to ${r.snatAddr}`;
    return a.seen === r.snatAddr ? undefined : `${saw}, not the LB node's ${r.snatAddr}`;
  }
  if (a.seen !== r.client || a.seenPort !== a.localPort) return `${saw}, not the client's own ${r.client}:${a.localPort} (DSR keeps it)`;
  return undefined;
}

/** Why the pod's view of an answered attempt cannot be judged: its answer or the client's port is missing. */
const unseen = (r: XlReachRun, a: SvcAttempt) => !a.seen || (r.mode === 'dsr' && !a.localPort);

/** Verdict of xdp-lb-reachable: pure over the attempts. */
export function judgeXlReachable(runs: readonly XlReachRun[]) {
  const seen = (r: XlReachRun) => [...new Set(r.attempts.map((a) => a.seen ?? ''))];
  const metrics = { runs: runs.map((r) => ({ node: r.node, frontend: r.frontend, attempts: r.attempts.length, seen: seen(r) })) };
  if (!runs.length || runs.some((r) => !r.attempts.length))
    return { status: 'error' as const, reason: couldNotEstablish('no attempt was made to a VIP'), metrics, threshold: REACH_RULE };
  for (const r of runs) {
    const bad = r.attempts.find((a) => a.errno !== '' || a.peer !== r.vip || !r.backends.includes(a.reply ?? ''));
    if (bad) {
      const why = bad.errno ? `errno ${bad.errno}` : bad.peer !== r.vip ? `answered from ${bad.peer}` : `answered by '${bad.reply}'`;
      return { status: 'fail' as const, reason: `${r.frontend} via ${r.node}: ${why}`, metrics, threshold: REACH_RULE };
    }
  }
  for (const r of runs)
    for (const a of r.attempts) {
      const why = unseen(r, a) ? undefined : wrongSource(r, a);
      if (why) return { status: 'fail' as const, reason: `${r.frontend} via ${r.node}: #${a.i} ${why}`, metrics, threshold: REACH_RULE };
    }
  for (const r of runs) {
    const a = r.attempts.find((x) => unseen(r, x));
    if (a) {
      const what = a.seen ? 'the client socket did not say its port' : 'the answer did not say the source the pod saw';
      return {
        status: 'error' as const,
        reason: couldNotEstablish(`${r.frontend} via ${r.node}: #${a.i}: ${what}`),
        metrics,
        threshold: REACH_RULE,
      };
    }
  }
  const n = runs.reduce((s, r) => s + r.attempts.length, 0);
  const modes = [...new Set(runs.map((r) => r.mode))].sort();
  const views = modes.map((m) => (m === 'snat' ? "SNAT pods saw the LB node's address" : "DSR pods saw the client's own address and port"));
  return {
    status: 'pass' as const,
    reason: `${n} attempts over ${runs.length} VIP frontend(s) and LB node(s) all answered; ${views.join(', ')}`,
    metrics,
    threshold: REACH_RULE,
  };
}

/** An LB node's client peer has an address of this family: VIPs of it are reached through that node. */
export const reaches = (n: LabNode, family: Family) => (family === 'ipv4' ? n.uplink?.peer4 : n.uplink?.peer6) !== undefined;

const noLb = (lab: Lab) =>
  hasLoadBalancer(lab)
    ? lab.nodes.some((n) => n.loadBalancer && (reaches(n, 'ipv4') || reaches(n, 'ipv6')))
      ? { ok: true as const }
      : { ok: false as const, reason: 'no loadBalancer node has an uplink (a client peer)' }
    : { ok: false as const, reason: 'the topology has no service with a loadBalancer' };

const lbNodes = (ctx: LabContext) => ctx.lab.nodes.filter((n) => n.loadBalancer && (reaches(n, 'ipv4') || reaches(n, 'ipv6')));
/**
 * The client's sockets bound to its device toward this LB node: a peer behind several LB nodes routes a VIP over
 * all of them (ECMP), and a device-bound lookup keeps only the next hop on that device (fib_lookup_good_nhc refuses
 * a next hop on another device than the flowi4_oif, net/ipv4/fib_trie.c).
 */
export const throughNode = (node: LabNode) => ({ dev: node.uplink!.peerDev });
const label = (f: XlFrontend) => `${vipPort(f)}/${f.protocol} (${f.mode})`;
const served = (f: XlFrontend) => f.backends.some((b) => b.weight > 0);

async function loaded(ctx: LabContext, node: LabNode): Promise<boolean> {
  const r = await ctx.backend.root(node.name).run(['test', '-e', xdpLbPins(ctx, node).vips], { nothrow: true, signal: ctx.signal });
  return r.code === 0;
}

export const xdpLbReachable: Check = {
  id: 'xdp-lb-reachable',
  title: 'XDP load balancer: the client reaches each VIP over TCP and UDP through each LB node',
  proves:
    "from each LB node's client peer, every TCP and UDP port of every loadBalancer VIP is answered from the VIP by one of its backends, per mode present",
  requires: () => ({ ok: true }),
  applies: noLb,
  async run(ctx) {
    const nodes = lbNodes(ctx);
    for (const n of nodes) if (!(await loaded(ctx, n))) return skip(`the XDP load balancer is not loaded on ${n.name}`);
    const plan = servicePlan(ctx.lab);
    const frontends = xdpLbInputs(ctx.lab).frontends.filter(served);
    if (!frontends.length) return skip('no loadBalancer frontend has a backend of weight > 0');
    const servers = await backendServers(ctx, plan);
    const runs: XlReachRun[] = [];
    try {
      for (const node of nodes) {
        const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
        const client = ctx.backend.exec(peer.netns);
        for (const f of frontends.filter((x) => reaches(node, x.family))) {
          const pf = plan.frontends.find((x) => x.svcId === f.svcId)!;
          const weighted = new Set(f.backends.filter((b) => b.weight > 0).map((b) => b.id));
          const names = backendNames(plan, { ...pf, backends: pf.backends.filter((b) => weighted.has(b.id)) });
          const attempts = await serviceAttempts(client, ctx.objDir, {
            op: f.protocol === 'TCP' ? 'tcp' : 'udp',
            addr: f.lbVip,
            port: f.port,
            attempts: f.protocol === 'TCP' ? 10 : 30,
            timeoutMs: 1000,
            bind: throughNode(node),
            signal: ctx.signal,
          });
          const up = node.uplink!;
          const v6 = f.family === 'ipv6';
          const sources = { client: (v6 ? up.peer6 : up.peer4)!.addr, snatAddr: (v6 ? up.node6 : up.node4)!.addr };
          runs.push({ node: node.name, frontend: label(f), vip: f.lbVip, backends: names, mode: f.mode, ...sources, attempts });
        }
      }
    } finally {
      await servers.stop();
    }
    const v = judgeXlReachable(runs);
    return { ...v, evidence: runs.map((r) => `${r.frontend} from ${r.node}'s peer:\n${showAttempts(r.attempts)}`) };
  },
};

/** The stack's receive counter of a family: IPv4's in /proc/net/snmp (ip_rcv_core), IPv6's in /proc/net/snmp6 (ipv6_rcv). */
export const STACK_COUNTER: Record<Family, string> = { ipv4: 'Ip InReceives', ipv6: 'Ip6InReceives' };

async function inReceives(exec: Exec, family: Family, signal?: AbortSignal): Promise<number> {
  if (family === 'ipv6') {
    const line = (await exec.run(['cat', '/proc/net/snmp6'], { signal })).stdout.split('\n').find((l) => l.startsWith('Ip6InReceives '));
    return Number(line?.trim().split(/\s+/)[1]);
  }
  const lines = (await exec.run(['cat', '/proc/net/snmp'], { signal })).stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf('InReceives')]);
}

/** Per-CPU values summed: the XDP program's counters by name. */
export async function xlCounters(ctx: LabContext, node: LabNode): Promise<Record<string, number>> {
  const r = await ctx.backend.root(node.name).run(['bpftool', '-j', 'map', 'dump', 'pinned', xdpLbPins(ctx, node).counters], {
    signal: ctx.signal,
  });
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { value: number }[] } }[];
  return Object.fromEntries(rows.map(({ formatted: f }) => [XL_COUNTERS[f.key], f.values.reduce((s, v) => s + v.value, 0)]));
}

const le32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].map(String);

/** Packets and bytes of one per-CPU {packets, bytes} stats entry (xl_vip_stats, xl_be_stats), summed over CPUs. */
export async function xlStats(ctx: LabContext, node: LabNode, map: string, id: number): Promise<{ packets: number; bytes: number }> {
  const r = await ctx.backend.root(node.name).run(['bpftool', '-j', 'map', 'lookup', 'pinned', map, 'key', ...le32(id)], {
    nothrow: true,
    signal: ctx.signal,
  });
  if (r.code !== 0) return { packets: 0, bytes: 0 };
  const values = (JSON.parse(r.stdout) as { formatted: { values: { value: { packets: number; bytes: number } }[] } }).formatted.values;
  return { packets: values.reduce((s, v) => s + v.value.packets, 0), bytes: values.reduce((s, v) => s + v.value.bytes, 0) };
}

/** Set or clear the pass mark (struct xl_vip byte 9) of a VIP entry, keeping the rest as the map holds it. */
async function markPass(ctx: LabContext, node: LabNode, key: string[], pass: boolean): Promise<void> {
  const root = ctx.backend.root(node.name);
  const vips = xdpLbPins(ctx, node).vips;
  const r = await root.run(['bpftool', '-j', 'map', 'lookup', 'pinned', vips, 'key', 'hex', ...key], { signal: ctx.signal });
  const value = (JSON.parse(r.stdout) as { value: string[] }).value.map((b) => b.replace(/^0x/, ''));
  value[9] = pass ? '01' : '00';
  await root.run(['bpftool', 'map', 'update', 'pinned', vips, 'key', 'hex', ...key, 'value', 'hex', ...value], { signal: ctx.signal });
}

export const xdpLbInXdp: Check = {
  id: 'xdp-lb-in-xdp',
  title: 'XDP load balancer: VIP requests handled in XDP, never in the LB node’s IP stack',
  proves:
    "on each LB node, per family, the XDP program counts every UDP request to a VIP while the node's Ip InReceives (Ip6InReceives) rises by no more than the replies it routes; " +
    'with the VIP marked pass, the same requests show up in InReceives (the counter would have seen them)',
  requires: () => ({ ok: true }),
  applies: noLb,
  async run(ctx) {
    const nodes = lbNodes(ctx);
    for (const n of nodes) if (!(await loaded(ctx, n))) return skip(`the XDP load balancer is not loaded on ${n.name}`);
    // One UDP frontend per family: the stack counter differs (Ip InReceives, Ip6InReceives).
    const fs = (['ipv4', 'ipv6'] as const).flatMap((family) => {
      const f = xdpLbInputs(ctx.lab).frontends.find((x) => x.family === family && x.protocol === 'UDP' && served(x));
      return f ? [f] : [];
    });
    if (!fs.length) return skip('no loadBalancer UDP frontend with a backend of weight > 0');
    const servers = await backendServers(ctx);
    const runs: InXdpRun[] = [];
    const evidence: string[] = [];
    const n = 2 * MIN_REQUESTS;
    try {
      for (const node of nodes)
        for (const f of fs.filter((x) => reaches(node, x.family))) {
          const key = vipKey({ family: f.family, addr: f.lbVip, proto: 'UDP', port: f.port }).split(' ');
          const counter = STACK_COUNTER[f.family];
          const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
          const client = ctx.backend.exec(peer.netns);
          const exec = ctx.backend.exec(node.netns);
          const stats = xdpLbPins(ctx, node).vipStats;
          const probe = (count: number, timeoutMs: number) =>
            serviceAttempts(client, ctx.objDir, {
              op: 'udp',
              addr: f.lbVip,
              port: f.port,
              attempts: count,
              timeoutMs,
              bind: throughNode(node),
              signal: ctx.signal,
            });
          const v0 = await xlStats(ctx, node, stats, f.svcId);
          const in0 = await inReceives(exec, f.family, ctx.signal);
          const attempts = await probe(n, 1000);
          const in1 = await inReceives(exec, f.family, ctx.signal);
          const v1 = await xlStats(ctx, node, stats, f.svcId);
          const answered = attempts.filter((a) => a.errno === '' && a.peer === f.lbVip).length;
          const c0 = (await xlCounters(ctx, node)).pass_control ?? 0;
          let control: InXdpRun['control'];
          await markPass(ctx, node, key, true);
          try {
            const i0 = await inReceives(exec, f.family, ctx.signal);
            await probe(MIN_REQUESTS, 200);
            const stackDelta = (await inReceives(exec, f.family, ctx.signal)) - i0;
            control = { sent: MIN_REQUESTS, stackDelta, xdpPassed: ((await xlCounters(ctx, node)).pass_control ?? 0) - c0 };
          } finally {
            await markPass(ctx, node, key, false);
          }
          runs.push({
            node: node.name,
            frontend: label(f),
            sent: n,
            answered,
            xdpCounted: v1.packets - v0.packets,
            stackDelta: in1 - in0,
            // Replies come back over the node's links and may be routed by its stack on to the client.
            expectedOther: answered,
            control,
            stackCounter: counter,
          });
          evidence.push(
            `${node.name}: ${label(f)} ${n} requests, ${answered} answered; xl_vip_stats +${v1.packets - v0.packets} packets; ` +
              `${counter} +${in1 - in0}; control (pass): ${counter} +${control.stackDelta}, pass_control +${control.xdpPassed}`,
          );
        }
    } finally {
      await servers.stop();
    }
    return { ...judgeInXdp(runs), evidence };
  },
};

export const XDP_LB_CHECKS = [xdpLbReachable, xdpLbInXdp];
