/** Minimal IPv4/IPv6 prefix arithmetic for the resolver (parse, nth host, overlap). */

export interface Prefix {
  family: 4 | 6;
  base: bigint;
  len: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/** IPv4 dotted quad: four decimal octets 0-255, no leading zeros (inet_aton would read 010 as octal 8). */
function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
}

/** IPv6 text (RFC 4291 2.2): eight groups, '::' for one or more zero groups, an optional dotted quad at the end. */
function parseV6(s: string): bigint | undefined {
  let text = s;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  let v = 0n;
  for (const g of [...head, ...Array(halves.length === 2 ? fill : 0).fill('0'), ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

export function parseAddr(s: string): { family: 4 | 6; value: bigint } | undefined {
  const value = s.includes(':') ? parseV6(s) : parseV4(s);
  return value === undefined ? undefined : { family: s.includes(':') ? 6 : 4, value };
}

export function parsePrefix(s: string): Prefix | undefined {
  const m = /^([^/]+)\/(0|[1-9]\d{0,2})$/.exec(s);
  const a = m && parseAddr(m[1]);
  const len = m ? Number(m[2]) : NaN;
  if (!a || len > BITS[a.family]) return undefined;
  const host = (1n << BigInt(BITS[a.family] - len)) - 1n;
  return { family: a.family, base: a.value & ~host, len };
}

const FAMILY_NAME = { 4: 'IPv4', 6: 'IPv6' } as const;
const EXAMPLE = { 4: { addr: '10.244.1.2', prefix: '10.244.1.0/24' }, 6: { addr: 'fd00:244:1::2', prefix: 'fd00:244:1::/64' } } as const;

/** Why `s` is not an address of `family`, or undefined when it is one. */
export function addrProblem(s: string, family: 4 | 6): string | undefined {
  const a = parseAddr(s);
  if (a?.family === family) return undefined;
  if (a) return `'${s}' is an ${FAMILY_NAME[a.family]} address; this field takes ${FAMILY_NAME[family]} (like ${EXAMPLE[family].addr})`;
  if (s.includes('/'))
    return `'${s}' is a prefix; this field takes an ${FAMILY_NAME[family]} address without /LENGTH (like ${EXAMPLE[family].addr})`;
  return `'${s}' is not an ${FAMILY_NAME[family]} address (like ${EXAMPLE[family].addr})`;
}

/** Why `s` is not a prefix of `family` with zero host bits, or undefined when it is one. */
export function prefixProblem(s: string, family: 4 | 6): string | undefined {
  const like = `(like ${EXAMPLE[family].prefix})`;
  const slash = s.indexOf('/');
  if (slash < 0) return `'${s}' is not an ${FAMILY_NAME[family]} prefix: it lacks /LENGTH ${like}`;
  const addr = s.slice(0, slash);
  const lenText = s.slice(slash + 1);
  const a = parseAddr(addr);
  if (!a) return `'${s}' is not an ${FAMILY_NAME[family]} prefix: '${addr}' is not an ${FAMILY_NAME[family]} address ${like}`;
  if (a.family !== family) return `'${s}' is an ${FAMILY_NAME[a.family]} prefix; this field takes ${FAMILY_NAME[family]} ${like}`;
  const len = /^(0|[1-9]\d{0,2})$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len <= BITS[family])) return `'${s}': prefix length '${lenText}' is not a number from 0 to ${BITS[family]}`;
  const p = parsePrefix(s)!;
  if (p.base !== a.value) return `'${s}' has host bits set; the prefix is ${formatPrefix(p)}`;
  return undefined;
}

/** Number of addresses in a prefix. */
export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.family] - p.len);
}

export function formatAddr(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const groups = [...Array(8)].map((_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1,
    bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddr(p.family, p.base)}/${p.len}`;
}

/** The n-th address of a prefix (n = 1 is the first host). Undefined past its end. */
export function nthAddr(p: Prefix, n: number): string | undefined {
  if (BigInt(n) >= prefixSize(p)) return undefined;
  return formatAddr(p.family, p.base + BigInt(n));
}

export function contains(p: Prefix, addr: string): boolean {
  const a = parseAddr(addr);
  if (!a || a.family !== p.family) return false;
  const host = (1n << BigInt(BITS[p.family] - p.len)) - 1n;
  return (a.value & ~host) === p.base;
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const mask = ~((1n << BigInt(BITS[a.family] - len)) - 1n);
  return (a.base & mask) === (b.base & mask);
}
