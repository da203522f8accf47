import { z } from 'zod';
import { LabError } from '../../errors.js';
import type { XlFrontend } from './plan.js';

/**
 * SNAT conntrack entries (xl_ct, struct xl_ct_key / xl_ct_value in bpf/include/xdp_lb.h) of backends a `lab svc` change
 * took out of a service. xl_xdp already picks again when an entry's backend is gone from xl_backends, but a backend id
 * is shared by every service with the same pod and target port (src/datapath/kpr/plan.ts), so one still used elsewhere
 * stays there: its entries are purged instead, after the new tables are in, and those flows pick again.
 */

/** `${svcId}/${backendId}` pairs the before set had and the after set no longer has. */
export function removedMembers(before: readonly XlFrontend[], after: readonly XlFrontend[]): Set<string> {
  const now = new Map(after.map((f) => [f.svcId, new Set(f.backends.map((b) => b.id))]));
  const out = new Set<string>();
  for (const f of before) for (const b of f.backends) if (!now.get(f.svcId)?.has(b.id)) out.add(`${f.svcId}/${b.id}`);
  return out;
}

/** `bpftool -j map dump` of xl_ct: raw key and value bytes as "0x.." strings. */
const CtDump = z.array(z.object({ key: z.array(z.string()), value: z.array(z.string()) }));

/** struct xl_ct_value: saddr[16], daddr[16], sport, dport, then svc and backend (u32, little endian) at 36 and 40. */
const u32At = (bytes: number[], off: number) =>
  (bytes[off] | (bytes[off + 1] << 8) | (bytes[off + 2] << 16) | (bytes[off + 3] << 24)) >>> 0;

/** Keys (bpftool hex) of the entries, both directions, whose (svc, backend) is one of `removed`. */
export function staleCtKeys(dump: unknown, removed: ReadonlySet<string>): string[] {
  if (!removed.size) return [];
  const rows = CtDump.safeParse(dump);
  if (!rows.success) throw new LabError('E_TOOL_OUTPUT', `bpftool's dump of xl_ct is not key/value byte arrays: ${rows.error.message}`);
  return rows.data.flatMap(({ key, value }) => {
    const v = value.map((b) => Number.parseInt(b, 16));
    if (v.length < 44 || !removed.has(`${u32At(v, 36)}/${u32At(v, 40)}`)) return [];
    return [key.map((b) => b.replace(/^0x/, '')).join(' ')];
  });
}
