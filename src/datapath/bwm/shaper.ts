import { LabError } from '../../errors.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { LabNode } from '../../topology/model.js';
import { attachedNames, attachPinned, detachAll, nodeHook } from '../hook.js';
import { bwmPins, limitedPods, setPodRates, setUplinkQdisc, type UplinkQdisc } from './bwm.js';

/**
 * Which shaper limits the pods on a node's uplink while a check measures:
 * - edt: edt_uplink on the egress hook stamps departures, fq holds packets until then (the feature as deployed);
 * - htb: an HTB class per limited pod at its rate, classified by htb_classify (a kubenet-style bandwidth plugin);
 * - tbf: one token bucket for the whole device at one rate, no program.
 */
export type Shaper = 'edt' | 'htb' | 'tbf';

/** Put one shaper on the uplink, at `rates` (bit/s by pod name; default the topology's egressBandwidth). */
async function setShaper(ctx: LabContext, node: LabNode, shaper: Shaper, rates: Record<string, number>, signal?: AbortSignal) {
  const u = node.uplink!;
  const exec = ctx.backend.exec(node.netns);
  const p = bwmPins(ctx, node);
  const classes = limitedPods(node).map((l) => ({ id: l.id, bps: rates[l.pod.name] ?? l.bps }));
  if (shaper !== 'edt' && !classes.length) throw new LabError('E_USAGE', `${shaper} needs a pod with egressBandwidth on ${node.name}`);
  // The map keeps the rates (and restarts every pod's clock); the programs read it by pod id.
  await setPodRates(ctx, node, signal, rates);
  // tbf runs without a program: detach only what is there (detaching an empty tcx hook fails with ENOENT).
  if ((await attachedNames(exec, u.nodeDev, 'egress', signal)).length)
    await detachAll(exec, nodeHook(ctx, node.name), 'egress', [u.nodeDev], signal);
  const q: UplinkQdisc =
    shaper === 'edt'
      ? { kind: 'fq' }
      : shaper === 'htb'
        ? { kind: 'htb', classes }
        : { kind: 'tbf', bps: Math.min(...classes.map((c) => c.bps)) };
  await setUplinkQdisc(exec, u.nodeDev, q, signal);
  if (shaper === 'edt') await attachPinned(exec, nodeHook(ctx, node.name), 'egress', [[u.nodeDev, p.edt]], signal);
  if (shaper === 'htb') await attachPinned(exec, nodeHook(ctx, node.name), 'egress', [[u.nodeDev, p.classify]], signal);
}

/**
 * Run `fn` with a shaper (and rates) on the node's uplink; in a finally, put back what the
 * lab deployed: EDT with fq at the topology's rates, also after an abort (no signal there).
 */
export async function withShaper<T>(
  ctx: LabContext,
  node: LabNode,
  shaper: Shaper,
  rates: Record<string, number>,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    await setShaper(ctx, node, shaper, rates, ctx.signal);
    return await fn();
  } finally {
    await setShaper(ctx, node, 'edt', {});
  }
}

/** The uplink's qdiscs with their statistics (drops, fq's flows_plimit and horizon drops), as evidence. */
export async function uplinkQdiscStats(ctx: LabContext, node: LabNode): Promise<string> {
  const r = await ctx.backend.exec(node.netns).run(['tc', '-s', 'qdisc', 'show', 'dev', node.uplink!.nodeDev], { signal: ctx.signal });
  return r.stdout.trim();
}

const TIME_UNIT_US: Record<string, number> = { ns: 1e-3, us: 1, ms: 1e3, s: 1e6 };

/**
 * fq's timer lateness from `tc -s qdisc show` ("latency 16.1ms"): a moving average of how
 * late fq unthrottled flows after their departure time (fq_check_throttled, unthrottle_latency_ns
 * in net/sched/sch_fq.c). Where it is large (a starved emulated guest), EDT flows fall short of
 * their rate while the stamps are right. Microseconds, or undefined without an fq line.
 */
export function fqTimerLatencyUs(stats: string): number | undefined {
  const m = /qdisc fq [\s\S]*?\blatency ([\d.]+)(ns|us|ms|s)\b/.exec(stats);
  return m ? Number(m[1]) * TIME_UNIT_US[m[2]] : undefined;
}

/**
 * How often fq held a flow back until a later departure time (`throttled` in `tc -s qdisc`:
 * stat_throttled, counted in fq_dequeue when a flow's next skb->tstamp lies ahead,
 * net/sched/sch_fq.c), summed over the fq qdiscs (one per queue under mq). Undefined without fq.
 */
export function fqThrottled(stats: string): number | undefined {
  const all = [...stats.matchAll(/\bhighprio \d+(?: fastpath \d+)? throttled (\d+)/g)];
  return all.length ? all.reduce((sum, m) => sum + Number(m[1]), 0) : undefined;
}
