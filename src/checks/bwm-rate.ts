import { measurer } from '../measure/measurer.js';
import { all, needTool } from '../kernel/facts.js';
import type { Timing } from '../backends/backend.js';
import { bandwidthManager, bwmMode, bwmPins, limitedPods } from '../datapath/bwm/bwm.js';
import type { EdtCounters } from '../datapath/bwm/maps.js';
import { showBps } from '../datapath/bwm/quantity.js';
import { fqThrottled, fqTimerLatencyUs } from '../datapath/bwm/shaper.js';
import type { LabContext } from '../lifecycle/context.js';
import type { Lab, LabNode, Pod } from '../topology/model.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/** Accepted deviation of the measured rate from the limit (the issue's ±5%). */
export const RATE_TOLERANCE = 0.05;
/**
 * A limit is judged only below this share of what the path carries unlimited: above it the
 * sender, not the limiter, may be what holds the flow back (under TCG, the emulated CPU).
 */
export const JUDGE_SHARE = 0.8;
/** The unlimited pod must move at least this multiple of the highest judged limit to count as unaffected. */
export const FREE_MIN_MULTIPLE = 1.2;

/**
 * Bytes on the wire per TCP segment beside its payload, IPv4 with timestamps: Ethernet 14,
 * IPv4 20, TCP 20 + 12 (options). EDT counts wire bytes (skb->wire_len), iperf3 counts
 * payload, so a limit R carries R x mss / (mss + 66) of goodput.
 */
export const WIRE_OVERHEAD = 66;
/** MSS of a 1500-byte MTU with TCP timestamps. */
export const MSS = 1448;
/** Goodput a wire-rate limit leaves to the payload. */
export const goodputOf = (wireBps: number) => (wireBps * MSS) / (MSS + WIRE_OVERHEAD);

/** One limited flow: the limit, what iperf3's receiver counted, and the EDT counters' growth during it. */
export interface RateRun {
  limitBps: number;
  goodputBps: number;
  stamped: number;
  dropHorizon: number;
  /** fq's timer lateness after the flow, µs (how late it released throttled packets). */
  fqLatencyUs?: number;
  /** Times fq held the flow back until its departure time during the run (its fq is new each run). */
  fqThrottled?: number;
}

/** The unlimited pod's flow, also the measure of what the path carries. */
export interface FreeRun {
  goodputBps: number;
  /** Packets edt_uplink stamped while only the unlimited pod sent (a limit applied to it: should be 0). */
  stamped: number;
}

type Status = 'pass' | 'fail' | 'error';

/**
 * The verdict. Limits above JUDGE_SHARE of the unlimited capacity are reported, not
 * judged (on emulated CPUs, say so), and so, on emulated CPUs only, is a flow short of
 * its limit (the sender starved); fewer than two judged limits is `error`. A judged limit
 * off by more than RATE_TOLERANCE is `fail`, as is an unlimited pod stamped or held near it.
 */
export function judgeRate(runs: RateRun[], free: FreeRun, timing: Timing): { status: Status; reason: string } {
  const capacity = free.goodputBps;
  const low = runs.filter((r) => goodputOf(r.limitBps) <= JUDGE_SHARE * capacity);
  const tooHigh = runs.filter((r) => !low.includes(r));
  const emulated = timing === 'emulated';
  const accel = emulated ? 'the emulated CPU (TCG)' : 'this path';
  // On emulated CPUs a flow short of its limit says the sender starved, not the limiter: not judged (over the limit always is).
  const starved = emulated ? low.filter((r) => r.goodputBps < (1 - RATE_TOLERANCE) * goodputOf(r.limitBps)) : [];
  const judged = low.filter((r) => !starved.includes(r));
  const notJudged = [
    ...(tooHigh.length
      ? [
          `not judged: ${tooHigh.map((r) => showBps(r.limitBps)).join(', ')}, too high for ${accel}, which carried ${showBps(capacity)} unlimited`,
        ]
      : []),
    ...(starved.length
      ? [
          `not judged: ${starved.map((r) => `${show(r)}${lateness(r)}`).join(', ')}: the emulated guest (its sender, or fq's timer) did not fill the limit`,
        ]
      : []),
  ]
    .map((x) => `; ${x}`)
    .join('');
  if (judged.length < 2)
    return {
      status: 'error',
      reason: couldNotEstablish(
        `two limits the sender fills, below ${JUDGE_SHARE} x what ${accel} carries (${showBps(capacity)}); ${judged.length} were${notJudged}`,
      ),
    };
  const problems: string[] = [];
  for (const r of judged) {
    if (!(r.stamped > 0)) problems.push(`${showBps(r.limitBps)}: edt_uplink stamped no packet of the limited pod`);
    if (Math.abs(r.goodputBps / goodputOf(r.limitBps) - 1) > RATE_TOLERANCE) problems.push(`${show(r)}, outside ±${RATE_TOLERANCE * 100}%`);
  }
  const top = Math.max(...judged.map((r) => r.limitBps));
  if (free.stamped > 0) problems.push(`the unlimited pod's packets were stamped (${free.stamped})`);
  if (free.goodputBps < FREE_MIN_MULTIPLE * top)
    problems.push(`the unlimited pod moved only ${showBps(free.goodputBps)}, under ${FREE_MIN_MULTIPLE} x the ${showBps(top)} limit`);
  const summary = `${judged.map(show).join('; ')}; unlimited pod ${showBps(free.goodputBps)}, not stamped${notJudged}`;
  return problems.length ? { status: 'fail', reason: problems.join('; ') } : { status: 'pass', reason: summary };
}

const show = (r: RateRun) =>
  `${showBps(r.limitBps)}: ${showBps(r.goodputBps)} goodput (${ratioPct(r)}% of ${showBps(goodputOf(r.limitBps))} expected)`;
const lateness = (r: RateRun) => (r.fqLatencyUs === undefined ? '' : `, fq timer ${Math.round(r.fqLatencyUs / 100) / 10} ms late`);
const short = (r: RateRun) => r.goodputBps < (1 - RATE_TOLERANCE) * goodputOf(r.limitBps);
const ratioPct = (r: RateRun) => Math.round((r.goodputBps / goodputOf(r.limitBps)) * 1000) / 10;

/** A node running EDT with a limited pod behind an uplink, and the pods the checks use. */
export function bwmSetup(lab: Lab): { node: LabNode; limited: Pod; free?: Pod } | undefined {
  for (const node of lab.nodes) {
    const limited = limitedPods(node)[0]?.pod;
    if (limited?.ipv4 && node.uplink?.peer4) return { node, limited, free: node.pods.find((p) => !p.egressBps && p.ipv4) };
  }
  return undefined;
}

export const bwmApplies = (lab: Lab) =>
  bwmSetup(lab)
    ? { ok: true as const }
    : { ok: false as const, reason: 'needs a pod with egressBandwidth (IPv4) on a node with an uplink' };

/**
 * TCP streams of each measured flow. A pod's limit is its aggregate (one EDT clock for all its
 * sockets), so streams share it; each holds its own TCP small queues budget (about two skbs) in
 * fq. With one stream, a late fq timer (an emulated guest on a busy machine: ~12 ms late, one
 * 2 Mbit/s packet being 6 ms) finds the queue empty and the clock restarts at `now`, losing time.
 */
export const STREAMS = 4;

/** One bulk flow (STREAMS streams) from a pod to the node's peer, with the EDT counters read around it. */
export async function measuredFlow(ctx: LabContext, node: LabNode, pod: Pod, seconds: number) {
  const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
  const root = ctx.backend.root(node.name);
  const counters = bwmPins(ctx, node).counters;
  const before = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
  const flow = await measurer(ctx).bulkFlow({
    from: ctx.backend.exec(pod.netns),
    to: ctx.backend.exec(peer.netns),
    addr: node.uplink!.peer4!.addr,
    seconds,
    streams: STREAMS,
    journal: ctx.journal,
    signal: ctx.signal,
  });
  const after = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
  const delta = Object.fromEntries(Object.keys(after).map((k) => [k, after[k as keyof EdtCounters] - before[k as keyof EdtCounters]]));
  return { flow, delta: delta as EdtCounters };
}

export const bwmRate: Check = {
  id: 'bwm-rate',
  title: 'Bandwidth Manager: a pod held to its egressBandwidth by EDT, an unlimited pod unaffected',
  proves: `a bulk TCP flow from a pod limited to R by EDT + fq moves R (as goodput: R x ${MSS}/${MSS + WIRE_OVERHEAD}) within ±${RATE_TOLERANCE * 100}% for two rates, every packet stamped in BPF, while an unlimited pod on the same node is neither stamped nor held`,
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), bandwidthManager.requires(facts)),
  applies: bwmApplies,
  async run(ctx, spec) {
    const setup = bwmSetup(ctx.lab)!;
    const { node, limited, free } = setup;
    if (bwmMode(ctx, node) !== 'edt') return skip(`the bandwidth manager is off on ${node.name}`);
    if (!free) return skip(`${node.name} has no unlimited pod to compare with`);
    const seconds = spec.seconds ?? 4;
    const timing = ctx.backend.timing();
    const evidence: string[] = [];
    ctx.progress(`bwm-rate: ${seconds} s flow from the unlimited pod ${free.name}`);
    const open = await measuredFlow(ctx, node, free, seconds);
    evidence.push(`[unlimited ${free.name}] ${open.flow.evidence.at(-1)}; edt counters +${JSON.stringify(open.delta)}`);
    const freeRun: FreeRun = { goodputBps: open.flow.bitsPerSecond, stamped: open.delta.stamped };
    const limit = limited.egressBps!;
    const runs: RateRun[] = [];
    for (const bps of [limit, limit / 2]) {
      ctx.progress(`bwm-rate: ${seconds} s flow from ${limited.name} limited to ${showBps(bps)}`);
      let run: RateRun | undefined;
      // An emulated sender that fell short of the limit gets one more flow (a busy machine starves TCG guests).
      for (let attempt = 1; attempt <= 2 && (!run || (timing === 'emulated' && short(run))); attempt++) {
        const m = await measurer(ctx).withShaper(ctx, node, 'edt', { [limited.name]: bps }, async () => ({
          ...(await measuredFlow(ctx, node, limited, seconds)),
          fq: await measurer(ctx).uplinkQdiscStats(ctx, node),
        }));
        evidence.push(
          `[${limited.name} at ${showBps(bps)}, attempt ${attempt}] ${m.flow.evidence.at(-1)}; edt counters +${JSON.stringify(m.delta)}`,
        );
        const fqLatencyUs = fqTimerLatencyUs(m.fq);
        const { stamped, dropHorizon } = m.delta;
        run = { limitBps: bps, goodputBps: m.flow.bitsPerSecond, stamped, dropHorizon, fqLatencyUs, fqThrottled: fqThrottled(m.fq) };
        evidence.push(`tc -s qdisc show dev ${node.uplink!.nodeDev} after it:\n${m.fq}`);
      }
      runs.push(run!);
    }
    const metrics = {
      pod: `${node.name}/${limited.name}`,
      unlimited: `${node.name}/${free.name}`,
      timing,
      seconds,
      free: freeRun,
      runs: runs.map((r) => ({ ...r, expectedGoodputBps: Math.round(goodputOf(r.limitBps)), ratio: ratioPct(r) / 100 })),
    };
    const threshold = `goodput within ±${RATE_TOLERANCE * 100}% of limit x ${MSS}/${MSS + WIRE_OVERHEAD}, for limits below ${JUDGE_SHARE} x the unlimited pod's goodput (at least two); unlimited pod not stamped and >= ${FREE_MIN_MULTIPLE} x the top limit`;
    return { ...judgeRate(runs, freeRun, timing), metrics, threshold, evidence };
  },
};
