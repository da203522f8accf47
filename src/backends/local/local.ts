import { mkdirSync } from 'node:fs';
import { HostExec, NetnsExec, type Exec } from '../../exec/exec.js';
import { probeLocal, type KernelFacts } from '../../kernel/facts.js';
import { BPF_OBJ_DIR } from '../../paths.js';
import { podDevicePlan } from '../../datapath/devices/devices.js';
import type { Backend, LabContext } from '../backend.js';
import type { LabNode } from '../../topology/model.js';
import { createNamespaces, namespacesOf, wireNamespaces } from '../namespaces.js';

/**
 * The embedded default: every node, pod and peer is a network namespace on this
 * machine's own kernel. The host's own namespace and devices are never touched.
 */
export class LocalBackend implements Backend {
  readonly kind = 'local';
  private readonly host: Exec = new HostExec();
  readonly objDir = BPF_OBJ_DIR;

  root(): Exec {
    return this.host;
  }

  exec(netns: string): Exec {
    return new NetnsExec(netns);
  }

  probe(): Promise<KernelFacts> {
    return probeLocal(this.host);
  }

  async provision(ctx: LabContext): Promise<void> {
    const { lab, journal } = ctx;
    const namespaces = namespacesOf(lab, lab.nodes);
    ctx.progress(`creating ${namespaces.length} namespaces and their links`);
    journal.record([{ kind: 'pin', path: ctx.bpfDir }, ...namespaces.map((name) => ({ kind: 'netns' as const, name }))]);
    mkdirSync(ctx.bpfDir, { recursive: true });
    await createNamespaces(this.host, lab, lab.nodes, (n) => podDevicePlan(ctx.facts, n.datapath, n.name).kind, ctx.signal);
  }

  async wireNode(ctx: LabContext, node: LabNode): Promise<void> {
    const { kind } = podDevicePlan(ctx.facts, node.datapath, node.name);
    await wireNamespaces((ns) => this.exec(ns), ctx.lab, node, kind, ctx.signal);
  }
}
