import { z } from 'zod';
import { decisionOf } from '../datapath/feature.js';
import { kubeProxy, type KubeProxyMode } from '../datapath/kpr/kpr.js';
import { nodePortEntries, nodePortPins } from '../datapath/kpr/nodeport.js';
import { servicePlan } from '../datapath/kpr/plan.js';
import { parseJson, type Exec } from '../exec/exec.js';
import type { LabContext } from '../lifecycle/context.js';
import { serviceAttempts, type SvcAttempt } from '../measure/services.js';
import type { LabNode } from '../topology/model.js';
import { couldNotEstablish, skip, type Check } from './check.js';
import { attemptsFor, reachedBy } from './svc-clusterip.js';
import { backendNames, backendServers, showAttempt, showAttempts } from './svc-common.js';

/** The NodePort of one service port on one node, tried from that node's external client (its uplink's peer). */
export interface NodePortRun {
  /** The node whose address:nodePort the client dialled. */
  node: string;
  /** The client (peer) and its address. */
  client: string;
  clientAddr: string;
  label: string;
  addr: string;
  nodePort: number;
  /** The service's backends (node/pod) and whether each sits on the dialled node. */
  backends: { name: string; local: boolean }[];
  attempts: SvcAttempt[];
}

/** What the kernel showed besides the attempts. */
export interface NodePortKernel {
  mode: 'bpf' | 'iptables';
  /** By node: its IPv4 addresses (ip -j addr), the sources a SNAT may use. */
  nodeAddrs: Record<string, string[]>;
  /** By backend (node/pod): the client sources its server saw. */
  seen: Record<string, string[]>;
  /** bpf, by node, during the check: NodePort packets of the tried services (np_svc, summed over CPUs), new conntrack entries from its client (np_ct). */
  bpf?: Record<string, { fwd: number; rev: number; local: number; remote: number; ct: number }>;
  /** iptables, by node: packets kube-proxy's KUBE-NODEPORTS rules matched during the check (iptables-save -c). */
  iptables?: Record<string, number>;
}

type Verdict = { status: 'pass' | 'fail' | 'error'; reason: string };

/**
 * pass: every attempt to every node's NodePort was answered from node:nodePort, by the
 * service's backends, each of them (on the dialled node and on the other); a backend on
 * another node saw the dialled node's address (SNAT), and no backend saw a source it
 * should not; the kernel's own counters moved on every dialled node (bpf: np_svc and
 * conntrack entries; iptables: KUBE-NODEPORTS). fail: any of these not so. error: no attempt.
 */
export function judgeNodePort(runs: readonly NodePortRun[], k: NodePortKernel): Verdict {
  const tried = runs.filter((r) => r.attempts.length);
  if (!tried.length) return { status: 'error', reason: couldNotEstablish('no attempt to any NodePort') };
  const problems: string[] = [];
  for (const r of tried) {
    const failed = r.attempts.filter((a) => a.errno);
    if (failed.length) problems.push(`${r.label}: ${failed.length}/${r.attempts.length} failed (${showAttempt(failed[0])})`);
    const wrong = r.attempts.filter((a) => !a.errno && (a.peer !== r.addr || a.peerPort !== r.nodePort));
    if (wrong.length) problems.push(`${r.label}: a reply came from ${wrong[0].peer}:${wrong[0].peerPort}, not ${r.addr}:${r.nodePort}`);
    const by = reachedBy(r.attempts);
    const names = r.backends.map((b) => b.name);
    const strangers = Object.keys(by).filter((n) => !names.includes(n));
    if (strangers.length) problems.push(`${r.label}: answered by ${strangers.join(', ')}, not a backend of it`);
    const missed = names.filter((n) => !by[n]);
    if (missed.length && !failed.length) problems.push(`${r.label}: ${missed.join(', ')} never picked in ${r.attempts.length} attempts`);
    for (const b of r.backends.filter((x) => !x.local && by[x.name])) {
      const mine = k.nodeAddrs[r.node] ?? [];
      if (!(k.seen[b.name] ?? []).some((s) => mine.includes(s)))
        problems.push(
          `${r.label}: ${b.name} (on another node) never saw ${r.node}'s address (${mine.join(', ') || 'none'}) as the source: no SNAT`,
        );
    }
  }
  // Sources a backend may see: a client's own (its backend is local to the node it dialled), the dialled node's address.
  const allowed = new Map<string, Set<string>>();
  for (const r of tried)
    for (const b of r.backends) {
      const set = allowed.get(b.name) ?? new Set<string>();
      for (const a of k.nodeAddrs[r.node] ?? []) set.add(a);
      if (b.local) set.add(r.clientAddr);
      allowed.set(b.name, set);
    }
  for (const [name, sources] of Object.entries(k.seen)) {
    const bad = sources.filter((s) => !allowed.get(name)?.has(s));
    if (bad.length)
      problems.push(`${name} saw ${[...new Set(bad)].join(', ')} as a source (a client's address through another node: no SNAT)`);
  }
  for (const node of [...new Set(tried.map((r) => r.node))]) {
    const here = tried.filter((r) => r.node === node);
    const answered = (local: boolean) => here.some((r) => r.backends.some((b) => b.local === local && reachedBy(r.attempts)[b.name]));
    if (k.mode === 'bpf') {
      const c = k.bpf?.[node];
      if (!c?.fwd || !c.rev) problems.push(`${node}: the NodePort program counted no packets (np_svc ${JSON.stringify(c ?? {})})`);
      else {
        if (answered(true) && !c.local) problems.push(`${node}: a local backend answered, yet np_svc counted no local connection`);
        if (answered(false) && !c.remote) problems.push(`${node}: a remote backend answered, yet np_svc counted no SNAT connection`);
        if (!c.ct) problems.push(`${node}: no conntrack entry from its client in np_ct`);
      }
    } else if (!k.iptables?.[node]) problems.push(`${node}: kube-proxy's KUBE-NODEPORTS rules matched no packet`);
  }
  if (problems.length) return { status: 'fail', reason: problems.join('; ') };
  const n = tried.reduce((a, r) => a + r.attempts.length, 0);
  const per = tried.map((r) => `${r.label} ${r.backends.map((b) => reachedBy(r.attempts)[b.name] ?? 0).join('/')}`).join(', ');
  const how =
    k.mode === 'bpf'
      ? `tc NodePort: ${Object.entries(k.bpf ?? {})
          .map(([node, c]) => `${node} ${c.local} local/${c.remote} SNAT connections, ${c.ct} ct entries`)
          .join(', ')}`
      : `kube-proxy's KUBE-NODEPORTS: ${Object.entries(k.iptables ?? {})
          .map(([node, p]) => `${node} ${p} packets`)
          .join(', ')}`;
  return {
    status: 'pass',
    reason: `${tried.length} NodePorts: all ${n} attempts answered from node:nodePort by local and remote backends (${per}); remote backends saw the node's address (SNAT); ${how}`,
  };
}

const Addrs = z.array(z.object({ addr_info: z.array(z.object({ family: z.string(), local: z.string() })).default([]) }));

async function ipv4Addrs(exec: Exec, signal?: AbortSignal): Promise<string[]> {
  const r = await exec.run(['ip', '-j', '-4', 'addr', 'show'], { signal });
  return Addrs.parse(parseJson(r, 'ip addr'))
    .flatMap((l) => l.addr_info.map((a) => a.local))
    .filter((a) => !a.startsWith('127.'));
}

const Dump = z.array(z.object({ key: z.array(z.string()), values: z.array(z.object({ value: z.array(z.string()) })).optional() }));
const bytes = (h: string[]) => h.map((x) => Number.parseInt(x, 16));
const u64 = (b: number[], off: number) => b.slice(off, off + 8).reduce((a, x, i) => a + x * 2 ** (8 * i), 0);
const ipOf = (b: number[], off: number) => b.slice(off, off + 4).join('.');

/** np_svc of the given services summed over CPUs and services (struct np_svc_count), and np_ct entries whose source is the client. */
async function bpfCounts(ctx: LabContext, node: LabNode, svcIds: number[], clientAddr: string) {
  const p = nodePortPins(ctx, node);
  const root = ctx.backend.root(node.name);
  const dump = async (path: string) =>
    Dump.parse(parseJson(await root.run(['bpftool', '-j', 'map', 'dump', 'pinned', path], { signal: ctx.signal }), 'bpftool map dump'));
  const out = { fwd: 0, rev: 0, local: 0, remote: 0, ct: 0 };
  for (const e of await dump(p.svc)) {
    const id = u64([...bytes(e.key), 0, 0, 0, 0], 0);
    if (!svcIds.includes(id)) continue;
    for (const v of e.values ?? []) {
      const b = bytes(v.value);
      out.fwd += u64(b, 0);
      out.rev += u64(b, 8);
      out.local += u64(b, 16);
      out.remote += u64(b, 24);
    }
  }
  // struct np_ct_key: saddr at 0, dir at 13 (NP_DIR_FWD 0).
  out.ct = (await dump(p.ct)).filter((e) => {
    const b = bytes(e.key);
    return ipOf(b, 0) === clientAddr && b[13] === 0;
  }).length;
  return out;
}

/** Packets of the KUBE-NODEPORTS rules in a node's nat table ([packets:bytes] of iptables-save -c). */
async function nodePortPackets(exec: Exec, signal?: AbortSignal): Promise<number> {
  const r = await exec.run(['iptables-save', '-c', '-t', 'nat'], { signal });
  return r.stdout
    .split('\n')
    .filter((l) => l.includes('-A KUBE-NODEPORTS '))
    .reduce((a, l) => a + Number(/^\[(\d+):/.exec(l)?.[1] ?? 0), 0);
}

export const svcNodePort: Check = {
  id: 'svc-nodeport',
  title: 'Services: NodePort from outside, through each node, to local and remote backends',
  proves:
    "from each node's external client, TCP and UDP to node:nodePort reach the backends on that node and on the other (SNAT to the node's address), replies come from node:nodePort, through tc NodePort (bpf) or kube-proxy's rules (iptables)",
  requires: () => ({ ok: true }),
  applies: (lab) => {
    if (!lab.services.some((s) => s.ports.some((p) => p.nodePort) && s.backends.length && s.ipv4))
      return { ok: false, reason: 'the topology has no service with an IPv4 ClusterIP, a nodePort and backends' };
    if (!lab.nodes.some((n) => n.uplink?.peer4)) return { ok: false, reason: 'no node has an IPv4 uplink (an external client)' };
    return { ok: true };
  },
  async run(ctx) {
    const plan = servicePlan(ctx.lab);
    const nodes = ctx.lab.nodes.filter((n) => n.uplink?.peer4 && nodePortEntries(plan, n).length);
    const modeOf = (n: LabNode) => decisionOf<KubeProxyMode>(ctx.decisions, kubeProxy, n.name)?.mode ?? 'none';
    const handled = nodes.filter((n) => modeOf(n) !== 'none');
    if (!handled.length) return skip('no node with an uplink handles services (kubeProxy none, or socket-LB unavailable)');
    const mode = modeOf(handled[0]) as 'bpf' | 'iptables';
    if (mode === 'bpf')
      for (const node of handled) {
        const loaded = await ctx.backend
          .root(node.name)
          .run(['test', '-e', nodePortPins(ctx, node).frontends], { nothrow: true, signal: ctx.signal });
        if (loaded.code !== 0) return skip(`tc NodePort is not loaded on ${node.name} (this kernel offers neither tcx nor tc clsact)`);
      }
    const idsOf = (node: LabNode) => nodePortEntries(plan, node).map((e) => e.svcId);
    const countsOf = (node: LabNode) => bpfCounts(ctx, node, idsOf(node), node.uplink!.peer4!.addr);
    // Counters and entries move only by this check's traffic: judged as the difference.
    const before = new Map<string, Awaited<ReturnType<typeof bpfCounts>>>();
    const iptBefore = new Map<string, number>();
    for (const node of handled)
      if (mode === 'bpf') before.set(node.name, await countsOf(node));
      else iptBefore.set(node.name, await nodePortPackets(ctx.backend.exec(node.netns), ctx.signal));
    const servers = await backendServers(ctx, plan);
    const runs: NodePortRun[] = [];
    try {
      for (const node of handled) {
        const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
        const client = ctx.backend.exec(peer.netns);
        for (const e of nodePortEntries(plan, node)) {
          const f = plan.frontends.find((x) => x.svcId === e.svcId)!;
          if (!f.backends.length) continue;
          const names = backendNames(plan, f);
          const attempts = await serviceAttempts(client, ctx.objDir, {
            op: f.protocol === 'TCP' ? 'tcp' : 'udp',
            addr: e.addr,
            port: e.nodePort,
            attempts: attemptsFor(f),
            timeoutMs: 1000,
            signal: ctx.signal,
          });
          runs.push({
            node: node.name,
            client: peer.name,
            clientAddr: node.uplink!.peer4!.addr,
            label: `${f.service} ${e.addr}:${e.nodePort}/${f.protocol}`,
            addr: e.addr,
            nodePort: e.nodePort,
            backends: names.map((name) => ({ name, local: name.startsWith(`${node.name}/`) })),
            attempts,
          });
        }
      }
    } finally {
      await servers.stop();
    }
    const seen = Object.fromEntries(Object.entries(servers.seen()).map(([k, v]) => [k, [...new Set(v.map((s) => s.seen))]]));
    const bpf: NonNullable<NodePortKernel['bpf']> = {};
    const iptables: NonNullable<NodePortKernel['iptables']> = {};
    const kernel: NodePortKernel = { mode, nodeAddrs: {}, seen, ...(mode === 'bpf' ? { bpf } : { iptables }) };
    for (const node of handled) {
      kernel.nodeAddrs[node.name] = await ipv4Addrs(ctx.backend.exec(node.netns), ctx.signal);
      if (mode === 'bpf') {
        const [a, b] = [before.get(node.name)!, await countsOf(node)];
        bpf[node.name] = {
          fwd: b.fwd - a.fwd,
          rev: b.rev - a.rev,
          local: b.local - a.local,
          remote: b.remote - a.remote,
          ct: b.ct - a.ct,
        };
      } else iptables[node.name] = (await nodePortPackets(ctx.backend.exec(node.netns), ctx.signal)) - (iptBefore.get(node.name) ?? 0);
    }
    const metrics = {
      nodePorts: runs.map((r) => ({ nodePort: r.label, client: r.client, attempts: r.attempts.length, reached: reachedBy(r.attempts) })),
      ...kernel,
    };
    const evidence = [
      ...runs.map((r) => `${r.label} from ${r.client} (${r.clientAddr}):\n${showAttempts(r.attempts)}`),
      `sources the backends saw: ${Object.entries(seen)
        .map(([b, s]) => `${b}: ${s.join(', ')}`)
        .join('; ')}`,
      mode === 'bpf'
        ? `np_svc / np_ct by node: ${JSON.stringify(kernel.bpf)}`
        : `KUBE-NODEPORTS packets by node: ${JSON.stringify(kernel.iptables)}`,
    ];
    return { ...judgeNodePort(runs, kernel), metrics, evidence };
  },
};
