import type { Exec } from '../exec/exec.js';
import type { KernelFacts } from '../kernel/facts.js';
import type { LabContext } from '../lifecycle/context.js';
import type { JournalEntry } from '../lifecycle/journal.js';
import type { Measurer } from '../measure/measurer.js';
import type { Lab, LabNode } from '../topology/model.js';

/** What destroy() did with the entries it was handed. */
export interface DestroyResult {
  /** Sequence numbers of the entries that are gone (removed, or never created). */
  gone: number[];
  /** Objects that could not be removed, with why; the journal keeps them for the next `lab down`. */
  left: string[];
}

/** One node as `lab status` shows it, from the journal and the machine. */
export interface NodeStatus {
  node: string;
  /** What holds the node: a namespace, a VM, a host. */
  kind: string;
  /** Where it is (namespace name, VM directory, host). */
  where: string;
  running: boolean;
}

/** Files worth keeping beside a report (a VM's console log). */
export interface LogFile {
  node: string;
  path: string;
  /** File name in the report directory. */
  name: string;
}

/** A backend's section of `lab doctor`: what it needs here and whether it is there. */
export interface DoctorSection {
  backend: string;
  /** One line per fact: label → value. */
  facts: Record<string, string>;
  /** Extra tables (e.g. the kernel catalogue), as header + rows. */
  tables?: { title: string; header: string[]; rows: string[][] }[];
}

/** How timing measured on this backend may be read (throughput claims are not judged when emulated). */
export type Timing = 'native' | 'emulated';

/**
 * Where nodes live. One folder per backend under src/backends, registered in
 * registry.ts. A backend creates, wires, runs commands on, reports and destroys its
 * nodes; everything it creates is journaled under its own kind first.
 */
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
  /** Create every node with its namespaces and devices (journaled first). */
  provision(ctx: LabContext): Promise<void>;
  /** Addresses, routes, sysctls and bottleneck qdiscs of one node and its pods and peer. */
  wireNode(ctx: LabContext, node: LabNode): Promise<void>;
  /**
   * Remove journal entries this backend owns. Teardown hands over runs of consecutive
   * entries in reverse creation order; a backend may batch within a run, never reorder.
   */
  destroy(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult>;
  /** Nodes of a lab as the machine shows them now (from the journal's entries of this backend). */
  status(entries: JournalEntry[]): NodeStatus[];
  /** What `lab doctor` shows for this backend. */
  doctor(): Promise<DoctorSection>;
  /** Log files of a lab's nodes, copied beside its report. */
  logs(lab: Lab): LogFile[];
  /** Whether timing on this backend is native or emulated (known after provision or reattach). */
  timing(): Timing;
  /** A namespace a check creates on a node (so exec() finds the node that holds it). */
  register?(netns: string, node: string): void;
  /** Reconnect to a lab brought up by another process (lab check). */
  reattach?(ctx: LabContext): Promise<void>;
  /** Let the process exit: close connections (what runs keeps running). */
  close?(): void;
  /** Who answers the measurement API on this backend; absent: the kernel (src/measure/measurer.ts). */
  measurer?(): Measurer;
  /** lab node kill: stop a node as a crash would; says what it did. */
  killNode?(ctx: LabContext, node: LabNode): Promise<string>;
  /** lab node restart: bring a node back; `rewire`: the caller wires and deploys it again (a fresh VM). */
  restartNode?(ctx: LabContext, node: LabNode): Promise<{ rewire: boolean; detail: string }>;
  /** A node's own kernel facts where nodes differ (each ssh target runs its own kernel); absent: the probe's facts hold for all. */
  nodeFacts?(node: string): KernelFacts | undefined;
  /** Put a tool built on this machine onto a node (copied once, checksummed, journaled); returns its path there. */
  nodeTool?(ctx: LabContext, node: LabNode, localPath: string): Promise<string>;
  /** The core a node's NIC profile keeps for applications (apart from the NIC's IRQs); undefined: none chosen. */
  appCore?(node: string): number | undefined;
  /** Journal a process started on a node, so teardown kills it even after kill -9; returns what marks it gone. */
  trackProcess?(ctx: LabContext, node: string, pid: number, comm: string): () => void;
}
