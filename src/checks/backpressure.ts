import { all, needTool } from '../kernel/facts.js';
import { hostRouting } from '../datapath/host-routing/host-routing.js';
import { median, type FlowResult } from '../measure/flow.js';
import { measurer } from '../measure/measurer.js';
import { couldNotEstablish, pickPod, skip, type Check } from './check.js';

const fits = (n: { uplink?: { rate?: string } }) => !!n.uplink?.rate;

/** Series and medians of one run, in the shape the report (and later plots) read. */
export function summary(flow: FlowResult) {
  // Only samples where ss saw the socket and the qdisc held a queue say anything.
  const queued = flow.samples.filter((s) => (s.backlog ?? 0) > 0 && s.wmem !== undefined);
  return {
    ownedMedian: Math.round(median(queued.map((s) => s.wmem! / s.backlog!)) * 100) / 100,
    mbps: Math.round(flow.bitsPerSecond / 1e5) / 10,
    retransmits: flow.retransmits,
    samples: flow.samples.length,
    samplesSocketSeen: flow.samples.filter((s) => s.wmem !== undefined).length,
    samplesWithBacklog: queued.length,
    /** Median gap between records on the node's clock: the sampler's real cadence. */
    cadenceMs: median(flow.samples.slice(1).map((s, i) => s.t - flow.samples[i].t)),
    wmemMedian: median(queued.map((s) => s.wmem!)),
    backlogMedian: median(queued.map((s) => s.backlog!)),
    series: {
      t: flow.samples.map((s) => s.t),
      wmem: flow.samples.map((s) => s.wmem ?? null),
      backlog: flow.samples.map((s) => s.backlog ?? 0),
    },
  };
}

/** Fewer samples with a queue than this and the bottleneck was never really in play. */
const MIN_QUEUED_SAMPLES = 3;
/**
 * Ownership: the sender's sk_wmem_alloc over the bottleneck's backlog, per sample.
 * With BPF host routing the socket owns what the qdisc holds (about 1 or more: it
 * also owns what is in flight elsewhere); orphaned in ip_rcv it owns none of it. A
 * slow receiver (TCG, a loaded machine) leaves skbs in the veth ring before ip_rcv,
 * still owned: tens of KB against hundreds in the qdisc, so the legacy verdict is a
 * ratio, not wmem == 0. ss and tc are sampled a few ms apart, hence the margins.
 */
const OWNED_BPF_MIN = 0.5;
const OWNED_LEGACY_MAX = 0.25;

/** The shaped rate as a share of what the path carries unshaped: the sender must outrun the bottleneck to queue at it. */
const SHAPE_SHARE = 0.5;
/** Length of the unshaped flow that measures what the path carries. */
const PROBE_SECONDS = 2;
/**
 * Records a sampled flow aims for. A record costs two process starts on the node: a few
 * ms here, up to a second in a TCG guest on a busy machine. The flow is lengthened (up to
 * MAX_STRETCH x the asked seconds) so that the node's measured cadence yields this many.
 */
const TARGET_SAMPLES = 10;
const MAX_STRETCH = 4;

/** Seconds of a sampled flow: the asked length, stretched to reach TARGET_SAMPLES at the measured cadence. */
export function sampledSeconds(asked: number, cadenceMs: number): number {
  return Math.min(asked * MAX_STRETCH, Math.max(asked, Math.ceil((TARGET_SAMPLES * cadenceMs) / 1000)));
}

/** How one mode's run was set up: what the path carried open, the rate shaped at, the attempts it took. */
export interface Establishment {
  /** Mbit/s the path carried with the tbf lifted. */
  openMbps: number;
  /** Mbit/s of the tbf during the sampled flow(s). */
  shapedMbps: number;
  /** Sampled flows run (a second only when the first did not show the condition). */
  attempts: number;
  /** Length of the last sampled flow, s. */
  seconds: number;
  /** The node's sampling cadence during the unshaped probe, ms. */
  probeCadenceMs: number;
}

export const backpressure: Check = {
  id: 'backpressure',
  title: 'TCP backpressure with the host stack bypassed',
  proves:
    'with BPF host routing the pod socket still owns (sk_wmem_alloc) the bytes queued at the bottleneck, so TCP small queues throttle it; with legacy routing ip_rcv orphans them (wmem near 0)',
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), needTool(facts, 'ss'), needTool(facts, 'tc'), hostRouting.requires(facts)),
  applies: (lab, spec) =>
    pickPod(lab, spec, fits) ? { ok: true } : { ok: false, reason: 'needs a pod on a node whose uplink has a rate (the bottleneck)' },
  async run(ctx, spec) {
    const picked = pickPod(ctx.lab, spec, fits);
    if (!picked) return skip('no pod behind a rate-limited uplink');
    const { node, pod } = picked;
    const u = node.uplink!;
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const dst = pod.ipv4 && u.peer4 ? u.peer4.addr : u.peer6!.addr;
    const seconds = spec.seconds ?? 3;
    const m = measurer(ctx);
    const neck = m.bottleneck(ctx.lab, node, ctx.backend.exec(node.netns));
    if (!neck) return skip(`${node.name}'s uplink has no tbf to queue at`);
    const original = await m.currentHostRouting(ctx, node, ctx.signal);
    const runs: Record<string, RunSummary & Establishment> = {};
    const evidence: string[] = [];
    const flow = (s: number, sample: boolean) =>
      m.bulkFlow({
        from: ctx.backend.exec(pod.netns),
        to: ctx.backend.exec(peer.netns),
        addr: dst,
        seconds: s,
        sample: sample ? { root: ctx.backend.root(node.name), sender: pod.netns, qdiscNetns: node.netns, dev: u.nodeDev } : undefined,
        journal: ctx.journal,
        signal: ctx.signal,
      });
    try {
      for (const mode of ['bpf', 'legacy'] as const) {
        await m.setHostRouting(ctx, node, mode, ctx.signal);
        // The condition judged is a queue at the bottleneck: shape below what this path carries open.
        ctx.progress(`backpressure: ${PROBE_SECONDS} s flow ${pod.name} -> ${peer.name} with ${mode} host routing and the tbf lifted`);
        // Sampled too: its records give the node's real sampling cadence under this load.
        const open = await neck.with({ lift: true }, () => flow(PROBE_SECONDS, true), ctx.signal);
        const cadenceMs = summary(open).cadenceMs;
        let rate = Math.min(neck.bps, SHAPE_SHARE * open.bitsPerSecond);
        let secs = sampledSeconds(seconds, cadenceMs);
        let run: RunSummary | undefined;
        let attempts = 0;
        while (attempts < 2 && !(run && established(run))) {
          // The first shaped flow queued too rarely: shape lower and run longer once more.
          if (attempts) [rate, secs] = [rate * SHAPE_SHARE, Math.min(seconds * MAX_STRETCH, secs * 2)];
          attempts++;
          ctx.progress(
            `backpressure: ${secs} s flow ${pod.name} -> ${peer.name} (${dst}) with ${mode} host routing, ${neck.describe({ rateBps: rate })}`,
          );
          const f = await neck.with({ rateBps: rate }, () => flow(secs, true), ctx.signal);
          run = summary(f);
          evidence.push(...f.evidence.map((e) => `[${mode}, attempt ${attempts}] ${e}`));
        }
        runs[mode] = {
          ...run!,
          openMbps: mbps(open.bitsPerSecond),
          shapedMbps: mbps(Math.min(rate, neck.bps)),
          attempts,
          seconds: secs,
          probeCadenceMs: cadenceMs,
        };
      }
    } finally {
      await m.setHostRouting(ctx, node, original);
    }
    const { bpf, legacy } = runs;
    const metrics = {
      pod: `${node.name}/${pod.name}`,
      dst,
      bottleneck: `tbf ${u.rate} on ${node.name}/${u.nodeDev}, shaped to min(${u.rate}, ${SHAPE_SHARE} x open) per mode`,
      bpf,
      legacy,
    };
    const threshold = `median over samples with a backlog (>= ${MIN_QUEUED_SAMPLES}) of wmem/backlog: bpf >= ${OWNED_BPF_MIN} (and wmem > 0), legacy <= ${OWNED_LEGACY_MAX} (orphaned)`;
    const retries = { count: bpf.attempts - 1 + (legacy.attempts - 1), why: 'a shaped flow queued too rarely: shaped lower, ran longer' };
    return { ...judgeBackpressure(bpf, legacy), metrics, threshold, evidence, ...(retries.count ? { retries } : {}) };
  },
};

const mbps = (bps: number) => Math.round(bps / 1e5) / 10;

/** The run showed what the verdict needs: the socket in ss and a queue at the bottleneck, often enough. */
export function established(r: RunSummary): boolean {
  return r.samplesSocketSeen >= MIN_QUEUED_SAMPLES && r.samplesWithBacklog >= MIN_QUEUED_SAMPLES;
}

export type RunSummary = ReturnType<typeof summary>;

/** The verdict from the two runs' summaries (kept apart so its failing cases are tested). */
export function judgeBackpressure(bpf: RunSummary, legacy: RunSummary): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const runs = { bpf, legacy };
  const missing: string[] = [];
  for (const [mode, r] of Object.entries(runs)) {
    if (r.samplesSocketSeen < MIN_QUEUED_SAMPLES)
      missing.push(
        `${mode}: ss showed the sender's socket in only ${r.samplesSocketSeen} of ${r.samples} samples (is sock_diag / tcp_diag available?)`,
      );
    else if (r.samplesWithBacklog < MIN_QUEUED_SAMPLES)
      missing.push(`${mode}: the bottleneck held a backlog in only ${r.samplesWithBacklog} of ${r.samples} samples`);
  }
  // Without a queue (or the socket) there is nothing to judge: that is not the kernel's answer.
  if (missing.length) return { status: 'error', reason: couldNotEstablish(missing.join('; ')) };
  const problems: string[] = [];
  if (!(bpf.wmemMedian > 0) || bpf.ownedMedian < OWNED_BPF_MIN)
    problems.push(
      `bpf: the socket owned a median ${bpf.wmemMedian} B while the qdisc queued ${bpf.backlogMedian} B (owned/queued ${bpf.ownedMedian} < ${OWNED_BPF_MIN}): backpressure lost`,
    );
  if (legacy.ownedMedian > OWNED_LEGACY_MAX)
    problems.push(
      `legacy: the socket still owned a median ${legacy.wmemMedian} B of ${legacy.backlogMedian} B queued (owned/queued ${legacy.ownedMedian} > ${OWNED_LEGACY_MAX}); expected orphaning in ip_rcv_core`,
    );
  const reason = problems.length
    ? problems.join('; ')
    : `bpf: socket owned a median ${bpf.wmemMedian} B while the qdisc held ${bpf.backlogMedian} B (owned/queued ${bpf.ownedMedian}); legacy: ${legacy.wmemMedian} B owned while the qdisc held ${legacy.backlogMedian} B (${legacy.ownedMedian})`;
  return { status: problems.length ? 'fail' : 'pass', reason };
}
