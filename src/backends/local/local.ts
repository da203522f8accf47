import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LabError } from '../../errors.js';
import { HostExec, NetnsExec, type Exec } from '../../exec/exec.js';
import { labOfProcess } from '../../exec/process.js';
import { probeLocal, type KernelFacts } from '../../kernel/facts.js';
import { BPF_OBJ_DIR } from '../../paths.js';
import { podDeviceKind } from '../../datapath/devices/devices.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { JournalEntry } from '../../lifecycle/journal.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Backend, DestroyResult, DoctorSection, NodeStatus } from '../backend.js';
import { destroyHostObjects } from '../host-objects.js';
import { maxNetNamespaces, netnsRefusal } from '../netns-limit.js';
import { netnsMemoryRefusal, readMeminfo } from '../netns-memory.js';
import { bigTcpMode } from '../../datapath/bigtcp/bigtcp.js';
import { createNamespaces, namespacesOf, wireNamespaces } from '../namespaces.js';

export const LOCAL = 'local';

/**
 * The embedded default: every node, pod and peer is a network namespace on this
 * machine's own kernel. The host's own namespace and devices are never touched.
 */
export class LocalBackend implements Backend {
  readonly kind = LOCAL;
  private readonly host: Exec = new HostExec();
  readonly objDir = BPF_OBJ_DIR;

  root(): Exec {
    return this.host;
  }

  exec(netns: string): Exec {
    return new NetnsExec(netns);
  }

  probe(lab: Lab): Promise<KernelFacts> {
    // Refused before anything exists: past the limit, `ip netns add` fails midway through provision.
    const existing = existsSync('/run/netns') ? readdirSync('/run/netns').length : 0;
    const need = namespacesOf(lab, lab.nodes).length;
    const tooMany = netnsRefusal(need, maxNetNamespaces(), existing) ?? netnsMemoryRefusal(need, readMeminfo());
    if (tooMany) return Promise.reject(tooMany);
    return probeLocal(this.host);
  }

  async provision(ctx: LabContext): Promise<void> {
    const { lab, journal } = ctx;
    ctx.progress(`creating ${namespacesOf(lab, lab.nodes).length} namespaces and their links`);
    const [pinDir] = journal.record({ backend: this.kind }, [{ kind: 'pin', path: ctx.bpfDir }]);
    mkdirSync(dirname(ctx.bpfDir), { recursive: true });
    try {
      // Not recursive: a pin dir this lab did not create is not adopted (teardown would remove it whole).
      mkdirSync(ctx.bpfDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      journal.gone([pinDir.seq]);
      journal.close();
      throw new LabError(
        'E_LAB_EXISTS',
        `${ctx.bpfDir} exists but lab '${lab.name}' did not create it`,
        'remove it by hand if it is yours',
      );
    }
    for (const n of lab.nodes)
      journal.record(
        { backend: this.kind, node: n.name },
        namespacesOf(lab, [n]).map((name) => ({ kind: 'netns' as const, name })),
      );
    await createNamespaces(
      this.host,
      this.objDir,
      lab,
      lab.nodes,
      (n) => podDeviceKind(ctx, n),
      ctx.signal,
      true,
      (n) => bigTcpMode(ctx, n),
    );
  }

  async wireNode(ctx: LabContext, node: LabNode): Promise<void> {
    await wireNamespaces(this.host, (ns) => this.exec(ns), ctx.lab, node, podDeviceKind(ctx, node), this.objDir, ctx.signal);
  }

  destroy(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult> {
    return destroyHostObjects(entries, this.host, progress);
  }

  status(entries: JournalEntry[]): NodeStatus[] {
    // A node is its own namespace: the first netns journaled for it.
    const nodes = new Map<string, string>();
    for (const e of entries) if (e.owner.node && e.obj.kind === 'netns' && !nodes.has(e.owner.node)) nodes.set(e.owner.node, e.obj.name);
    return [...nodes].map(([node, netns]) => ({ node, kind: 'netns', where: netns, running: existsSync(`/run/netns/${netns}`) }));
  }

  async doctor(): Promise<DoctorSection> {
    return { backend: this.kind, facts: { nodes: "network namespaces on this machine's kernel (see the kernel facts above)" } };
  }

  /**
   * lab node kill: the lab's processes in the node's namespaces (node and pods) die by SIGKILL; the
   * namespaces, devices and pinned programs stay, as they would on a host whose agents crashed.
   */
  async killNode(ctx: LabContext, node: LabNode): Promise<string> {
    const killed: number[] = [];
    for (const ns of [node.netns, ...node.pods.map((p) => p.netns)]) {
      const r = await this.host.run(['ip', 'netns', 'pids', ns], { nothrow: true });
      for (const pid of r.stdout.split('\n').filter(Boolean).map(Number))
        if (labOfProcess(pid) === ctx.lab.name) {
          try {
            process.kill(pid, 'SIGKILL');
            killed.push(pid);
          } catch {
            /* exited meanwhile */
          }
        }
    }
    return `node ${node.name}: namespaces kept, ${killed.length} lab process(es) killed${killed.length ? ` (${killed.join(', ')})` : ''}`;
  }

  /** lab node restart: nothing to boot; the namespaces and the datapath never left the kernel. */
  async restartNode(_ctx: LabContext, node: LabNode): Promise<{ rewire: boolean; detail: string }> {
    return {
      rewire: false,
      detail: `node ${node.name}: its namespaces and datapath stayed in the kernel; no lab process runs on a node by itself`,
    };
  }

  logs(): [] {
    return [];
  }

  timing(): 'native' {
    return 'native';
  }
}
