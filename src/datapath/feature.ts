import type { KernelFacts, Verdict } from '../kernel/facts.js';
import type { LabContext } from '../lifecycle/context.js';
import type { Lab, LabNode } from '../topology/model.js';
import type { Datapath } from '../topology/schema.js';

export type DecisionStatus = 'applied' | 'fallback' | 'declined' | 'off';

/**
 * What a feature does on one node, and why (status, reports, doctor). `mode` is the
 * typed outcome code reads; `detail` is for people and is never parsed.
 */
export interface Decision<M extends string = string> {
  feature: string;
  node: string;
  status: DecisionStatus;
  /** The mode the feature runs in on this node (e.g. 'netkit' or 'veth'); 'none' when declined. */
  mode: M;
  detail: string;
}

/** What of the topology decide() may read. */
export type DecideLab = Pick<Lab, 'nodes' | 'links' | 'services'>;

/**
 * A datapath feature as a plug-in: a folder under src/datapath/, its C under bpf/, and
 * one line in src/datapath/registry.ts. The lifecycle calls `apply` on every node in
 * registry order and knows no feature by name.
 */
export interface Feature<M extends string = string> {
  readonly id: string;
  readonly title: string;
  /** Can this target run the feature at all (kernel, tools)? */
  requires(facts: KernelFacts): Verdict;
  /**
   * Decide for one node's profile: apply, fall back, leave off, or decline (with the reason). `lab` is the topology
   * being decided, for a feature whose part depends on it (absent where there is none: lab doctor).
   */
  decide(facts: KernelFacts, dp: Datapath, node: string, lab?: DecideLab): Decision<M>;
  /**
   * Deploy on one wired node (called for every decision but `declined`). Records in the
   * journal what it creates before creating it, so teardown removes it after any crash.
   */
  apply?(ctx: LabContext, node: LabNode, decision: Decision<M>): Promise<void>;
  /** Take the feature off a running node (a live change); teardown replays the journal instead. */
  remove?(ctx: LabContext, node: LabNode, decision: Decision<M>): Promise<void>;
}

/** The decision of one feature on one node. */
export function decisionOf<M extends string>(
  decisions: readonly Decision[],
  feature: Feature<M> | string,
  node: string,
): Decision<M> | undefined {
  const id = typeof feature === 'string' ? feature : feature.id;
  return decisions.find((d) => d.feature === id && d.node === node) as Decision<M> | undefined;
}
