import { LabError } from '../../errors.js';
import { parseAddr } from '../../topology/ip.js';
import type { Family, ServiceProtocol } from '../../topology/schema.js';
import { slotsOf, type Frontend, type PlanBackend } from './plan.js';

/**
 * Entries of socket-LB's maps as `bpftool map update` hex (struct svc_key, svc_value,
 * backend in bpf/include/sock_lb.h): addresses and ports in network order, every other
 * integer in host order (x86_64: little endian).
 */

/** IPPROTO_TCP and IPPROTO_UDP (include/uapi/linux/in.h). */
const PROTO: Record<ServiceProtocol, number> = { TCP: 6, UDP: 17 };
/** AF_INET and AF_INET6 (include/linux/socket.h). */
const AF: Record<Family, number> = { ipv4: 2, ipv6: 10 };

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
const le16 = (n: number) => [n & 255, (n >>> 8) & 255];
const le32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const be16 = (n: number) => [(n >>> 8) & 255, n & 255];

/** An address in 16 bytes, network order; IPv4 in the first 4. */
export function addr16(addr: string): number[] {
  const a = parseAddr(addr);
  if (!a) throw new LabError('E_USAGE', `not an IPv4 or IPv6 address: ${addr}`);
  const n = a.family === 4 ? 4 : 16;
  const bytes = Array.from({ length: n }, (_, i) => Number((a.value >> BigInt(8 * (n - 1 - i))) & 255n));
  return [...bytes, ...Array<number>(16 - n).fill(0)];
}

/** struct svc_key (24 bytes): the service entry is slot 0 of revision 0. */
export function svcKey(f: Pick<Frontend, 'vip' | 'port' | 'protocol' | 'family'>, slot = 0, rev = 0): string {
  return hex([...addr16(f.vip), ...be16(f.port), PROTO[f.protocol], AF[f.family], ...le16(slot), ...le16(rev)]);
}

/** struct svc_value (16 bytes) of the service entry. */
export function svcEntry(f: Pick<Frontend, 'svcId' | 'affinitySeconds'>, count: number, rev: number): string {
  return hex([...le32(0), ...le32(f.svcId), ...le16(count), ...le16(rev), ...le32(f.affinitySeconds)]);
}

/** struct svc_value of a backend slot. */
export function slotValue(backendId: number): string {
  return hex([...le32(backendId), ...le32(0), ...le16(0), ...le16(0), ...le32(0)]);
}

/** Key (u32) and value (struct backend, 20 bytes) of the backends map. */
export function backendEntry(b: Pick<PlanBackend, 'id' | 'addr' | 'port' | 'family'>): { key: string; value: string } {
  return { key: hex(le32(b.id)), value: hex([...addr16(b.addr), ...be16(b.port), AF[b.family], 0]) };
}

/** Slots hold 16-bit indexes (svc_key.slot). */
export const MAX_SLOTS = 65535;

/**
 * bpftool batch lines that set a frontend's backends atomically for a reader: the new
 * slots under `rev`, then the service entry (one update) naming `rev`, then the slots of
 * the previous revision (`old`: its number and slot count) deleted.
 */
export function frontendLines(maps: { services: string }, f: Frontend, rev: number, old?: { rev: number; slots: number }): string[] {
  const slots = slotsOf(f);
  if (slots.length > MAX_SLOTS)
    throw new LabError('E_USAGE', `service ${f.service} has ${slots.length} backend slots (weights summed); at most ${MAX_SLOTS}`);
  const m = `pinned ${maps.services}`;
  return [
    ...slots.map((id, i) => `map update ${m} key hex ${svcKey(f, i + 1, rev)} value hex ${slotValue(id)}`),
    `map update ${m} key hex ${svcKey(f)} value hex ${svcEntry(f, slots.length, rev)}`,
    ...Array.from({ length: old?.slots ?? 0 }, (_, i) => `map delete ${m} key hex ${svcKey(f, i + 1, old!.rev)}`),
  ];
}
