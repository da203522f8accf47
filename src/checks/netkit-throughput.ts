import { needTool } from '../kernel/facts.js';
import { podDevice } from '../datapath/devices/devices.js';
import { isNetkit, currentHostRouting } from '../datapath/host-routing/host-routing.js';
import { chooseHook } from '../datapath/hook.js';
import { Bottleneck } from '../measure/bottleneck.js';
import { bulkFlow } from '../measure/flow.js';
import { addVethPod } from '../measure/scratch-pod.js';
import { nthAddr, parsePrefix } from '../topology/ip.js';
import type { Timing } from '../backends/backend.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/** The seed's claim: netkit reaches host-namespace throughput. Judged where timing means something. */
const NETKIT_VS_HOST_MIN = 0.9;

/** Throughput of the three paths, Mbit/s. */
export type PathMbps = Record<'netkit' | 'veth' | 'host', number>;

/**
 * The verdict. Under TCG the CPUs are emulated, so a throughput ratio says nothing about
 * the kernel: `skip`, with the ratios in the metrics, never `pass`. A node that moved
 * nothing leaves no baseline (`error`); a pod path that moved nothing while the node did is `fail`.
 */
export function judgeNetkitThroughput(mbps: PathMbps, timing: Timing): { status: 'pass' | 'fail' | 'skip' | 'error'; reason: string } {
  const ratio = (x: number) => Math.round((x / mbps.host) * 100) / 100;
  if (!(mbps.host > 0))
    return {
      status: 'error',
      reason: couldNotEstablish(`the node's own flow moved nothing (netkit ${mbps.netkit}, veth ${mbps.veth} Mbit/s): no baseline`),
    };
  const summary = `netkit ${mbps.netkit} Mbit/s (${ratio(mbps.netkit)}x the node), veth ${mbps.veth} (${ratio(mbps.veth)}x), node ${mbps.host}`;
  if (!(mbps.netkit > 0) || !(mbps.veth > 0))
    return { status: 'fail', reason: `a pod flow moved nothing while the node's did: ${summary}` };
  if (timing === 'emulated')
    return {
      status: 'skip',
      reason: `not judged on emulated CPUs (TCG): throughput ratios say nothing about the kernel there; measured ${summary}`,
    };
  return ratio(mbps.netkit) >= NETKIT_VS_HOST_MIN
    ? { status: 'pass', reason: summary }
    : { status: 'fail', reason: `${summary}: netkit below ${NETKIT_VS_HOST_MIN}x the node` };
}

export const netkitThroughput: Check = {
  id: 'netkit-throughput',
  title: 'netkit throughput: pod via netkit vs pod via veth vs the node itself',
  proves: `pod-to-remote TCP throughput through netkit, through veth, and from the node's own namespace, measured in one VM one after the other (the bottleneck lifted), as ratios to the node's; the claim checked is netkit >= ${NETKIT_VS_HOST_MIN}x the node (indicative only under TCG)`,
  requires: ({ facts }) => (podDevice.requires(facts).ok ? needTool(facts, 'iperf3') : podDevice.requires(facts)),
  applies: (lab) =>
    lab.nodes.some((n) => n.pods.length && n.uplink && n.podCidr4)
      ? { ok: true }
      : { ok: false, reason: 'needs a node with pods, an uplink to a peer, and IPv4' },
  async run(ctx, spec) {
    const node = ctx.lab.nodes.find((n) => n.pods.length && n.uplink && n.podCidr4 && isNetkit(ctx, n));
    if (!node) return skip('no node with netkit pods and an uplink on this kernel');
    const pod = node.pods.find((p) => !spec.pod || p.name === spec.pod)!;
    const u = node.uplink!;
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const seconds = spec.seconds ?? 3;
    // Host 250 of the pod prefix: pods take hosts 2, 3, ... (the resolver's plan).
    const addr = nthAddr(parsePrefix(node.podCidr4!)!, 250)!;
    const hook = chooseHook(ctx.facts).hook ?? 'tcx';
    const bpf = (await currentHostRouting(ctx, node)) === 'bpf';
    const timing = ctx.backend.timing();
    const mbps: PathMbps = { netkit: 0, veth: 0, host: 0 };
    const evidence: string[] = [];
    const measure = async () => {
      const scratch = await addVethPod(ctx, node, addr, hook, bpf);
      try {
        for (const [what, netns] of [
          ['host', node.netns],
          ['netkit', pod.netns],
          ['veth', scratch.netns],
        ] as const) {
          ctx.progress(`netkit-throughput: ${seconds} s ${what} -> ${peer.name}`);
          const flow = await bulkFlow({
            from: ctx.backend.exec(netns),
            to: ctx.backend.exec(peer.netns),
            addr: u.peer4!.addr,
            seconds,
            journal: ctx.journal,
            signal: ctx.signal,
          });
          mbps[what] = Math.round(flow.bitsPerSecond / 1e5) / 10;
          evidence.push(`[${what}] ${flow.evidence.at(-1)}`);
        }
      } finally {
        await scratch.remove();
      }
    };
    // The bottleneck would cap all three at its rate: lifted for the measurement, put back in a finally.
    const neck = Bottleneck.ofUplink(ctx.lab, node, ctx.backend.exec(node.netns));
    await (neck ? neck.with({ lift: true }, measure, ctx.signal) : measure());
    const ratio = (x: number) => (mbps.host > 0 ? Math.round((x / mbps.host) * 100) / 100 : null);
    const metrics = {
      mbps,
      ratioToHost: { netkit: ratio(mbps.netkit), veth: ratio(mbps.veth) },
      hostRouting: bpf ? 'bpf' : 'legacy',
      timing,
      judged: timing === 'native',
    };
    const threshold = `netkit >= ${NETKIT_VS_HOST_MIN}x the node's throughput (judged only without TCG)`;
    return { ...judgeNetkitThroughput(mbps, timing), metrics, threshold, evidence };
  },
};
