import { chooseHook } from '../datapath/hook.js';
import { all, needTool } from '../kernel/facts.js';
import { bigTcp as bigTcpFeature, ipv4Verdict, nodeNamespaces } from '../datapath/bigtcp/bigtcp.js';
import type { BigCounts } from '../measure/bigcount.js';
import { measurer } from '../measure/measurer.js';
import type { Family } from '../topology/schema.js';
import type { Lab, LabNode, Pod } from '../topology/model.js';
import { couldNotEstablish, pickPod, skip, type Check } from './check.js';

/** A receiver the sender reaches without a bottleneck (a rate-limited path paces TCP below 64 KB skbs). */
function receiver(lab: Lab, node: LabNode, pod: Pod): { exec: 'pod' | 'peer'; netns: string; v4?: string; v6?: string } | undefined {
  const other = node.pods.find((p) => p !== pod);
  if (other) return { exec: 'pod', netns: other.netns, v4: other.ipv4, v6: other.ipv6 };
  const u = node.uplink;
  if (u && !u.rate)
    return { exec: 'peer', netns: lab.peers.find((p) => p.node === node.name)!.netns, v4: u.peer4?.addr, v6: u.peer6?.addr };
  return undefined;
}

export const bigtcp: Check = {
  id: 'bigtcp',
  title: 'BIG TCP: skbs over 64 KiB really cross the datapath',
  proves:
    'a BPF counter on the sending pod device sees skbs longer than 65535 bytes during a bulk flow with BIG TCP on (per family), and none with it off',
  requires: ({ facts }) => {
    const h = chooseHook(facts);
    return all(needTool(facts, 'iperf3'), bigTcpFeature.requires(facts), h.hook ? { ok: true } : { ok: false, reason: h.reason });
  },
  applies: (lab, spec) =>
    pickPod(lab, spec, (n, p) => !!receiver(lab, n, p))
      ? { ok: true }
      : { ok: false, reason: 'needs two pods on one node, or a pod behind an uplink without a rate limit' },
  async run(ctx, spec) {
    const picked = pickPod(ctx.lab, spec, (n, p) => !!receiver(ctx.lab, n, p));
    if (!picked) return skip('no receiver reachable without a bottleneck');
    const { node, pod } = picked;
    const rx = receiver(ctx.lab, node, pod)!;
    const seconds = spec.seconds ?? 2;
    const v4ok = ipv4Verdict(ctx.facts);
    const families = ctx.lab.families.filter((f) => (f === 'ipv4' ? !!(pod.ipv4 && rx.v4) : !!(pod.ipv6 && rx.v6)));
    const namespaces = nodeNamespaces(ctx, node);
    const hook = chooseHook(ctx.facts).hook ?? 'tcx';
    const m = measurer(ctx);
    const counter = m.bigCounter(ctx.backend.root(node.name), ctx.backend.exec(pod.netns), pod.dev, ctx.bpfDir, ctx.objDir, hook);
    const results: BigTcpRun[] = [];
    const evidence: string[] = [];
    const notes: string[] = [];
    await counter.attach(ctx.signal);
    try {
      for (const on of [true, false]) {
        await m.setSizes(ctx.backend, ctx.facts, namespaces, on, ctx.signal);
        for (const family of families) {
          if (family === 'ipv4' && !v4ok.ok) {
            if (on) notes.push(`IPv4 not tested: ${v4ok.reason}`);
            continue;
          }
          ctx.progress(`bigtcp: ${seconds} s ${family} flow ${pod.name} -> ${rx.netns} with BIG TCP ${on ? 'on' : 'off'}`);
          await counter.reset(ctx.signal);
          const flow = await m.bulkFlow({
            from: ctx.backend.exec(pod.netns),
            to: ctx.backend.exec(rx.netns),
            addr: (family === 'ipv4' ? rx.v4 : rx.v6)!,
            seconds,
            journal: ctx.journal,
            signal: ctx.signal,
          });
          const { counts, raw } = await counter.read(ctx.signal);
          results.push({ family, bigTcp: on ? 'on' : 'off', counts, mbps: Math.round(flow.bitsPerSecond / 1e5) / 10 });
          evidence.push(`[${family}, BIG TCP ${on ? 'on' : 'off'}] bpftool map dump big_counts: ${raw.replace(/\s+/g, ' ')}`);
        }
      }
    } finally {
      await counter.detach();
      // Put the node back as the profile has it.
      await m.setSizes(ctx.backend, ctx.facts, namespaces, node.datapath.bigTcp);
    }
    const metrics = {
      pod: `${node.name}/${pod.name}`,
      receiver: rx.netns,
      counter: `${hook} egress of ${pod.dev} in ${pod.netns}`,
      runs: results,
      notes,
    };
    if (!results.length) return { status: 'skip', reason: notes.join('; ') || 'no address family to test', metrics, evidence };
    const verdict = judgeBigTcp(results, notes);
    return { ...verdict, metrics, threshold: 'on: count(len > 65535) > 0; off: count = 0', evidence };
  },
};

export interface BigTcpRun {
  family: Family;
  bigTcp: 'on' | 'off';
  counts: BigCounts;
  mbps: number;
}

/**
 * The verdict from the counter per run (kept apart so its failing cases are tested).
 * A run whose counter saw no skb of its family at all is `error`, not `fail`: the
 * counter sits on every skb the pod sends, so zero means the flow or the counter did
 * not happen, and the kernel gave no answer about BIG TCP. A fail elsewhere still wins.
 */
export function judgeBigTcp(results: BigTcpRun[], notes: string[] = []): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const problems: string[] = [];
  const unseen: string[] = [];
  if (!results.length) return { status: 'error', reason: couldNotEstablish('no flow was counted') };
  for (const r of results) {
    const big = r.family === 'ipv4' ? r.counts.v4Big : r.counts.v6Big;
    const total = r.family === 'ipv4' ? r.counts.v4All : r.counts.v6All;
    if (total === 0) unseen.push(`${r.family} ${r.bigTcp}: the counter saw no ${r.family} skbs at all (flow ${r.mbps} Mbit/s)`);
    else if (r.bigTcp === 'on' && big === 0) problems.push(`${r.family} on: no skb over 65535 B among ${total}`);
    else if (r.bigTcp === 'off' && big > 0) problems.push(`${r.family} off: ${big} skbs over 65535 B with sizes at 65536`);
  }
  const on = results
    .filter((r) => r.bigTcp === 'on')
    .map(
      (r) =>
        `${r.family} ${r.family === 'ipv4' ? r.counts.v4Big : r.counts.v6Big}/${r.family === 'ipv4' ? r.counts.v4All : r.counts.v6All}`,
    );
  if (problems.length) return { status: 'fail', reason: [...problems, ...unseen].join('; ') };
  if (unseen.length) return { status: 'error', reason: couldNotEstablish(unseen.join('; ')) };
  const reason = `big skbs with BIG TCP on: ${on.join(', ')}; none with it off${notes.length ? ` (${notes.join('; ')})` : ''}`;
  return { status: 'pass', reason };
}
