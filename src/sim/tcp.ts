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
 * - cwnd: slow start then additive increase, halved once per loss event (net/ipv4/tcp_cong.c
 *   tcp_reno_cong_avoid; CUBIC's curve is not modelled), grown only while cwnd-limited
 *   (tcp_is_cwnd_limited, RFC 7661), so a TSQ-throttled flow does not inflate it;
 * - pacing rate: mss * cwnd / srtt * 200% in slow start, 120% after (tcp_input.c tcp_update_pacing_rate);
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

  constructor(
    readonly mss: number,
    /** The device's GSO size for this family (gso_max_size or gso_ipv4_max_size). */
    readonly gsoMax: number,
    /** sk_sndbuf: bytes TCP may hold unacknowledged (tcp_wmem max). */
    readonly sndbuf = 4 << 20,
  ) {
    this.cwnd = INIT_CWND * mss;
  }

  get inflight(): number {
    return this.sndNxt - this.sndUna - this.lostPending;
  }

  /** sk_pacing_rate, bytes/s (unlimited before the first RTT sample, as tcp_init_sock leaves it). */
  pacingRate(): number {
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
  sent(payload: number): number {
    if (this.lostPending > 0) {
      this.lostPending = Math.max(0, this.lostPending - payload);
      this.retransmits++;
      return this.sndUna;
    }
    const seq = this.sndNxt;
    this.sndNxt += payload;
    return seq;
  }

  /** An ACK for `bytes` more, with an RTT sample. */
  acked(bytes: number, rttNs: number): void {
    const cwndLimited = 2 * this.inflight >= this.cwnd;
    this.sndUna = Math.min(this.sndNxt, this.sndUna + bytes);
    this.srtt = this.srtt === undefined ? rttNs : this.srtt + (rttNs - this.srtt) / 8;
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) this.cwnd += bytes;
    else this.cwnd += (this.mss * bytes) / this.cwnd;
  }

  /** A loss detected (SACK/dupacks, one RTT after the drop): halve once per window and resend. */
  lost(bytes: number): void {
    this.lostPending += bytes;
    if (this.sndUna <= this.recoverSeq) return;
    this.recoverSeq = this.sndNxt;
    this.ssthresh = Math.max(this.cwnd / 2, 2 * this.mss);
    this.cwnd = this.ssthresh;
  }

  released(): void {
    this.wake();
  }
}
