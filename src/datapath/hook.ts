import { all, hasConfig, needKernel, needTool, type KernelFacts, type Verdict } from '../kernel/facts.js';
import type { Exec } from '../exec/exec.js';
import { tcxPrograms } from '../measure/tcx.js';
import { factsOf, type LabContext } from '../lifecycle/context.js';

/**
 * Where the lab's tc programs attach: tcx (6.6+, bpf_mprog) or, on older kernels,
 * the classic clsact qdisc with a cls_bpf direct-action filter. The same C source
 * is built for both (bpf/build.sh: NAME.o and NAME_tc.o).
 */
export type Hook = 'tcx' | 'tc';
export type Direction = 'ingress' | 'egress';

export function tcxVerdict(facts: KernelFacts): Verdict {
  return all(
    needKernel(facts, 6, 6, 'tcx arrived in 6.6'),
    hasConfig(facts, 'CONFIG_NET_XGRESS'),
    needTool(facts, 'bpftool', [7, 3], 'bpftool attaches tcx from 7.3'),
  );
}

export function tcVerdict(facts: KernelFacts): Verdict {
  return all(hasConfig(facts, 'CONFIG_NET_CLS_BPF', 'cls_bpf'), hasConfig(facts, 'CONFIG_NET_SCH_INGRESS', 'sch_ingress'));
}

/** tcx where the kernel has it, else tc; undefined (with the reason) when neither. */
export function chooseHook(facts: KernelFacts): { hook: Hook; note?: string } | { hook?: undefined; reason: string } {
  // DPL_HOOK=tc takes the fallback on a kernel that has tcx, to exercise it there.
  if (process.env.DPL_HOOK === 'tc' && tcVerdict(facts).ok) return { hook: 'tc', note: 'tc clsact + cls_bpf instead of tcx: DPL_HOOK=tc' };
  const tcx = tcxVerdict(facts);
  if (tcx.ok) return { hook: 'tcx' };
  const tc = tcVerdict(facts);
  if (tc.ok) return { hook: 'tc', note: `tc clsact + cls_bpf instead of tcx: ${tcx.reason}` };
  return { reason: `${tcx.reason}; and no tc fallback: ${(tc as { reason: string }).reason}` };
}

/** The object built for a hook: host_routing.o or host_routing_tc.o. */
export const objectFor = (base: string, hook: Hook) => (hook === 'tc' ? `${base}_tc.o` : `${base}.o`);

/**
 * tc filter priorities (`pref`) of the programs that share a hook on the clsact fallback: a lower
 * pref runs first (net/sched/cls_api.c walks the chain in priority order), and a program detached
 * by its pref leaves the others in place. tcx orders and detaches by program instead.
 */
export const TC_PREF = { nodePort: 1, xlDecap: 5, hostRouting: 10 } as const;

/** Attach pinned programs to devices of one namespace, in one batch (`pref`: the tc filter priority). */
export async function attachPinned(
  exec: Exec,
  hook: Hook,
  dir: Direction,
  pairs: [dev: string, prog: string][],
  signal?: AbortSignal,
  pref?: number,
): Promise<void> {
  if (!pairs.length) return;
  if (hook === 'tcx') {
    const lines = pairs.map(([dev, prog]) => `net attach tcx_${dir} pinned ${prog} dev ${dev}`);
    await exec.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal });
    return;
  }
  const lines = pairs.flatMap(([dev, prog]) => [
    `qdisc replace dev ${dev} clsact`,
    `filter add dev ${dev} ${dir}${pref ? ` pref ${pref}` : ''} bpf direct-action object-pinned ${prog}`,
  ]);
  await exec.run(['tc', '-batch', '-'], { input: lines.join('\n') + '\n', signal, needsBpffs: true });
}

/**
 * Remove the lab's programs from these devices' hooks: with tcx the last one attached; with tc
 * every filter, or only those at `pref` when given (other programs on the hook stay).
 */
export async function detachAll(
  exec: Exec,
  hook: Hook,
  dir: Direction,
  devs: string[],
  signal?: AbortSignal,
  pref?: number,
): Promise<void> {
  if (!devs.length) return;
  if (hook === 'tcx') {
    await exec.run(['bpftool', 'batch', 'file', '-'], {
      input: devs.map((d) => `net detach tcx_${dir} dev ${d}`).join('\n') + '\n',
      signal,
    });
    return;
  }
  const which = pref ? ` pref ${pref}` : '';
  await exec.run(['tc', '-batch', '-'], { input: devs.map((d) => `filter del dev ${d} ${dir}${which}`).join('\n') + '\n', signal });
}

/** Names of the programs on a device's hook, as bpftool lists them (tcx and clsact alike). */
export async function attachedNames(exec: Exec, dev: string, dir: Direction, signal?: AbortSignal): Promise<string[]> {
  const progs = await tcxPrograms(exec, dev, signal);
  return progs.filter((p) => p.kind.endsWith(`/${dir}`)).map((p) => p.name ?? '');
}

/** The hook a node's own kernel offers (probe refused the lab before provisioning if it has none). */
export const nodeHook = (ctx: Pick<LabContext, 'facts' | 'backend'>, node: string): Hook =>
  (chooseHook(factsOf(ctx, node)) as { hook: Hook }).hook;
