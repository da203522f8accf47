import { needTool } from '../kernel/facts.js';
import { podDevice } from '../datapath/devices/devices.js';
import { endpointKey, endpointValue, isNetkit, linkMac, pins, currentHostRouting } from '../datapath/host-routing/host-routing.js';
import { attachPinned, chooseHook, type Hook } from '../datapath/hook.js';
import { setSizes } from '../datapath/bigtcp/bigtcp.js';
import { bulkFlow } from '../measure/flow.js';
import { readLinks } from '../measure/links.js';
import { nthAddr, parsePrefix } from '../topology/ip.js';
import type { LabContext } from '../lifecycle/context.js';
import type { LabNode, Pod } from '../topology/model.js';
import { lines, podBatch, podHostLines } from '../backends/wiring.js';
import { skip, type Check } from './check.js';

/** The scratch veth pod: '_' cannot appear in topology names, so it never clashes with a pod. */
const SCRATCH = '_veth';
const SCRATCH_DEV = 'lxc_veth';
/** The seed's claim: netkit reaches host-namespace throughput. Judged where timing means something. */
const NETKIT_VS_HOST_MIN = 0.9;

/** A veth pod beside the netkit ones, wired like them (gateway, endpoint map, host routing). */
async function addVethPod(ctx: LabContext, node: LabNode, addr: string, hook: Hook, bpf: boolean) {
  const netns = `${node.netns}.${SCRATCH}`;
  const root = ctx.backend.root(node.name);
  if (root.hostPids) ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'netns', name: netns }]);
  await root.run(['ip', '-batch', '-'], { input: `netns add ${netns}\nlink add ${SCRATCH_DEV} netns ${node.netns} type veth peer name eth0 netns ${netns}\n` });
  ctx.backend.register?.(netns, node.name);
  // Wired by the same lines as the topology's pods (IPv4 only: the flows use it).
  const scratch: Pod = { name: SCRATCH, node: node.name, netns, hostDev: SCRATCH_DEV, dev: 'eth0', ipv4: addr };
  const v4node = { ...node, gw6: undefined };
  const nodeExec = ctx.backend.exec(node.netns);
  await nodeExec.run(['ip', '-batch', '-'], { input: lines(...podHostLines(v4node, scratch, 'veth')) });
  await ctx.backend.exec(netns).run(['ip', '-batch', '-'], { input: podBatch(v4node, scratch, 'veth') });
  const [dev] = await readLinks(nodeExec, SCRATCH_DEV);
  const p = pins(ctx, node);
  const [podDev] = await readLinks(ctx.backend.exec(netns), 'eth0');
  const value = endpointValue({ ifindex: dev.ifindex, mac: linkMac(podDev), nodeMac: linkMac(dev) });
  await root.run(['bpftool', 'map', 'update', 'pinned', p.endpoints, 'key', 'hex', ...endpointKey(addr).split(' '), 'value', 'hex', ...value.split(' ')]);
  if (bpf) await attachPinned(nodeExec, hook, 'ingress', [[SCRATCH_DEV, p.fromPod]]);
  await setSizes(ctx.backend, ctx.facts, [node.netns, netns], node.datapath.bigTcp);
  return {
    netns,
    remove: async () => {
      await root.run(['bpftool', 'map', 'delete', 'pinned', p.endpoints, 'key', 'hex', ...endpointKey(addr).split(' ')], { nothrow: true });
      await root.run(['ip', 'netns', 'del', netns], { nothrow: true });
    },
  };
}

export const netkitThroughput: Check = {
  id: 'netkit-throughput',
  title: 'netkit throughput: pod via netkit vs pod via veth vs the node itself',
  proves: `pod-to-remote TCP throughput through netkit, through veth, and from the node's own namespace, measured in one VM one after the other (the bottleneck lifted), as ratios to the node's; the claim checked is netkit >= ${NETKIT_VS_HOST_MIN}x the node (indicative only under TCG)`,
  requires: ({ facts }) => (podDevice.requires(facts).ok ? needTool(facts, 'iperf3') : podDevice.requires(facts)),
  applies: (lab) => (lab.nodes.some((n) => n.pods.length && n.uplink && n.podCidr4) ? { ok: true } : { ok: false, reason: 'needs a node with pods, an uplink to a peer, and IPv4' }),
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
    const nodeExec = ctx.backend.exec(node.netns);
    const accel = (ctx.backend as { accel?: string }).accel;
    const indicative = accel === 'tcg';
    // The bottleneck would cap all three at its rate: lift it for the measurement.
    const tbf = u.rate ? (await nodeExec.run(['tc', 'qdisc', 'del', 'dev', u.nodeDev, 'root'], { nothrow: true })).code === 0 : false;
    const scratch = await addVethPod(ctx, node, addr, hook, bpf);
    const mbps: Record<'netkit' | 'veth' | 'host', number> = { netkit: 0, veth: 0, host: 0 };
    const evidence: string[] = [];
    try {
      for (const [what, netns] of [['host', node.netns], ['netkit', pod.netns], ['veth', scratch.netns]] as const) {
        ctx.progress(`netkit-throughput: ${seconds} s ${what} -> ${peer.name}`);
        const flow = await bulkFlow({ from: ctx.backend.exec(netns), to: ctx.backend.exec(peer.netns), addr: u.peer4!.addr, seconds, journal: ctx.journal, signal: ctx.signal });
        mbps[what] = Math.round(flow.bitsPerSecond / 1e5) / 10;
        evidence.push(`[${what}] ${flow.evidence.at(-1)}`);
      }
    } finally {
      await scratch.remove();
      if (tbf) await nodeExec.run(['tc', 'qdisc', 'add', 'dev', u.nodeDev, 'root', 'tbf', 'rate', u.rate!, 'burst', '64kb', 'latency', '50ms']);
    }
    const ratio = (x: number) => Math.round((x / mbps.host) * 100) / 100;
    const metrics = { mbps, ratioToHost: { netkit: ratio(mbps.netkit), veth: ratio(mbps.veth) }, hostRouting: bpf ? 'bpf' : 'legacy', accel: accel ?? 'native', indicative };
    const summary = `netkit ${mbps.netkit} Mbit/s (${ratio(mbps.netkit)}x the node), veth ${mbps.veth} (${ratio(mbps.veth)}x), node ${mbps.host}`;
    const threshold = `netkit >= ${NETKIT_VS_HOST_MIN}x the node's throughput (judged only without TCG)`;
    if (Object.values(mbps).some((v) => !(v > 0))) return { status: 'fail', reason: `a flow moved nothing: ${summary}`, metrics, threshold, evidence };
    if (indicative) return { status: 'pass', reason: `${summary}; under TCG these ratios are indicative only (emulated CPUs), the claim is not judged`, metrics, threshold, evidence };
    return ratio(mbps.netkit) >= NETKIT_VS_HOST_MIN
      ? { status: 'pass', reason: summary, metrics, threshold, evidence }
      : { status: 'fail', reason: `${summary}: netkit below ${NETKIT_VS_HOST_MIN}x the node`, metrics, threshold, evidence };
  },
};
