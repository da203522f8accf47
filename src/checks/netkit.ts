import { join } from 'node:path';
import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';
import { podDevice } from '../datapath/devices/devices.js';
import { isNetkit, pins } from '../datapath/host-routing/host-routing.js';
import { tcxPrograms } from '../measure/tcx.js';
import type { LabContext } from '../lifecycle/context.js';
import type { LabNode, Pod } from '../topology/model.js';
import { skip, type Check } from './check.js';

const NetkitLink = z.array(
  z.object({
    linkinfo: z.object({ info_kind: z.string(), info_data: z.object({ mode: z.string(), type: z.string(), policy: z.string(), peer_policy: z.string() }).partial() }).optional(),
    stats64: z.object({ tx: z.object({ dropped: z.number() }) }).optional(),
  }),
);

/** A port nobody listens on: a SYN that gets through is answered with a RST ("refused"). */
const CLOSED_PORT = '5299';

async function linkInfo(exec: Exec, dev: string) {
  const r = await exec.run(['ip', '-s', '-d', '-j', 'link', 'show', 'dev', dev]);
  const [l] = NetkitLink.parse(parseJson(r, 'ip -d -j link'));
  return { kind: l.linkinfo?.info_kind, ...l.linkinfo?.info_data, txDropped: l.stats64?.tx.dropped ?? 0 };
}

/** Try a TCP connection from the pod: 'refused' means the path works, 'timeout' that it was dropped. */
async function probeConnect(pod: Exec, addr: string): Promise<{ result: 'refused' | 'timeout' | 'other'; text: string }> {
  const r = await pod.run(['iperf3', '-c', addr, '-p', CLOSED_PORT, '-t', '1', '--connect-timeout', '1500'], { nothrow: true });
  const text = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
  return { result: /refused/i.test(text) ? 'refused' : /timed out|timeout/i.test(text) ? 'timeout' : 'other', text };
}

function target(ctx: LabContext, node: LabNode, pod: Pod): string | undefined {
  const other = node.pods.find((p) => p !== pod);
  return other?.ipv4 ?? other?.ipv6 ?? node.uplink?.peer4?.addr ?? node.uplink?.peer6?.addr;
}

export const netkit: Check = {
  id: 'netkit',
  title: 'netkit pods: L3 mode, blackholed without a program, programs owned by the host',
  proves:
    "the pod device is netkit in L3 mode; with no program on its peer hook the pod's traffic is dropped (peer policy blackhole); the host lists the programs on the primary's hooks, and from inside the pod the kernel refuses to query or detach them (EACCES)",
  requires: ({ facts }) => podDevice.requires(facts),
  applies: (lab) => (lab.nodes.some((n) => n.pods.length && n.datapath.podDevice !== 'veth') ? { ok: true } : { ok: false, reason: 'needs a node with pods whose podDevice is auto or netkit' }),
  async run(ctx, spec) {
    const node = ctx.lab.nodes.find((n) => n.pods.length && isNetkit(ctx, n) && (!spec.pod || n.pods.some((p) => p.name === spec.pod)));
    if (!node) return skip('no node has netkit pods on this kernel');
    const pod = node.pods.find((p) => !spec.pod || p.name === spec.pod)!;
    const addr = target(ctx, node, pod);
    if (!addr) return skip('the pod has nothing to connect to (another pod or a peer)');
    const podExec = ctx.backend.exec(pod.netns);
    const nodeExec = ctx.backend.exec(node.netns);
    const nkctl = join(ctx.objDir, 'nkctl');
    const evidence: string[] = [];
    const problems: string[] = [];

    // 1. Device: netkit, L3, the pod side blackholes without a program.
    const peerInfo = await linkInfo(podExec, pod.dev);
    const primaryInfo = await linkInfo(nodeExec, pod.hostDev);
    evidence.push(`ip -d -j link: pod ${pod.dev} ${JSON.stringify(peerInfo)}; node ${pod.hostDev} ${JSON.stringify(primaryInfo)}`);
    if (peerInfo.kind !== 'netkit' || peerInfo.mode !== 'l3') problems.push(`pod device is ${peerInfo.kind} mode ${peerInfo.mode}, expected netkit l3`);
    if (peerInfo.policy !== 'blackhole') problems.push(`pod side policy is ${peerInfo.policy}, expected blackhole`);

    // 2. From the host: programs listed on the primary's peer hook.
    const listed = await tcxPrograms(nodeExec, pod.hostDev);
    evidence.push(`host: bpftool net show dev ${pod.hostDev}: ${JSON.stringify(listed)}`);
    const onPeer = listed.filter((p) => p.kind === 'netkit/peer');
    const onPrimary = listed.filter((p) => p.kind === 'netkit/primary');
    if (!onPeer.length) problems.push(`the host lists no program on ${pod.hostDev}'s netkit peer hook`);
    if (!onPrimary.length) problems.push(`the host lists no program on ${pod.hostDev}'s netkit primary hook`);

    // 3. From the pod: the kernel refuses to query or detach (ops must name the primary).
    const prog = join(pins(ctx, node).progs, (onPeer[0]?.name ?? 'from_pod_nk').replace(/:.*$/, ''));
    const refusals: Record<string, string> = {};
    const primaryProg = join(pins(ctx, node).progs, 'to_pod_nk');
    for (const op of [['query', 'peer', pod.dev], ['query', 'primary', pod.dev], ['detach', 'peer', pod.dev, prog], ['detach', 'primary', pod.dev, primaryProg]]) {
      const r = await podExec.run([nkctl, ...op], { nothrow: true, needsBpffs: true });
      const err = /"error":"(\w+)"/.exec(r.stdout)?.[1];
      refusals[`${op[0]} ${op[1]}`] = err ?? 'allowed';
      evidence.push(`pod: nkctl ${op.join(' ')} -> exit ${r.code} ${r.stdout.trim()}`);
      if (err !== 'EACCES' && err !== 'EPERM') problems.push(`from the pod, ${op[0]} on ${pod.dev} was ${err ?? 'allowed'}; expected EACCES or EPERM`);
    }

    // 4. Blackhole: take the program off (from the host), a connection from the pod is
    // dropped (tx_dropped rises); put it back, and the same attempt reaches the far end.
    const before = await probeConnect(podExec, addr);
    let during = { result: 'other' as string, text: '' };
    let dropped = 0;
    await nodeExec.run([nkctl, 'detach', 'peer', pod.hostDev, prog], { needsBpffs: true });
    try {
      const d0 = (await linkInfo(podExec, pod.dev)).txDropped;
      during = await probeConnect(podExec, addr);
      dropped = (await linkInfo(podExec, pod.dev)).txDropped - d0;
    } finally {
      await nodeExec.run([nkctl, 'attach', 'peer', pod.hostDev, prog], { needsBpffs: true });
    }
    const after = await probeConnect(podExec, addr);
    evidence.push(`connect ${addr}:${CLOSED_PORT} from the pod: with program "${before.text}"; without "${during.text}" (tx_dropped +${dropped}); restored "${after.text}"`);
    if (before.result !== 'refused') problems.push(`with the program attached the pod could not reach ${addr} (${before.text})`);
    if (during.result !== 'timeout' || dropped < 1) problems.push(`without a program the pod's traffic was not blackholed (${during.text}, tx_dropped +${dropped})`);
    if (after.result !== 'refused') problems.push(`after re-attaching, the pod could not reach ${addr} (${after.text})`);

    const metrics = { pod: `${node.name}/${pod.name}`, device: peerInfo, primary: primaryInfo, hostListed: [...onPeer, ...onPrimary], fromPod: refusals, blackhole: { without: during.result, txDropped: dropped, with: before.result, restored: after.result } };
    const threshold = 'netkit l3, pod policy blackhole; host lists the peer-hook program; pod query/detach -> EACCES|EPERM; no program -> connect times out and tx_dropped > 0';
    return problems.length
      ? { status: 'fail', reason: problems.join('; '), metrics, threshold, evidence }
      : {
          status: 'pass',
          reason: `netkit l3 with the pod side blackholed (tx_dropped +${dropped} without a program); host sees ${onPeer.map((p) => p.name).join(', ')} on the peer hook and ${onPrimary.map((p) => p.name).join(', ')} on the primary; from the pod query/detach of both -> ${[...new Set(Object.values(refusals))].join('/')}`,
          metrics,
          threshold,
          evidence,
        };
  },
};
