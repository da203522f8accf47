import { Fifo } from './fifo.js';
import type { Skb } from './skb.js';

/** A queueing discipline as the model sees it: enqueue may drop, dequeue may not be ready yet. */
export interface Qdisc {
  readonly kind: string;
  /** Bytes queued (tc -s qdisc: backlog). */
  backlog: number;
  drops: number;
  /** Accept or drop (the caller frees a dropped skb). */
  enqueue(skb: Skb, now: number): boolean;
  /** The head skb if it may leave at `now`, else undefined. */
  dequeue(now: number): Skb | undefined;
  /** When the head may leave (ns), or undefined when empty. */
  readyAt(now: number): number | undefined;
}

/** Token arithmetic is in floating point: a thousandth of a byte short still counts as enough. */
const EPS = 1e-3;

/** pfifo: a packet-count limit (net/sched/sch_fifo.c pfifo_enqueue: qlen < limit, else drop). */
export class Pfifo implements Qdisc {
  readonly kind = 'pfifo';
  backlog = 0;
  drops = 0;
  private q = new Fifo<Skb>();
  constructor(readonly limit = 1000) {}
  enqueue(skb: Skb): boolean {
    if (this.q.size >= this.limit) {
      this.drops++;
      return false;
    }
    this.q.push(skb);
    this.backlog += skb.pktLen;
    return true;
  }
  dequeue(): Skb | undefined {
    const skb = this.q.shift();
    if (skb) this.backlog -= skb.pktLen;
    return skb;
  }
  readyAt(now: number): number | undefined {
    return this.q.size ? now : undefined;
  }
  /** qdisc_pkt_len of the head skb, if any. */
  peekLen(): number | undefined {
    return this.q.peek()?.pktLen;
  }
}

/**
 * tbf (net/sched/sch_tbf.c): tokens accrue at `rate` up to `burst` bytes; the head leaves
 * when the tokens cover its length (tbf_dequeue). tc's `latency L` sets the byte limit to
 * rate * L + burst (tc/q_tbf.c); a packet over the limit is dropped (qdisc_drop in tbf_enqueue).
 * So a tbf at R bytes/s drains B queued bytes (from empty tokens) in B / R seconds.
 */
export class Tbf implements Qdisc {
  readonly kind = 'tbf';
  backlog = 0;
  drops = 0;
  /** Bytes of credit, at time `stamp`. */
  private tokens: number;
  private stamp = 0;
  private q = new Pfifo(Number.MAX_SAFE_INTEGER);
  readonly limit: number;
  constructor(
    /** Bytes per second. */
    readonly rateBytes: number,
    readonly burst: number,
    latencyNs: number,
    /** Start with a full bucket (tbf_reset: q->tokens = q->buffer). */
    fullBucket = true,
  ) {
    this.tokens = fullBucket ? burst : 0;
    this.limit = Math.floor((rateBytes * latencyNs) / 1e9) + burst;
  }
  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.stamp) * this.rateBytes) / 1e9);
    this.stamp = now;
  }
  enqueue(skb: Skb): boolean {
    if (this.backlog + skb.pktLen > this.limit) {
      this.drops++;
      return false;
    }
    this.q.enqueue(skb);
    this.backlog += skb.pktLen;
    return true;
  }
  private headLen(): number | undefined {
    return this.q.peekLen();
  }
  dequeue(now: number): Skb | undefined {
    const len = this.headLen();
    if (len === undefined) return undefined;
    this.refill(now);
    // A packet larger than the bucket would never pass; tbf segments GSO packets over max_size at enqueue (tbf_segment).
    if (this.tokens + EPS < Math.min(len, this.burst)) return undefined;
    this.tokens -= len;
    const skb = this.q.dequeue()!;
    this.backlog -= skb.pktLen;
    return skb;
  }
  readyAt(now: number): number | undefined {
    const len = this.headLen();
    if (len === undefined) return undefined;
    this.refill(now);
    const need = Math.min(len, this.burst) - this.tokens;
    return need <= EPS ? now : now + Math.ceil((need * 1e9) / this.rateBytes);
  }
}

/** fq's default horizon (net/sched/sch_fq.c fq_init: q->horizon = 10 s) and its drop (horizon_drop = 1). */
export const FQ_HORIZON_NS = 10e9;

/**
 * fq with EDT (net/sched/sch_fq.c): one queue per flow served round-robin, a quantum of
 * bytes per turn (2 x MTU by default: fq_init quantum), and an skb with a departure time
 * (skb->tstamp, set by a BPF program or TCP pacing: Earliest Departure Time) does not leave
 * before it. fq_packet_beyond_horizon: an skb stamped further than `horizon` ahead is
 * dropped at enqueue (the Bandwidth Manager's drop counter).
 */
export class Fq implements Qdisc {
  readonly kind = 'fq';
  backlog = 0;
  drops = 0;
  horizonDrops = 0;
  /** Times a flow's head was found with its departure time ahead (stat_throttled: fq_dequeue puts such a flow in its throttled tree). */
  throttled = 0;
  private flows = new Map<number, { q: Fifo<Skb>; credit: number; throttled?: boolean }>();
  /** Flows with something queued, in round-robin order. */
  private active: number[] = [];
  constructor(
    readonly quantum = 3028,
    readonly horizonNs = FQ_HORIZON_NS,
    /** Packets in all (fq's limit, 10000 by default). */
    readonly limit = 10000,
  ) {}
  private count = 0;
  enqueue(skb: Skb, now: number): boolean {
    if (this.count >= this.limit || (skb.tstamp !== undefined && skb.tstamp > now + this.horizonNs)) {
      if (this.count < this.limit) this.horizonDrops++;
      this.drops++;
      return false;
    }
    let f = this.flows.get(skb.flow);
    if (!f) {
      f = { q: new Fifo<Skb>(), credit: this.quantum };
      this.flows.set(skb.flow, f);
    }
    if (!f.q.size) this.active.push(skb.flow);
    f.q.push(skb);
    this.count++;
    this.backlog += skb.pktLen;
    return true;
  }
  dequeue(now: number): Skb | undefined {
    // Deficit round robin over flows whose head may leave now.
    for (let tries = 0; tries < 2 * this.active.length; tries++) {
      const id = this.active[0];
      const f = this.flows.get(id)!;
      const head = f.q.peek()!;
      if ((head.tstamp ?? 0) > now && !f.throttled) {
        f.throttled = true;
        this.throttled++;
      }
      if ((head.tstamp ?? 0) > now || f.credit <= 0) {
        if (f.credit <= 0) f.credit += this.quantum;
        this.active.push(this.active.shift()!);
        continue;
      }
      f.q.shift();
      f.throttled = false;
      f.credit -= head.pktLen;
      this.count--;
      this.backlog -= head.pktLen;
      if (!f.q.size) this.active.shift();
      return head;
    }
    return undefined;
  }
  readyAt(now: number): number | undefined {
    if (!this.active.length) return undefined;
    let t = Number.POSITIVE_INFINITY;
    for (const id of this.active) t = Math.min(t, this.flows.get(id)!.q.peek()!.tstamp ?? now);
    return Math.max(now, t);
  }
}
