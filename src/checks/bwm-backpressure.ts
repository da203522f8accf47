import { all, needTool } from '../kernel/facts.js';
import { bandwidthManager, bwmMode, bwmPins } from '../datapath/bwm/bwm.js';
import { showBps } from '../datapath/bwm/quantity.js';
import { median } from '../measure/flow.js';
import { measurer } from '../measure/measurer.js';
import { established, summary, type RunSummary } from './backpressure.js';
import { bwmApplies, bwmSetup, goodputOf, STREAMS } from './bwm-rate.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/** The flow must move at least this share of its limit's goodput: then EDT is its bottleneck and fq holds its queue. */
export const AT_LIMIT_SHARE = 0.8;
/**
 * Ownership margins, as in the backpressure check (src/checks/backpressure.ts): with the socket
 * owning what fq holds, sk_wmem_alloc (truesize) is at least fq's backlog (wire bytes) give or
 * take what moved between the ss and tc readings; orphaned in ip_rcv it owns a small share.
 */
export const OWNED_MIN = 0.5;
export const OWNED_ORPHANED_MAX = 0.25;

/** One sampled flow of the limited pod under EDT + fq, with one host routing mode. */
export interface BwmBackpressureRun extends RunSummary {
  /** bpf: the mode deployed (the skb keeps its socket); legacy: the control (ip_rcv orphans it). */
  mode: 'bpf' | 'legacy';
  /** The pod's EDT limit during the flow, bit/s. */
  limitBps: number;
  /** Goodput iperf3's receiver counted, bit/s. */
  goodputBps: number;
  /** Packets edt_uplink stamped during the flow. */
  stamped: number;
  /** Packets edt_uplink dropped beyond the 2 s horizon during the flow. */
  dropHorizon: number;
  /** Median over the queued samples of the bytes the application wrote that TCP had not sent (ss notsent). */
  notsentMedian: number;
  /** Sampled flows run (a second, at half the rate, only when the first showed no queue at the limit). */
  attempts: number;
}

/** What the mode's run lacks for a verdict: the socket seen, a queue in fq, EDT stamping, the flow at its limit (bpf). */
export function missingCondition(r: BwmBackpressureRun): string[] {
  const out: string[] = [];
  if (!established(r))
    out.push(
      `${r.mode}: ss saw the socket in ${r.samplesSocketSeen} and fq held a backlog in ${r.samplesWithBacklog} of ${r.samples} samples`,
    );
  if (!(r.stamped > 0)) out.push(`${r.mode}: edt_uplink stamped no packet of the pod`);
  if (r.mode === 'bpf' && !(r.goodputBps >= AT_LIMIT_SHARE * goodputOf(r.limitBps)))
    out.push(
      `${r.mode}: the flow moved ${showBps(r.goodputBps)}, under ${AT_LIMIT_SHARE} x its ${showBps(r.limitBps)} limit (no queue at the limit)`,
    );
  return out;
}

const shown = (r: BwmBackpressureRun) =>
  `${r.mode}: the socket owned a median ${r.wmemMedian} B while fq held ${r.backlogMedian} B (owned/queued ${r.ownedMedian}), ${r.notsentMedian} B not yet sent, ${showBps(r.goodputBps)} at ${showBps(r.limitBps)}`;

/**
 * The verdict. Pass: with BPF host routing the pod's socket owns (sk_wmem_alloc) at least
 * OWNED_MIN of what fq holds for it; the control (legacy routing, where ip_rcv orphans the
 * skb) owns at most OWNED_ORPHANED_MAX, so the measurement tells the two apart. `error`
 * when either run lacks its condition (see missingCondition).
 */
export function judgeBwmBackpressure(
  bpf: BwmBackpressureRun,
  legacy: BwmBackpressureRun,
): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const missing = [...missingCondition(bpf), ...missingCondition(legacy)];
  if (missing.length) return { status: 'error', reason: couldNotEstablish(missing.join('; ')) };
  const problems: string[] = [];
  if (!(bpf.wmemMedian > 0) || bpf.ownedMedian < OWNED_MIN)
    problems.push(`${shown(bpf)}: < ${OWNED_MIN}, the socket does not own what fq holds (backpressure lost)`);
  if (legacy.ownedMedian > OWNED_ORPHANED_MAX)
    problems.push(`${shown(legacy)}: > ${OWNED_ORPHANED_MAX}, not orphaned in ip_rcv as expected (the measurement tells nothing apart)`);
  return problems.length ? { status: 'fail', reason: problems.join('; ') } : { status: 'pass', reason: `${shown(bpf)}; ${shown(legacy)}` };
}

export const bwmBackpressure: Check = {
  id: 'bwm-backpressure',
  title: 'Bandwidth Manager: the pod socket owns what fq holds for it (TCP backpressure kept with EDT)',
  proves:
    'while a pod sends bulk TCP at its EDT limit with BPF host routing, its socket still owns (ss skmem t, sk_wmem_alloc) the bytes fq holds until their departure time, so TCP small queues hold the rest in the socket; the control, legacy routing (ip_rcv orphans the skb), owns almost none of a larger fq backlog',
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), needTool(facts, 'ss'), bandwidthManager.requires(facts)),
  applies: bwmApplies,
  async run(ctx, spec) {
    const { node, limited } = bwmSetup(ctx.lab)!;
    if (bwmMode(ctx, node) !== 'edt') return skip(`the bandwidth manager is off on ${node.name}`);
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const u = node.uplink!;
    const asked = spec.seconds ?? 4;
    const m = measurer(ctx);
    const root = ctx.backend.root(node.name);
    const counters = bwmPins(ctx, node).counters;
    const runs: Partial<Record<'bpf' | 'legacy', BwmBackpressureRun>> = {};
    const evidence: string[] = [];
    const original = await m.currentHostRouting(ctx, node, ctx.signal);
    try {
      for (const mode of ['bpf', 'legacy'] as const) {
        await m.setHostRouting(ctx, node, mode, ctx.signal);
        let run: BwmBackpressureRun | undefined;
        // No queue at the limit, or too few samples (a starved emulated guest: ss and tc there can take
        // seconds a record): once more at half the rate for twice as long.
        for (let attempt = 1; attempt <= 2 && (!run || missingCondition(run).length); attempt++) {
          const limit = limited.egressBps! / 2 ** (attempt - 1);
          const seconds = asked * attempt;
          ctx.progress(
            `bwm-backpressure: ${seconds} s sampled flow from ${limited.name} at its EDT limit ${showBps(limit)}, ${mode} host routing`,
          );
          run = await measurer(ctx).withShaper(ctx, node, 'edt', { [limited.name]: limit }, async () => {
            const before = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
            const f = await m.bulkFlow({
              from: ctx.backend.exec(limited.netns),
              to: ctx.backend.exec(peer.netns),
              addr: u.peer4!.addr,
              seconds,
              streams: STREAMS,
              sample: { root, sender: limited.netns, qdiscNetns: node.netns, dev: u.nodeDev },
              journal: ctx.journal,
              signal: ctx.signal,
            });
            const after = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
            evidence.push(...f.evidence.map((e) => `[${mode} at ${showBps(limit)}, attempt ${attempt}] ${e}`));
            const s = summary(f);
            const queued = f.samples.filter((x) => (x.backlog ?? 0) > 0 && x.wmem !== undefined);
            return {
              ...s,
              mode,
              limitBps: limit,
              goodputBps: f.bitsPerSecond,
              stamped: after.stamped - before.stamped,
              dropHorizon: after.dropHorizon - before.dropHorizon,
              notsentMedian: median(queued.map((x) => x.notsent ?? 0)),
              attempts: attempt,
            };
          });
        }
        runs[mode] = run!;
      }
    } finally {
      await m.setHostRouting(ctx, node, original);
    }
    const { bpf, legacy } = runs as Record<'bpf' | 'legacy', BwmBackpressureRun>;
    const threshold = `median over samples with an fq backlog (>= 3) of wmem/backlog: bpf >= ${OWNED_MIN} (wmem > 0), legacy <= ${OWNED_ORPHANED_MAX}; the bpf flow >= ${AT_LIMIT_SHARE} x its limit's goodput, EDT stamping in both`;
    const metrics = {
      pod: `${node.name}/${limited.name}`,
      qdisc: `fq on ${node.name}/${u.nodeDev}`,
      seconds: asked,
      streams: STREAMS,
      bpf,
      legacy,
    };
    return { ...judgeBwmBackpressure(bpf, legacy), metrics, threshold, evidence };
  },
};
