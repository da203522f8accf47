import { all, hasConfig, needKernel, needTool, type KernelFacts } from '../../kernel/facts.js';
import type { Datapath } from '../../topology/schema.js';
import type { Decision, FeatureInfo } from '../feature.js';

export interface PodDevicePlan {
  kind: 'veth' | 'netkit';
  decision: Decision;
}

/** netkit needs the kernel driver (6.7+, CONFIG_NETKIT) and iproute2 6.7+ to create it. */
function netkitVerdict(facts: KernelFacts) {
  return all(needKernel(facts, 6, 7, 'netkit arrived in 6.7'), hasConfig(facts, 'CONFIG_NETKIT', 'netkit'), needTool(facts, 'ip', [6, 7], 'iproute2 learned netkit in 6.7'));
}

export const podDevice: FeatureInfo = {
  id: 'pod-device',
  title: 'Pod devices (veth, or netkit where the kernel has it)',
  requires: netkitVerdict,
  decide(facts, dp: Datapath, node): Decision {
    const nk = netkitVerdict(facts);
    const base = { feature: 'pod-device' as const, node };
    if (dp.podDevice === 'veth') return { ...base, status: 'applied', detail: 'veth (asked for)' };
    if (nk.ok) return { ...base, status: 'applied', detail: 'netkit (L3 mode)' };
    if (dp.podDevice === 'auto') return { ...base, status: 'fallback', detail: `veth instead of netkit: ${nk.reason}` };
    return { ...base, status: 'declined', detail: `netkit asked for but unavailable: ${nk.reason}` };
  },
};

export function podDevicePlan(facts: KernelFacts, dp: Datapath, node: string): PodDevicePlan {
  const decision = podDevice.decide(facts, dp, node);
  return { kind: decision.detail.startsWith('netkit') ? 'netkit' : 'veth', decision };
}
