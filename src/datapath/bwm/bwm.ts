import { join } from 'node:path';
import { z } from 'zod';
import { all, hasConfig, needTool, type KernelFacts, type Verdict } from '../../kernel/facts.js';
import { factsOf, type LabContext } from '../../lifecycle/context.js';
import { parseJson, type Exec } from '../../exec/exec.js';
import type { LabNode, Pod } from '../../topology/model.js';
import { attachPinned, chooseHook, detachAll, nodeHook, objectFor, type Hook } from '../hook.js';
import { nodePinDir } from '../host-routing/host-routing.js';
import { decisionOf, type Decision, type Feature } from '../feature.js';
import { FQ_BUCKETS, HORIZON_NS, podRateLines } from './maps.js';

/** edt: per-pod EDT stamps on the uplink egress with fq under them; off: no rate limiting on the node. */
export type BwmMode = 'edt' | 'off';

export const BWM_OBJ = 'bwm_edt';

/** Why this kernel cannot run EDT rate limiting, with the piece it lacks named. */
export function fqVerdict(facts: KernelFacts): Verdict {
  const fq = hasConfig(facts, 'CONFIG_NET_SCH_FQ', 'sch_fq');
  return fq.ok ? fq : { ok: false, reason: `no sch_fq: ${fq.reason} (fq is the qdisc that holds each packet until its EDT skb->tstamp)` };
}

/** BBR where the kernel has it (built in, or module tcp_bbr). */
export const bbrVerdict = (facts: KernelFacts) => hasConfig(facts, 'CONFIG_TCP_CONG_BBR', 'tcp_bbr');

/**
 * The Bandwidth Manager (Cilium's): a pod's kubernetes.io/egress-bandwidth enforced by
 * Earliest Departure Time stamps in BPF on the node's uplink egress (bpf/bwm_edt.c)
 * and fq on that device, with BBR and no slow start after idle in the pods.
 */
export const bandwidthManager: Feature<BwmMode> = {
  id: 'bandwidth-manager',
  title: 'Bandwidth Manager (EDT in BPF on the uplink egress, fq, BBR)',
  requires: (facts) => {
    const h = chooseHook(facts);
    return all(fqVerdict(facts), needTool(facts, 'tc'), h.hook ? { ok: true } : { ok: false, reason: h.reason });
  },
  decide(facts, dp, node): Decision<BwmMode> {
    const base = { feature: 'bandwidth-manager', node };
    if (!dp.bandwidthManager) return { ...base, status: 'off', mode: 'off', detail: 'no pod has egressBandwidth' };
    // The resolver refuses this combination with the file's line; a profile built in code meets it here.
    if (dp.hostRouting === 'legacy')
      return {
        ...base,
        status: 'declined',
        mode: 'off',
        detail: 'needs hostRouting: bpf (legacy routing orphans the pod skb in ip_rcv, so the socket cannot be paced)',
      };
    const v = bandwidthManager.requires(facts);
    if (!v.ok) return { ...base, status: 'declined', mode: 'off', detail: v.reason };
    const h = chooseHook(facts) as { hook: Hook; note?: string };
    const bbr = bbrVerdict(facts);
    const detail =
      `edt: edt_uplink on the uplink ${h.hook} egress, fq (horizon 2s, ${FQ_BUCKETS} buckets), ` +
      (bbr.ok ? 'BBR and tcp_slow_start_after_idle=0 in the pods' : `pods keep their congestion control (no BBR: ${bbr.reason})`);
    return h.note
      ? { ...base, status: 'fallback', mode: 'edt', detail: `${detail}; ${h.note}` }
      : { ...base, status: 'applied', mode: 'edt', detail };
  },
  async apply(ctx, node, decision) {
    if (decision.mode !== 'edt' || !node.uplink) return;
    const p = bwmPins(ctx, node);
    // The programs and maps outlive the node's namespace: journaled before they exist. The qdiscs and
    // the egress attachment live on the uplink and go with the node's namespace (or VM), itself journaled.
    ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'pin', path: p.dir }]);
    const root = ctx.backend.root(node.name);
    const { signal } = ctx;
    await root.run(['mkdir', '-p', p.dir], { signal });
    await root.run(
      ['bpftool', 'prog', 'loadall', join(ctx.objDir, objectFor(BWM_OBJ, nodeHook(ctx, node.name))), p.progs, 'pinmaps', p.maps],
      {
        signal,
      },
    );
    await setPodRates(ctx, node, signal);
    const exec = ctx.backend.exec(node.netns);
    await setUplinkQdisc(exec, node.uplink.nodeDev, { kind: 'fq' }, signal);
    await attachPinned(exec, nodeHook(ctx, node.name), 'egress', [[node.uplink.nodeDev, p.edt]], signal);
    await podsTcp(ctx, node, signal);
  },
  async remove(ctx, node) {
    if (!node.uplink) return;
    const exec = ctx.backend.exec(node.netns);
    await detachAll(exec, nodeHook(ctx, node.name), 'egress', [node.uplink.nodeDev], ctx.signal);
    await exec.run(['tc', 'qdisc', 'del', 'dev', node.uplink.nodeDev, 'root'], { nothrow: true, signal: ctx.signal });
    await ctx.backend.root(node.name).run(['rm', '-rf', bwmPins(ctx, node).dir], { signal: ctx.signal });
  },
};

/** Pinned programs and maps of a node's bandwidth manager (inside host routing's pin dir). */
export function bwmPins(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  const dir = join(nodePinDir(ctx, node), 'bwm');
  const maps = join(dir, 'maps');
  return {
    dir,
    progs: join(dir, 'prog'),
    maps,
    edt: join(dir, 'prog', 'edt_uplink'),
    classify: join(dir, 'prog', 'htb_classify'),
    pods: join(maps, 'edt_pods'),
    rates: join(maps, 'edt_rates'),
    counters: join(maps, 'edt_counters'),
  };
}

/** The node's bandwidth-manager mode as decided at probe. */
export const bwmMode = (ctx: Pick<LabContext, 'decisions'>, node: LabNode): BwmMode =>
  decisionOf<BwmMode>(ctx.decisions, bandwidthManager, node.name)?.mode ?? 'off';

/** The limited pods of a node with their aggregate ids (1, 2, ... in pod order: the HTB minor too). */
export function limitedPods(node: LabNode): { pod: Pod; id: number; bps: number }[] {
  return node.pods.flatMap((pod, i) => (pod.egressBps ? [{ pod, id: i + 1, bps: pod.egressBps }] : []));
}

/** Write every limited pod's rate (overridden by `rates`, bit/s by pod name) into the maps; t_last starts at 0. */
export async function setPodRates(ctx: LabContext, node: LabNode, signal?: AbortSignal, rates: Record<string, number> = {}): Promise<void> {
  const p = bwmPins(ctx, node);
  const lines = node.pods.flatMap((pod, i) => {
    const bps = rates[pod.name] ?? pod.egressBps;
    if (!bps) return [];
    const addrs = [pod.ipv4, pod.ipv6].filter((a): a is string => !!a);
    return podRateLines(p, i + 1, addrs, bps);
  });
  if (lines.length) await ctx.backend.root(node.name).run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, signal });
}

/** What the uplink's root qdisc is: fq (EDT), an HTB class per limited pod, or one tbf. */
export type UplinkQdisc = { kind: 'fq' } | { kind: 'htb'; classes: { id: number; bps: number }[] } | { kind: 'tbf'; bps: number };

const TxQueues = z.array(z.object({ num_tx_queues: z.number().int().positive().optional() }).passthrough());

/** Transmit queues of a device (`ip -d -j link`): more than one takes mq with a fq per queue. */
export async function txQueues(exec: Exec, dev: string, signal?: AbortSignal): Promise<number> {
  const r = await exec.run(['ip', '-d', '-j', 'link', 'show', 'dev', dev], { signal });
  return TxQueues.parse(parseJson(r, `ip -d -j link show dev ${dev}`))[0]?.num_tx_queues ?? 1;
}

/**
 * fq with Cilium's settings (pkg/datapath/linux/bandwidth/ops.go): mq with an fq per
 * transmit queue on a multiqueue device, else fq at the root; horizon 2 s, 2^15 buckets.
 */
export function fqLines(dev: string, queues: number): string[] {
  const fq = `fq buckets ${FQ_BUCKETS} horizon ${Number(HORIZON_NS / 1000n)}us`;
  if (queues <= 1) return [`qdisc replace dev ${dev} root ${fq}`];
  return [
    `qdisc replace dev ${dev} root handle 1: mq`,
    ...Array.from({ length: queues }, (_, q) => `qdisc replace dev ${dev} parent 1:${(q + 1).toString(16)} ${fq}`),
  ];
}

/**
 * HTB as a kubenet-style bandwidth plugin shapes: a class per pod at its rate (ceil =
 * rate); classified by htb_classify's skb->priority. tbf: one bucket for the device.
 * Bursts: tc's defaults for HTB (rate / HZ), 64 KiB for tbf like the lab's bottleneck.
 */
export function shaperLines(dev: string, q: Exclude<UplinkQdisc, { kind: 'fq' }>): string[] {
  if (q.kind === 'tbf') return [`qdisc replace dev ${dev} root tbf rate ${Math.round(q.bps)}bit burst 64kb latency 100ms`];
  return [
    `qdisc replace dev ${dev} root handle 1: htb`,
    ...q.classes.map(
      (c) =>
        `class replace dev ${dev} parent 1: classid 1:${c.id.toString(16)} htb rate ${Math.round(c.bps)}bit ceil ${Math.round(c.bps)}bit`,
    ),
  ];
}

/** Put a root qdisc on the uplink (replacing whatever is there). */
export async function setUplinkQdisc(exec: Exec, dev: string, q: UplinkQdisc, signal?: AbortSignal): Promise<void> {
  // Replacing mq's root with another mq keeps stale leaves; going through noqueue as Cilium does avoids that.
  await exec.run(['tc', 'qdisc', 'del', 'dev', dev, 'root'], { nothrow: true, signal });
  const lines = q.kind === 'fq' ? fqLines(dev, await txQueues(exec, dev, signal)) : shaperLines(dev, q);
  await exec.run(['tc', '-batch', '-'], { input: `${lines.join('\n')}\n`, signal });
}

/** BBR and no slow start after idle in every pod of the node, where the kernel has BBR (Cilium's enable-bbr). */
async function podsTcp(ctx: LabContext, node: LabNode, signal?: AbortSignal): Promise<void> {
  if (!bbrVerdict(factsOf(ctx, node.name)).ok) return;
  // A module is loaded on first use only from the initial namespace's sysctl: load it from the node's root.
  if (factsOf(ctx, node.name).config.CONFIG_TCP_CONG_BBR === 'm')
    await ctx.backend.root(node.name).run(['modprobe', 'tcp_bbr'], { signal });
  for (const pod of node.pods)
    await ctx.backend
      .exec(pod.netns)
      .run(['sysctl', '-q', '-w', 'net.ipv4.tcp_congestion_control=bbr', 'net.ipv4.tcp_slow_start_after_idle=0'], { signal });
}
