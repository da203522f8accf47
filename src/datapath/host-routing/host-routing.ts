import { join } from 'node:path';
import { all, hasConfig, needKernel, needTool } from '../../kernel/facts.js';
import { nodeLinks } from '../../backends/wiring.js';
import { factsOf, type LabContext } from '../../lifecycle/context.js';
import type { LabNode } from '../../topology/model.js';
import { readLinks, type LinkFacts } from '../../measure/links.js';
import { readPodLinks } from '../../backends/namespaces.js';
import { endpointKey, endpointValue, linkMac } from './endpoints.js';
import { attachedNames, attachPinned, chooseHook, detachAll, nodeHook, objectFor, TC_PREF, type Hook } from '../hook.js';
import { tcxPrograms } from '../../measure/tcx.js';
import { podDeviceKind } from '../devices/devices.js';
import type { Decision, Feature } from '../feature.js';

export type HostRoutingMode = 'bpf' | 'legacy';

/**
 * BPF host routing: tcx programs on the host side of each pod device and on the
 * node's uplink and links forward with bpf_redirect_neigh / bpf_redirect_peer, so
 * pod traffic never reaches ip_rcv (where the skb would be orphaned).
 */
export const hostRouting: Feature<HostRoutingMode> = {
  id: 'host-routing',
  title: 'BPF host routing (tcx, bpf_redirect_neigh / bpf_redirect_peer)',
  requires: (facts) => {
    const h = chooseHook(facts);
    return all(
      hasConfig(facts, 'CONFIG_BPF_SYSCALL'),
      needKernel(facts, 5, 10, 'bpf_redirect_peer and bpf_redirect_neigh arrived in 5.10'),
      needTool(facts, 'bpftool'),
      facts.bpffs ? { ok: true } : { ok: false, reason: 'bpffs is not mounted at /sys/fs/bpf' },
      h.hook ? { ok: true } : { ok: false, reason: h.reason },
    );
  },
  decide(facts, dp, node): Decision<HostRoutingMode> {
    const base = { feature: 'host-routing', node };
    const v = hostRouting.requires(facts);
    if (!v.ok)
      return dp.hostRouting === 'legacy'
        ? { ...base, status: 'off', mode: 'legacy', detail: `legacy (BPF host routing unavailable: ${v.reason})` }
        : { ...base, status: 'declined', mode: 'legacy', detail: v.reason };
    const h = chooseHook(facts) as { hook: Hook; note?: string };
    if (dp.hostRouting === 'legacy')
      return {
        ...base,
        status: 'off',
        mode: 'legacy',
        detail: `legacy: the node IP stack forwards (programs loaded on ${h.hook}, not attached)`,
      };
    if (h.note) return { ...base, status: 'fallback', mode: 'bpf', detail: `bpf on ${h.note}` };
    return {
      ...base,
      status: 'applied',
      mode: 'bpf',
      detail: 'bpf: from_pod on pod devices (netkit peer hook, or tcx on veth), from_netdev on uplink and links',
    };
  },
  async apply(ctx, node, decision) {
    // Programs are loaded in legacy mode too (where the kernel can), so checks can switch modes.
    if (!hostRouting.requires(factsOf(ctx, node.name)).ok) return;
    ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'pin', path: nodePinDir(ctx, node) }]);
    const links = await readLinks(ctx.backend.exec(node.netns), undefined, ctx.signal);
    await deployHostRouting(ctx, node, links, decision.mode === 'bpf');
  },
  async remove(ctx, node) {
    await setHostRouting(ctx, node, 'legacy', ctx.signal);
    if (isNetkit(ctx, node)) await nkctlBatch(ctx, node, netkitPodLines(ctx, node, 'detach', 'legacy'), ctx.signal);
    await ctx.backend.root(node.name).run(['rm', '-rf', nodePinDir(ctx, node)], { signal: ctx.signal });
  },
};

export const HOST_ROUTING_OBJ = 'host_routing';

export function nodePinDir(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  return join(ctx.bpfDir, node.name);
}

/** Pinned programs and maps of one node (bpftool loadall pins programs and maps by name). */
export function pins(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  const dir = nodePinDir(ctx, node);
  const maps = join(dir, 'maps');
  return {
    dir,
    progs: join(dir, 'prog'),
    maps,
    fromPod: join(dir, 'prog', 'from_pod'),
    fromNetdev: join(dir, 'prog', 'from_netdev'),
    endpoints: join(maps, 'endpoints'),
    /** Per-CPU counters of what the programs did (src/measure/datapath-counters.ts reads them). */
    counters: join(maps, 'counters'),
  };
}

export { endpointKey, endpointValue, linkMac, type Endpoint } from './endpoints.js';

/** tc-hook attachments of a node in bpf mode: [device, pinned program]. Netkit pods use their peer hook instead. */
export function attachments(ctx: LabContext, node: LabNode): [string, string][] {
  const p = pins(ctx, node);
  return [
    ...(isNetkit(ctx, node) ? [] : node.pods.map((pod) => [pod.hostDev, p.fromPod] as [string, string])),
    ...(node.uplink ? [[node.uplink.nodeDev, p.fromNetdev] as [string, string]] : []),
    ...nodeLinks(ctx.lab, node).map((l) => [l.dev, p.fromNetdev] as [string, string]),
  ];
}

export const isNetkit = (ctx: Pick<LabContext, 'decisions'>, node: LabNode) => podDeviceKind(ctx, node) === 'netkit';

/** The program on a netkit pod's peer hook for a mode (the peer policy blackholes without one). */
const netkitProg = (ctx: LabContext, node: LabNode, mode: Mode) =>
  join(pins(ctx, node).progs, mode === 'bpf' ? 'from_pod_nk' : 'pass_pod_nk');

/** nkctl lines that attach or detach a mode's program on every netkit pod's peer hook, through its primary. */
const netkitPodLines = (ctx: LabContext, node: LabNode, op: 'attach' | 'detach', mode: Mode) =>
  node.pods.map((pod) => `${op} peer ${pod.hostDev} ${netkitProg(ctx, node, mode)}`);

/** Run nkctl lines in the node's namespace in one process (bpf/user/nkctl.c batch mode). */
async function nkctlBatch(ctx: LabContext, node: LabNode, lines: string[], signal?: AbortSignal): Promise<void> {
  if (!lines.length) return;
  await ctx.backend
    .exec(node.netns)
    .run([join(ctx.objDir, 'nkctl'), 'batch'], { input: `${lines.join('\n')}\n`, signal, needsBpffs: true });
}

type Mode = HostRoutingMode;

/** Load the node's programs and fill its endpoints map; attach for the profile's mode. */
export async function deployHostRouting(ctx: LabContext, node: LabNode, links: LinkFacts[], attach: boolean): Promise<void> {
  const p = pins(ctx, node);
  const { signal } = ctx;
  const root = ctx.backend.root(node.name);
  await root.run(['mkdir', '-p', p.dir], { signal }); // bpftool pins only into an existing parent
  await root.run(
    ['bpftool', 'prog', 'loadall', join(ctx.objDir, objectFor(HOST_ROUTING_OBJ, nodeHook(ctx, node.name))), p.progs, 'pinmaps', p.maps],
    {
      signal,
    },
  );
  const byName = new Map(links.map((l) => [l.ifname, l]));
  // The pod side's MAC is only visible in its own namespace: one nsconf reads every pod's.
  const podMacs = (await readPodLinks(root, ctx.objDir, node.pods, signal)).map(linkMac);
  const lines = node.pods.flatMap((pod, i) => {
    const host = byName.get(pod.hostDev)!;
    const value = endpointValue({ ifindex: host.ifindex, mac: podMacs[i], nodeMac: linkMac(host) });
    return [pod.ipv4, pod.ipv6]
      .filter((a): a is string => !!a)
      .map((a) => `map update pinned ${p.endpoints} key hex ${endpointKey(a)} value hex ${value}`);
  });
  if (lines.length) await root.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal });
  if (attach)
    await attachPinned(
      ctx.backend.exec(node.netns),
      nodeHook(ctx, node.name),
      'ingress',
      attachments(ctx, node),
      signal,
      TC_PREF.hostRouting,
    );
  if (isNetkit(ctx, node))
    await nkctlBatch(
      ctx,
      node,
      [
        ...netkitPodLines(ctx, node, 'attach', attach ? 'bpf' : 'legacy'),
        ...node.pods.map((pod) => `attach primary ${pod.hostDev} ${join(p.progs, 'to_pod_nk')}`),
      ],
      signal,
    );
}

/** The node's host-routing mode as the kernel shows it: what runs on its first pod's hook. */
export async function currentHostRouting(ctx: LabContext, node: LabNode, signal?: AbortSignal): Promise<Mode> {
  const exec = ctx.backend.exec(node.netns);
  if (isNetkit(ctx, node)) {
    const pod = node.pods[0];
    if (!pod) return 'legacy';
    const progs = await tcxPrograms(exec, pod.hostDev, signal);
    return progs.some((x) => x.name?.includes('from_pod_nk')) ? 'bpf' : 'legacy';
  }
  const [dev] = attachments(ctx, node)[0] ?? [];
  if (!dev) return 'legacy';
  const names = await attachedNames(exec, dev, 'ingress', signal);
  return names.some((n) => n.includes('from_pod')) ? 'bpf' : 'legacy';
}

/** Switch a running node between bpf and legacy host routing (the backpressure check runs both). */
export async function setHostRouting(ctx: LabContext, node: LabNode, mode: Mode, signal?: AbortSignal): Promise<void> {
  const current = await currentHostRouting(ctx, node, signal);
  if (current === mode) return;
  const exec = ctx.backend.exec(node.netns);
  const pairs = attachments(ctx, node);
  if (isNetkit(ctx, node)) {
    // Attach the new program first: between the two the pod is never blackholed.
    await nkctlBatch(ctx, node, [...netkitPodLines(ctx, node, 'attach', mode), ...netkitPodLines(ctx, node, 'detach', current)], signal);
  }
  // By its tc pref on the clsact fallback: tc NodePort's filters on the same devices stay.
  if (mode === 'bpf') await attachPinned(exec, nodeHook(ctx, node.name), 'ingress', pairs, signal, TC_PREF.hostRouting);
  else
    await detachAll(
      exec,
      nodeHook(ctx, node.name),
      'ingress',
      pairs.map(([dev]) => dev),
      signal,
      TC_PREF.hostRouting,
    );
}
