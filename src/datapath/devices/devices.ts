import { all, hasConfig, needKernel, needTool, type KernelFacts } from '../../kernel/facts.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { LabNode } from '../../topology/model.js';
import type { Datapath } from '../../topology/schema.js';
import { decisionOf, type Decision, type Feature } from '../feature.js';

export type PodDeviceMode = 'veth' | 'netkit';

/** netkit needs the kernel driver (6.7+, CONFIG_NETKIT) and iproute2 6.7+ to create it. */
function netkitVerdict(facts: KernelFacts) {
  return all(
    needKernel(facts, 6, 7, 'netkit arrived in 6.7'),
    hasConfig(facts, 'CONFIG_NETKIT', 'netkit'),
    needTool(facts, 'ip', [6, 7], 'iproute2 learned netkit in 6.7'),
  );
}

/**
 * Pod devices. The backend creates them with the namespaces (one `ip -batch` for the
 * whole lab), so this feature only decides; it has nothing to apply afterwards.
 */
export const podDevice: Feature<PodDeviceMode> = {
  id: 'pod-device',
  title: 'Pod devices (veth, or netkit where the kernel has it)',
  requires: netkitVerdict,
  decide(facts, dp: Datapath, node): Decision<PodDeviceMode> {
    const nk = netkitVerdict(facts);
    const base = { feature: 'pod-device', node };
    if (dp.podDevice === 'veth') return { ...base, status: 'applied', mode: 'veth', detail: 'veth (asked for)' };
    if (nk.ok) return { ...base, status: 'applied', mode: 'netkit', detail: 'netkit (L3 mode)' };
    if (dp.podDevice === 'auto') return { ...base, status: 'fallback', mode: 'veth', detail: `veth instead of netkit: ${nk.reason}` };
    return { ...base, status: 'declined', mode: 'veth', detail: `netkit asked for but unavailable: ${nk.reason}` };
  },
};

/** The pod device kind decided for a node. */
export function podDeviceKind(ctx: Pick<LabContext, 'decisions'>, node: LabNode): PodDeviceMode {
  return decisionOf(ctx.decisions, podDevice, node.name)?.mode ?? 'veth';
}
