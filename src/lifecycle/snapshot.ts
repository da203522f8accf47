import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../exec/exec.js';
import { pool } from '../exec/pool.js';
import type { LabNode } from '../topology/model.js';
import type { LabContext } from './context.js';

/** A snapshot as a check's result links it: where its files are and what could not be captured. */
export interface SnapshotRef {
  /** Directory holding one folder per node. */
  dir: string;
  /** Files written, relative to dir. */
  files: string[];
  /** Commands that failed or timed out, with why (their files hold the same text). */
  missing: string[];
  ms: number;
}

/** One command of a snapshot and the file its output goes to. */
export interface SnapshotCommand {
  /** Path relative to the snapshot dir: node/place/name. */
  file: string;
  exec: Exec;
  argv: string[];
  needsBpffs?: boolean;
  /** Keep only the last lines (a kernel log). */
  tailLines?: number;
}

/** One command must not hang a run: each is killed after this long. */
export const SNAPSHOT_COMMAND_MS = 5_000;
/** Nor may the whole snapshot: commands not started by then are skipped. */
export const SNAPSHOT_DEADLINE_MS = 30_000;
/** Commands at once per node (a node with 100 pods has 700 to run). */
const PER_NODE = 4;
/** At most this many pinned maps are dumped per node. */
const MAX_MAP_DUMPS = 40;
const DMESG_LINES = 200;

/** What a datapath engineer reads first in one namespace: devices, addresses, routes, qdiscs, sockets, counters, attachments. */
function namespaceCommands(node: string, place: string, exec: Exec): SnapshotCommand[] {
  const at = (name: string) => `${node}/${place}/${name}`;
  return [
    { file: at('ip-link.json'), exec, argv: ['ip', '-d', '-s', '-j', 'link', 'show'] },
    { file: at('ip-addr.json'), exec, argv: ['ip', '-j', 'addr', 'show'] },
    { file: at('ip-route4.json'), exec, argv: ['ip', '-j', '-4', 'route', 'show', 'table', 'all'] },
    { file: at('ip-route6.json'), exec, argv: ['ip', '-j', '-6', 'route', 'show', 'table', 'all'] },
    { file: at('tc-qdisc.json'), exec, argv: ['tc', '-s', '-j', 'qdisc', 'show'] },
    { file: at('ss-tmi.txt'), exec, argv: ['ss', '-tmi'] },
    // -s: do not update nstat's history file; -a: absolute values; -z: zero counters too.
    { file: at('nstat.json'), exec, argv: ['nstat', '-asz', '--json'] },
    { file: at('bpftool-net.json'), exec, argv: ['bpftool', '-j', 'net', 'show'], needsBpffs: true },
  ];
}

/** The commands of one node's snapshot that need nothing read first. */
export function snapshotPlan(ctx: Pick<LabContext, 'lab' | 'backend'>, node: LabNode): SnapshotCommand[] {
  const places = [
    { place: 'node', netns: node.netns },
    ...node.pods.map((p) => ({ place: `pod-${p.name}`, netns: p.netns })),
    ...ctx.lab.peers.filter((p) => p.node === node.name).map((p) => ({ place: `peer-${p.name}`, netns: p.netns })),
  ];
  const root = ctx.backend.root(node.name);
  return [
    ...places.flatMap((p) => namespaceCommands(node.name, p.place, ctx.backend.exec(p.netns))),
    { file: `${node.name}/bpftool-prog.json`, exec: root, argv: ['bpftool', '-j', 'prog', 'show'] },
    // -f: each map's pinned paths, which name the lab's maps to dump (a guest has no find).
    { file: `${node.name}/bpftool-map.json`, exec: root, argv: ['bpftool', '-j', '-f', 'map', 'show'] },
    { file: `${node.name}/bpftool-link.json`, exec: root, argv: ['bpftool', '-j', 'link', 'show'] },
    // A VM's kernel log is the node's own; the local backend's would be this machine's, shared by every lab.
    ...(ctx.backend.kind === 'qemu' ? [{ file: `${node.name}/dmesg.txt`, exec: root, argv: ['dmesg'], tailLines: DMESG_LINES }] : []),
  ];
}

/** Devices of an `ip -j link` output, for per-device tc filter dumps. */
export function devicesOf(ipLinkJson: string): string[] {
  try {
    const links = JSON.parse(ipLinkJson) as { ifname?: unknown }[];
    return links.map((l) => l.ifname).filter((n): n is string => typeof n === 'string' && n !== 'lo');
  } catch {
    return [];
  }
}

/**
 * The lab's pinned maps on one node, from `bpftool -j -f map show`: those in the node's own folder
 * (host-routing.ts, nodePinDir) or in no node's (a check's counters); another lab's are not ours.
 */
export function mapPinsOf(mapShowJson: string, bpfDir: string, node: string, nodes: readonly string[]): string[] {
  let maps: { pinned?: unknown }[];
  try {
    maps = JSON.parse(mapShowJson);
  } catch {
    return [];
  }
  if (!Array.isArray(maps)) return [];
  return maps
    .flatMap((m) => (Array.isArray(m.pinned) ? m.pinned.filter((p): p is string => typeof p === 'string') : []))
    .filter((p) => p.startsWith(`${bpfDir}/`))
    .filter((p) => {
      const top = p.slice(bpfDir.length + 1).split('/')[0];
      return top === node || !nodes.includes(top);
    });
}

/**
 * Capture the state of the lab's nodes (all of them: a datapath failure is seldom on one node only) into
 * dir/<node>/..., each node in parallel, every command bounded in time. Never throws: what could not be
 * captured is named in its file and in `missing`.
 */
export async function captureSnapshot(ctx: LabContext, dir: string, nodes: readonly LabNode[] = ctx.lab.nodes): Promise<SnapshotRef> {
  const t0 = performance.now();
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(SNAPSHOT_DEADLINE_MS)]);
  const files: string[] = [];
  const missing: string[] = [];
  const run = async (c: SnapshotCommand): Promise<string> => {
    const path = join(dir, c.file);
    let text: string;
    if (deadline.aborted) {
      text = `not captured: the snapshot's ${SNAPSHOT_DEADLINE_MS / 1000} s ran out first\n`;
      missing.push(`${c.file}: deadline`);
    } else {
      const r = await c.exec
        .run(c.argv, { nothrow: true, timeoutMs: SNAPSHOT_COMMAND_MS, signal: deadline, needsBpffs: c.needsBpffs })
        .catch((e: unknown) => ({ code: -1, stdout: '', stderr: e instanceof Error ? e.message : String(e) }));
      if (r.code === 0) text = c.tailLines ? `${r.stdout.replace(/\n$/, '').split('\n').slice(-c.tailLines).join('\n')}\n` : r.stdout;
      else {
        const why = `${c.argv.join(' ')} on ${c.exec.where}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`;
        text = `not captured: ${why}\n`;
        missing.push(`${c.file}: ${why}`);
      }
    }
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, text);
    files.push(c.file);
    return text;
  };
  await Promise.all(
    nodes.map(async (node) => {
      try {
        const root = ctx.backend.root(node.name);
        const plan = snapshotPlan(ctx, node);
        const outputs = new Map<string, string>();
        await pool(plan, PER_NODE, async (c) => void outputs.set(c.file, await run(c)));
        // Second round: what the first named. tc filters on the node's devices (where tc programs hang), pinned map dumps.
        const nodeExec = ctx.backend.exec(node.netns);
        const devs = devicesOf(outputs.get(`${node.name}/node/ip-link.json`) ?? '');
        const names = ctx.lab.nodes.map((n) => n.name);
        const mapShow = outputs.get(`${node.name}/bpftool-map.json`) ?? '';
        const maps = [...new Set(mapPinsOf(mapShow, ctx.bpfDir, node.name, names))].sort().slice(0, MAX_MAP_DUMPS);
        const second: SnapshotCommand[] = [
          ...devs.flatMap((d) =>
            (['ingress', 'egress'] as const).map((dir) => ({
              file: `${node.name}/node/tc-filter-${d}-${dir}.json`,
              exec: nodeExec,
              argv: ['tc', '-s', '-j', 'filter', 'show', 'dev', d, dir],
            })),
          ),
          ...maps.map((p) => ({
            file: `${node.name}/maps/${p.slice(ctx.bpfDir.length + 1).replaceAll('/', '_')}.json`,
            exec: root,
            argv: ['bpftool', '-j', 'map', 'dump', 'pinned', p],
          })),
        ];
        await pool(second, PER_NODE, async (c) => void (await run(c)));
      } catch (e) {
        // A snapshot must never turn a check's failure into a lab failure.
        missing.push(`${node.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }),
  );
  return { dir, files: files.sort(), missing, ms: Math.round(performance.now() - t0) };
}
