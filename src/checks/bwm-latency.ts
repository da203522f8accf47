import { all, needTool } from '../kernel/facts.js';
import type { Timing } from '../backends/backend.js';
import { bandwidthManager, bwmMode } from '../datapath/bwm/bwm.js';
import { showBps } from '../datapath/bwm/quantity.js';
import { uplinkQdiscStats, withShaper, type Shaper } from '../datapath/bwm/shaper.js';
import { readEdtCounters } from '../datapath/bwm/maps.js';
import { bwmPins } from '../datapath/bwm/bwm.js';
import { bulkFlow } from '../measure/flow.js';
import { requestResponse, type RrResult } from '../measure/rr.js';
import { bwmApplies, bwmSetup, goodputOf } from './bwm-rate.js';
import { couldNotEstablish, skip, type Check } from './check.js';
import type { Cdf } from '../measure/cdf.js';

/** The seed's headline: p99 latency 4.2x better with EDT + fq than with the classic shaper. */
export const SEED_P99_RATIO = 4.2;
/** Round trips needed before a p99 means anything (sockperf's own percentiles; under TCG a shaped round trip takes ~50 ms). */
export const MIN_OBSERVATIONS = 100;
/** The bulk flow must run at (near) its limit, or no queue forms at the shaper and nothing is compared. */
export const AT_LIMIT_SHARE = 0.8;

/** Latency of the pod's round trips while its own bulk flow ran at its limit under one shaper. */
export interface LatencyRun {
  shaper: Shaper;
  observations: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  /** The bulk flow's goodput beside the round trips, bit/s. */
  bulkBps: number;
  /** Every round trip as a CDF (sockperf --full-log), plotted in report.html. */
  cdf?: Cdf;
}

export const toLatencyRun = (shaper: Shaper, rr: RrResult, bulkBps: number): LatencyRun => ({
  shaper,
  observations: rr.observations,
  p50Us: rr.percentilesUs['50'] ?? Number.NaN,
  p99Us: rr.percentilesUs['99'] ?? Number.NaN,
  p999Us: rr.percentilesUs['99.9'] ?? Number.NaN,
  bulkBps,
  ...(rr.cdf ? { cdf: rr.cdf } : {}),
});

const ms = (us: number) => `${Math.round(us / 10) / 100} ms`;
export const showLatency = (r: LatencyRun) => `${r.shaper} p50 ${ms(r.p50Us)} p99 ${ms(r.p99Us)} p99.9 ${ms(r.p999Us)}`;

/**
 * The verdict: EDT's p99 below HTB's. `error` when a run has too few round trips or its
 * bulk flow stayed well under the limit (no queue at the shaper: nothing to compare). On an
 * emulated CPU (TCG) it is not judged: a tail of milliseconds there is the emulator's
 * scheduling of the guest's vCPU as much as the qdisc's, so the figures are reported only.
 */
export function judgeLatency(
  edt: LatencyRun,
  htb: LatencyRun,
  limitBps: number,
  timing: Timing,
): { status: 'pass' | 'fail' | 'error' | 'skip'; reason: string; ratio: number } {
  const ratio = Math.round((htb.p99Us / edt.p99Us) * 100) / 100;
  const missing: string[] = [];
  for (const r of [edt, htb]) {
    if (!(r.observations >= MIN_OBSERVATIONS) || !Number.isFinite(r.p99Us))
      missing.push(`${r.shaper}: ${r.observations} round trips (< ${MIN_OBSERVATIONS})`);
    if (!(r.bulkBps >= AT_LIMIT_SHARE * goodputOf(limitBps)))
      missing.push(`${r.shaper}: the bulk flow moved ${showBps(r.bulkBps)}, under ${AT_LIMIT_SHARE} x its ${showBps(limitBps)} limit`);
  }
  if (missing.length) return { status: 'error', reason: couldNotEstablish(missing.join('; ')), ratio };
  const summary = `${showLatency(edt)}; ${showLatency(htb)}: HTB/EDT p99 ${ratio}x (seed: ${SEED_P99_RATIO}x)`;
  if (timing === 'emulated')
    return {
      status: 'skip',
      reason: `not judged on emulated CPUs (TCG): tail latency there is the emulator's as much as the qdisc's; measured ${summary}`,
      ratio,
    };
  return edt.p99Us < htb.p99Us
    ? { status: 'pass', reason: summary, ratio }
    : { status: 'fail', reason: `EDT p99 not below HTB's: ${summary}`, ratio };
}

export const bwmLatency: Check = {
  id: 'bwm-latency',
  title: 'Bandwidth Manager: round-trip latency of a pod running bulk at its limit, EDT + fq vs HTB (and tbf)',
  proves: `while a pod's own bulk TCP flow runs at its egressBandwidth, its request/response p99 (sockperf ping-pong, TCP) is lower with EDT + fq than with an HTB class per pod at the same rate on the same device; the ratio is reported beside the seed's ${SEED_P99_RATIO}x`,
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), bandwidthManager.requires(facts)),
  applies: bwmApplies,
  async run(ctx, spec) {
    const { node, limited } = bwmSetup(ctx.lab)!;
    if (bwmMode(ctx, node) !== 'edt') return skip(`the bandwidth manager is off on ${node.name}`);
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const addr = node.uplink!.peer4!.addr;
    const seconds = spec.seconds ?? 8;
    const limit = limited.egressBps!;
    const timing = ctx.backend.timing();
    const evidence: string[] = [];
    const runs: Partial<Record<Shaper, LatencyRun>> = {};
    const from = ctx.backend.exec(limited.netns);
    const to = ctx.backend.exec(peer.netns);
    // The floor: the same round trips with nothing else sent (what the path and, under TCG, the emulation cost).
    ctx.progress(`bwm-latency: 3 s of round trips from ${limited.name} alone (the floor)`);
    const idle = await requestResponse({ from, to, addr, seconds: 3, journal: ctx.journal, signal: ctx.signal, fullLog: true });
    evidence.push(...idle.evidence.map((l) => `[idle] ${l}`));
    for (const shaper of ['edt', 'htb', 'tbf'] as const) {
      ctx.progress(`bwm-latency: ${seconds} s of round trips from ${limited.name} beside its bulk flow, ${shaper} at ${showBps(limit)}`);
      await withShaper(ctx, node, shaper, {}, async () => {
        // The bulk flow outlasts the round trips: sockperf starts within a second and measures `seconds`.
        const bulk = bulkFlow({ from, to, addr, seconds: seconds + 3, journal: ctx.journal, signal: ctx.signal });
        const rr = await requestResponse({ from, to, addr, seconds, journal: ctx.journal, signal: ctx.signal, fullLog: true }).catch(
          async (e) => {
            await bulk.catch(() => undefined);
            throw e;
          },
        );
        const flow = await bulk;
        runs[shaper] = toLatencyRun(shaper, rr, flow.bitsPerSecond);
        const counters = await readEdtCounters(ctx.backend.root(node.name), bwmPins(ctx, node).counters, ctx.signal);
        evidence.push(
          ...rr.evidence.map((l) => `[${shaper}] ${l}`),
          `[${shaper}] ${flow.evidence.at(-1)}`,
          `[${shaper}] tc -s qdisc show dev ${node.uplink!.nodeDev}:\n${await uplinkQdiscStats(ctx, node)}`,
          `[${shaper}] edt counters since the lab came up: ${JSON.stringify(counters)}`,
        );
      });
    }
    const { edt, htb, tbf } = runs as Record<Shaper, LatencyRun>;
    const verdict = judgeLatency(edt, htb, limit, timing);
    const metrics = {
      pod: `${node.name}/${limited.name}`,
      limitBps: limit,
      timing,
      seconds,
      tool: 'sockperf ping-pong --tcp, 14-byte messages, full round trips (its percentiles)',
      runs: { edt, htb, tbf },
      idle: toLatencyRun('edt', idle, 0),
      p99RatioHtbToEdt: verdict.ratio,
      p99RatioTbfToEdt: Math.round((tbf.p99Us / edt.p99Us) * 100) / 100,
      seedP99Ratio: SEED_P99_RATIO,
    };
    const threshold = `EDT p99 < HTB p99, each with >= ${MIN_OBSERVATIONS} round trips and its bulk flow >= ${AT_LIMIT_SHARE} x the limit's goodput`;
    const reason = `${verdict.reason}; ${showLatency(tbf)} (tbf: reported, not judged)`;
    return { status: verdict.status, reason, metrics, threshold, evidence };
  },
};
