import { join } from 'node:path';
import { nodeLinks } from '../../backends/wiring.js';
import { factsOf, type LabContext } from '../../lifecycle/context.js';
import type { Lab, LabNode } from '../../topology/model.js';
import { attachPinned, chooseHook, objectFor, TC_PREF, type Hook } from '../hook.js';
import { sockLbPins } from './kpr.js';
import { addr16 } from './maps.js';
import { servicePlan, type ServicePlan } from './plan.js';

/**
 * tc NodePort (bpf/nodeport.c, IPv4): nodeport_in on the uplink's ingress translates
 * node:nodePort to a backend picked from socket-LB's maps (shared by pin, so `lab svc`
 * reaches it), nodeport_out on the uplink's egress and nodeport_rev on the links' ingress
 * turn replies back. Its entries: include/nodeport.h.
 */
export const NODEPORT_OBJ = 'nodeport';

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
const be16 = (n: number) => [(n >>> 8) & 255, n & 255];
const ip4 = (a: string) => addr16(a).slice(0, 4);
/** IPPROTO_TCP, IPPROTO_UDP (include/uapi/linux/in.h). */
const PROTO = { TCP: 6, UDP: 17 } as const;

export function nodePortPins(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  const dir = join(sockLbPins(ctx, node).dir, 'np');
  const maps = join(dir, 'maps');
  return {
    dir,
    progs: join(dir, 'prog'),
    frontends: join(maps, 'np_frontends'),
    local: join(maps, 'np_local'),
    ct: join(maps, 'np_ct'),
    svc: join(maps, 'np_svc'),
    counters: join(maps, 'np_counters'),
  };
}

/** One NodePort frontend on a node: its uplink address, the nodePort and the ClusterIP port behind it. */
export interface NodePortEntry {
  addr: string;
  nodePort: number;
  protocol: 'TCP' | 'UDP';
  vip: string;
  port: number;
  svcId: number;
}

/** The node's NodePort frontends: IPv4 ports with a nodePort, on the node's uplink address. */
export function nodePortEntries(plan: ServicePlan, node: LabNode): NodePortEntry[] {
  const addr = node.uplink?.node4?.addr;
  if (!addr) return [];
  return plan.frontends.flatMap((f) => {
    const nodePort = plan.nodePorts?.get(f.svcId);
    return f.family === 'ipv4' && nodePort ? [{ addr, nodePort, protocol: f.protocol, vip: f.vip, port: f.port, svcId: f.svcId }] : [];
  });
}

/** np_frontends key (struct np_key) and value (struct np_value) as bpftool hex. */
export function npEntry(e: NodePortEntry): { key: string; value: string } {
  return { key: hex([...ip4(e.addr), ...be16(e.nodePort), PROTO[e.protocol], 0]), value: hex([...ip4(e.vip), ...be16(e.port), 0, 0]) };
}

const hookOf = (ctx: LabContext, node: string): Hook | undefined => chooseHook(factsOf(ctx, node)).hook;

/** Does the lab give this node NodePort work (an uplink address and a nodePort)? */
export const wantsNodePort = (lab: Pick<Lab, 'services' | 'nodes' | 'serviceIds'>, node: LabNode) =>
  nodePortEntries(servicePlan(lab), node).length > 0;

/**
 * Load NodePort on a socket-LB node (its maps reused by name), fill np_frontends and np_local,
 * attach: tcx programs go first on their hooks (nkctl, BPF_F_BEFORE), ahead of host routing's
 * from_netdev, whose switch to legacy detaches the hook's last program.
 */
export async function deployNodePort(ctx: LabContext, node: LabNode): Promise<void> {
  const hook = hookOf(ctx, node.name);
  if (!hook || !node.uplink) return;
  const entries = nodePortEntries(servicePlan(ctx.lab), node);
  if (!entries.length) return;
  const s = sockLbPins(ctx, node);
  const p = nodePortPins(ctx, node);
  const root = ctx.backend.root(node.name);
  const { signal } = ctx;
  await root.run(['mkdir', '-p', p.dir], { signal });
  await root.run(
    [
      'bpftool',
      'prog',
      'loadall',
      join(ctx.objDir, objectFor(NODEPORT_OBJ, hook)),
      p.progs,
      'map',
      'name',
      'services',
      'pinned',
      s.services,
      'map',
      'name',
      'backends',
      'pinned',
      s.backends,
      'pinmaps',
      join(p.dir, 'maps'),
    ],
    { signal },
  );
  const lines = [
    ...entries.map((e) => {
      const { key, value } = npEntry(e);
      return `map update pinned ${p.frontends} key hex ${key} value hex ${value}`;
    }),
    ...node.pods.flatMap((pod) => (pod.ipv4 ? [`map update pinned ${p.local} key hex ${hex(ip4(pod.ipv4))} value hex 01 00 00 00`] : [])),
  ];
  await root.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal });
  const exec = ctx.backend.exec(node.netns);
  const up = node.uplink.nodeDev;
  const links = nodeLinks(ctx.lab, node).map((l) => l.dev);
  const prog = (name: string) => join(p.progs, name);
  if (hook === 'tcx') {
    const nk = [
      `attach tcx-ingress ${up} ${prog('nodeport_in')}`,
      `attach tcx-egress ${up} ${prog('nodeport_out')}`,
      ...links.map((d) => `attach tcx-ingress ${d} ${prog('nodeport_rev')}`),
    ];
    await exec.run([join(ctx.objDir, 'nkctl'), 'batch'], { input: `${nk.join('\n')}\n`, signal, needsBpffs: true });
    return;
  }
  await attachPinned(
    exec,
    hook,
    'ingress',
    [[up, prog('nodeport_in')], ...links.map((d): [string, string] => [d, prog('nodeport_rev')])],
    signal,
    TC_PREF.nodePort,
  );
  await attachPinned(exec, hook, 'egress', [[up, prog('nodeport_out')]], signal, TC_PREF.nodePort);
}

/**
 * After `lab svc`: the node's np_frontends as the new service set has them (entries of
 * the old set deleted, the new written); NodePort loaded first if the node had none.
 */
export async function syncNodePort(ctx: LabContext, node: LabNode, before: Lab, after: Lab): Promise<void> {
  const now = nodePortEntries(servicePlan(after), node);
  const root = ctx.backend.root(node.name);
  const p = nodePortPins(ctx, node);
  const loaded = (await root.run(['test', '-e', p.frontends], { nothrow: true, signal: ctx.signal })).code === 0;
  if (!loaded) {
    if (now.length) await deployNodePort({ ...ctx, lab: after }, node);
    return;
  }
  const keep = new Set(now.map((e) => npEntry(e).key));
  const lines = [
    ...nodePortEntries(servicePlan(before), node)
      .map((e) => npEntry(e).key)
      .filter((k) => !keep.has(k))
      .map((k) => `map delete pinned ${p.frontends} key hex ${k}`),
    ...now.map((e) => {
      const { key, value } = npEntry(e);
      return `map update pinned ${p.frontends} key hex ${key} value hex ${value}`;
    }),
  ];
  if (lines.length) await root.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal: ctx.signal });
}
