import type { LabContext } from '../lifecycle/context.js';
import type { SnapshotRef } from '../lifecycle/snapshot.js';
import type { Verdict } from '../kernel/facts.js';
import type { CheckId } from '../topology/schema.js';
import type { CheckSpec, Lab, LabNode, Pod } from '../topology/model.js';

/**
 * pass: the kernel showed the claim; fail: the kernel went against it; skip: something
 * the check needs is missing (named); error: the check could not establish the condition
 * it judges under ("could not establish: ..."), so the kernel gave no answer either way.
 */
export type CheckStatus = 'pass' | 'fail' | 'skip' | 'error';

/** What a check found; evidence is the raw kernel output behind the verdict. */
export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  reason: string;
  metrics: Record<string, unknown>;
  threshold?: string;
  evidence: string[];
  ms: number;
  /** The nodes' state captured right after the check failed or errored. */
  snapshot?: SnapshotRef;
  /** Runs the check repeated by design to establish its condition (a queue that did not form), never a verdict retried. */
  retries?: { count: number; why: string };
  /** The nodes' state captured inside the check, before it put back what it changed (src/lifecycle/pre-restore.ts). */
  snapshotBeforeRestore?: SnapshotRef;
}

export interface Check {
  id: CheckId;
  title: string;
  /** One sentence: what a pass proves. */
  proves: string;
  /** Can this machine run the check at all (tools, kernel)? */
  requires(ctx: Pick<LabContext, 'facts'>): Verdict;
  /** Does this lab give the check what it needs (pods, a bottleneck...)? */
  applies(lab: Lab, spec: CheckSpec): Verdict;
  run(ctx: LabContext, spec: CheckSpec): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>>;
}

/** The sending pod: the one the spec names (pod or node/pod), else the first that fits. */
export function pickPod(lab: Lab, spec: CheckSpec, fits: (n: LabNode, p: Pod) => boolean): { node: LabNode; pod: Pod } | undefined {
  for (const node of lab.nodes)
    for (const pod of node.pods) {
      const named = !spec.pod || spec.pod === pod.name || spec.pod === `${node.name}/${pod.name}`;
      if (named && fits(node, pod)) return { node, pod };
    }
  return undefined;
}

export const skip = (reason: string) => ({ status: 'skip' as const, reason, metrics: {}, evidence: [] });

/** The reason of an `error`: the condition the check needed and did not get. */
export const couldNotEstablish = (what: string) => `could not establish: ${what}`;
