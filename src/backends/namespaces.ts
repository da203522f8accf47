import { join } from 'node:path';
import { z } from 'zod';
import { LabError } from '../errors.js';
import type { Exec } from '../exec/exec.js';
import type { PodDeviceMode } from '../datapath/devices/devices.js';
import { sizeAttrs, type BigTcpMode } from '../datapath/bigtcp/bigtcp.js';
import { deleteLines, probeLine, readProbes } from '../datapath/bigtcp/probe.js';
import type { Lab, LabNode, Pod } from '../topology/model.js';
import { netemAddLine, netemEnds } from '../datapath/impair/netem.js';
import { ipToNsconf, lines, provisionBatch, tbfBatch, wireConf } from './wiring.js';

/**
 * Namespaces as nodes, pods and peers, on whatever kernel `root` runs commands:
 * this machine's (local backend) or a guest's (qemu backend).
 */

/** Namespaces of these nodes, their pods and their peers, in creation order. */
export function namespacesOf(lab: Lab, nodes: readonly LabNode[]): string[] {
  const names = new Set(nodes.map((n) => n.name));
  return [
    ...nodes.flatMap((n) => [n.netns, ...n.pods.map((p) => p.netns)]),
    // A peer behind several nodes is created with the first of them.
    ...lab.peers.filter((p) => names.has(p.node) && lab.peers.find((q) => q.netns === p.netns) === p).map((p) => p.netns),
  ];
}

/**
 * Create the namespaces and every device pair directly inside them, each device with its
 * BIG TCP sizes. With BIG TCP on anywhere, one probe pair per driver kind is created in the
 * first namespace and read first (TSO probing per kind), and deleted in the batch that creates
 * the devices: three or four processes in all, whatever the number of pods.
 */
export async function createNamespaces(
  root: Exec,
  /** Where bpf/build.sh's outputs are, as `root` sees them (nsconf creates netkit pairs). */
  objDir: string,
  lab: Lab,
  nodes: readonly LabNode[],
  kindOf: (n: LabNode) => PodDeviceMode,
  signal?: AbortSignal,
  /** False when the backend brings its own uplink devices (qemu: a virtio-net pair). */
  vethUplinks = true,
  /** The BIG TCP mode of each node (bigTcpMode from the decisions). */
  modeOf: (n: LabNode) => BigTcpMode = () => 'off',
): Promise<void> {
  const namespaces = namespacesOf(lab, nodes);
  const sized = nodes.filter((n) => modeOf(n) !== 'off');
  // veth always: uplinks and node-to-node links are veth pairs whatever the pod devices are.
  const kinds = sized.length ? [...new Set<PodDeviceMode>(['veth', ...sized.map(kindOf)])] : [];
  const probeNs = namespaces[0]!;
  const adds = namespaces.map((ns) => `netns add ${ns}`);
  const devLines = (tso: Partial<Record<PodDeviceMode, number>>) =>
    provisionBatch(lab, [], kindOf, nodes, vethUplinks, (n, k) => sizeAttrs(modeOf(n), tso[k]))
      .split('\n')
      .filter(Boolean);
  // iproute2's netkit parser keeps its "mode seen" state in globals across the lines of one
  // batch ("duplicate mode"), so netkit pairs are created by nsconf, all in one process.
  const isNetkit = (l: string) => l.includes(' type netkit ');
  const netkitPairs = async (devs: string[]) => {
    const nk = devs.filter(isNetkit);
    if (!nk.length) return;
    await root.run([join(objDir, 'nsconf')], { input: lines(...ipToNsconf(lines(...nk))), signal });
  };
  if (!kinds.length) {
    const devs = devLines({});
    await root.run(['ip', '-batch', '-'], { input: lines(...adds, ...devs.filter((l) => !isNetkit(l))), signal });
    await netkitPairs(devs);
    return;
  }
  await root.run(['ip', '-batch', '-'], { input: lines(...adds, ...(kinds.includes('veth') ? [probeLine('veth', probeNs)] : [])), signal });
  if (kinds.includes('netkit')) await root.run(['ip', ...probeLine('netkit', probeNs).split(' ')], { signal });
  const devs = devLines(await readProbes(root, probeNs, kinds, signal));
  // Inside the probe namespace, so the probe pairs can be deleted by name; `netns NAME`
  // still places every device where it belongs.
  const batch = [...deleteLines(kinds), ...devs.filter((l) => !isNetkit(l))];
  await root.run(['ip', '-n', probeNs, '-batch', '-'], { input: lines(...batch), signal });
  await netkitPairs(devs);
}

/**
 * Addresses, routes, forwarding and bottlenecks of one node, its pods and its peer: one
 * bpf/user/nsconf process enters each namespace in turn and speaks rtnetlink (no process per
 * namespace), then one `tc -batch` adds the node's bottlenecks and netems (one more tc for the peer's netem).
 */
export async function wireNamespaces(
  root: Exec,
  exec: (netns: string) => Exec,
  lab: Lab,
  node: LabNode,
  kind: PodDeviceMode,
  /** Where bpf/build.sh's outputs are, as the node sees them (nsconf is there). */
  objDir: string,
  signal?: AbortSignal,
): Promise<void> {
  await root.run([join(objDir, 'nsconf')], { input: wireConf(lab, node, kind), signal });
  const ends = netemEnds(lab, node);
  const here = ends.filter((e) => e.netns === node.netns).map(netemAddLine);
  const tc = (tbfBatch(lab, node) ?? '') + (here.length ? lines(...here) : '');
  if (tc) await exec(node.netns).run(['tc', '-batch', '-'], { input: tc, signal });
  for (const e of ends.filter((x) => x.netns !== node.netns)) await exec(e.netns).run(['tc', ...netemAddLine(e).split(' ')], { signal });
}

/** One device as bpf/user/nsconf.c's `show` prints it (RTM_GETLINK). */
const Shown = z.object({ netns: z.string(), ifname: z.string(), ifindex: z.number(), address: z.string() });
export type ShownLink = z.infer<typeof Shown>;

/**
 * Each pod's own device as the kernel reports it (its MAC is visible only inside the pod's
 * namespace): one nsconf process for all pods of a node, in the order of `pods`.
 */
export async function readPodLinks(root: Exec, objDir: string, pods: readonly Pod[], signal?: AbortSignal): Promise<ShownLink[]> {
  if (!pods.length) return [];
  const r = await root.run([join(objDir, 'nsconf')], { input: lines(...pods.flatMap((p) => [`ns ${p.netns}`, `show ${p.dev}`])), signal });
  const shown = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => Shown.parse(JSON.parse(l)));
  return pods.map((p) => {
    const s = shown.find((x) => x.netns === p.netns && x.ifname === p.dev);
    if (!s) throw new LabError('E_LAB_FAILED', `nsconf showed no ${p.dev} in ${p.netns} on ${root.where}`);
    return s;
  });
}
