import { join } from 'node:path';
import { CGROUP_ROOT_NAME } from '../../backends/host-objects.js';
import { LabError } from '../../errors.js';
import { all, hasConfig, needKernel, needTool, type KernelFacts, type Verdict } from '../../kernel/facts.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { LabNode, Pod } from '../../topology/model.js';
import type { KubeProxyMode } from '../../topology/schema.js';
import { decisionOf, type Decision, type Feature } from '../feature.js';
import { nodePinDir } from '../host-routing/host-routing.js';
import { kubeProxyRules } from './iptables.js';
import { backendEntry, frontendLines } from './maps.js';
import { deployNodePort } from './nodeport.js';
import { servicePlan } from './plan.js';

export type { KubeProxyMode } from '../../topology/schema.js';

export const SOCK_LB_OBJ = 'sock_lb.o';

/** The cgroup sock_addr hooks socket-LB attaches, by bpftool's attach type name and the program's. */
export const SOCK_LB_HOOKS = [
  ['connect4', 'sock4_connect'],
  ['connect6', 'sock6_connect'],
  ['sendmsg4', 'sock4_sendmsg'],
  ['sendmsg6', 'sock6_sendmsg'],
  ['recvmsg4', 'sock4_recvmsg'],
  ['recvmsg6', 'sock6_recvmsg'],
  ['getpeername4', 'sock4_getpeername'],
  ['getpeername6', 'sock6_getpeername'],
] as const;

/** Can this target run socket-LB? */
export function sockLbVerdict(facts: KernelFacts): Verdict {
  return all(
    hasConfig(facts, 'CONFIG_CGROUP_BPF'),
    // getpeername hooks arrived in 5.8; bpf_set_retval (the no-backend errno) in 5.18.
    needKernel(facts, 5, 18, 'cgroup getpeername hooks need 5.8, bpf_set_retval 5.18'),
    needTool(facts, 'bpftool'),
    facts.bpffs ? { ok: true } : { ok: false, reason: 'bpffs is not mounted at /sys/fs/bpf' },
    facts.cgroup2 ? { ok: true } : { ok: false, reason: 'cgroup v2 is not mounted (socket-LB attaches to a cgroup per pod)' },
  );
}

/** Can this target run kube-proxy's iptables rules? */
export function iptablesVerdict(facts: KernelFacts): Verdict {
  return all(
    hasConfig(facts, 'CONFIG_NF_NAT'),
    hasConfig(facts, 'CONFIG_NETFILTER_XT_NAT', 'xt_nat'),
    hasConfig(facts, 'CONFIG_NETFILTER_XT_MATCH_STATISTIC', 'xt_statistic'),
  );
}

/**
 * Kubernetes services on a node. bpf: socket-LB, cgroup programs on every pod's cgroup
 * translate a ClusterIP at connect/sendmsg (bpf/sock_lb.c); iptables: kube-proxy's
 * iptables mode in the node's namespace, the control; none: services are not handled.
 */
export const kubeProxy: Feature<KubeProxyMode> = {
  id: 'kube-proxy',
  title: 'Services: socket-LB (kube-proxy replacement) or kube-proxy iptables rules',
  requires: sockLbVerdict,
  decide(facts, dp, node): Decision<KubeProxyMode> {
    const base = { feature: 'kube-proxy', node };
    if (dp.kubeProxy === 'none') return { ...base, status: 'off', mode: 'none', detail: 'none: services are not handled' };
    if (dp.kubeProxy === 'iptables') {
      const v = iptablesVerdict(facts);
      if (!v.ok) return { ...base, status: 'declined', mode: 'none', detail: `kube-proxy iptables rules: ${v.reason}` };
      return { ...base, status: 'applied', mode: 'iptables', detail: "iptables: kube-proxy's rules in the node (iptables-restore)" };
    }
    const v = sockLbVerdict(facts);
    if (!v.ok)
      return { ...base, status: 'fallback', mode: 'none', detail: `none: socket-LB unavailable (${v.reason}); services not handled` };
    return {
      ...base,
      status: 'applied',
      mode: 'bpf',
      detail: 'bpf: socket-LB on each pod cgroup (connect, sendmsg, recvmsg, getpeername; v4 and v6)',
    };
  },
  async apply(ctx, node, decision) {
    if (!ctx.lab.services.length) return;
    if (decision.mode === 'bpf') {
      await deploySockLb(ctx, node);
      await deployNodePort(ctx, node);
    } else if (decision.mode === 'iptables') await applyIptables(ctx, node);
  },
};

/** The node's cgroup (programs attach here; its pods' cgroups are children and inherit them). */
export function nodeCgroup(ctx: Pick<LabContext, 'facts' | 'lab'>, node: Pick<LabNode, 'name'>): string {
  if (!ctx.facts.cgroup2) throw new LabError('E_INTERNAL', 'no cgroup v2 mount');
  return join(ctx.facts.cgroup2, CGROUP_ROOT_NAME, `${ctx.lab.name}.${node.name}`);
}

/**
 * The cgroup processes "in" a pod join, when socket-LB runs on its node (else undefined:
 * a process in the pod is just in its namespace).
 */
export function podCgroup(ctx: Pick<LabContext, 'facts' | 'lab' | 'decisions'>, node: LabNode, pod: Pod): string | undefined {
  if (decisionOf(ctx.decisions, kubeProxy, node.name)?.mode !== 'bpf' || !ctx.lab.services.length) return undefined;
  return join(nodeCgroup(ctx, node), pod.name);
}

export function sockLbPins(ctx: Pick<LabContext, 'bpfDir'>, node: LabNode) {
  const dir = join(nodePinDir(ctx, node), 'kpr');
  const maps = join(dir, 'maps');
  return {
    dir,
    progs: join(dir, 'prog'),
    services: join(maps, 'services'),
    backends: join(maps, 'backends'),
    affinity: join(maps, 'affinity'),
    revnat: join(maps, 'revnat'),
    counters: join(maps, 'slb_counters'),
  };
}

/** Load socket-LB, create the node's and pods' cgroups, attach at the node's, fill the maps. */
export async function deploySockLb(ctx: LabContext, node: LabNode): Promise<void> {
  const owner = { backend: ctx.backend.kind, node: node.name };
  const cg = nodeCgroup(ctx, node);
  const pods = node.pods.map((p) => join(cg, p.name));
  const p = sockLbPins(ctx, node);
  ctx.journal.record(owner, [
    { kind: 'cgroup', path: cg },
    ...pods.map((path) => ({ kind: 'cgroup' as const, path })),
    { kind: 'pin', path: p.dir },
  ]);
  const root = ctx.backend.root(node.name);
  const { signal } = ctx;
  await root.run(['mkdir', '-p', cg, ...pods, p.dir], { signal });
  await root.run(['bpftool', 'prog', 'loadall', join(ctx.objDir, SOCK_LB_OBJ), p.progs, 'pinmaps', join(p.dir, 'maps')], { signal });
  const plan = servicePlan(ctx.lab);
  const lines = [
    ...SOCK_LB_HOOKS.map(([hook, prog]) => `cgroup attach ${cg} ${hook} pinned ${join(p.progs, prog)}`),
    ...plan.backends.map((b) => {
      const e = backendEntry(b);
      return `map update pinned ${p.backends} key hex ${e.key} value hex ${e.value}`;
    }),
    ...plan.frontends.flatMap((f) => frontendLines(p, f, 1)),
  ];
  await root.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal });
}

/**
 * kube-proxy's iptables rules in the node's namespace; they go with the namespace.
 * resync: kube-proxy's full resync after `lab svc`, each table rewritten whole (no --noflush;
 * the lab puts no other rule in a node's nat and filter tables), every family even when empty.
 */
export async function applyIptables(ctx: LabContext, node: LabNode, resync = false): Promise<void> {
  const exec = ctx.backend.exec(node.netns);
  const plan = servicePlan(ctx.lab);
  for (const [family, tool] of [
    ['ipv4', 'iptables-restore'],
    ['ipv6', 'ip6tables-restore'],
  ] as const)
    if (ctx.lab.families.includes(family) && (resync || plan.frontends.some((f) => f.family === family)))
      await exec.run([tool, '-w', ...(resync ? [] : ['--noflush'])], { input: kubeProxyRules(plan, family), signal: ctx.signal });
}

/**
 * Take kube-proxy's rules off a node again (a check that ran the control on a socket-LB
 * node): iptables-restore without --noflush empties the nat and filter tables it is
 * given and deletes their chains. Only for nodes whose tables held nothing else.
 */
export async function flushIptables(ctx: LabContext, node: LabNode, signal?: AbortSignal): Promise<void> {
  const exec = ctx.backend.exec(node.netns);
  for (const tool of ['iptables-restore', 'ip6tables-restore'])
    await exec.run([tool, '-w'], { input: '*filter\nCOMMIT\n*nat\nCOMMIT\n', signal });
}
