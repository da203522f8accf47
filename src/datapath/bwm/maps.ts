import { z } from 'zod';
import { parseJson, type Exec } from '../../exec/exec.js';
import { endpointKey } from '../host-routing/endpoints.js';

/**
 * The byte layout of bpf/include/bwm.h, written with `bpftool map update ... hex` and read
 * back with `bpftool -j map dump`. Integers in host byte order (x86_64: little endian).
 */

/** Drop horizon: Cilium's DefaultDropHorizon, 2 s (pkg/maps/bwmap/bwmap.go), also fq's horizon (FqDefaultHorizon). */
export const HORIZON_NS = 2_000_000_000n;
/** fq flow-hash buckets: 2^15, Cilium's FqDefaultBuckets = 15 (a log2, pkg/datapath/linux/bandwidth/bandwidth.go). */
export const FQ_BUCKETS = 2 ** 15;

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const u64le = (n: bigint) => Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(8 * i)) & 255n));

/** Key of edt_pods: struct edt_addr, the same 20 bytes as host routing's ep_key. */
export const edtAddrKey = (addr: string) => endpointKey(addr);

/** struct edt_id { u32 id; }: value of edt_pods, key of edt_rates. */
export const edtId = (id: number) => hex(u32le(id));

/** struct edt_rate { u64 bytes_per_sec; u64 t_last; u64 t_horizon_drop; }, t_last 0. */
export function edtRate(bitsPerSecond: number, horizonNs = HORIZON_NS): string {
  return hex([...u64le(BigInt(Math.round(bitsPerSecond / 8))), ...u64le(0n), ...u64le(horizonNs)]);
}

/** The bpftool batch lines that give a pod (by its addresses) aggregate `id` and a rate. */
export function podRateLines(pins: { pods: string; rates: string }, id: number, addrs: string[], bitsPerSecond: number): string[] {
  return [
    `map update pinned ${pins.rates} key hex ${edtId(id)} value hex ${edtRate(bitsPerSecond)}`,
    ...addrs.map((a) => `map update pinned ${pins.pods} key hex ${edtAddrKey(a)} value hex ${edtId(id)}`),
  ];
}

/**
 * The bpftool batch lines that take a pod's limit away: its addresses first (from then on
 * edt_uplink finds no id and counts the pod's packets as unlimited), then its rate entry.
 */
export function podRemoveLines(pins: { pods: string; rates: string }, id: number, addrs: string[]): string[] {
  return [
    ...addrs.map((a) => `map delete pinned ${pins.pods} key hex ${edtAddrKey(a)}`),
    `map delete pinned ${pins.rates} key hex ${edtId(id)}`,
  ];
}

/** What one edt_uplink run decides for a packet: the C in bpf/bwm_edt.c, in exact integer arithmetic. */
export interface Departure {
  /** 'stamp': skb->tstamp = tNext and t_last = tNext; 'drop': beyond the horizon, t_last unchanged. */
  action: 'stamp' | 'drop';
  tNext: bigint;
  /** The pod's t_last after the packet. */
  tLast: bigint;
}

/** t_next = max(now, t_last) + wireLen * 1e9 / bytesPerSec (integer division), or the skb's own later tstamp; drop at >= horizon. */
export function edtDeparture(p: {
  now: bigint;
  tLast: bigint;
  tstamp?: bigint;
  wireLen: number;
  bytesPerSec: bigint;
  horizonNs?: bigint;
}): Departure {
  // biome-ignore lint/complexity/useMathMinMax: bigint, which Math.max does not take
  const base = p.tLast > p.now ? p.tLast : p.now;
  let tNext = base + (BigInt(p.wireLen) * 1_000_000_000n) / p.bytesPerSec;
  if (p.tstamp !== undefined && p.tstamp > tNext) tNext = p.tstamp;
  if (tNext - p.now >= (p.horizonNs ?? HORIZON_NS)) return { action: 'drop', tNext, tLast: p.tLast };
  return { action: 'stamp', tNext, tLast: tNext };
}

/** Counter names in the order of enum edt_counter (bpf/include/bwm.h). */
export const EDT_COUNTERS = ['stamped', 'dropHorizon', 'unlimited'] as const;
export type EdtCounters = Record<(typeof EDT_COUNTERS)[number], number>;

const PerCpuDump = z.array(
  z.object({
    formatted: z.object({ key: z.number().int().nonnegative(), values: z.array(z.object({ cpu: z.number(), value: z.number() })) }),
  }),
);

/** Each counter summed over CPUs, from `bpftool -j map dump` of edt_counters. */
export function parseEdtCounters(json: unknown): EdtCounters {
  const byKey = new Map(PerCpuDump.parse(json).map((e) => [e.formatted.key, e.formatted.values.reduce((s, v) => s + v.value, 0)]));
  return Object.fromEntries(EDT_COUNTERS.map((n, i) => [n, byKey.get(i) ?? 0])) as EdtCounters;
}

export async function readEdtCounters(root: Exec, mapPath: string, signal?: AbortSignal): Promise<EdtCounters> {
  const r = await root.run(['bpftool', '-j', 'map', 'dump', 'pinned', mapPath], { signal });
  return parseEdtCounters(parseJson(r, `bpftool map dump ${mapPath}`));
}

/** A pod's rate entry as the kernel holds it now. */
export interface EdtRateEntry {
  id: number;
  bytesPerSec: bigint;
  tLast: bigint;
  horizonNs: bigint;
}

const RatesDump = z.array(
  z.object({
    formatted: z.object({
      key: z.object({ id: z.number() }),
      value: z.object({ bytes_per_sec: z.number(), t_last: z.number(), t_horizon_drop: z.number() }),
    }),
  }),
);

/** Entries of edt_rates (bpftool prints the u64 fields as JSON numbers: exact below 2^53 ns, 104 days of uptime). */
export function parseEdtRates(json: unknown): EdtRateEntry[] {
  return RatesDump.parse(json).map(({ formatted: { key, value } }) => ({
    id: key.id,
    bytesPerSec: BigInt(value.bytes_per_sec),
    tLast: BigInt(value.t_last),
    horizonNs: BigInt(value.t_horizon_drop),
  }));
}
