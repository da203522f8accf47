import { LabError } from '../../errors.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { Lab, LabNode, Pod } from '../../topology/model.js';
import { decisionOf, type Decision } from '../feature.js';
import { bandwidthManager, bwmPins } from './bwm.js';
import { parseEdtRates, podRateLines, podRemoveLines, type EdtRateEntry } from './maps.js';
import { parseBandwidth, parseQuantity, showBps } from './quantity.js';
import { parseJson } from '../../exec/exec.js';

/** One pod's egress rate changed on a running lab, validated before anything on the machine is touched. */
export interface RateChange {
  node: LabNode;
  pod: Pod;
  /** The pod's aggregate id in edt_rates (its position on the node + 1, as at lab up). */
  id: number;
  /** The new rate, bit/s; undefined takes the limit away. */
  bps?: number;
  /** The rate before, bit/s; undefined: the pod was unlimited. */
  before?: number;
}

/** Words that take a pod's limit away (a Kubernetes pod whose annotation is removed is unlimited again). */
const NO_LIMIT = new Set(['none', 'unlimited']);

/** The pod named `node/pod`, or `pod` when exactly one node has it. */
function findPod(lab: Lab, arg: string): { node: LabNode; pod: Pod; index: number } {
  const [nodeName, podName] = arg.includes('/') ? arg.split('/', 2) : [undefined, arg];
  const hits = lab.nodes.flatMap((node) =>
    nodeName && node.name !== nodeName ? [] : node.pods.flatMap((pod, index) => (pod.name === podName ? [{ node, pod, index }] : [])),
  );
  const all = lab.nodes.flatMap((n) => n.pods.map((p) => `${n.name}/${p.name}`)).join(', ');
  if (!hits.length) throw new LabError('E_USAGE', `lab ${lab.name} has no pod '${arg}'; pods: ${all || '(none)'}`);
  if (hits.length > 1)
    throw new LabError(
      'E_USAGE',
      `pod '${arg}' is on several nodes (${hits.map((h) => h.node.name).join(', ')}): name it as node/pod`,
      `pods: ${all}`,
    );
  return hits[0];
}

/**
 * The rate text as `lab bw set` takes it: a Kubernetes quantity within the annotation's
 * bounds (as egressBandwidth in the topology file), or 0 / none / unlimited for no limit.
 */
export function parseRateArg(text: string): { bps?: number } {
  if (NO_LIMIT.has(text.toLowerCase())) return {};
  const q = parseQuantity(text);
  if (!('problem' in q) && q.value === 0) return {};
  const b = parseBandwidth(text);
  if ('problem' in b) throw new LabError('E_USAGE', `rate ${b.problem}`, 'a rate like 50M (bit/s), or none to take the limit away');
  return { bps: b.bps };
}

/**
 * Validate `lab bw set LAB POD RATE` against the lab as it is: the pod, the rate, and a
 * bandwidth manager running on the pod's node (its maps and program are deployed only
 * there: a node where it is off or declined has nothing to write into).
 */
export function planRateChange(lab: Lab, decisions: readonly Decision[], podArg: string, rateText: string): RateChange {
  const { node, pod, index } = findPod(lab, podArg);
  const { bps } = parseRateArg(rateText);
  const d = decisionOf(decisions, bandwidthManager, node.name);
  if (d?.mode !== 'edt')
    throw new LabError(
      'E_USAGE',
      `the bandwidth manager does not run on node ${node.name} (${d ? `${d.status}: ${d.detail}` : 'no decision recorded'})`,
      'rates change live only where it runs: bring the lab up with datapath.bandwidthManager: true, or a pod with egressBandwidth on that node',
    );
  // apply() deploys nothing on a node without an uplink (EDT paces the uplink's egress only).
  if (!node.uplink) throw new LabError('E_USAGE', `node ${node.name} has no uplink: the bandwidth manager paces the uplink's egress only`);
  if (!pod.ipv4 && !pod.ipv6) throw new LabError('E_USAGE', `pod ${node.name}/${pod.name} has no address to identify its packets by`);
  return { node, pod, id: index + 1, bps, before: pod.egressBps };
}

/** The lab with the change in it (the pod's egressBps), as lab.json keeps it. */
export function labWithRate(lab: Lab, c: RateChange): Lab {
  return {
    ...lab,
    nodes: lab.nodes.map((n) =>
      n.name !== c.node.name ? n : { ...n, pods: n.pods.map((p) => (p.name !== c.pod.name ? p : { ...p, egressBps: c.bps })) },
    ),
  };
}

/** The bpftool batch lines that put a pod at `bps` (undefined: unlimited) in a node's maps. */
export function rateLines(pins: { pods: string; rates: string }, c: Pick<RateChange, 'pod' | 'id'>, bps: number | undefined): string[] {
  const addrs = [c.pod.ipv4, c.pod.ipv6].filter((a): a is string => !!a);
  return bps ? podRateLines(pins, c.id, addrs, bps) : podRemoveLines(pins, c.id, addrs);
}

/** What `lab bw set` says it did. */
export const describeChange = (c: RateChange) =>
  `${c.node.name}/${c.pod.name}: ${c.before ? showBps(c.before) : 'unlimited'} -> ${c.bps ? showBps(c.bps) : 'unlimited'}`;

/**
 * Write the change into the node's maps and read the pod's rate entry back. Each map
 * update replaces one element whole (a hash map update swaps in a new element under RCU,
 * kernel/bpf/hashtab.c: htab_map_update_elem), so edt_uplink sees the old rate or the new
 * one, never a mix; the new entry's t_last is 0, so the pod's clock restarts at the next
 * packet. Should the batch fail part way, the previous entries are written back.
 */
export async function applyRateChange(ctx: LabContext, c: RateChange): Promise<EdtRateEntry | undefined> {
  const pins = bwmPins(ctx, c.node);
  const root = ctx.backend.root(c.node.name);
  // A pod without a limit has no entries: taking none away again is nothing to write.
  if (c.bps || c.before) {
    try {
      await root.run(['bpftool', 'batch', 'file', '-'], { input: `${rateLines(pins, c, c.bps).join('\n')}\n`, signal: ctx.signal });
    } catch (e) {
      // Line by line, each allowed to fail: an entry the failed batch never wrote is not there to delete.
      for (const line of rateLines(pins, c, c.before)) await root.run(['bpftool', ...line.split(' ')], { nothrow: true });
      throw e;
    }
  }
  const r = await root.run(['bpftool', '-j', 'map', 'dump', 'pinned', pins.rates], { signal: ctx.signal });
  const entry = parseEdtRates(parseJson(r, `bpftool map dump ${pins.rates}`)).find((x) => x.id === c.id);
  const want = c.bps ? BigInt(Math.round(c.bps / 8)) : undefined;
  if (entry?.bytesPerSec !== want)
    throw new LabError(
      'E_COMMAND',
      `edt_rates holds ${entry ? `${entry.bytesPerSec} B/s` : 'no entry'} for ${c.node.name}/${c.pod.name} (id ${c.id}) after the update, not ${want ?? 'no entry'}`,
    );
  return entry;
}
