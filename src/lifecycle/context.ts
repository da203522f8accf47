import { setMaxListeners } from 'node:events';
import type { Backend } from '../backends/backend.js';
import type { Decision } from '../datapath/feature.js';
import type { KernelFacts } from '../kernel/facts.js';
import type { Lab } from '../topology/model.js';
import type { Journal } from './journal.js';

/** What every step of a lab's life gets: the lab, where it runs, what was decided, and the journal. */
export interface LabContext {
  lab: Lab;
  backend: Backend;
  facts: KernelFacts;
  /** Every feature's decision per node, made at probe. */
  decisions: Decision[];
  journal: Journal;
  /** The running step's own signal: stopping the step (an interrupt) kills its commands. */
  signal: AbortSignal;
  /** Progress for a person watching a long step. */
  progress(msg: string): void;
  /** Root of the lab's pinned BPF objects. */
  bpfDir: string;
  /** Directory of the built BPF objects. */
  objDir: string;
}

/** The same context for a step that runs under its own actor's signal. */
export function withSignal(ctx: LabContext, signal: AbortSignal): LabContext {
  quiet(signal);
  return { ...ctx, signal };
}

/** Every running command of a step listens on its signal: hundreds at once are expected, not a leak. */
export function quiet(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}

/** One node's kernel facts: its own where the backend probes nodes apart (ssh targets), else the lab's. */
export const factsOf = (ctx: Pick<LabContext, 'facts' | 'backend'>, node: string): KernelFacts =>
  ctx.backend.nodeFacts?.(node) ?? ctx.facts;
