import { currentHostRouting, hostRouting, setHostRouting } from '../datapath/host-routing/host-routing.js';
import { applyIptables, flushIptables } from '../datapath/kpr/kpr.js';
import { servicePlan, type Frontend } from '../datapath/kpr/plan.js';
import { nodeLinks } from '../backends/wiring.js';
import { all, needTool } from '../kernel/facts.js';
import { Bottleneck } from '../measure/bottleneck.js';
import { bulkFlow } from '../measure/flow.js';
import type { Lab, LabNode } from '../topology/model.js';
import { established, judgeBackpressure, sampledSeconds, summary, type RunSummary } from './backpressure.js';
import { skip, type Check } from './check.js';
import { labelOf, svcClient } from './svc-common.js';

/** The shaped rate as a share of the open path, and the unshaped probe's length (as in backpressure). */
const SHAPE_SHARE = 0.5;
const PROBE_SECONDS = 2;

/**
 * A TCP frontend whose every backend sits on one node behind a rated link of the
 * client's node (so the flow crosses that link's tbf), with port == targetPort (one
 * iperf3 port for server, client and the sampler's filter).
 */
export function bottleneckedFrontend(
  lab: Lab,
  node: LabNode,
  fronts: readonly Frontend[],
  plan: ReturnType<typeof servicePlan>,
): { f: Frontend; dev: string; backend: { node: string; pod: string } } | undefined {
  for (const f of fronts) {
    if (f.protocol !== 'TCP' || f.port !== f.targetPort || !f.backends.length) continue;
    const bes = f.backends.map((b) => plan.backends.find((x) => x.id === b.id)!);
    const other = bes[0].node;
    if (other === node.name || bes.some((b) => b.node !== other)) continue;
    const link = nodeLinks(lab, node).find((l) => l.other === other && l.rate);
    if (link) return { f, dev: link.dev, backend: bes[0] };
  }
  return undefined;
}

/** The backpressure verdict, worded for services: the control is kube-proxy's rules on the legacy path. */
export function judgeSvcBackpressure(bpf: RunSummary, iptables: RunSummary): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const v = judgeBackpressure(bpf, iptables);
  return { ...v, reason: v.reason.replace(/\blegacy\b/g, 'iptables') };
}

export const svcBackpressure: Check = {
  id: 'svc-backpressure',
  title: 'Services: TCP backpressure to a ClusterIP, socket-LB vs kube-proxy',
  proves:
    "a bulk flow from a pod to a ClusterIP whose backend is behind a bottleneck: with socket-LB and BPF host routing the socket owns what the bottleneck queues; through kube-proxy's iptables rules (legacy host routing, DNAT on the upper stack) it owns next to none",
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), needTool(facts, 'ss'), needTool(facts, 'tc'), hostRouting.requires(facts)),
  applies: (lab) =>
    lab.services.length && lab.links.some((l) => l.rate)
      ? { ok: true }
      : { ok: false, reason: 'needs a service and a link with a rate (the bottleneck its backend sits behind)' },
  async run(ctx, spec) {
    const client = svcClient(ctx, spec);
    if (!client) return skip('no pod to connect from');
    if (client.mode !== 'bpf') return skip(`socket-LB is not on node ${client.node.name} (kubeProxy ${client.mode}): nothing to compare`);
    const plan = servicePlan(ctx.lab);
    const fronts = plan.frontends.filter((f) => (f.family === 'ipv4' ? client.pod.ipv4 : client.pod.ipv6));
    const pick = bottleneckedFrontend(ctx.lab, client.node, fronts, plan);
    if (!pick) return skip(`no TCP service (port = targetPort) whose backends all sit behind a rated link of ${client.node.name}`);
    const { f, dev } = pick;
    const node = client.node;
    const backendPod = ctx.lab.nodes.find((n) => n.name === pick.backend.node)!.pods.find((p) => p.name === pick.backend.pod)!;
    const neck = Bottleneck.ofDevice(ctx.lab, node, dev, ctx.backend.exec(node.netns));
    if (!neck) return skip(`${node.name}/${dev} has no tbf to queue at`);
    const seconds = spec.seconds ?? 3;
    const original = await currentHostRouting(ctx, node, ctx.signal);
    const runs: Record<string, RunSummary & { openMbps: number; shapedMbps: number; attempts: number }> = {};
    const evidence: string[] = [];
    const flow = (s: number, mode: 'bpf' | 'iptables') =>
      bulkFlow({
        from: client.exec,
        fromCgroup: mode === 'bpf' ? client.cgroup : undefined,
        to: ctx.backend.exec(backendPod.netns),
        addr: f.vip,
        port: f.port,
        seconds: s,
        sample: { root: ctx.backend.root(node.name), sender: client.pod.netns, qdiscNetns: node.netns, dev },
        journal: ctx.journal,
        signal: ctx.signal,
      });
    try {
      for (const mode of ['bpf', 'iptables'] as const) {
        if (mode === 'iptables') {
          // The control: kube-proxy's rules on the node, its IP stack forwarding, the client outside its cgroup.
          await setHostRouting(ctx, node, 'legacy', ctx.signal);
          await applyIptables(ctx, node);
        } else await setHostRouting(ctx, node, 'bpf', ctx.signal);
        ctx.progress(`svc-backpressure: ${PROBE_SECONDS} s flow to ${labelOf(f)} (${mode}) with the tbf on ${dev} lifted`);
        const open = await neck.with({ lift: true }, () => flow(PROBE_SECONDS, mode), ctx.signal);
        let rate = Math.min(neck.bps, SHAPE_SHARE * open.bitsPerSecond);
        let secs = sampledSeconds(seconds, summary(open).cadenceMs);
        let run: RunSummary | undefined;
        let attempts = 0;
        while (attempts < 2 && !(run && established(run))) {
          if (attempts) [rate, secs] = [rate * SHAPE_SHARE, secs * 2];
          attempts++;
          ctx.progress(`svc-backpressure: ${secs} s flow to ${labelOf(f)} (${mode}), ${neck.describe({ rateBps: rate })}`);
          const r = await neck.with({ rateBps: rate }, () => flow(secs, mode), ctx.signal);
          run = summary(r);
          evidence.push(...r.evidence.map((e) => `[${mode}, attempt ${attempts}] ${e}`));
        }
        runs[mode] = { ...run!, openMbps: mbps(open.bitsPerSecond), shapedMbps: mbps(Math.min(rate, neck.bps)), attempts };
      }
    } finally {
      await flushIptables(ctx, node);
      await setHostRouting(ctx, node, original);
    }
    const metrics = {
      client: `${node.name}/${client.pod.name}`,
      frontend: labelOf(f),
      backend: `${pick.backend.node}/${pick.backend.pod}`,
      bottleneck: `tbf on ${node.name}/${dev}, shaped to min(topology rate, ${SHAPE_SHARE} x open) per mode`,
      bpf: runs.bpf,
      iptables: runs.iptables,
    };
    const count = Object.values(runs).reduce((n, r) => n + r.attempts - 1, 0);
    const retries = { count, why: 'a shaped flow queued too rarely: shaped lower, ran longer' };
    return { ...judgeSvcBackpressure(runs.bpf, runs.iptables), metrics, evidence, ...(count ? { retries } : {}) };
  },
};

const mbps = (bps: number) => Math.round(bps / 1e5) / 10;
