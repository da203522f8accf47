import { all, needKernel, needTool, type KernelFacts } from '../../kernel/facts.js';
import { readLinks } from '../../measure/links.js';
import { PARALLEL, pool } from '../../exec/pool.js';
import type { Backend } from '../../backends/backend.js';
import { factsOf, type LabContext } from '../../lifecycle/context.js';
import type { LabNode } from '../../topology/model.js';
import { decisionOf, type Decision, type Feature } from '../feature.js';

/** Which families get BIG TCP sizes on a node. */
export type BigTcpMode = 'ipv4+ipv6' | 'ipv6' | 'off';

/** BIG TCP GSO/GRO size Cilium sets: 192 KiB (cilium pkg/datapath/linux/bigtcp/bigtcp.go). */
export const BIG_TCP_MAX = 196608;
/** GSO_LEGACY_MAX_SIZE in include/linux/netdevice.h: the size before BIG TCP. */
export const GSO_LEGACY_MAX = 65536;

/** Cilium's TSO probing rule: never ask a device for more than it can segment. */
export function chosenSize(tsoMax: number | undefined, on: boolean): number {
  const want = on ? BIG_TCP_MAX : GSO_LEGACY_MAX;
  return tsoMax ? Math.min(want, tsoMax) : want;
}

/** IPv4 BIG TCP (gso_ipv4_max_size) came with kernel 6.3 and iproute2 6.3. */
export function ipv4Verdict(facts: KernelFacts) {
  return all(needKernel(facts, 6, 3, 'IPv4 BIG TCP arrived in 6.3'), needTool(facts, 'ip', [6, 3], 'gso_ipv4_max_size needs iproute2 6.3'));
}

export const bigTcp: Feature<BigTcpMode> = {
  id: 'bigtcp',
  title: 'BIG TCP (gso/gro max size min(196608, tso_max_size))',
  requires: (facts) => needKernel(facts, 5, 19, 'IPv6 BIG TCP arrived in 5.19'),
  decide(facts, dp, node): Decision<BigTcpMode> {
    const base = { feature: 'bigtcp', node };
    if (!dp.bigTcp) return { ...base, status: 'off', mode: 'off', detail: 'off in the profile; device sizes left at their defaults' };
    const v6 = bigTcp.requires(facts);
    if (!v6.ok) return { ...base, status: 'declined', mode: 'off', detail: v6.reason };
    const v4 = ipv4Verdict(facts);
    return v4.ok
      ? { ...base, status: 'applied', mode: 'ipv4+ipv6', detail: 'IPv6 and IPv4' }
      : { ...base, status: 'fallback', mode: 'ipv6', detail: `IPv6 only: ${v4.reason}` };
  },
  // No apply: sizes are attributes the backends give each device as they create it (or, for a
  // guest's NICs, as they move it in), from this decision (bigTcpMode) and one probe per driver kind.
  async remove(ctx, node) {
    await setSizes(ctx.backend, factsOf(ctx, node.name), nodeNamespaces(ctx, node), false, ctx.signal);
  },
};

/** The BIG TCP mode decided for a node: known at provision, when the devices are created. */
export function bigTcpMode(ctx: Pick<LabContext, 'decisions'>, node: LabNode): BigTcpMode {
  return decisionOf<BigTcpMode>(ctx.decisions, bigTcp, node.name)?.mode ?? 'off';
}

/**
 * `ip link add|set` attributes giving a device its sizes (leading space; '' when BIG TCP is
 * off, so the driver's defaults stay), clamped by the driver's tso_max_size.
 */
export function sizeAttrs(mode: BigTcpMode, tsoMax: number | undefined): string {
  if (mode === 'off') return '';
  const s = chosenSize(tsoMax, true);
  return ` gso_max_size ${s} gro_max_size ${s}${mode === 'ipv4+ipv6' ? ` gso_ipv4_max_size ${s} gro_ipv4_max_size ${s}` : ''}`;
}

/** One device the lab configured, with what the kernel reported and what the lab chose. */
export interface SizedDevice {
  netns: string;
  dev: string;
  tsoMaxSize?: number;
  size: number;
  ipv4: boolean;
}

/** Every namespace of a node whose devices the lab configures: node, pods, peer. */
export function nodeNamespaces(ctx: LabContext, node: LabNode): string[] {
  const peer = ctx.lab.peers.find((p) => p.node === node.name);
  return [node.netns, ...node.pods.map((p) => p.netns), ...(peer ? [peer.netns] : [])];
}

/**
 * Set the four sizes on every device of these namespaces of a running lab (tso_max_size
 * read per device first). `on` false writes the legacy 65536, which the bigtcp check uses as its control.
 */
export async function setSizes(
  backend: Backend,
  facts: KernelFacts,
  namespaces: string[],
  on: boolean,
  signal?: AbortSignal,
): Promise<SizedDevice[]> {
  const v4 = ipv4Verdict(facts).ok;
  const sized: SizedDevice[] = [];
  await pool(namespaces, PARALLEL, async (netns) => {
    const exec = backend.exec(netns);
    const links = await readLinks(exec, undefined, signal);
    const devs = links.map((l) => ({ netns, dev: l.ifname, tsoMaxSize: l.tso_max_size, size: chosenSize(l.tso_max_size, on), ipv4: v4 }));
    const batch = devs.map(
      (d) =>
        `link set dev ${d.dev} gso_max_size ${d.size} gro_max_size ${d.size}${v4 ? ` gso_ipv4_max_size ${d.size} gro_ipv4_max_size ${d.size}` : ''}`,
    );
    if (batch.length) await exec.run(['ip', '-batch', '-'], { input: batch.join('\n') + '\n', signal });
    sized.push(...devs);
  });
  return sized;
}
