import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';

/** Counter names in the order of enum dpl_counter (bpf/include/host_routing.h): the index is the map key. */
export const DATAPATH_COUNTERS = [
  'redirectPeer',
  'redirectLocal',
  'redirectFib',
  'redirectNeigh',
  'toStack',
  'dropSpoof',
  'dropCsum',
  'dropInvalid',
] as const;
export type DatapathCounter = (typeof DATAPATH_COUNTERS)[number];
/** Each counter summed over CPUs. */
export type DatapathCounters = Record<DatapathCounter, number>;

/**
 * `bpftool -j map dump` of a per-CPU array with BTF: one entry per key, one value per
 * CPU. Every counter must be there: a map with fewer entries is another program's,
 * not a reading of zero.
 */
const PerCpuDump = z
  .array(
    z.object({
      formatted: z.object({ key: z.number().int().nonnegative(), values: z.array(z.object({ cpu: z.number(), value: z.number() })) }),
    }),
  )
  .superRefine((entries, ctx) => {
    const keys = new Set(entries.map((e) => e.formatted.key));
    DATAPATH_COUNTERS.forEach((name, i) => {
      if (!keys.has(i)) ctx.addIssue({ code: 'custom', message: `counter ${name} (key ${i}) missing from the dump` });
    });
  });

/** Each counter summed over CPUs; throws a ZodError when the dump is not the counters map. */
export function parseDatapathCounters(json: unknown): DatapathCounters {
  const byKey = new Map(PerCpuDump.parse(json).map((e) => [e.formatted.key, e.formatted.values.reduce((s, v) => s + v.value, 0)]));
  return Object.fromEntries(DATAPATH_COUNTERS.map((name, i) => [name, byKey.get(i)!])) as DatapathCounters;
}

/** Read a node's pinned counters map (pins().counters) with bpftool, where the pin is visible (the node's root). */
export async function readDatapathCounters(root: Exec, mapPath: string, signal?: AbortSignal): Promise<DatapathCounters> {
  const r = await root.run(['bpftool', '-j', 'map', 'dump', 'pinned', mapPath], { signal });
  return parseDatapathCounters(parseJson(r, `bpftool map dump ${mapPath}`));
}

/** after - before, per counter (the counters only grow while the programs stay loaded). */
export function counterDelta(before: DatapathCounters, after: DatapathCounters): DatapathCounters {
  const out = {} as DatapathCounters;
  for (const name of DATAPATH_COUNTERS) out[name] = after[name] - before[name];
  return out;
}
