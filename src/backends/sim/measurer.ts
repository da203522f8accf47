import { chosenSize, ipv4Verdict, type SizedDevice } from '../../datapath/bigtcp/bigtcp.js';
import type { Exec } from '../../exec/exec.js';
import { LabError } from '../../errors.js';
import type { BigCounts } from '../../measure/bigcount.js';
import { type BottleneckChange, rateBps } from '../../measure/bottleneck.js';
import type { ConnectResult } from '../../measure/connect.js';
import type { FlowResult, FlowSpec } from '../../measure/flow.js';
import type { LinkFacts } from '../../measure/links.js';
import type { BigCounterHandle, BottleneckHandle, Measurer } from '../../measure/measurer.js';
import { type RunFlowsPath, simulateFlow } from './flows.js';
import { SimServices } from './services.js';
import { HORIZON_NS, type EdtCounters } from '../../datapath/bwm/maps.js';
import type { Shaper } from '../../datapath/bwm/shaper.js';
import type { UdpFlowResult, UdpFlowSpec } from '../../measure/udp-flow.js';
import { runUdp } from '../../sim/udp.js';
import { LabError as SimError } from '../../errors.js';
import type { Frontend } from '../../datapath/kpr/plan.js';
import type { HeldConnection, ProbeSpec, Servers, SvcAttempt } from '../../measure/services.js';
import type { SimLab } from './model.js';
import { parts as labParts } from '../../topology/routes.js';
import type { Lab, LabNode } from '../../topology/model.js';

const zero = (): BigCounts => ({ v4Big: 0, v6Big: 0, v4All: 0, v6All: 0 });

/** The measurement API answered by the model: same signatures as the kernel's, values from src/sim. */
export class SimMeasurer implements Measurer {
  readonly kind = 'model' as const;
  private readonly svc: SimServices;
  constructor(private readonly m: SimLab) {
    this.svc = new SimServices(m);
  }

  /** The node of a pod namespace. */
  private nodeOf(netns: string): LabNode {
    const node = this.m.lab.nodes.find((n) => n.pods.some((p) => p.netns === netns));
    if (!node) throw new SimError('E_INTERNAL', `the model has no pod in ${netns}`);
    return node;
  }

  /** The uplink fq's statistics, summed over flows as tc -s shows them (one fq per lab: it is never replaced in the model). */
  private noteFq(netns: string, r: { skbs: number; tbfDrops: number; fqThrottled: number; bitsPerSecond: number }) {
    const fq = this.m.bwm.get(this.nodeOf(netns).name)?.fq;
    if (!fq) return;
    fq.sentPkts += r.skbs - r.tbfDrops;
    fq.drops += r.tbfDrops;
    fq.throttled += r.fqThrottled;
  }

  /**
   * withShaper: the rates a check sets for one measurement, restored after. Only EDT + fq is
   * modelled on this path; htb and tbf as the bwm-latency control would need a classifier per pod.
   */
  async withShaper<T>(_ctx: unknown, node: LabNode, shaper: Shaper, rates: Record<string, number>, fn: () => Promise<T>): Promise<T> {
    const bwm = this.m.bwm.get(node.name);
    if (!bwm) throw new SimError('E_INTERNAL', `the Bandwidth Manager is off on ${node.name} in the model`);
    if (shaper !== 'edt') throw new SimError('E_INTERNAL', `the model has no ${shaper} shaper on the Bandwidth Manager's path`);
    bwm.rates = rates;
    try {
      return await fn();
    } finally {
      bwm.rates = undefined;
    }
  }

  /** bpftool map dump of edt_counters: the model's counts on the node the root exec names. */
  async readEdtCounters(root: Exec): Promise<EdtCounters> {
    const name = root.where.replace(/^node /, '');
    const c = this.m.bwm.get(name)?.counters;
    if (!c) throw new SimError('E_INTERNAL', `no modelled edt_uplink on ${name}`);
    return { ...c };
  }

  /** tc -s qdisc show on the uplink, in tc's words (fqThrottled and fqTimerLatencyUs read it); the model's timer is never late. */
  async uplinkQdiscStats(_ctx: unknown, node: LabNode): Promise<string> {
    const fq = this.m.bwm.get(node.name)?.fq;
    if (!fq) return `qdisc noqueue 0: dev ${node.uplink?.nodeDev} root refcnt 2 (simulated)`;
    return [
      `qdisc fq 8001: dev ${node.uplink?.nodeDev} root refcnt 2 limit 10000p flow_limit 100p buckets 32768 horizon 2s (simulated)`,
      ` Sent ${fq.sentPkts} pkt (dropped ${fq.drops}, overlimits 0 requeues 0)`,
      `  flows 0 (inactive 0 throttled 0)`,
      `  gc 0 highprio 0 throttled ${fq.throttled} latency 0ns horizon_drops ${fq.horizonDrops}`,
    ].join('\n');
  }

  /** iperf3 -u through the node's EDT + fq (src/sim/udp.ts). */
  async udpFlow(spec: UdpFlowSpec): Promise<UdpFlowResult> {
    const node = this.nodeOf(spec.from.where);
    const pod = node.pods.find((p) => p.netns === spec.from.where)!;
    const bwm = this.m.bwm.get(node.name);
    const limit = bwm ? (bwm.rates?.[pod.name] ?? pod.egressBps) : undefined;
    const len = spec.len ?? 1400;
    const r = runUdp({
      bps: spec.bps,
      len,
      seconds: spec.seconds,
      delayNs: 20_000,
      edt: bwm
        ? { bytesPerSec: limit ? BigInt(Math.round(limit / 8)) : undefined, horizonNs: HORIZON_NS, tLast: 0n, counters: bwm.counters }
        : undefined,
    });
    this.m.virtualNs += r.virtualNs;
    this.m.events += r.events;
    return {
      sentBps: r.sentBps,
      receivedBps: r.receivedBps,
      sentPackets: r.sentPackets,
      lostPackets: r.lostPackets,
      evidence: [
        `simulated ${spec.seconds} s UDP ${spec.from.where} -> ${spec.to.where} (${spec.addr}) at ${spec.bps / 1e6} Mbit/s, ${len} B: ` +
          `sent ${(r.sentBps / 1e6).toFixed(3)} Mbit/s (${r.sentPackets} datagrams, blocked ${r.blocked}), received ${(r.receivedBps / 1e6).toFixed(3)} Mbit/s, ` +
          `lost ${r.lostPackets}, ${bwm ? `EDT ${limit ? `${limit / 1e6} Mbit/s` : 'unlimited'} + fq` : 'no qdisc'}, ${r.events} events`,
      ],
    };
  }

  /** svcprobe's attempts through the node's socket-LB model (src/sim/socklb.ts). */
  serviceAttempts(from: Exec, _objDir: string, spec: ProbeSpec): Promise<SvcAttempt[]> {
    return this.svc.serviceAttempts(from, spec);
  }

  startServers(pods: { exec: Exec; name: string; ports: string[] }[]): Promise<Servers> {
    return this.svc.startServers(pods);
  }

  holdConnection(from: Exec, _objDir: string, spec: Parameters<SimServices['holdConnection']>[1]): HeldConnection {
    return this.svc.holdConnection(from, spec);
  }

  setBackends(_ctx: unknown, f: Frontend): Promise<number> {
    return this.svc.setBackends(f);
  }

  /** `ip -d -j link show`: the modelled devices of a namespace with the sizes they hold now. */
  async readLinks(exec: Exec, dev?: string): Promise<LinkFacts[]> {
    return (this.m.devices.get(exec.where) ?? [])
      .filter((d) => !dev || d.name === dev)
      .map((d) => ({
        ifindex: d.ifindex,
        ifname: d.name,
        operstate: 'UP',
        tso_max_size: d.profile.tsoMaxSize,
        tso_max_segs: 65535,
        gso_max_size: d.gsoMaxSize,
        gro_max_size: d.groMaxSize,
        gso_ipv4_max_size: d.gsoIpv4MaxSize,
        gro_ipv4_max_size: d.groIpv4MaxSize,
        linkinfo: { info_kind: d.profile.kind },
      }));
  }

  async bulkFlow(spec: FlowSpec): Promise<FlowResult> {
    const path = this.path(spec.from.where, spec.to.where, spec.addr);
    // A pod's EDT clock is shared by all its sockets: there the streams matter; elsewhere the model runs one (as it always has).
    const r = simulateFlow(this.m, path, spec.seconds, !!spec.sample, path.edt ? (spec.streams ?? 1) : 1);
    if (path.edt) this.noteFq(spec.from.where, r);
    const counts = this.m.counters.get(spec.from.where);
    if (counts) {
      if (path.family === 'ipv4') [counts.v4All, counts.v4Big] = [counts.v4All + r.skbs, counts.v4Big + r.bigSkbs];
      else [counts.v6All, counts.v6Big] = [counts.v6All + r.skbs, counts.v6Big + r.bigSkbs];
    }
    const samples = spec.sample ? r.samples : [];
    for (const s of samples) spec.onSample?.(s);
    const tbf = path.edt
      ? `EDT ${path.edt.bytesPerSec ? `${Number(path.edt.bytesPerSec * 8n) / 1e6} Mbit/s` : 'unlimited'} + fq (throttled ${r.fqThrottled})`
      : path.tbf
        ? `tbf ${(path.tbf.rateBps / 1e6).toFixed(1)} Mbit/s`
        : 'no qdisc (noqueue)';
    const nic = path.lineBps ? `, ${path.lineBps / 1e9} Gbit/s wire, ${r.groPackets} GRO packets at gro_max_size ${path.groMax}` : '';
    return {
      bitsPerSecond: r.bitsPerSecond,
      retransmits: r.retransmits,
      samples,
      evidence: [
        `simulated ${spec.seconds} s ${path.family} flow ${spec.from.where} -> ${spec.to.where} (${spec.addr}): ` +
          `${(r.bitsPerSecond / 1e6).toFixed(1)} Mbit/s, ${path.cc}, ${path.podDevice} pod, ${path.hostRouting} host routing, ${tbf}${nic}, gso ${path.gsoMax}, ` +
          `${r.skbs} skbs (max ${r.maxLen} B), drops tbf ${r.tbfDrops} backlog ${r.backlogDrops}, retransmits ${r.retransmits}, ${r.events} events`,
      ],
    };
  }

  /** Which model path a flow takes: its sending pod, its node's routing mode, and a bottleneck if it leaves by the uplink. */
  private path(from: string, to: string, addr: string): RunFlowsPath {
    const lab = this.m.lab;
    const node = lab.nodes.find((n) => n.pods.some((p) => p.netns === from));
    const pod = node?.pods.find((p) => p.netns === from);
    if (!node || !pod) throw new LabError('E_INTERNAL', `the model has no pod in ${from}`);
    const family = addr.includes(':') ? 'ipv6' : 'ipv4';
    const dev = this.m.device(pod.netns, pod.dev)!;
    const peer = lab.peers.find((p) => p.netns === to);
    const u = node.uplink;
    let tbf: RunFlowsPath['tbf'];
    if (peer && u?.rate) {
      const change = this.m.neck.get(node.name);
      const bps = change ? ('lift' in change ? undefined : change.rateBps) : rateBps(u.rate);
      // wiring.ts tbfBatch: burst 64kb latency 50ms.
      if (bps) tbf = { rateBps: bps, burst: 65536, latencyNs: 50e6 };
    }
    const bwm = peer ? this.m.bwm.get(node.name) : undefined;
    const limit = bwm ? (bwm.rates?.[pod.name] ?? pod.egressBps) : undefined;
    const edt: RunFlowsPath['edt'] = bwm
      ? { bytesPerSec: limit ? BigInt(Math.round(limit / 8)) : undefined, horizonNs: HORIZON_NS, tLast: 0n, counters: bwm.counters }
      : undefined;
    if (edt) tbf = undefined;
    // Toward the peer the flow crosses the uplink: a NIC profile's wire rate and the peer's GRO.
    const nic = peer && u ? this.m.device(node.netns, u.nodeDev) : undefined;
    const rx = peer && u ? this.m.device(peer.netns, u.peerDev) : undefined;
    return {
      family,
      gsoMax: dev.gsoFor(family),
      mtu: dev.profile.mtu,
      hostRouting: this.m.hostRouting.get(node.name)!,
      podDevice: dev.profile.kind === 'netkit' ? 'netkit' : 'veth',
      tbf,
      edt,
      delayNs: 20_000,
      cc: this.m.congestionControl(node),
      lineBps: nic?.profile.lineBps,
      egressGsoMax: nic?.profile.lineBps ? nic.gsoFor(family) : undefined,
      groMax: rx?.profile.lineBps ? (family === 'ipv4' ? rx.groIpv4MaxSize : rx.groMaxSize) : undefined,
    };
  }

  /**
   * A SYN to a closed port: answered with a RST (tcp_v4_send_reset) when the routing plan has a
   * path between the two nodes (the lab routes every pod and peer prefix along shortest paths);
   * without one the source node has no route: ENETUNREACH.
   */
  async tcpConnectAll(from: Exec, addrs: readonly string[]): Promise<ConnectResult[]> {
    const { owner, part, srcOf } = this.plan();
    const src = srcOf.get(from.where);
    return addrs.map((addr) => {
      const dst = owner.get(addr);
      if (!src || !dst) return { outcome: 'unreachable', errno: 'ENETUNREACH', ms: 0, detail: `simulated: no route to ${addr}` };
      if (part.get(src) !== part.get(dst))
        return { outcome: 'unreachable', errno: 'ENETUNREACH', ms: 0, detail: `simulated: ${src} has no route to ${dst} (${addr})` };
      return { outcome: 'refused', errno: 'ECONNREFUSED', ms: 0, detail: `simulated: RST from ${addr} (closed port, node ${dst})` };
    });
  }

  /** The routing plan's connected parts and who owns each address, once per lab (a 1000-node matrix asks a million times). */
  private planned?: { owner: Map<string, string>; part: Map<string, number>; srcOf: Map<string, string> };
  private plan() {
    if (this.planned) return this.planned;
    const lab = this.m.lab;
    const part = new Map<string, number>();
    labParts(lab).forEach((p, i) => {
      for (const node of p) part.set(node, i);
    });
    const owner = new Map<string, string>();
    const srcOf = new Map<string, string>();
    for (const n of lab.nodes) {
      for (const p of n.pods) {
        srcOf.set(p.netns, n.name);
        for (const a of [p.ipv4, p.ipv6]) if (a) owner.set(a, n.name);
      }
      for (const a of [n.uplink?.peer4?.addr, n.uplink?.peer6?.addr]) if (a) owner.set(a, n.name);
    }
    this.planned = { owner, part, srcOf };
    return this.planned;
  }

  bottleneck(_lab: Lab, node: LabNode): BottleneckHandle | undefined {
    const u = node.uplink;
    if (!u?.rate) return undefined;
    const m = this.m;
    return {
      bps: rateBps(u.rate),
      describe: (c: BottleneckChange) =>
        'lift' in c ? `tbf lifted from ${u.nodeDev}` : `tbf ${(c.rateBps / 1e6).toFixed(1)} Mbit/s on ${u.nodeDev}`,
      async with<T>(c: BottleneckChange, fn: () => Promise<T>): Promise<T> {
        m.neck.set(node.name, c);
        try {
          return await fn();
        } finally {
          m.neck.delete(node.name);
        }
      },
    };
  }

  async currentHostRouting(_ctx: unknown, node: LabNode) {
    return this.m.hostRouting.get(node.name) ?? 'legacy';
  }

  async setHostRouting(_ctx: unknown, node: LabNode, mode: 'bpf' | 'legacy') {
    this.m.hostRouting.set(node.name, mode);
  }

  async setSizes(_b: unknown, facts: Parameters<typeof ipv4Verdict>[0], namespaces: string[], on: boolean): Promise<SizedDevice[]> {
    const v4 = ipv4Verdict(facts).ok;
    const out: SizedDevice[] = [];
    for (const netns of namespaces)
      for (const d of this.m.devices.get(netns) ?? []) {
        const size = chosenSize(d.profile.tsoMaxSize, on);
        d.setSizes(size, v4);
        out.push({ netns, dev: d.name, tsoMaxSize: d.profile.tsoMaxSize, size, ipv4: v4 });
      }
    return out;
  }

  bigCounter(_host: Exec, podExec: Exec, dev: string): BigCounterHandle {
    const m = this.m;
    const at = podExec.where;
    return {
      async attach() {
        m.counters.set(at, zero());
      },
      async reset() {
        m.counters.set(at, zero());
      },
      async read() {
        const counts = { ...(m.counters.get(at) ?? zero()) };
        return { counts, raw: `simulated counter on ${at}/${dev} egress: ${JSON.stringify(counts)}` };
      },
      async detach() {
        m.counters.delete(at);
      },
    };
  }
}
