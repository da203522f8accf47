/** Minimal IPv4/IPv6 prefix arithmetic for the resolver (parse, nth host, overlap). */

export interface Prefix {
  family: 4 | 6;
  base: bigint;
  len: number;
}

const BITS = { 4: 32, 6: 128 } as const;

export function parseAddr(s: string): { family: 4 | 6; value: bigint } | undefined {
  if (s.includes(':')) {
    const halves = s.split('::');
    if (halves.length > 2) return undefined;
    const head = halves[0] ? halves[0].split(':') : [];
    const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
    const fill = 8 - head.length - tail.length;
    if ((halves.length === 1 && fill !== 0) || fill < 0) return undefined;
    const groups = [...head, ...Array(halves.length === 2 ? fill : 0).fill('0'), ...tail];
    let v = 0n;
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      v = (v << 16n) | BigInt(parseInt(g, 16));
    }
    return { family: 6, value: v };
  }
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n) };
}

export function parsePrefix(s: string): Prefix | undefined {
  const [addr, lenStr] = s.split('/');
  const a = parseAddr(addr);
  const len = Number(lenStr);
  if (!a || !Number.isInteger(len) || len < 0 || len > BITS[a.family]) return undefined;
  const host = (1n << BigInt(BITS[a.family] - len)) - 1n;
  return { family: a.family, base: a.value & ~host, len };
}

export function formatAddr(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const groups = [...Array(8)].map((_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 1;
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
  if (BigInt(n) >= 1n << BigInt(BITS[p.family] - p.len)) return undefined;
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
