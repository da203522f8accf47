import type { Exec } from '../exec/exec.js';
import type { KernelFacts } from '../kernel/facts.js';
import type { Journal } from '../lifecycle/journal.js';
import type { Lab, LabNode } from '../topology/model.js';

/** What every step of a lab's life gets: the lab, where it runs, and the journal. */
export interface LabContext {
  lab: Lab;
  backend: Backend;
  facts: KernelFacts;
  journal: Journal;
  signal: AbortSignal;
  /** Progress for a person watching a long step. */
  progress(msg: string): void;
  /** Root of the lab's pinned BPF objects. */
  bpfDir: string;
  /** Directory of the built BPF objects. */
  objDir: string;
}

/** Where nodes live. One implementation per folder under src/backends. */
export interface Backend {
  readonly kind: string;
  /** Where the lab's BPF objects are, as the nodes see them. */
  readonly objDir: string;
  /** Commands in a node's root context: where bpftool loads programs and pins them. */
  root(node: string): Exec;
  /** Commands inside one of the lab's namespaces on the target. */
  exec(netns: string): Exec;
  /** Read the target's kernel and tool facts. */
  probe(lab: Lab, signal?: AbortSignal): Promise<KernelFacts>;
  /** Create every namespace and device of the lab (journaled first). */
  provision(ctx: LabContext): Promise<void>;
  /** Addresses, routes, sysctls and bottleneck qdiscs of one node and its pods and peer. */
  wireNode(ctx: LabContext, node: LabNode): Promise<void>;
  /** A namespace a check creates on a node (so exec() finds the node that holds it). */
  register?(netns: string, node: string): void;
  /** Reconnect to a lab brought up by another process (lab check). */
  reattach?(ctx: LabContext): Promise<void>;
}
