import { join } from 'node:path';
import type { Exec } from '../exec/exec.js';
import { podDevice } from '../datapath/devices/devices.js';
import { isNetkit, pins } from '../datapath/host-routing/host-routing.js';
import { tcxPrograms } from '../measure/tcx.js';
import { tcpConnect } from '../measure/connect.js';
import { nkctlAttempt, readNetkitDevice, setPeerProgram, type NetkitDevice } from '../measure/netkit.js';
import type { LabNode, Pod } from '../topology/model.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/** A port nobody listens on: a SYN that gets through is answered with a RST ("refused"). */
const CLOSED_PORT = 5299;

/** Try a TCP connection from the pod: 'refused' means the path works, 'timeout' that it was dropped. */
async function probeConnect(pod: Exec, addr: string, signal?: AbortSignal): Promise<{ result: Outcome; text: string }> {
  const r = await tcpConnect(pod, { addr, port: CLOSED_PORT, signal });
  return {
    result: r.outcome === 'refused' || r.outcome === 'timeout' ? r.outcome : 'other',
    text: `${r.outcome}${r.errno ? ` (${r.errno})` : ''}: ${r.detail}`,
  };
}

function target(node: LabNode, pod: Pod): string | undefined {
  const other = node.pods.find((p) => p !== pod);
  return other?.ipv4 ?? other?.ipv6 ?? node.uplink?.peer4?.addr ?? node.uplink?.peer6?.addr;
}

type Outcome = 'refused' | 'timeout' | 'other';

/** What the netkit check saw, in the shape its verdict reads. */
export interface NetkitObservations {
  /** The pod side of the pair. */
  peer: Pick<NetkitDevice, 'kind' | 'mode' | 'policy'>;
  /** Program names the host lists on the primary's netkit/peer hook. */
  onPeer: string[];
  /** Program names the host lists on the primary's netkit/primary hook. */
  onPrimary: string[];
  /** From inside the pod, per operation ('query peer'...): the errno, or 'allowed'. */
  fromPod: Record<string, string>;
  /** A connection from the pod with the program on, without it, and with it back. */
  connect: { before: Outcome; during: Outcome; after: Outcome };
  /** tx_dropped of the pod device while the program was off. */
  txDropped: number;
}

/**
 * The netkit verdict. `fail` where the kernel went against a claim; `error` when the
 * path did not work with the program on (the blackhole then has nothing to be told apart from).
 */
export function judgeNetkit(o: NetkitObservations): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const problems: string[] = [];
  if (o.peer.kind !== 'netkit' || o.peer.mode !== 'l3')
    problems.push(`pod device is ${o.peer.kind} mode ${o.peer.mode}, expected netkit l3`);
  if (o.peer.policy !== 'blackhole') problems.push(`pod side policy is ${o.peer.policy}, expected blackhole`);
  if (!o.onPeer.length) problems.push("the host lists no program on the primary's netkit peer hook");
  if (!o.onPrimary.length) problems.push("the host lists no program on the primary's netkit primary hook");
  const ops = Object.entries(o.fromPod);
  if (!ops.length) problems.push('no operation was tried from the pod');
  for (const [op, err] of ops)
    if (err !== 'EACCES' && err !== 'EPERM') problems.push(`from the pod, ${op} was ${err}; expected EACCES or EPERM`);
  const { before, during, after } = o.connect;
  const baseline = before === 'refused';
  if (baseline && (during !== 'timeout' || o.txDropped < 1))
    problems.push(`without a program the pod's traffic was not blackholed (${during}, tx_dropped +${o.txDropped})`);
  if (baseline && after !== 'refused') problems.push(`after re-attaching, the pod could not reach the far end (${after})`);
  if (problems.length) return { status: 'fail', reason: problems.join('; ') };
  if (!baseline)
    return {
      status: 'error',
      reason: couldNotEstablish(
        `with the program attached the pod did not reach the far end (${before}), so a drop without it would prove nothing`,
      ),
    };
  const errnos = [...new Set(Object.values(o.fromPod))].join('/');
  return {
    status: 'pass',
    reason: `netkit l3 with the pod side blackholed (tx_dropped +${o.txDropped} without a program); host sees ${o.onPeer.join(', ')} on the peer hook and ${o.onPrimary.join(', ')} on the primary; from the pod query/detach of both -> ${errnos}`,
  };
}

export const netkit: Check = {
  id: 'netkit',
  title: 'netkit pods: L3 mode, blackholed without a program, programs owned by the host',
  proves:
    "the pod device is netkit in L3 mode; with no program on its peer hook the pod's traffic is dropped (peer policy blackhole); the host lists the programs on the primary's hooks, and from inside the pod the kernel refuses to query or detach them (EACCES)",
  requires: ({ facts }) => podDevice.requires(facts),
  applies: (lab) =>
    lab.nodes.some((n) => n.pods.length && n.datapath.podDevice !== 'veth')
      ? { ok: true }
      : { ok: false, reason: 'needs a node with pods whose podDevice is auto or netkit' },
  async run(ctx, spec) {
    const node = ctx.lab.nodes.find((n) => n.pods.length && isNetkit(ctx, n) && (!spec.pod || n.pods.some((p) => p.name === spec.pod)));
    if (!node) return skip('no node has netkit pods on this kernel');
    const pod = node.pods.find((p) => !spec.pod || p.name === spec.pod)!;
    const addr = target(node, pod);
    if (!addr) return skip('the pod has nothing to connect to (another pod or a peer)');
    const podExec = ctx.backend.exec(pod.netns);
    const nodeExec = ctx.backend.exec(node.netns);
    const evidence: string[] = [];

    // 1. Device: netkit, L3, the pod side blackholes without a program.
    const peerInfo = await readNetkitDevice(podExec, pod.dev, ctx.signal);
    const primaryInfo = await readNetkitDevice(nodeExec, pod.hostDev, ctx.signal);
    evidence.push(`ip -d -j link: pod ${pod.dev} ${JSON.stringify(peerInfo)}; node ${pod.hostDev} ${JSON.stringify(primaryInfo)}`);

    // 2. From the host: programs listed on the primary's hooks.
    const listed = await tcxPrograms(nodeExec, pod.hostDev, ctx.signal);
    evidence.push(`host: bpftool net show dev ${pod.hostDev}: ${JSON.stringify(listed)}`);
    const onPeer = listed.filter((p) => p.kind === 'netkit/peer');
    const onPrimary = listed.filter((p) => p.kind === 'netkit/primary');

    // 3. From the pod: the kernel refuses to query or detach (ops must name the primary).
    const prog = join(pins(ctx, node).progs, (onPeer[0]?.name ?? 'from_pod_nk').replace(/:.*$/, ''));
    const primaryProg = join(pins(ctx, node).progs, 'to_pod_nk');
    const fromPod: Record<string, string> = {};
    const ops = [
      ['query', 'peer'],
      ['query', 'primary'],
      ['detach', 'peer', prog],
      ['detach', 'primary', primaryProg],
    ] as const;
    for (const [op, hook, p] of ops) {
      const a = await nkctlAttempt(podExec, ctx.objDir, op, hook, pod.dev, p);
      fromPod[`${op} ${hook}`] = a.errno;
      evidence.push(`pod: nkctl ${op} ${hook} ${pod.dev}${p ? ` ${p}` : ''} -> exit ${a.exitCode} ${a.text}`);
    }

    // 4. Blackhole: take the program off (from the host), a connection from the pod is
    // dropped (tx_dropped rises); put it back, and the same attempt reaches the far end.
    const before = await probeConnect(podExec, addr, ctx.signal);
    let during = { result: 'other' as Outcome, text: '' };
    let dropped = 0;
    await setPeerProgram(nodeExec, ctx.objDir, 'detach', pod.hostDev, prog);
    try {
      const d0 = (await readNetkitDevice(podExec, pod.dev)).txDropped;
      during = await probeConnect(podExec, addr, ctx.signal);
      dropped = (await readNetkitDevice(podExec, pod.dev)).txDropped - d0;
    } finally {
      await setPeerProgram(nodeExec, ctx.objDir, 'attach', pod.hostDev, prog);
    }
    const after = await probeConnect(podExec, addr, ctx.signal);
    evidence.push(
      `connect ${addr}:${CLOSED_PORT} from the pod: with program "${before.text}"; without "${during.text}" (tx_dropped +${dropped}); restored "${after.text}"`,
    );

    const observed: NetkitObservations = {
      peer: peerInfo,
      onPeer: onPeer.map((p) => p.name ?? `id ${p.progId}`),
      onPrimary: onPrimary.map((p) => p.name ?? `id ${p.progId}`),
      fromPod,
      connect: { before: before.result, during: during.result, after: after.result },
      txDropped: dropped,
    };
    const metrics = {
      pod: `${node.name}/${pod.name}`,
      device: peerInfo,
      primary: primaryInfo,
      hostListed: [...onPeer, ...onPrimary],
      fromPod,
      blackhole: { without: during.result, txDropped: dropped, with: before.result, restored: after.result },
    };
    const threshold =
      'netkit l3, pod policy blackhole; host lists the peer-hook program; pod query/detach -> EACCES|EPERM; no program -> connect times out and tx_dropped > 0';
    return { ...judgeNetkit(observed), metrics, threshold, evidence };
  },
};
