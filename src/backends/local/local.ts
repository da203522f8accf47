import { mkdirSync } from 'node:fs';
import { HostExec, NetnsExec, type Exec } from '../../exec/exec.js';
import { PARALLEL, pool } from '../../exec/pool.js';
import { probeLocal, type KernelFacts } from '../../kernel/facts.js';
import { BPF_OBJ_DIR } from '../../paths.js';
import { podDevicePlan } from '../../datapath/devices/devices.js';
import type { Backend, LabContext } from '../backend.js';
import type { LabNode } from '../../topology/model.js';
import { nodeBatch, peerBatch, podBatch, provisionBatch, tbfBatch } from './wiring.js';

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
    const namespaces = [...lab.nodes.flatMap((n) => [n.netns, ...n.pods.map((p) => p.netns)]), ...lab.peers.map((p) => p.netns)];
    ctx.progress(`creating ${namespaces.length} namespaces and their links`);
    journal.record([{ kind: 'pin', path: ctx.bpfDir }, ...namespaces.map((name) => ({ kind: 'netns' as const, name }))]);
    mkdirSync(ctx.bpfDir, { recursive: true });
    const kindOf = (n: LabNode) => podDevicePlan(ctx.facts, n.datapath, n.name).kind;
    await this.host.run(['ip', '-batch', '-'], { input: provisionBatch(lab, namespaces, kindOf), signal: ctx.signal });
  }

  async wireNode(ctx: LabContext, node: LabNode): Promise<void> {
    const { lab, signal } = ctx;
    const { kind } = podDevicePlan(ctx.facts, node.datapath, node.name);
    const nodeExec = this.exec(node.netns);
    await nodeExec.run(['ip', '-batch', '-'], { input: nodeBatch(lab, node, kind), signal });
    const tbf = tbfBatch(lab, node);
    await Promise.all([
      nodeExec.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { signal }),
      tbf && nodeExec.run(['tc', '-batch', '-'], { input: tbf, signal }),
      node.uplink && this.exec(lab.peers.find((p) => p.node === node.name)!.netns).run(['ip', '-batch', '-'], { input: peerBatch(lab, node), signal }),
    ]);
    await pool(node.pods, PARALLEL, async (pod) => {
      await this.exec(pod.netns).run(['ip', '-batch', '-'], { input: podBatch(node, pod, kind), signal });
    });
  }
}
