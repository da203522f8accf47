import type { KernelFacts, Verdict } from '../kernel/facts.js';
import type { Datapath } from '../topology/schema.js';

export type FeatureId = 'pod-device' | 'host-routing' | 'bigtcp';
export type DecisionStatus = 'applied' | 'fallback' | 'declined' | 'off';

/** What a feature did on a node, and why (shown in status, reports and doctor). */
export interface Decision {
  feature: FeatureId;
  node: string;
  status: DecisionStatus;
  detail: string;
}

/** A datapath feature as doctor and the planner see it: what it needs from the kernel. */
export interface FeatureInfo {
  id: FeatureId;
  title: string;
  /** Can this target run the feature at all? */
  requires(facts: KernelFacts): Verdict;
  /** Decide for one node's profile: apply, fall back, or decline (with the reason). */
  decide(facts: KernelFacts, dp: Datapath, node: string): Decision;
}
