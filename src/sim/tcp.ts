import { type AckInfo, type CcName, type CongestionControl, makeCc } from './cc.js';
import type { Owned } from './skb.js';

/** MAX_TCP_HEADER on x86_64 (include/net/tcp.h: 128 + MAX_HEADER, cache aligned): headroom sk_setup_caps takes off gso_max_size. */
export const MAX_TCP_HEADER = 320;
/** IP + TCP header with timestamps: 20 + 32 (IPv4), 40 + 32 (IPv6). */
export const HEADER = { ipv4: 52, ipv6: 72 } as const;
/** net.ipv4.tcp_min_tso_segs default. */
export const MIN_TSO_SEGS = 2;
/** sk_pacing_shift default (include/net/sock.h): TSQ and autosizing aim at ~1 ms of data (rate >> 10). */
export const PACING_SHIFT = 10;
/** net.ipv4.tcp_limit_output_bytes default in a new namespace (net/ipv4/tcp_ipv4.c tcp_sk_init: 4 MB). */
export const LIMIT_OUTPUT_BYTES = 4 << 20;
/** Initial window (include/net/tcp.h TCP_INIT_CWND). */
export const INIT_CWND = 10;

/**
 * The sending side of one TCP connection, in bytes:
 * - cwnd: the congestion control module's (cc.ts: Reno, CUBIC, BBR), one loss response per window;
 *   Reno and CUBIC grow it only while cwnd-limited (tcp_is_cwnd_limited, RFC 7661);
 * - pacing rate: BBR's own, else cwnd / srtt * 200% in slow start, 120% after (tcp_input.c
 *   tcp_update_pacing_rate); BBR's socket is paced by TCP itself (nextTxAt: tcp_wstamp_ns);
 * - delivery rate samples (net/ipv4/tcp_rate.c): each skb carries the delivered count and time at send;
 * - skb size: tcp_tso_autosize (tcp_output.c): min(pacing_rate >> 10, sk_gso_max_size) in whole MSS,
 *   at least tcp_min_tso_segs, where sk_gso_max_size = the device's gso_max_size - 1 - MAX_TCP_HEADER
 *   (net/core/sock.c sk_setup_caps);
 * - TSQ: tcp_small_queue_check (tcp_output.c): no new skb while sk_wmem_alloc exceeds
 *   max(2 * truesize, pacing_rate >> 10), capped at tcp_limit_output_bytes when not paced by fq;
 *   tcp_wfree resumes the socket when an owned skb is freed or orphaned.
 */
export class TcpSender implements Owned {
  wmemAlloc = 0;
  cwnd: number;
  ssthresh = Number.POSITIVE_INFINITY;
  /** Smoothed RTT, ns (undefined until the first ACK). */
  srtt?: number;
  sndNxt = 0;
  sndUna = 0;
  retransmits = 0;
  /** Bytes lost and waiting to be sent again. */
  lostPending = 0;
  /** No loss response before this sequence is acked (one halving per window). */
  private recoverSeq = -1;
  /** Set by the path: try to send (called after an ACK or a released charge). */
  wake: () => void = () => {};
  readonly cc: CongestionControl;
  /** Bytes delivered so far and when the last were (tcp_sock delivered, delivered_mstamp). */
  delivered = 0;
  deliveredAt = 0;
  /** delivered when the current round ends (bbr next_rtt_delivered). */
  private nextRoundDelivered = 0;
  /** tcp_wstamp_ns: a paced socket sends its next skb no earlier than this, ns. */
  nextTxAt = 0;
  /** The AckInfo handed to the module on each ACK, refilled each time. */
  private readonly ack: AckInfo = { now: 0, bytes: 0, rttNs: 0, cwndLimited: false, rate: undefined, roundStart: false };

  constructor(
    readonly mss: number,
    /** The device's GSO size for this family (gso_max_size or gso_ipv4_max_size). */
    readonly gsoMax: number,
    /** sk_sndbuf: bytes TCP may hold unacknowledged (tcp_wmem max). */
    readonly sndbuf = 4 << 20,
    cc: CcName = 'reno',
    rand: () => number = () => 0,
  ) {
    this.cwnd = INIT_CWND * mss;
    this.cc = makeCc(cc, rand, () => this.autosize());
  }

  get inflight(): number {
    return this.sndNxt - this.sndUna - this.lostPending;
  }

  /** sk_pacing_rate, bytes/s (unlimited before the first RTT sample, as tcp_init_sock leaves it). */
  pacingRate(): number {
    const own = this.cc.pacingRate(this);
    if (own !== undefined) return own;
    if (!this.srtt) return Number.POSITIVE_INFINITY;
    const gain = this.cwnd < this.ssthresh ? 2 : 1.2;
    return (gain * this.cwnd * 1e9) / this.srtt;
  }

  /**
   * Payload bytes of the next skb: tcp_tso_autosize, cut to what the congestion window
   * leaves (tcp_write_xmit: tcp_cwnd_test quota, tcp_mss_split_point); 0 when the window is full.
   */
  autosize(): number {
    const cap = this.gsoMax - 1 - MAX_TCP_HEADER;
    const bytes = Math.min(this.pacingRate() / 2 ** PACING_SHIFT, cap);
    const segs = Math.min(Math.max(Math.floor(bytes / this.mss), MIN_TSO_SEGS), Math.floor(cap / this.mss));
    const quota = Math.floor((this.cwnd - this.inflight) / this.mss);
    return Math.max(0, Math.min(segs, quota)) * this.mss;
  }

  /** TSQ limit for an skb of this truesize (tcp_small_queue_check). */
  tsqLimit(truesize: number): number {
    return Math.min(Math.max(2 * truesize, this.pacingRate() / 2 ** PACING_SHIFT), LIMIT_OUTPUT_BYTES);
  }

  /** May an skb of `payload` bytes (truesize `truesize`) go now? Which limit holds it, if not. */
  blockedBy(payload: number, truesize: number): 'cwnd' | 'tsq' | 'sndbuf' | undefined {
    if (this.inflight + payload > this.cwnd) return 'cwnd';
    if (this.sndNxt - this.sndUna + payload > this.sndbuf) return 'sndbuf';
    // tcp_small_queue_check lets one skb through when the retransmit queue is (nearly) empty.
    if (this.wmemAlloc > this.tsqLimit(truesize) && this.inflight > payload) return 'tsq';
    return undefined;
  }

  /** Account a sent skb (new data, or lost data sent again); returns its sequence number. */
  sent(payload: number, now = 0, len = payload): number {
    // tcp_rate_skb_sent: with nothing in flight the delivery clock restarts now.
    if (this.sndNxt === this.sndUna) this.deliveredAt = now;
    // tcp_update_skb_after_send: a paced socket's next skb waits len / pacing_rate.
    if (this.cc.paces) {
      const rate = this.pacingRate();
      if (Number.isFinite(rate) && rate > 0) this.nextTxAt = Math.max(this.nextTxAt, now) + (len * 1e9) / rate;
    }
    if (this.lostPending > 0) {
      this.lostPending = Math.max(0, this.lostPending - payload);
      this.retransmits++;
      return this.sndUna;
    }
    const seq = this.sndNxt;
    this.sndNxt += payload;
    return seq;
  }

  /**
   * An ACK for `bytes` more, with an RTT sample; `prior` is what the acked skb recorded at send
   * (tcp_rate.c: delivered and delivered_mstamp), for the delivery rate sample.
   */
  acked(bytes: number, rttNs: number, now = 0, prior?: { delivered: number; at: number }): void {
    const cwndLimited = 2 * this.inflight >= this.cwnd;
    this.sndUna = Math.min(this.sndNxt, this.sndUna + bytes);
    this.srtt = this.srtt === undefined ? rttNs : this.srtt + (rttNs - this.srtt) / 8;
    this.delivered += bytes;
    this.deliveredAt = now;
    let rate: number | undefined;
    let roundStart = false;
    if (prior) {
      const interval = now - prior.at;
      if (interval > 0) rate = ((this.delivered - prior.delivered) * 1e9) / interval;
      if (prior.delivered >= this.nextRoundDelivered) {
        this.nextRoundDelivered = this.delivered;
        roundStart = true;
      }
    }
    // One AckInfo per socket, refilled: no module keeps it past onAck (an object per ACK was a share of the GC time).
    const a = this.ack;
    a.now = now;
    a.bytes = bytes;
    a.rttNs = rttNs;
    a.cwndLimited = cwndLimited;
    a.rate = rate;
    a.roundStart = roundStart;
    this.cc.onAck(this, a);
  }

  /** A loss detected (SACK/dupacks, one RTT after the drop): one response per window, and resend. */
  lost(bytes: number, now = 0): void {
    this.lostPending += bytes;
    if (this.sndUna <= this.recoverSeq) return;
    this.recoverSeq = this.sndNxt;
    this.cc.onLoss(this, now);
  }

  released(): void {
    this.wake();
  }
}
