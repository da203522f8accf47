/** Congestion control modules the model has (net.ipv4.tcp_congestion_control values). */
export type CcName = 'reno' | 'cubic' | 'bbr';
export const CC_NAMES: readonly CcName[] = ['reno', 'cubic', 'bbr'];

/** What a congestion control module reads and writes of its socket (bytes and ns). */
export interface CcSocket {
  readonly mss: number;
  /** snd_cwnd, bytes. */
  cwnd: number;
  /** snd_ssthresh, bytes. */
  ssthresh: number;
  /** Smoothed RTT, ns. */
  srtt?: number;
  /** Bytes sent and not acked or lost (tcp_packets_in_flight). */
  readonly inflight: number;
}

/** One ACK as tcp_ack hands it to the module (tcp_cong_control: cong_avoid, or cong_control with a rate sample). */
export interface AckInfo {
  now: number;
  /** Bytes this ACK newly acknowledged. */
  bytes: number;
  rttNs: number;
  /** tcp_is_cwnd_limited: the window, not the application or TSQ, held the sender back (RFC 7661). */
  cwndLimited: boolean;
  /** Delivery rate sample, bytes/s (net/ipv4/tcp_rate.c tcp_rate_gen); undefined when the interval was 0. */
  rate?: number;
  /** This ACK ends a round trip (tcp_rate.c: the acked skb was sent after the previous round's end). */
  roundStart: boolean;
}

/** A congestion control module (struct tcp_congestion_ops). */
export interface CongestionControl {
  readonly name: CcName;
  /**
   * The socket needs pacing without fq: BBR sets sk_pacing_status = SK_PACING_NEEDED (tcp_bbr.c bbr_init),
   * so TCP spaces skbs itself (tcp_output.c tcp_pacing_check, tcp_update_skb_after_send). Reno and CUBIC do not.
   */
  readonly paces: boolean;
  onAck(sk: CcSocket, a: AckInfo): void;
  /** A loss event, once per window (tcp_enter_recovery: ssthresh from the module, cwnd reduced by PRR to it). */
  onLoss(sk: CcSocket, now: number): void;
  /** sk_pacing_rate, bytes/s, when the module sets it (BBR); undefined: tcp_update_pacing_rate's. */
  pacingRate(sk: CcSocket): number | undefined;
  /** A one-line state for evidence. */
  describe(): string;
}

/** tcp_slow_start (net/ipv4/tcp_cong.c): cwnd += acked, up to ssthresh; what is left over returns. */
function slowStart(sk: CcSocket, bytes: number): number {
  const cwnd = Math.min(sk.cwnd + bytes, sk.ssthresh);
  const left = bytes - (cwnd - sk.cwnd);
  sk.cwnd = cwnd;
  return left;
}

/** Reno (net/ipv4/tcp_cong.c tcp_reno_cong_avoid, tcp_reno_ssthresh): +1 MSS per window, halve per loss. */
export class Reno implements CongestionControl {
  readonly name = 'reno';
  readonly paces = false;
  onAck(sk: CcSocket, a: AckInfo): void {
    if (!a.cwndLimited) return;
    let bytes = a.bytes;
    if (sk.cwnd < sk.ssthresh) bytes = slowStart(sk, bytes);
    if (bytes > 0) sk.cwnd += (sk.mss * bytes) / sk.cwnd;
  }
  onLoss(sk: CcSocket): void {
    sk.ssthresh = Math.max(sk.cwnd / 2, 2 * sk.mss);
    sk.cwnd = sk.ssthresh;
  }
  pacingRate(): undefined {
    return undefined;
  }
  describe(): string {
    return 'reno';
  }
}

/** CUBIC's C: bic_scale 41 / 1024 * 10 = 0.4 (tcp_cubic.c cube_factor), in packets / s^3. */
export const CUBIC_C = 0.4;
/** CUBIC's beta: 717 / 1024 (tcp_cubic.c beta, BICTCP_BETA_SCALE). */
export const CUBIC_BETA = 717 / 1024;

/** K = cbrt((Wmax - cwnd) / C): seconds until the curve is back at Wmax (tcp_cubic.c bictcp_update, bic_K). */
export const cubicK = (wMax: number, cwnd: number, c = CUBIC_C) => Math.cbrt(Math.max(0, wMax - cwnd) / c);
/** W(t) = C (t - K)^3 + Wmax, packets (tcp_cubic.c bictcp_update: bic_target = origin_point +/- delta). */
export const cubicW = (t: number, k: number, wMax: number, c = CUBIC_C) => c * (t - k) ** 3 + wMax;

/**
 * CUBIC (net/ipv4/tcp_cubic.c), in packets: after a loss the window is cut to beta = 0.7 of
 * Wmax (bictcp_recalc_ssthresh, with fast convergence lowering Wmax when the window did not
 * get back to it) and then follows W(t + min_rtt) = C (t + min_rtt - K)^3 + Wmax from the start
 * of the epoch (bictcp_update), never slower than the Reno estimate (the TCP-friendly region:
 * tcp_cubic.c's ack_cnt / tcp_cwnd) and at most +50% per RTT (cnt >= 2). HyStart is not
 * modelled: slow start runs until the first loss, as with hystart=0.
 */
export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  readonly paces = false;
  /** Start of the current epoch, ns (0: none yet, bictcp_reset). */
  private epochStart = 0;
  lastMaxCwnd = 0;
  k = 0;
  private origin = 0;
  /** Minimum RTT seen, ns (bictcp_acked: delay_min). */
  delayMin = Number.POSITIVE_INFINITY;
  private ackCnt = 0;
  private tcpCwnd = 0;
  /** Acked packets per +1 packet of window (tcp_cong_avoid_ai: cnt). */
  cnt = 0;
  private cwndCnt = 0;

  onAck(sk: CcSocket, a: AckInfo): void {
    if (a.rttNs > 0) this.delayMin = Math.min(this.delayMin, a.rttNs);
    if (!a.cwndLimited) return;
    let bytes = a.bytes;
    if (sk.cwnd < sk.ssthresh) {
      bytes = slowStart(sk, bytes);
      if (bytes <= 0) return;
    }
    const acked = bytes / sk.mss;
    const cwnd = sk.cwnd / sk.mss;
    this.update(cwnd, acked, a.now);
    // tcp_cong_avoid_ai: one more packet per `cnt` packets acked.
    this.cwndCnt += acked;
    if (this.cwndCnt >= this.cnt) {
      const inc = Math.floor(this.cwndCnt / this.cnt);
      this.cwndCnt -= inc * this.cnt;
      sk.cwnd += inc * sk.mss;
    }
  }

  /** bictcp_update: the window the curve asks for one min_rtt ahead, as acked packets per +1 packet. */
  update(cwnd: number, acked: number, now: number): void {
    this.ackCnt += acked;
    if (this.epochStart === 0) {
      this.epochStart = now || 1;
      this.ackCnt = acked;
      this.tcpCwnd = cwnd;
      if (this.lastMaxCwnd <= cwnd) {
        this.k = 0;
        this.origin = cwnd;
      } else {
        this.k = cubicK(this.lastMaxCwnd, cwnd);
        this.origin = this.lastMaxCwnd;
      }
    }
    const delay = Number.isFinite(this.delayMin) ? this.delayMin : 0;
    const t = (now - this.epochStart + delay) / 1e9;
    const target = cubicW(t, this.k, this.origin);
    this.cnt = target > cwnd ? cwnd / (target - cwnd) : 100 * cwnd;
    if (this.lastMaxCwnd === 0 && this.cnt > 20) this.cnt = 20;
    // TCP friendliness: tcp_cwnd grows by one per (cwnd * beta_scale >> 3) acked, beta_scale =
    // 8 * (1024 + 717) / 3 / (1024 - 717) = 15 (cubictcp_register): 3(1-b)/(1+b) = 0.53 packets per RTT.
    const delta = (cwnd * 15) / 8;
    while (this.ackCnt > delta) {
      this.ackCnt -= delta;
      this.tcpCwnd++;
    }
    if (this.tcpCwnd > cwnd) this.cnt = Math.min(this.cnt, cwnd / (this.tcpCwnd - cwnd));
    this.cnt = Math.max(this.cnt, 2);
  }

  onLoss(sk: CcSocket): void {
    const cwnd = sk.cwnd / sk.mss;
    this.epochStart = 0;
    // Fast convergence: give up some of Wmax when the window did not reach it again.
    this.lastMaxCwnd = cwnd < this.lastMaxCwnd ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    sk.ssthresh = Math.max(cwnd * CUBIC_BETA, 2) * sk.mss;
    sk.cwnd = sk.ssthresh;
  }
  pacingRate(): undefined {
    return undefined;
  }
  describe(): string {
    return `cubic Wmax ${this.lastMaxCwnd.toFixed(0)} pkts, K ${this.k.toFixed(3)} s`;
  }
}

/** bbr_high_gain = 2885 / 1000 (2 / ln 2: doubles the delivery rate each round in startup). */
export const BBR_HIGH_GAIN = 2.885;
/** bbr_drain_gain = 1000 / 2885. */
export const BBR_DRAIN_GAIN = 1 / 2.885;
/** bbr_pacing_gain[]: the PROBE_BW cycle, one phase per min_rtt. */
export const BBR_CYCLE = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
/** bbr_cwnd_gain in PROBE_BW. */
export const BBR_CWND_GAIN = 2;
/** bbr_bw_rtts: the max filter's window, rounds (CYCLE_LEN + 2). */
const BW_ROUNDS = 10;
/** bbr_min_rtt_win_sec: min_rtt expires after 10 s without a lower sample, then PROBE_RTT. */
const MIN_RTT_WIN_NS = 10e9;
/** bbr_probe_rtt_mode_ms. */
const PROBE_RTT_NS = 200e6;
/** bbr_cwnd_min_target, packets. */
const CWND_MIN_PKTS = 4;
/** bbr_full_bw_thresh (5/4) and bbr_full_bw_cnt (3 rounds). */
const FULL_BW_THRESH = 1.25;
const FULL_BW_CNT = 3;
/** bbr_pacing_margin_percent: pace 1% under the estimate. */
const PACING_MARGIN = 0.99;

export type BbrMode = 'startup' | 'drain' | 'probe_bw' | 'probe_rtt';

/**
 * BBR v1 (net/ipv4/tcp_bbr.c) at a simplified level: a windowed max of the delivery rate
 * (bbr_update_bw, 10 rounds) and a 10 s min of the RTT (bbr_update_min_rtt) give
 * BDP = bw x min_rtt; pacing rate = pacing_gain x bw less 1% (bbr_set_pacing_rate; in startup
 * it only rises); cwnd = cwnd_gain x BDP + 3 skbs of quantization budget (bbr_set_cwnd,
 * bbr_quantization_budget). Modes: STARTUP at 2.885 until bw grows under 25% for 3 rounds
 * (bbr_check_full_bw_reached), DRAIN at 1/2.885 until inflight <= BDP, PROBE_BW cycling
 * [1.25, 0.75, 1 x 6] one min_rtt each from a random phase (bbr_reset_probe_bw_mode,
 * bbr_is_next_cycle_phase), PROBE_RTT at 4 packets for 200 ms when min_rtt is 10 s old.
 * ACK aggregation (bbr_update_ack_aggregation): data acked beyond bw x the epoch's time, the max
 * over two windows of 5 rounds, capped at cwnd and at 100 ms of bw, adds to the cwnd target once
 * the pipe is full (bbr_ack_aggregation_cwnd): a receiver that ACKs whole GSO skbs at once makes it large.
 * Not modelled: long-term (policer) bw, and loss recovery beyond packet conservation
 * (bbr_set_cwnd_to_recover_or_restore).
 */
export class Bbr implements CongestionControl {
  readonly name = 'bbr';
  readonly paces = true;
  mode: BbrMode = 'startup';
  pacingGain = BBR_HIGH_GAIN;
  cwndGain = BBR_HIGH_GAIN;
  /** Max-filter samples: [round, rate bytes/s]. */
  private bwSamples: [number, number][] = [];
  round = 0;
  minRtt = Number.POSITIVE_INFINITY;
  private minRttStamp = 0;
  private fullBw = 0;
  private fullBwCnt = 0;
  fullBwReached = false;
  private cycleIdx = 0;
  private cycleStamp = 0;
  private probeRttDone = 0;
  private priorCwnd = 0;
  private recovering = false;
  private rate?: number;
  /** bbr_update_ack_aggregation state: two windows' max extra acked (bytes), the epoch start and its acked bytes. */
  private extraAcked = [0, 0];
  private extraIdx = 0;
  private extraRounds = 0;
  private epochAt = 0;
  private epochAcked = 0;
  constructor(
    /** Draws the first PROBE_BW phase (bbr_reset_probe_bw_mode: prandom_u32_max(bbr_cycle_rand = 7)). */
    private readonly rand: () => number,
    /** skbs of quantization budget: 3 x the TSO goal, bytes (bbr_quantization_budget). */
    private readonly tsoGoal: () => number,
  ) {}

  /** The max over bwSamples, kept as they change (bw() is read a dozen times per ACK). */
  private maxBw = 0;

  /** The max filter's bandwidth estimate, bytes/s (0 before a sample). */
  bw(): number {
    return this.maxBw;
  }

  /** bbr_bdp: bw x min_rtt x gain, bytes; undefined before both are known. */
  bdp(gain: number): number | undefined {
    const bw = this.bw();
    if (!bw || !Number.isFinite(this.minRtt)) return undefined;
    return (bw * this.minRtt * gain) / 1e9;
  }

  onAck(sk: CcSocket, a: AckInfo): void {
    if (a.roundStart) this.round++;
    // bbr_update_bw: the max filter keeps the largest sample of each of the last 10 rounds.
    if (a.rate !== undefined && a.rate > 0) {
      const last = this.bwSamples[this.bwSamples.length - 1];
      if (last && last[0] === this.round) last[1] = Math.max(last[1], a.rate);
      else this.bwSamples.push([this.round, a.rate]);
      while (this.bwSamples.length && this.bwSamples[0][0] <= this.round - BW_ROUNDS) this.bwSamples.shift();
      let m = 0;
      for (const x of this.bwSamples) if (x[1] > m) m = x[1];
      this.maxBw = m;
    }
    this.updateAckAggregation(sk, a);
    this.updateModes(sk, a);
    this.setCwnd(sk, a);
    const bw = this.bw();
    if (bw > 0) {
      const r = this.pacingGain * bw * PACING_MARGIN;
      if (this.fullBwReached || this.rate === undefined || r > this.rate) this.rate = r;
    }
  }

  /** bbr_update_ack_aggregation (thresholds: bbr_extra_acked_win_rtts 5, bbr_ack_epoch_acked_reset_thresh 1 << 20 packets). */
  private updateAckAggregation(sk: CcSocket, a: AckInfo): void {
    if (a.bytes <= 0) return;
    if (a.roundStart && ++this.extraRounds >= 5) {
      this.extraRounds = 0;
      this.extraIdx ^= 1;
      this.extraAcked[this.extraIdx] = 0;
    }
    let expected = (this.bw() * (a.now - this.epochAt)) / 1e9;
    if (this.epochAcked <= expected || this.epochAcked + a.bytes >= (1 << 20) * sk.mss) {
      this.epochAcked = 0;
      this.epochAt = a.now;
      expected = 0;
    }
    this.epochAcked += a.bytes;
    const extra = Math.min(this.epochAcked - expected, sk.cwnd);
    if (extra > this.extraAcked[this.extraIdx]) this.extraAcked[this.extraIdx] = extra;
  }

  /** bbr_ack_aggregation_cwnd: the larger window's extra acked, at most 100 ms (bbr_extra_acked_max_us) of bw. */
  aggregationCwnd(): number {
    if (!this.fullBwReached) return 0;
    const [a, b] = this.extraAcked;
    return Math.min(Math.max(a, b), this.maxBw * 0.1);
  }

  private updateModes(sk: CcSocket, a: AckInfo): void {
    const bw = this.bw();
    // bbr_check_full_bw_reached, once per round.
    if (!this.fullBwReached && a.roundStart && bw > 0) {
      if (bw >= this.fullBw * FULL_BW_THRESH) {
        this.fullBw = bw;
        this.fullBwCnt = 0;
      } else if (++this.fullBwCnt >= FULL_BW_CNT) this.fullBwReached = true;
    }
    if (this.mode === 'startup' && this.fullBwReached) this.enter(sk, 'drain', a.now);
    if (this.mode === 'drain' && sk.inflight <= (this.bdp(1) ?? 0)) this.enter(sk, 'probe_bw', a.now);
    if (this.mode === 'probe_bw') {
      // bbr_is_next_cycle_phase: a phase lasts min_rtt; probing up also until inflight reaches gain x BDP,
      // draining ends early once inflight is down to BDP.
      const gain = BBR_CYCLE[this.cycleIdx];
      const full = a.now - this.cycleStamp > this.minRtt;
      const next = gain === 1 ? full : gain > 1 ? full && sk.inflight >= (this.bdp(gain) ?? 0) : full || sk.inflight <= (this.bdp(1) ?? 0);
      if (next) this.nextPhase(a.now);
    }
    // bbr_update_min_rtt: a lower sample, or an expired one, resets the window.
    const expired = a.now - this.minRttStamp > MIN_RTT_WIN_NS;
    if (a.rttNs > 0 && (a.rttNs < this.minRtt || expired)) {
      this.minRtt = a.rttNs;
      this.minRttStamp = a.now;
    }
    if (expired && this.mode !== 'probe_rtt') {
      this.priorCwnd = sk.cwnd;
      this.mode = 'probe_rtt';
      this.pacingGain = this.cwndGain = 1;
      this.probeRttDone = a.now + PROBE_RTT_NS;
    }
    if (this.mode === 'probe_rtt' && a.now >= this.probeRttDone) {
      this.minRttStamp = a.now;
      sk.cwnd = Math.max(sk.cwnd, this.priorCwnd);
      this.enter(sk, this.fullBwReached ? 'probe_bw' : 'startup', a.now);
    }
  }

  private enter(_sk: CcSocket, mode: BbrMode, now: number): void {
    this.mode = mode;
    if (mode === 'startup') this.pacingGain = this.cwndGain = BBR_HIGH_GAIN;
    else if (mode === 'drain') {
      this.pacingGain = BBR_DRAIN_GAIN;
      this.cwndGain = BBR_HIGH_GAIN;
    } else if (mode === 'probe_bw') {
      this.cwndGain = BBR_CWND_GAIN;
      this.cycleIdx = BBR_CYCLE.length - 1 - Math.floor(this.rand() * 7);
      this.nextPhase(now);
    }
  }

  private nextPhase(now: number): void {
    this.cycleIdx = (this.cycleIdx + 1) % BBR_CYCLE.length;
    this.cycleStamp = now;
    this.pacingGain = BBR_CYCLE[this.cycleIdx];
  }

  /** bbr_set_cwnd: grow by what was acked toward cwnd_gain x BDP + budget; never under 4 packets. */
  private setCwnd(sk: CcSocket, a: AckInfo): void {
    const min = CWND_MIN_PKTS * sk.mss;
    if (this.mode === 'probe_rtt') {
      sk.cwnd = Math.min(sk.cwnd, min);
      return;
    }
    if (this.recovering) {
      // Packet conservation for the first round of recovery; then restore the window from before it.
      if (a.roundStart) {
        this.recovering = false;
        sk.cwnd = Math.max(sk.cwnd, this.priorCwnd);
      } else {
        sk.cwnd = Math.max(sk.cwnd, sk.inflight + a.bytes);
        return;
      }
    }
    const bdp = this.bdp(this.cwndGain);
    if (bdp === undefined) {
      sk.cwnd += a.bytes;
      return;
    }
    let target = bdp + 3 * this.tsoGoal() + this.aggregationCwnd();
    if (this.mode === 'probe_bw' && this.cycleIdx === 0) target += 2 * sk.mss;
    if (this.fullBwReached) sk.cwnd = Math.min(sk.cwnd + a.bytes, target);
    else if (sk.cwnd < target) sk.cwnd += a.bytes;
    sk.cwnd = Math.max(sk.cwnd, min);
  }

  onLoss(sk: CcSocket): void {
    if (!this.recovering) this.priorCwnd = sk.cwnd;
    this.recovering = true;
    sk.cwnd = Math.max(sk.inflight, CWND_MIN_PKTS * sk.mss);
  }

  pacingRate(sk: CcSocket): number {
    // bbr_init_pacing_rate_from_rtt: high_gain x init cwnd / srtt (1 ms before any sample).
    return this.rate ?? (BBR_HIGH_GAIN * sk.cwnd * 1e9 * PACING_MARGIN) / (sk.srtt ?? 1e6);
  }

  describe(): string {
    const bw = this.bw();
    return `bbr ${this.mode}, bw ${((bw * 8) / 1e6).toFixed(1)} Mbit/s, min_rtt ${(this.minRtt / 1e3).toFixed(0)} us`;
  }
}

/** The module a socket gets: net.ipv4.tcp_congestion_control of its namespace (tcp_assign_congestion_control). */
export function makeCc(name: CcName, rand: () => number, tsoGoal: () => number): CongestionControl {
  if (name === 'cubic') return new Cubic();
  if (name === 'bbr') return new Bbr(rand, tsoGoal);
  return new Reno();
}
