import { addr16 } from '../kpr/maps.js';

/**
 * Entries of the XDP load balancer's maps (bpf/include/xdp_lb.h) as `bpftool map update` hex, and the lines
 * bpf/user/xlctl.c reads: addresses and ports in network order, other integers little endian (x86_64).
 */

export type XlMode = 'dsr' | 'snat';
export type XlFamily = 'ipv4' | 'ipv6';
export type XlProto = 'TCP' | 'UDP';

/** enum xl_mode. */
const MODE: Record<XlMode, number> = { dsr: 1, snat: 2 };
/** AF_INET, AF_INET6 (include/linux/socket.h). */
const AF: Record<XlFamily, number> = { ipv4: 2, ipv6: 10 };
/** IPPROTO_TCP, IPPROTO_UDP (include/uapi/linux/in.h). */
export const IPPROTO: Record<XlProto, number> = { TCP: 6, UDP: 17 };

/** enum xl_counter, in order: index i of xl_counters is XL_COUNTERS[i]. */
export const XL_COUNTERS = [
  'pass_not_ip',
  'pass_not_vip',
  'pass_trunc',
  'pass_l4',
  'pass_exthdr',
  'pass_control',
  'frag_first',
  'drop_frag',
  'drop_no_backend',
  'drop_too_big',
  'drop_err',
  'icmp_err',
  'tx',
  'redirect',
  'drop_fib',
  'snat_new',
  'snat_rev',
  'drop_snat_port',
  'decap',
  'dsr_pod',
  'drop_dsr',
] as const;
export type XlCounter = (typeof XL_COUNTERS)[number];

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
const le16 = (n: number) => [n & 255, (n >>> 8) & 255];
const le32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const be16 = (n: number) => [(n >>> 8) & 255, n & 255];

/** struct xl_vip_key (20 bytes); without proto and port: the address entry later fragments are matched by. */
export function vipKey(k: { family: XlFamily; addr: string; proto?: XlProto; port?: number }): string {
  return hex([AF[k.family], k.proto ? IPPROTO[k.proto] : 0, ...be16(k.port ?? 0), ...addr16(k.addr)]);
}

/** struct xl_vip (12 bytes). */
export function vipValue(v: { svc: number; lutSize: number; mode: XlMode; pass?: boolean }): string {
  return hex([...le32(v.svc), ...le32(v.lutSize), MODE[v.mode], v.pass ? 1 : 0, ...le16(0)]);
}

/** bpftool argv that marks an IPv4 UDP VIP port "pass" in a pinned xl_vips (a control: the VIP's packets go to the stack). */
export function markVipPassArgv(vipsPin: string, vip: string, port: number, v: { svc: number; lutSize: number }): string[] {
  const key = vipKey({ family: 'ipv4', addr: vip, proto: 'UDP', port });
  const value = vipValue({ ...v, mode: 'dsr', pass: true });
  return ['bpftool', 'map', 'update', 'pinned', vipsPin, 'key', 'hex', ...key.split(' '), 'value', 'hex', ...value.split(' ')];
}

/** struct xl_backend (36 bytes): the pod (SNAT target) and its node (IPIP outer destination). */
export function backendValue(b: { family: XlFamily; port: number; addr: string; node: string }): string {
  return hex([AF[b.family], 0, ...be16(b.port), ...addr16(b.addr), ...addr16(b.node)]);
}

/** struct xl_cfg (20 bytes): this node's IPv4 and IPv6 addresses (unset: zero). */
export function cfgValue(addr4?: string, addr6?: string): string {
  return hex([...(addr4 ? addr16(addr4).slice(0, 4) : [0, 0, 0, 0]), ...(addr6 ? addr16(addr6) : Array<number>(16).fill(0))]);
}

/** struct xl_dsr_key (36 bytes): a local pod serves VIP:port/proto by DSR; the family is the VIP's. */
export function dsrKey(k: { proto: XlProto; port: number; vip: string; pod: string }): string {
  return hex([AF[k.vip.includes(':') ? 'ipv6' : 'ipv4'], IPPROTO[k.proto], ...be16(k.port), ...addr16(k.vip), ...addr16(k.pod)]);
}

/** struct xl_dsr_target (4 bytes): the pod's target port. */
export const dsrValue = (targetPort: number) => hex([...be16(targetPort), 0, 0]);

/** A little-endian u32 key as bpftool hex. */
export const u32Key = (n: number) => hex(le32(n));

/** xlctl's line that installs a whole table (backend ids per cell) for a service in one swap. */
export function tableLine(svc: number, ids: ArrayLike<number>): string {
  return `set ${svc} ${ids.length} ${Array.from(ids).join(' ')}`;
}
