import { decisionOf } from '../datapath/feature.js';
import { kubeProxy, type KubeProxyMode } from '../datapath/kpr/kpr.js';
import { PARALLEL, pool } from '../exec/pool.js';
import { readNetfilter, type NetfilterReading } from '../measure/netfilter.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/** One namespace's reading and the kube-proxy mode of the node it belongs to. */
export interface NamespaceRules {
  netns: string;
  node: string;
  mode: KubeProxyMode;
  reading: Pick<NetfilterReading, 'kubeChains' | 'natRules' | 'unreadable'>;
}

/**
 * pass: no namespace of a socket-LB node (the node, its pods, its peer) holds a KUBE-*
 * chain or a NAT rule; fail: one does; error: a namespace's rules could not be read, or
 * no namespace was judged.
 */
export function judgeKubeProxyFree(rs: readonly NamespaceRules[]): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const judged = rs.filter((r) => r.mode === 'bpf');
  if (!judged.length) return { status: 'error', reason: couldNotEstablish('no namespace of a socket-LB node was read') };
  const unread = judged.filter((r) => r.reading.unreadable.length);
  if (unread.length)
    return { status: 'error', reason: couldNotEstablish(`rules of ${unread[0].netns}: ${unread[0].reading.unreadable.join('; ')}`) };
  const dirty = judged.filter((r) => r.reading.kubeChains.length || r.reading.natRules.length);
  if (dirty.length)
    return {
      status: 'fail',
      reason: dirty
        .slice(0, 4)
        .map((r) => `${r.netns}: ${[...r.reading.kubeChains, ...r.reading.natRules].slice(0, 4).join(', ')}`)
        .join('; '),
    };
  return { status: 'pass', reason: `${judged.length} namespaces of socket-LB nodes hold no KUBE-* chain and no NAT rule` };
}

export const kubeProxyFree: Check = {
  id: 'kube-proxy-free',
  title: 'Services without kube-proxy: no service rule in netfilter',
  proves:
    'with socket-LB no lab namespace of its nodes (node, pods, peer) holds a KUBE-* chain or a NAT rule: services run without netfilter',
  requires: () => ({ ok: true }),
  applies: (lab) => (lab.services.length ? { ok: true } : { ok: false, reason: 'the topology has no services' }),
  async run(ctx) {
    const modeOf = (node: string) => decisionOf<KubeProxyMode>(ctx.decisions, kubeProxy, node)?.mode ?? 'none';
    if (!ctx.lab.nodes.some((n) => modeOf(n.name) === 'bpf')) return skip('no node runs socket-LB (kubeProxy bpf)');
    const spaces = ctx.lab.nodes.flatMap((n) => [
      { netns: n.netns, node: n.name },
      ...n.pods.map((p) => ({ netns: p.netns, node: n.name })),
      ...ctx.lab.peers.filter((p) => p.node === n.name).map((p) => ({ netns: p.netns, node: n.name })),
    ]);
    const readings: (NamespaceRules & { reading: NetfilterReading })[] = [];
    await pool(spaces, PARALLEL, async (s) => {
      readings.push({ ...s, mode: modeOf(s.node), reading: await readNetfilter(ctx.backend.exec(s.netns), ctx.signal) });
    });
    readings.sort((a, b) => spaces.findIndex((s) => s.netns === a.netns) - spaces.findIndex((s) => s.netns === b.netns));
    const metrics = {
      namespaces: readings.map((r) => ({
        netns: r.netns,
        mode: r.mode,
        kubeChains: r.reading.kubeChains.length,
        natRules: r.reading.natRules.length,
      })),
    };
    const evidence = readings.map((r) => `${r.netns} (${r.mode}):\n${r.reading.raw || r.reading.unreadable.join('\n')}`);
    return { ...judgeKubeProxyFree(readings), metrics, evidence };
  },
};
