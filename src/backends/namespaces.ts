import type { Exec } from '../exec/exec.js';
import { PARALLEL, pool } from '../exec/pool.js';
import type { PodDeviceMode } from '../datapath/devices/devices.js';
import type { Lab, LabNode } from '../topology/model.js';
import { nodeBatch, peerBatch, podBatch, provisionBatch, tbfBatch } from './wiring.js';

/**
 * Namespaces as nodes, pods and peers, on whatever kernel `root` runs commands:
 * this machine's (local backend) or a guest's (qemu backend).
 */

/** Namespaces of these nodes, their pods and their peers, in creation order. */
export function namespacesOf(lab: Lab, nodes: readonly LabNode[]): string[] {
  const names = new Set(nodes.map((n) => n.name));
  return [
    ...nodes.flatMap((n) => [n.netns, ...n.pods.map((p) => p.netns)]),
    ...lab.peers.filter((p) => names.has(p.node)).map((p) => p.netns),
  ];
}

/** Create the namespaces and every device pair directly inside them: one `ip -batch`. */
export async function createNamespaces(
  root: Exec,
  lab: Lab,
  nodes: readonly LabNode[],
  kindOf: (n: LabNode) => PodDeviceMode,
  signal?: AbortSignal,
  /** False when the backend brings its own uplink devices (qemu: a virtio-net pair). */
  vethUplinks = true,
): Promise<void> {
  const lines = provisionBatch(lab, namespacesOf(lab, nodes), kindOf, nodes, vethUplinks).trimEnd().split('\n');
  // iproute2 6.15's netkit parser keeps its "mode seen" state across the lines of one
  // batch ("duplicate mode"), so each netkit pair gets its own ip process.
  const netkit = lines.filter((l) => l.includes(' type netkit '));
  await root.run(['ip', '-batch', '-'], { input: lines.filter((l) => !netkit.includes(l)).join('\n') + '\n', signal });
  for (const l of netkit) await root.run(['ip', ...l.split(' ')], { signal });
}

/** Addresses, routes, forwarding and bottlenecks of one node, its pods and its peer. */
export async function wireNamespaces(
  exec: (netns: string) => Exec,
  lab: Lab,
  node: LabNode,
  kind: PodDeviceMode,
  signal?: AbortSignal,
): Promise<void> {
  const nodeExec = exec(node.netns);
  await nodeExec.run(['ip', '-batch', '-'], { input: nodeBatch(lab, node, kind), signal });
  const tbf = tbfBatch(lab, node);
  await Promise.all([
    nodeExec.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { signal }),
    tbf && nodeExec.run(['tc', '-batch', '-'], { input: tbf, signal }),
    node.uplink &&
      exec(lab.peers.find((p) => p.node === node.name)!.netns).run(['ip', '-batch', '-'], { input: peerBatch(lab, node), signal }),
  ]);
  await pool(node.pods, PARALLEL, async (pod) => {
    await exec(pod.netns).run(['ip', '-batch', '-'], { input: podBatch(node, pod, kind), signal });
  });
}
