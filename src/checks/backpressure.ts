import { all, needTool } from '../kernel/facts.js';
import { hostRouting, currentHostRouting, setHostRouting } from '../datapath/host-routing/host-routing.js';
import { bulkFlow, median, type FlowResult } from '../measure/flow.js';
import { pickPod, skip, type Check } from './check.js';

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
    wmemMedian: median(queued.map((s) => s.wmem!)),
    backlogMedian: median(queued.map((s) => s.backlog!)),
    series: { t: flow.samples.map((s) => s.t), wmem: flow.samples.map((s) => s.wmem ?? null), backlog: flow.samples.map((s) => s.backlog ?? 0) },
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

export const backpressure: Check = {
  id: 'backpressure',
  title: 'TCP backpressure with the host stack bypassed',
  proves:
    'with BPF host routing the pod socket still owns (sk_wmem_alloc) the bytes queued at the bottleneck, so TCP small queues throttle it; with legacy routing ip_rcv orphans them (wmem near 0)',
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), needTool(facts, 'ss'), needTool(facts, 'tc'), hostRouting.requires(facts)),
  applies: (lab, spec) => (pickPod(lab, spec, fits) ? { ok: true } : { ok: false, reason: 'needs a pod on a node whose uplink has a rate (the bottleneck)' }),
  async run(ctx, spec) {
    const picked = pickPod(ctx.lab, spec, fits);
    if (!picked) return skip('no pod behind a rate-limited uplink');
    const { node, pod } = picked;
    const u = node.uplink!;
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const dst = pod.ipv4 && u.peer4 ? u.peer4.addr : u.peer6!.addr;
    const seconds = spec.seconds ?? 3;
    const original = await currentHostRouting(ctx, node, ctx.signal);
    const runs: Record<string, ReturnType<typeof summary>> = {};
    const evidence: string[] = [];
    try {
      for (const mode of ['bpf', 'legacy'] as const) {
        ctx.progress(`backpressure: ${seconds} s flow ${pod.name} -> ${peer.name} (${dst}) with ${mode} host routing`);
        await setHostRouting(ctx, node, mode, ctx.signal);
        const flow = await bulkFlow({
          from: ctx.backend.exec(pod.netns),
          to: ctx.backend.exec(peer.netns),
          addr: dst,
          seconds,
          sample: { root: ctx.backend.root(node.name), sender: pod.netns, qdiscNetns: node.netns, dev: u.nodeDev },
          journal: ctx.journal,
          signal: ctx.signal,
        });
        runs[mode] = summary(flow);
        evidence.push(...flow.evidence.map((e) => `[${mode}] ${e}`));
      }
    } finally {
      await setHostRouting(ctx, node, original);
    }
    const { bpf, legacy } = runs;
    const metrics = { pod: `${node.name}/${pod.name}`, dst, bottleneck: `tbf ${u.rate} on ${node.name}/${u.nodeDev}`, bpf, legacy };
    const threshold = `median over samples with a backlog (>= ${MIN_QUEUED_SAMPLES}) of wmem/backlog: bpf >= ${OWNED_BPF_MIN} (and wmem > 0), legacy <= ${OWNED_LEGACY_MAX} (orphaned)`;
    return { ...judgeBackpressure(bpf, legacy), metrics, threshold, evidence };
  },
};

export type RunSummary = ReturnType<typeof summary>;

/** The verdict from the two runs' summaries (kept apart so its failing cases are tested). */
export function judgeBackpressure(bpf: RunSummary, legacy: RunSummary): { status: 'pass' | 'fail'; reason: string } {
  const runs = { bpf, legacy };
  const problems: string[] = [];
  for (const [mode, r] of Object.entries(runs)) {
    if (r.samplesSocketSeen < MIN_QUEUED_SAMPLES) problems.push(`${mode}: ss showed the sender's socket in only ${r.samplesSocketSeen} of ${r.samples} samples (is sock_diag / tcp_diag available?)`);
    else if (r.samplesWithBacklog < MIN_QUEUED_SAMPLES) problems.push(`${mode}: the bottleneck held a backlog in only ${r.samplesWithBacklog} of ${r.samples} samples`);
  }
  if (!problems.length) {
    if (!(bpf.wmemMedian > 0) || bpf.ownedMedian < OWNED_BPF_MIN)
      problems.push(`bpf: the socket owned a median ${bpf.wmemMedian} B while the qdisc queued ${bpf.backlogMedian} B (owned/queued ${bpf.ownedMedian} < ${OWNED_BPF_MIN}): backpressure lost`);
    if (legacy.ownedMedian > OWNED_LEGACY_MAX)
      problems.push(`legacy: the socket still owned a median ${legacy.wmemMedian} B of ${legacy.backlogMedian} B queued (owned/queued ${legacy.ownedMedian} > ${OWNED_LEGACY_MAX}); expected orphaning in ip_rcv_core`);
  }
  const reason = problems.length
    ? problems.join('; ')
    : `bpf: socket owned a median ${bpf.wmemMedian} B while the qdisc held ${bpf.backlogMedian} B (owned/queued ${bpf.ownedMedian}); legacy: ${legacy.wmemMedian} B owned while the qdisc held ${legacy.backlogMedian} B (${legacy.ownedMedian})`;
  return { status: problems.length ? 'fail' : 'pass', reason };
}
