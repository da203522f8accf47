import { z } from 'zod';
import { LabError } from '../../errors.js';
import { parseAddr } from '../../topology/ip.js';

/** EP_F_NO_L2 in bpf/include/host_routing.h: the pod has no MAC, deliver without rewriting. */
export const EP_F_NO_L2 = 1;

/** What the endpoints map holds for one local pod (struct ep_info, bpf/include/host_routing.h). */
export interface Endpoint {
  /** Ifindex of the pod's host-side device (lxc-*, or the netkit primary) in the node's namespace. */
  ifindex: number;
  /** The pod's own device (eth0), the destination MAC on delivery; undefined: none (netkit L3). */
  mac?: string;
  /** The host-side device, the source MAC on delivery; undefined: none (netkit L3). */
  nodeMac?: string;
}

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const ZERO_MAC = '00:00:00:00:00:00';

/**
 * A device's MAC as `ip -j link` reports it, or undefined when it has none: a netkit
 * pair in L3 mode keeps the all-zero dev_addr (drivers/net/netkit.c assigns a random
 * one only in L2 mode).
 */
export function linkMac(link: unknown): string | undefined {
  const r = z.object({ address: z.string() }).safeParse(link);
  if (!r.success || !MAC.test(r.data.address) || r.data.address === ZERO_MAC) return undefined;
  return r.data.address.toLowerCase();
}

const macBytes = (mac: string | undefined) => (mac ? mac.split(':').map((b) => parseInt(b, 16)) : [0, 0, 0, 0, 0, 0]);
const u32le = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];

/** Key: struct ep_key { u8 family; u8 pad[3]; u8 addr[16]; }, the address in network order. */
export function endpointKey(addr: string): string {
  const a = parseAddr(addr);
  if (!a) throw new LabError('E_USAGE', `not an IPv4 or IPv6 address: ${addr}`);
  const n = a.family === 4 ? 4 : 16;
  const bytes = Array.from({ length: n }, (_, i) => Number((a.value >> BigInt(8 * (n - 1 - i))) & 255n));
  return hex([a.family, 0, 0, 0, ...bytes, ...Array(16 - n).fill(0)]);
}

/**
 * Value: struct ep_info { u32 ifindex; u32 flags; u8 mac[6]; u8 node_mac[6]; }, 20 bytes,
 * integers in host byte order (x86_64: little endian). Without both MACs the flag
 * EP_F_NO_L2 tells the program to leave the Ethernet header alone.
 */
export function endpointValue(ep: Endpoint): string {
  for (const m of [ep.mac, ep.nodeMac]) if (m !== undefined && !MAC.test(m)) throw new LabError('E_USAGE', `not a MAC address: ${m}`);
  const l2 = !!ep.mac && !!ep.nodeMac;
  return hex([
    ...u32le(ep.ifindex),
    ...u32le(l2 ? 0 : EP_F_NO_L2),
    ...macBytes(l2 ? ep.mac : undefined),
    ...macBytes(l2 ? ep.nodeMac : undefined),
  ]);
}
