import { Fifo } from './fifo.js';
import type { Qdisc } from './qdisc.js';
import type { Skb } from './skb.js';

/** One leaf class: `tc class add ... htb rate R ceil C burst B cburst CB`. */
export interface HtbClassSpec {
  /** Guaranteed rate, bytes/s. */
  rate: number;
  /** Most it may take by borrowing from the root, bytes/s (default: rate, no borrowing). */
  ceil?: number;
  /** Bucket sizes, bytes (tc's default burst is rate / HZ + MTU; the model takes what it is given). */
  burst: number;
  cburst?: number;
  /** DRR quantum, bytes (htb: rate / r2q, at least 1000 in tc; default 2 x MTU here). */
  quantum?: number;
}

type Mode = 'cant' | 'can' | 'borrow';

/** A token bucket that may go negative (htb charges after sending: htb_accnt_tokens clamps at -mbuffer only). */
class Bucket {
  stamp = 0;
  constructor(
    readonly rate: number,
    readonly size: number,
    public toks: number,
  ) {}
  at(now: number): number {
    return Math.min(this.size, this.toks + ((now - this.stamp) * this.rate) / 1e9);
  }
  refill(now: number): void {
    this.toks = this.at(now);
    this.stamp = now;
  }
  /** When the bucket is back at 0 or more (ns). */
  zeroAt(now: number): number {
    const t = this.at(now);
    return t >= 0 ? now : now + Math.ceil((-t * 1e9) / this.rate);
  }
}

interface Leaf {
  q: Fifo<Skb>;
  tokens: Bucket;
  ctokens: Bucket;
  quantum: number;
  deficit: number;
}

/**
 * htb (net/sched/sch_htb.c), two levels: a root class at the link rate and leaf classes with
 * rate and ceil. htb_class_mode: a class whose ctokens are negative cannot send; with tokens
 * >= 0 it sends at its own rate (HTB_CAN_SEND); otherwise it may borrow from the root when the
 * root can send (HTB_MAY_BORROW). Buckets are charged after the packet (htb_charge_class): the
 * class that lends and those above it pay tokens; the borrowing leaf pays only ctokens. Leaves
 * of one mode are served deficit round robin by quantum (htb_dequeue_tree). Hysteresis is off
 * (the htb_hysteresis module parameter's default). One priority; no inner classes besides the root.
 */
export class Htb implements Qdisc {
  readonly kind = 'htb';
  backlog = 0;
  drops = 0;
  private root: { tokens: Bucket; ctokens: Bucket };
  private leaves: Leaf[];
  private rr = 0;
  constructor(
    /** The root class: rate = ceil, bytes/s, and its burst. */
    rootRate: number,
    rootBurst: number,
    classes: readonly HtbClassSpec[],
    /** skb -> leaf index (the htb_classify BPF program: skb->priority). */
    private readonly classify: (skb: Skb) => number,
    /** Packets per leaf (pfifo's default limit: the device's tx_queue_len, 1000). */
    readonly limit = 1000,
  ) {
    this.root = { tokens: new Bucket(rootRate, rootBurst, rootBurst), ctokens: new Bucket(rootRate, rootBurst, rootBurst) };
    this.leaves = classes.map((c) => {
      const cburst = c.cburst ?? c.burst;
      return {
        q: new Fifo<Skb>(),
        tokens: new Bucket(c.rate, c.burst, c.burst),
        ctokens: new Bucket(c.ceil ?? c.rate, cburst, cburst),
        quantum: c.quantum ?? 3028,
        deficit: 0,
      };
    });
  }

  enqueue(skb: Skb): boolean {
    const leaf = this.leaves[this.classify(skb)];
    if (!leaf || leaf.q.size >= this.limit) {
      this.drops++;
      return false;
    }
    leaf.q.push(skb);
    this.backlog += skb.pktLen;
    return true;
  }

  private mode(l: Leaf, now: number): Mode {
    if (l.ctokens.at(now) < 0) return 'cant';
    return l.tokens.at(now) >= 0 ? 'can' : 'borrow';
  }

  private rootCan(now: number): boolean {
    return this.root.tokens.at(now) >= 0 && this.root.ctokens.at(now) >= 0;
  }

  dequeue(now: number): Skb | undefined {
    const n = this.leaves.length;
    for (const want of ['can', 'borrow'] as const) {
      if (want === 'borrow' && !this.rootCan(now)) return undefined;
      // htb_dequeue_tree: the leaf under the round-robin pointer sends; once its deficit goes negative it
      // gets another quantum and the pointer moves on.
      for (let k = 0; k < n; k++) {
        const i = (this.rr + k) % n;
        const l = this.leaves[i];
        if (!l.q.size || this.mode(l, now) !== want) continue;
        const skb = l.q.shift()!;
        l.deficit -= skb.pktLen;
        if (l.deficit < 0) {
          l.deficit += l.quantum;
          this.rr = (i + 1) % n;
        } else this.rr = i;
        this.backlog -= skb.pktLen;
        this.charge(l, skb.pktLen, want === 'can', now);
        return skb;
      }
    }
    return undefined;
  }

  /** htb_charge_class: ctokens everywhere; tokens at the lender and above (the leaf only when it sent on its own rate). */
  private charge(l: Leaf, len: number, own: boolean, now: number): void {
    for (const b of [l.tokens, l.ctokens, this.root.tokens, this.root.ctokens]) b.refill(now);
    if (own) l.tokens.toks -= len;
    l.ctokens.toks -= len;
    this.root.tokens.toks -= len;
    this.root.ctokens.toks -= len;
  }

  readyAt(now: number): number | undefined {
    let t: number | undefined;
    const rootAt = Math.max(this.root.tokens.zeroAt(now), this.root.ctokens.zeroAt(now));
    for (const l of this.leaves) {
      if (!l.q.size) continue;
      const own = Math.max(l.tokens.zeroAt(now), l.ctokens.zeroAt(now));
      const borrow = Math.max(l.ctokens.zeroAt(now), rootAt);
      const at = Math.min(own, borrow);
      if (t === undefined || at < t) t = at;
    }
    return t;
  }

  /** Packets queued in a leaf. */
  queued(i: number): number {
    return this.leaves[i]?.q.size ?? 0;
  }
}
