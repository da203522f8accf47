import { type CpuProfile, type StageCost, costNs } from './cpu.js';
import { Engine } from './engine.js';
import { Fifo } from './fifo.js';
import { Htb } from './htb.js';
import { Fq, type Qdisc, Tbf } from './qdisc.js';
import { edtDeparture } from '../datapath/bwm/maps.js';
import type { Rng } from './rng.js';
import { free, orphan, pktLenOf, setOwner, type Skb, truesizeOf } from './skb.js';
import type { CcName } from './cc.js';
import { groSizes, segmentsOf } from './gro.js';
import { HEADER, TcpSender } from './tcp.js';

/** net.core.netdev_max_backlog default (net/core/net-sysctl / dev.c): skbs one CPU's backlog holds before enqueue_to_backlog drops. */
export const NETDEV_MAX_BACKLOG = 1000;

/** Where a pod's skb loses its socket: the host stack's ip_rcv (legacy), or only the receiver's (bpf redirect). */
export type HostRoutingModel = 'bpf' | 'legacy';

/** One path from sending pods through a node to a receiver, as the flow model runs it. */
export interface PathSpec {
  family: 'ipv4' | 'ipv6';
  /** The sending pod device's GSO size for this family. */
  gsoMax: number;
  mtu: number;
  hostRouting: HostRoutingModel;
  /**
   * The pod's device. veth: veth_xmit (drivers/net/veth.c) hands the skb to the host-side peer through
   * veth_forward_skb -> __netif_rx, the per-CPU backlog, and the node's softirq receives it a second time
   * (the node stage). netkit with BPF host routing: netkit_xmit (drivers/net/netkit.c) runs the host-owned
   * program in the pod's own transmit, and its redirect (skb_do_redirect) transmits on the uplink at once:
   * no backlog, no second receive; the program and the next xmit cost the sender's CPU. netkit with
   * legacy routing passes the skb up the peer (__netif_rx): as veth. Default veth.
   */
  podDevice?: 'veth' | 'netkit';
  /** The node's egress qdisc toward the receiver; undefined: noqueue (a veth's default), straight on. */
  tbf?: { rateBps: number; burst: number; latencyNs: number };
  /**
   * An htb instead of the tbf (the bandwidth manager's htb control: a class per flow, classified as
   * htb_classify does by skb->priority): the root at rootBps, flow i in classes[i]. Rates in bit/s.
   */
  htb?: { rootBps: number; burst: number; classes: { rateBps: number; ceilBps?: number }[] };
  /**
   * The Bandwidth Manager on the node's uplink egress: edt_uplink (bpf/bwm_edt.c) stamps each skb of a
   * limited pod with its departure time or drops it past the horizon (edtDeparture, the C's arithmetic;
   * one clock for all the pod's sockets), and fq (net/sched/sch_fq.c) holds it until then. bytesPerSec
   * undefined: an unlimited pod, counted and not stamped. Replaces tbf/htb.
   */
  edt?: { bytesPerSec?: bigint; horizonNs: bigint; tLast: bigint; counters: { stamped: number; dropHorizon: number; unlimited: number } };
  /** Wire rate after the qdisc (a NIC), bit/s; undefined: a software device. */
  lineBps?: number;
  /** One-way propagation delay, ns. */
  delayNs: number;
  cpu: CpuProfile;
  /** The sending sockets' congestion control (the pod namespace's net.ipv4.tcp_congestion_control); default reno. */
  cc?: CcName;
  /**
   * The receiving NIC's gro_max_size when the path crosses a wire (lineBps): the GSO skb leaves as MTU
   * segments and GRO rebuilds packets of up to this size (gro.ts); the receiver's CPU pays per GRO packet.
   */
  groMax?: number;
  /**
   * The egress NIC's gso_max_size: a pod's skb larger than it is segmented in software on the node
   * (net/core/dev.c netif_skb_features drops NETIF_F_GSO_MASK past gso_max_size, validate_xmit_skb segments),
   * so the node's CPU pays for each piece. Undefined: no such limit on the path.
   */
  egressGsoMax?: number;
}

export interface FlowRunSpec {
  path: PathSpec;
  /** Parallel connections from distinct pods. */
  flows: number;
  seconds: number;
  /** Sample the senders' sk_wmem_alloc and the qdisc backlog every this many ns (0: no samples). */
  sampleEveryNs: number;
  rng: Rng;
}

/** What a simulated bulk flow showed. */
export interface FlowRunResult {
  bitsPerSecond: number;
  /** Goodput of each flow, bit/s. */
  flowBps: number[];
  retransmits: number;
  /** ms since the first sample; wmem summed over the senders; backlog of the qdisc. */
  samples: { t: number; wmem: number; backlog: number }[];
  /** skbs the sending pod devices' egress saw, and those over 65535 bytes (the bigtcp counter). */
  skbs: number;
  bigSkbs: number;
  /** Largest skb->len seen at the pod device. */
  maxLen: number;
  tbfDrops: number;
  backlogDrops: number;
  /** fq's throttled count (0 without fq). */
  fqThrottled: number;
  /** Packets GRO built at the receiving NIC (0 on a software path). */
  groPackets: number;
  events: number;
  virtualNs: number;
}

/** A FIFO served by one CPU: what a per-CPU backlog drained by a softirq, or a sending thread, is. */
class Stage {
  private q = new Fifo<Skb>();
  private busy = false;
  private cur?: Skb;
  /** Bound once: one closure per stage, not one per skb (the garbage collector was a third of the time). */
  private readonly finish = () => {
    this.onDone(this.cur!);
    this.next();
  };
  constructor(
    private readonly sim: Engine,
    private readonly cost: StageCost,
    private readonly rng: Rng,
    /** Runs as service starts (where ip_rcv_core would orphan). */
    private readonly onStart: (skb: Skb) => void,
    private readonly onDone: (skb: Skb) => void,
    readonly limit = Number.POSITIVE_INFINITY,
    /** Service time of one skb, ns, when it is not costNs(cost, len) (the receiver after GRO). */
    private readonly costOf?: (skb: Skb) => number,
  ) {}
  push(skb: Skb): boolean {
    if (this.q.size >= this.limit) return false;
    this.q.push(skb);
    if (!this.busy) this.next();
    return true;
  }
  private next(): void {
    const skb = this.q.shift();
    if (!skb) {
      this.busy = false;
      return;
    }
    this.busy = true;
    this.onStart(skb);
    // +-2% jitter: service times on a real CPU are never identical.
    const ns = (this.costOf ? this.costOf(skb) : costNs(this.cost, skb.len)) * (0.98 + 0.04 * this.rng.float());
    this.cur = skb;
    this.sim.after(ns, this.finish);
  }
}

/** Items that arrive in the order they were sent, each at its own (nondecreasing) time: a wire, an ACK path. */
class DelayLine {
  private times = new Fifo<number>();
  private items = new Fifo<Skb>();
  private readonly fire = () => {
    this.times.shift();
    const skb = this.items.shift()!;
    const t = this.times.peek();
    if (t !== undefined) this.sim.at(t, this.fire);
    this.arrive(skb);
  };
  constructor(
    private readonly sim: Engine,
    private readonly arrive: (skb: Skb) => void,
  ) {}
  push(t: number, skb: Skb): void {
    this.times.push(t);
    this.items.push(skb);
    if (this.items.size === 1) this.sim.at(t, this.fire);
  }
}

/**
 * Bulk TCP flows pod -> node -> receiver. Each sender has its own CPU (its thread); the
 * node's softirq and the receiver's are one stage each. An skb is owned by its socket from
 * transmit until ip_rcv_core orphans it: on the node with legacy host routing, at the
 * receiver with BPF host routing (bpf_redirect_neigh skips the node's IP stack, and veth
 * keeps skb->sk across namespaces: net/core/skbuff.c skb_scrub_packet no longer orphans).
 */
export function runFlows(spec: FlowRunSpec): FlowRunResult {
  const { path } = spec;
  const sim = new Engine();
  const rng = spec.rng;
  const end = spec.seconds * 1e9;
  const mss = path.mtu - HEADER[path.family];
  const senders: TcpSender[] = [];
  const out: FlowRunResult = {
    bitsPerSecond: 0,
    flowBps: [],
    retransmits: 0,
    samples: [],
    skbs: 0,
    bigSkbs: 0,
    maxLen: 0,
    tbfDrops: 0,
    backlogDrops: 0,
    groPackets: 0,
    fqThrottled: 0,
    events: 0,
    virtualNs: end,
  };
  let delivered = 0;
  const perFlow = new Array<number>(spec.flows).fill(0);
  const qdisc: Qdisc | undefined = path.edt
    ? new Fq(3028, Number(path.edt.horizonNs))
    : path.htb
      ? new Htb(
          path.htb.rootBps / 8,
          path.htb.burst,
          path.htb.classes.map((c) => ({ rate: c.rateBps / 8, ceil: (c.ceilBps ?? c.rateBps) / 8, burst: path.htb!.burst })),
          (skb) => skb.flow,
        )
      : path.tbf
        ? new Tbf(path.tbf.rateBps / 8, path.tbf.burst, path.tbf.latencyNs)
        : undefined;

  const lose = (skb: Skb) => {
    free(skb);
    const s = senders[skb.flow];
    // Loss is noticed about one RTT later (SACK / three duplicate ACKs).
    sim.after(s.srtt ?? path.delayNs * 2 + 100_000, () => {
      s.lost(skb.payload, sim.now);
      trySend(skb.flow);
    });
  };

  /** Across a wire the receiver pays per GRO packet, not per sent skb (a software path hands the GSO skb over whole). */
  const groCost =
    path.lineBps && path.groMax
      ? (skb: Skb) => {
          let ns = 0;
          for (const len of groSizes(segmentsOf(skb.payload, mss), HEADER[path.family], path.groMax!)) {
            ns += costNs(path.cpu.receive, len);
            out.groPackets++;
          }
          return ns;
        }
      : undefined;
  const receiver = new Stage(
    sim,
    path.cpu.receive,
    rng,
    (skb) => orphan(skb),
    (skb) => {
      // Delivered: free (already orphaned) and ACK; the ACK travels back with the propagation delay.
      const t0 = skb.sentAt ?? 0;
      if (sim.now <= end) {
        delivered += skb.payload;
        perFlow[skb.flow] += skb.payload;
      }
      skb.sentAt = t0;
      acks.push(sim.now + path.delayNs, skb);
    },
    NETDEV_MAX_BACKLOG,
    groCost,
  );
  /** What the acked skb recorded at send, refilled per ACK (TcpSender.acked reads it and keeps nothing). */
  const prior = { delivered: 0, at: 0 };
  const acks = new DelayLine(sim, (skb) => {
    prior.delivered = skb.priorDelivered ?? 0;
    prior.at = skb.priorAt ?? 0;
    senders[skb.flow].acked(skb.payload, sim.now - (skb.sentAt ?? 0), sim.now, prior);
    trySend(skb.flow);
  });
  const wire = new DelayLine(sim, (skb) => {
    if (!receiver.push(skb)) {
      out.backlogDrops++;
      lose(skb);
    }
  });

  // The wire after the qdisc: serialization at line rate (if a NIC), then propagation.
  let wireFreeAt = 0;
  /** The one pending wake-up of the qdisc (a timer, like tbf's qdisc_watchdog), if any. */
  let wakeAt: number | undefined;
  const onWire = (skb: Skb) => {
    const start = Math.max(sim.now, wireFreeAt);
    const ser = path.lineBps ? (skb.pktLen * 8 * 1e9) / path.lineBps : 0;
    wireFreeAt = start + ser;
    wire.push(wireFreeAt + path.delayNs, skb);
    return wireFreeAt;
  };
  const drain = () => {
    if (!qdisc) return;
    for (;;) {
      if (wireFreeAt > sim.now) {
        schedule(wireFreeAt);
        return;
      }
      const skb = qdisc.dequeue(sim.now);
      if (!skb) {
        const t = qdisc.readyAt(sim.now);
        if (t !== undefined) schedule(t);
        return;
      }
      onWire(skb);
    }
  };
  /** Bound once; a wake-up that an earlier one replaced finds wakeAt moved and does nothing. */
  const wake = () => {
    if (sim.now !== wakeAt) return;
    wakeAt = undefined;
    drain();
  };
  const schedule = (t: number) => {
    const at = Math.ceil(t);
    if (wakeAt !== undefined && wakeAt <= at) return;
    wakeAt = at;
    sim.at(at, wake);
  };

  /** edt_uplink on the uplink egress: false when it dropped the skb (TC_ACT_SHOT past the horizon). */
  const stamp = (skb: Skb): boolean => {
    const e = path.edt!;
    if (!e.bytesPerSec) {
      e.counters.unlimited++;
      return true;
    }
    const now = BigInt(Math.floor(sim.now));
    const d = edtDeparture({ now, tLast: e.tLast, wireLen: skb.pktLen, bytesPerSec: e.bytesPerSec, horizonNs: e.horizonNs });
    if (d.action === 'drop') {
      e.counters.dropHorizon++;
      lose(skb);
      return false;
    }
    e.tLast = d.tLast;
    e.counters.stamped++;
    skb.tstamp = Number(d.tNext);
    return true;
  };
  const node = new Stage(
    sim,
    path.hostRouting === 'legacy' ? path.cpu.forwardLegacy : path.cpu.forward,
    rng,
    // ip_rcv_core on the node: only the host stack (legacy) receives the pod's skb.
    (skb) => {
      if (path.hostRouting === 'legacy') orphan(skb);
    },
    (skb) => egress(skb),
    NETDEV_MAX_BACKLOG,
    path.egressGsoMax
      ? (skb) => {
          const cost = path.hostRouting === 'legacy' ? path.cpu.forwardLegacy : path.cpu.forward;
          const pieces = Math.ceil(skb.len / path.egressGsoMax!);
          return pieces * cost.perSkbNs + cost.perByteNs * skb.len;
        }
      : undefined,
  );

  /** netkit + BPF host routing: the sender's own transmit redirects straight to the egress (no node stage). */
  const direct = path.podDevice === 'netkit' && path.hostRouting === 'bpf';
  const egress = (skb: Skb) => {
    if (!qdisc) return void onWire(skb);
    if (path.edt && !stamp(skb)) return;
    if (!qdisc.enqueue(skb, sim.now)) {
      out.tbfDrops++;
      lose(skb);
      return;
    }
    drain();
  };
  const sending: boolean[] = [];
  const trySend = (i: number) => {
    if (sending[i] || sim.now > end) return;
    const s = senders[i];
    const payload = s.autosize();
    if (payload === 0) return;
    const len = payload + HEADER[path.family];
    const truesize = truesizeOf(len);
    if (s.blockedBy(payload, truesize)) return;
    // tcp_pacing_check: a paced socket waits for its hrtimer (one pending wake-up per flow).
    const txAt = Math.ceil(s.nextTxAt);
    if (txAt > sim.now) {
      if (pacedWake[i] !== txAt) {
        pacedWake[i] = txAt;
        sim.at(txAt, pacer[i]);
      }
      return;
    }
    sending[i] = true;
    const priorDelivered = s.delivered;
    const priorAt = s.sndNxt === s.sndUna ? sim.now : s.deliveredAt;
    const seq = s.sent(payload, sim.now, len);
    const pktLen = pktLenOf(payload, mss, HEADER[path.family]);
    // Every field present from the start (owner, tstamp too): one object shape, not a new one per field set later.
    const skb: Skb = {
      len,
      pktLen,
      payload,
      truesize,
      family: path.family,
      seq,
      owner: undefined,
      flow: i,
      tstamp: undefined,
      sentAt: sim.now,
      priorDelivered,
      priorAt,
    };
    setOwner(skb, s);
    // The pod device's egress (where the bigtcp counter sits) sees it after the sender's CPU work.
    inCpu[i] = skb;
    const cpuNs = costNs(path.cpu.send, len) + (direct ? costNs(path.cpu.forward, len) : 0);
    sim.after(cpuNs * (0.98 + 0.04 * rng.float()), sent[i]);
  };
  const inCpu: (Skb | undefined)[] = [];
  const pacedWake: number[] = [];
  const pacer = Array.from({ length: spec.flows }, (_, i) => () => {
    if (pacedWake[i] === sim.now) trySend(i);
  });
  const sent = Array.from({ length: spec.flows }, (_, i) => () => {
    const skb = inCpu[i]!;
    sending[i] = false;
    out.skbs++;
    if (skb.len > 65535) out.bigSkbs++;
    if (skb.len > out.maxLen) out.maxLen = skb.len;
    if (direct) egress(skb);
    // veth_xmit -> __netif_rx: the node's per-CPU backlog (enqueue_to_backlog drops past netdev_max_backlog).
    else if (!node.push(skb)) {
      out.backlogDrops++;
      lose(skb);
    }
    trySend(i);
  });

  for (let i = 0; i < spec.flows; i++) {
    const s = new TcpSender(mss, path.gsoMax, undefined, path.cc ?? 'reno', () => rng.float());
    s.wake = () => trySend(i);
    senders.push(s);
    // Connections start a little apart, as iperf3 -P does.
    sim.at(Math.floor(rng.float() * 1e6), () => trySend(i));
  }
  if (spec.sampleEveryNs > 0) {
    const first = Math.floor(rng.float() * spec.sampleEveryNs);
    const sample = () => {
      const wmem = senders.reduce((a, s) => a + s.wmemAlloc, 0);
      out.samples.push({ t: Math.round((sim.now - first) / 1e6), wmem, backlog: qdisc?.backlog ?? 0 });
      if (sim.now + spec.sampleEveryNs <= end) sim.after(spec.sampleEveryNs, sample);
    };
    sim.at(first, sample);
  }
  sim.run(end);
  out.bitsPerSecond = (delivered * 8) / spec.seconds;
  out.flowBps = perFlow.map((b) => (b * 8) / spec.seconds);
  out.retransmits = senders.reduce((a, s) => a + s.retransmits, 0);
  out.tbfDrops = qdisc?.drops ?? 0;
  if (qdisc instanceof Fq) out.fqThrottled = qdisc.throttled;
  out.events = sim.events;
  return out;
}
