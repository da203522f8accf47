import { addr16 } from '../kpr/maps.js';

/** Crafted frames for BPF_PROG_TEST_RUN of bpf/xdp_lb.c (Ethernet, IPv4/IPv6, TCP/UDP/ICMP). */

export const MAC_LB = [0x02, 0, 0, 0, 0, 0x01];
export const MAC_CLIENT = [0x02, 0, 0, 0, 0, 0xcc];

const be16 = (n: number) => [(n >>> 8) & 255, n & 255];

/** RFC 1071 one's-complement sum, folded and complemented. */
export function csum(bytes: number[] | Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export interface L4 {
  proto: 'TCP' | 'UDP';
  sport: number;
  dport: number;
  payload?: number[];
}

/** A TCP (20-byte header, SYN) or UDP header with payload and a correct checksum over the pseudo header. */
export function l4(p: L4, src: string, dst: string): number[] {
  const payload = p.payload ?? [0x68, 0x69, 0x21, 0x0a];
  const v6 = src.includes(':');
  const sa = addr16(src).slice(0, v6 ? 16 : 4);
  const da = addr16(dst).slice(0, v6 ? 16 : 4);
  const proto = p.proto === 'TCP' ? 6 : 17;
  const hdr =
    p.proto === 'TCP'
      ? [...be16(p.sport), ...be16(p.dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]
      : [...be16(p.sport), ...be16(p.dport), ...be16(8 + payload.length), 0, 0];
  const seg = [...hdr, ...payload];
  const pseudo = v6 ? [...sa, ...da, 0, 0, ...be16(seg.length), 0, 0, 0, proto] : [...sa, ...da, 0, proto, ...be16(seg.length)];
  const c = csum([...pseudo, ...seg]);
  const off = p.proto === 'TCP' ? 16 : 6;
  seg[off] = c >> 8;
  seg[off + 1] = c & 255;
  return seg;
}

/** An IPv4 header (checksum filled) before `payload`; options padded by the caller to a multiple of 4. */
export function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: number[],
  o: { fragOff?: number; mf?: boolean; df?: boolean; options?: number[]; totLen?: number } = {},
): number[] {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  const fo = (o.fragOff ?? 0) | (o.mf ? 0x2000 : 0) | (o.df ? 0x4000 : 0);
  const h = [0x40 | (hl / 4), 0, ...be16(o.totLen ?? hl + payload.length), 0x12, 0x34, ...be16(fo), 64, proto, 0, 0];
  h.push(...addr16(src).slice(0, 4), ...addr16(dst).slice(0, 4), ...opts);
  const c = csum(h);
  h[10] = c >> 8;
  h[11] = c & 255;
  return [...h, ...payload];
}

/** An IPv6 header; `ext` are extension headers [nexthdr-of-this-header-type, bytes-without-first-byte]. */
export function ipv6(src: string, dst: string, proto: number, payload: number[], ext: { type: number; body: number[] }[] = []): number[] {
  let chain: number[] = payload;
  let next = proto;
  for (let i = ext.length - 1; i >= 0; i--) {
    chain = [next, ...ext[i].body, ...chain];
    next = ext[i].type;
  }
  return [0x60, 0, 0, 0, ...be16(chain.length), next, 64, ...addr16(src), ...addr16(dst), ...chain];
}

/** An 8-byte hop-by-hop or destination options header body (length 0, PadN). */
export const PAD_OPTS = [0, 1, 4, 0, 0, 0, 0];

export function eth(type: 'ipv4' | 'ipv6', ip: number[]): Uint8Array {
  return Uint8Array.from([...MAC_LB, ...MAC_CLIENT, ...(type === 'ipv4' ? [0x08, 0x00] : [0x86, 0xdd]), ...ip]);
}

/** A client's TCP/UDP packet to a VIP, as a frame. */
export function flow(src: string, dst: string, p: L4): Uint8Array {
  const seg = l4(p, src, dst);
  const proto = p.proto === 'TCP' ? 6 : 17;
  return src.includes(':') ? eth('ipv6', ipv6(src, dst, proto, seg)) : eth('ipv4', ipv4(src, dst, proto, seg, { df: true }));
}

/** Dotted/colon text of 4 or 16 bytes at `off`. */
export function addrAt(b: Uint8Array, off: number, v6: boolean): string {
  if (!v6) return Array.from(b.subarray(off, off + 4)).join('.');
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[off + i] << 8) | b[off + i + 1]).toString(16));
  return w.join(':');
}
