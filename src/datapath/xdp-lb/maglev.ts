/**
 * Maglev lookup tables as Cilium builds them (pkg/maglev/maglev.go GetLookupTable), and the flow hash its
 * BPF side indexes them with (bpf/lib/hash.h), so every LB node builds the same table and a test can predict
 * which cell, and so which backend, a 5-tuple lands on.
 */
import { LabError } from '../../errors.js';
import { formatAddr, parseAddr } from '../../topology/ip.js';

/** Cilium pkg/maglev maglevSupportedTableSizes: primes, so every backend's preference list visits every cell. */
export const MAGLEV_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export type MaglevSize = (typeof MAGLEV_SIZES)[number];
/** Cilium pkg/maglev DefaultTableSize. */
export const MAGLEV_DEFAULT_SIZE: MaglevSize = 16381;

/** The three seeds Cilium derives from its 12-byte base64 hash seed (pkg/maglev Init: big-endian u32 groups). */
export interface MaglevSeed {
  /** Bytes 0-3: the murmur3 seed of the backends' offset and skip. */
  readonly murmur: number;
  /** Bytes 4-7: HASH_INIT4_SEED, the jhash seed of IPv4 flows (pkg/datapath/linux/config). */
  readonly jhash4: number;
  /** Bytes 8-11: HASH_INIT6_SEED, the jhash seed of IPv6 flows. */
  readonly jhash6: number;
}

/** Cilium pkg/maglev DefaultHashSeed ("seed=$(head -c12 /dev/urandom | base64 -w0)"). */
export const MAGLEV_DEFAULT_SEED_B64 = 'JLfvgnHc2kaSUFaI';
/** MAGLEV_DEFAULT_SEED_B64 split as Cilium splits it (a unit test derives it again from the base64). */
export const MAGLEV_HASH_SEED: MaglevSeed = { murmur: 0x24b7ef82, jhash4: 0x71dcda46, jhash6: 0x92505688 };

/**
 * Lab weights (1..100, default 1) are multiplied by this before Cilium's weighted fill: Cilium applies weights only
 * when trunc(sum / N) > 1, so lab weights [1, 2, 1] would be ignored; x100 makes the lab default Cilium's 100
 * (pkg/loadbalancer DefaultBackendWeight).
 */
export const MAGLEV_LAB_WEIGHT_SCALE = 100;

/** One backend as the builder sees it. */
export interface MaglevBackend {
  /** What is hashed: maglevKey(...) for lab backends; any unique string (Cilium's older API hashed names). */
  readonly key: string;
  /** The lab's weight (0..100); 0 gets no cell. */
  readonly weight: number;
}

/** Cilium's frozen backend hash string (BackendInfo.setHashString): "[10.244.1.3:8080/TCP,State:active]", IPv6 bracketed. */
export function maglevKey(b: { addr: string; port: number; proto: 'tcp' | 'udp' }): string {
  const a = parseAddr(b.addr);
  if (!a) throw new LabError('E_INTERNAL', `maglevKey: '${b.addr}' is not an IP address`);
  const text = formatAddr(a.family, a.value);
  return `[${a.family === 6 ? `[${text}]` : text}:${b.port}/${b.proto.toUpperCase()},State:active]`;
}

/** Cilium pkg/maglev Init: base64 of exactly 12 bytes, split in three big-endian u32. */
export function parseMaglevSeed(b64: string): MaglevSeed {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64)
    throw new LabError('E_USAGE', `Maglev hash seed '${b64}' is not base64`, 'make one with: head -c12 /dev/urandom | base64 -w0');
  if (bytes.length !== 12)
    throw new LabError(
      'E_USAGE',
      `Maglev hash seed decodes to ${bytes.length} bytes (not 12)`,
      'make one with: head -c12 /dev/urandom | base64 -w0',
    );
  return { murmur: bytes.readUInt32BE(0), jhash4: bytes.readUInt32BE(4), jhash6: bytes.readUInt32BE(8) };
}

export function isMaglevSize(m: number): m is MaglevSize {
  return (MAGLEV_SIZES as readonly number[]).includes(m);
}

// murmur3 on 64-bit words held as (hi, lo) int32 pairs. BigInt cost ~30 us per key; u32 halves above 2^31 are boxed
// doubles while the interpreter runs a process's first build (~4 kB of garbage per key, and the collections it
// triggers); int32 halves stay small integers there. Signedness matters only where order or division does: add64's
// carry, mod64.
/** The result registers of mul64, add64 and rotl64. */
let rh = 0;
let rl = 0;

/** High word of the u32 product of a and b (int32 bit patterns): 16-bit limbs through Math.imul, every partial in int32. */
function mulhi(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = Math.imul(a0, b1);
  const p10 = Math.imul(a1, b0);
  const mid = (Math.imul(a0, b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (Math.imul(a1, b1) + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** (ah:al) x (bh:bl) mod 2^64 into rh:rl. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  rl = Math.imul(al, bl);
  rh = (((mulhi(al, bl) + Math.imul(ah, bl)) | 0) + Math.imul(al, bh)) | 0;
}

/** XOR with the sign bit maps unsigned order onto signed order. */
const SIGN = -0x80000000;

function add64(ah: number, al: number, bh: number, bl: number): void {
  rl = (al + bl) | 0;
  rh = (ah + bh + ((rl ^ SIGN) < (al ^ SIGN) ? 1 : 0)) | 0;
}

/** Rotate left by r in 1..31 or 33..63 (murmur3 uses 27, 31 and 33). */
function rotl64(h: number, l: number, r: number): void {
  if (r > 32) {
    rotl64(l, h, r - 32);
    return;
  }
  rh = (h << r) | (l >>> (32 - r));
  rl = (l << r) | (h >>> (32 - r));
}

/** murmur3 fmix64: k ^= k >> 33; k *= 0xff51afd7ed558ccd; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53; k ^= k >> 33. */
function fmix64(h: number, l: number): void {
  mul64(h, l ^ (h >>> 1), 0xff51afd7 | 0, 0xed558ccd | 0);
  mul64(rh, rl ^ (rh >>> 1), 0xc4ceb9fe | 0, 0x1a85ec53);
  rl ^= rh >>> 1;
}

/** k1 *= c1; k1 = rotl(k1, 31); k1 *= c2 (mixK2 swaps the constants and rotates by 33). */
function mixK(h: number, l: number, ah: number, al: number, r: number, bh: number, bl: number): void {
  mul64(h, l, ah, al);
  rotl64(rh, rl, r);
  mul64(rh, rl, bh, bl);
}

const C1H = 0x87c37b91 | 0;
const C1L = 0x114253d5;
const C2H = 0x4cf5ad43;
const C2L = 0x2745937f;

/** Bytes as a little-endian int32. */
const le32 = (d: Uint8Array, at: number) => d[at] | (d[at + 1] << 8) | (d[at + 2] << 16) | (d[at + 3] << 24);
/** The last partial block, zero-padded. */
const tail = new Uint8Array(16);
/** murmurWords' result: h1 hi, h1 lo, h2 hi, h2 lo as int32. */
const H = new Int32Array(4);

/** MurmurHash3_x64_128 as Cilium's pkg/murmur3 Hash128 (h1 and h2 start at the u32 seed, little-endian lanes), into H. */
function murmurWords(data: Uint8Array, seed: number): void {
  let h1h = 0;
  let h1l = seed | 0;
  let h2h = 0;
  let h2l = seed | 0;
  const blocks = data.length >> 4;
  for (let b = 0; b < blocks; b++) {
    const o = b * 16;
    mixK(le32(data, o + 4), le32(data, o), C1H, C1L, 31, C2H, C2L);
    rotl64(h1h ^ rh, h1l ^ rl, 27);
    add64(rh, rl, h2h, h2l);
    mul64(rh, rl, 0, 5);
    add64(rh, rl, 0, 0x52dce729);
    h1h = rh;
    h1l = rl;
    mixK(le32(data, o + 12), le32(data, o + 8), C2H, C2L, 33, C1H, C1L);
    rotl64(h2h ^ rh, h2l ^ rl, 31);
    add64(rh, rl, h1h, h1l);
    mul64(rh, rl, 0, 5);
    add64(rh, rl, 0, 0x38495ab5);
    h2h = rh;
    h2l = rl;
  }
  const rest = data.length - blocks * 16;
  tail.fill(0);
  for (let i = 0; i < rest; i++) tail[i] = data[blocks * 16 + i];
  if (rest > 8) {
    mixK(le32(tail, 12), le32(tail, 8), C2H, C2L, 33, C1H, C1L);
    h2h ^= rh;
    h2l ^= rl;
  }
  if (rest > 0) {
    mixK(le32(tail, 4), le32(tail, 0), C1H, C1L, 31, C2H, C2L);
    h1h ^= rh;
    h1l ^= rl;
  }
  // h ^= len (< 2^32 here), h1 += h2, h2 += h1, fmix both, h1 += h2, h2 += h1.
  h1l ^= data.length;
  h2l ^= data.length;
  add64(h1h, h1l, h2h, h2l);
  h1h = rh;
  h1l = rl;
  add64(h2h, h2l, h1h, h1l);
  h2h = rh;
  h2l = rl;
  fmix64(h1h, h1l);
  h1h = rh;
  h1l = rl;
  fmix64(h2h, h2l);
  h2h = rh;
  h2l = rl;
  add64(h1h, h1l, h2h, h2l);
  H[0] = rh;
  H[1] = rl;
  add64(h2h, h2l, rh, rl);
  H[2] = rh;
  H[3] = rl;
}

const u64 = (hi: number, lo: number) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);

/** MurmurHash3_x64_128 as Cilium's pkg/murmur3 Hash128 returns it: (h1, h2). */
export function murmur3x64_128(data: Uint8Array, seed: number): [bigint, bigint] {
  murmurWords(data, seed);
  return [u64(H[0], H[1]), u64(H[2], H[3])];
}

/** (hi:lo) mod m for m < 2^26, halves as int32: every partial product stays exact in a double. */
const mod64 = (hi: number, lo: number, m: number) => (((((hi >>> 0) % m) * (4294967296 % m)) % m) + ((lo >>> 0) % m)) % m;

/** Cilium getOffsetAndSkip from the key's bytes: offset = h1 mod m, skip = h2 mod (m - 1) + 1. */
function offsetSkipOf(bytes: Uint8Array, m: number, seed: number): { offset: number; skip: number } {
  murmurWords(bytes, seed);
  return { offset: mod64(H[0], H[1], m), skip: mod64(H[2], H[3], m - 1) + 1 };
}

/** Cilium getOffsetAndSkip: where a backend's preference list starts in a table of m cells, and its stride. */
export function offsetAndSkip(key: string, m: number, seed = MAGLEV_HASH_SEED.murmur): { offset: number; skip: number } {
  return offsetSkipOf(Buffer.from(key, 'utf8'), m, seed);
}

/** What buildMaglev needs per backend once keys are hashed; the fill alone, so a test can inject offset and skip. */
export interface MaglevLane {
  /** First cell of the preference list. */
  readonly offset: number;
  /** Stride of the preference list (1..m-1). */
  readonly skip: number;
  /** Cilium's weight (lab weight x MAGLEV_LAB_WEIGHT_SCALE), > 0. */
  readonly weight: number;
}

/**
 * Cilium's fill (GetLookupTable after the permutations): m turns; turn n starts at lane n mod N and, when weights
 * apply (trunc(sum / N) > 1), passes over lane i while (n + 1) * w_i < trunc(cntr_i), cntr_i starting at w_i / N and
 * growing by the sum each turn lane i takes; the lane then walks its list to the first empty cell. Lanes in the order
 * given (callers sort them); cells hold lane indexes, or owners[lane] (>= 0) when given. Lists are walked lazily
 * instead of Cilium's N x M permutation.
 */
export function maglevFill(lanes: readonly MaglevLane[], m: number, owners?: Int32Array): Int32Array {
  const n = lanes.length;
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  let sum = 0;
  let maxW = 0;
  for (let i = 0; i < n; i++) {
    pos[i] = lanes[i].offset;
    skip[i] = lanes[i].skip;
    sum += lanes[i].weight;
    maxW = Math.max(maxW, lanes[i].weight);
  }
  // Cilium's cntr is a float64 compared through trunc(). Every counter stays below m * w_max + sum + 1; under 2^34 its
  // rounding error is below 2^-19, and for N < 2^19 below 1/N, the least distance of w_i / N's fraction from 1: so
  // trunc(cntr_i) is exactly floor(w_i / N) + k_i * sum. Where that bound is under 2^31 (lab weights at any M), the
  // counters are integers in an Int32Array: a process's first build runs in the interpreter, which boxes every double
  // it loads or makes (float counters cost a heap number per turn). Past it, Cilium's float counters as they are.
  const small = n < 2 ** 19 && maxW * m + sum + 1 < 2 ** 31;
  if (small) sum |= 0;
  const w = small ? new Int32Array(n) : new Float64Array(n);
  const cntr = small ? new Int32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    w[i] = lanes[i].weight;
    cntr[i] = small ? Math.floor(w[i] / n) : w[i] / n;
  }
  const weighted = Math.trunc(sum / n) > 1;
  const own = owners ?? Int32Array.from(lanes, (_, i) => i);
  const table = new Int32Array(m).fill(-1);
  for (let turn = 0; turn < m; turn++) {
    let i = turn % n;
    if (weighted) {
      // Terminates: summed over lanes, (turn + 1) * sum < sum / N + turn * sum cannot hold for all of them.
      while ((turn + 1) * w[i] < (small ? cntr[i] : Math.trunc(cntr[i]))) i = i + 1 === n ? 0 : i + 1;
      cntr[i] += sum;
    }
    let c = pos[i];
    const s = skip[i];
    while (table[c] >= 0) {
      c += s;
      if (c >= m) c -= m;
    }
    table[c] = own[i];
    c += s;
    pos[i] = c >= m ? c - m : c;
  }
  return table;
}

/** Bytewise order of UTF-8 keys (Go sort.Strings), which JS string comparison is not past the BMP. */
const byteOrder = (a: Buffer, b: Buffer) => Buffer.compare(a, b);

/**
 * The Maglev table of m cells for these backends: each cell is an index into `backends` as given. Backends are
 * ordered by key bytewise first (Cilium sorts by hash string: ids are node-local), so input order does not change
 * which backend owns a cell. Weight-0 backends are left out before the fill (Cilium's fill would still give one its
 * first turn). `weightScale` 1 feeds weights to Cilium's rule as they are (its golden tests).
 */
export function buildMaglev(
  backends: readonly MaglevBackend[],
  m: MaglevSize = MAGLEV_DEFAULT_SIZE,
  seed: number = MAGLEV_HASH_SEED.murmur,
  weightScale: number = MAGLEV_LAB_WEIGHT_SCALE,
): Int32Array {
  if (!isMaglevSize(m))
    throw new LabError('E_USAGE', `Maglev table size ${m} is not supported; supported values are ${MAGLEV_SIZES.join(', ')}`);
  for (const b of backends)
    if (!Number.isInteger(b.weight) || b.weight < 0)
      throw new LabError('E_INTERNAL', `Maglev backend ${b.key}: weight ${b.weight} is not an integer >= 0`);
  const live = backends
    .map((b, index) => ({ index, bytes: Buffer.from(b.key, 'utf8'), weight: b.weight * weightScale }))
    .filter((b) => b.weight > 0)
    .sort((a, b) => byteOrder(a.bytes, b.bytes));
  if (live.length === 0)
    throw new LabError('E_NO_BACKENDS', `no backend with weight > 0 among ${backends.length}: Maglev has nothing to fill a table with`);
  for (let i = 1; i < live.length; i++)
    if (byteOrder(live[i - 1].bytes, live[i].bytes) === 0)
      throw new LabError('E_INTERNAL', `Maglev backend key ${backends[live[i].index].key} appears twice`);
  const lanes = live.map((b) => ({ ...offsetSkipOf(b.bytes, m, seed), weight: b.weight }));
  return maglevFill(
    lanes,
    m,
    Int32Array.from(live, (b) => b.index),
  );
}

const rol32 = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** Kernel include/linux/jhash.h __jhash_final (= Cilium bpf/lib/jhash.h); returns c as u32. */
function jhashFinal(a0: number, b0: number, c0: number): number {
  let a = a0 | 0;
  let b = b0 | 0;
  let c = c0 | 0;
  c ^= b;
  c = (c - rol32(b, 14)) | 0;
  a ^= c;
  a = (a - rol32(c, 11)) | 0;
  b ^= a;
  b = (b - rol32(a, 25)) | 0;
  c ^= b;
  c = (c - rol32(b, 16)) | 0;
  a ^= c;
  a = (a - rol32(c, 4)) | 0;
  b ^= a;
  b = (b - rol32(a, 14)) | 0;
  c ^= b;
  c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/** Kernel include/linux/jhash.h __jhash_mix on a 3-word state. */
function jhashMix(s: Int32Array): void {
  let [a, b, c] = s;
  a = (a - c) | 0;
  a ^= rol32(c, 4);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rol32(a, 6);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rol32(b, 8);
  b = (b + a) | 0;
  a = (a - c) | 0;
  a ^= rol32(c, 16);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rol32(a, 19);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rol32(b, 4);
  b = (b + a) | 0;
  s[0] = a;
  s[1] = b;
  s[2] = c;
}

/** Kernel jhash_3words: JHASH_INITVAL 0xdeadbeef + 12 bytes + initval added to each word, then __jhash_final. */
export function jhash3words(a: number, b: number, c: number, initval: number): number {
  const iv = (initval + 0xdeadbeef + 12) | 0;
  return jhashFinal((a + iv) | 0, (b + iv) | 0, (c + iv) | 0);
}

/** A u32 as a little-endian host loads it from these 4 bytes (network order in the packet). */
const loadLe32 = (bytes: readonly number[], at: number) =>
  (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
/** A port as a little-endian host loads the __be16 from the packet. */
const rawPort = (port: number) => ((port & 0xff) << 8) | ((port >> 8) & 0xff);
const addrBytes = (addr: string, family: 4 | 6): number[] => {
  const a = parseAddr(addr);
  if (a?.family !== family) throw new LabError('E_INTERNAL', `flow hash: '${addr}' is not an IPv${family} address`);
  const n = family === 4 ? 4 : 16;
  return Array.from({ length: n }, (_, i) => Number((a.value >> BigInt(8 * (n - 1 - i))) & 0xffn));
};

/**
 * Cilium bpf/lib/hash.h hash_from_tuple_v4 on a little-endian host: jhash_3words(saddr, dport << 16 | sport, nexthdr,
 * HASH_INIT4_SEED) over raw network-order loads (saddr and ports as the program reads them from the packet; daddr is
 * left out on purpose). The flow's Maglev cell is flowHash4(...) % m.
 */
export function flowHash4(saddr: string, sport: number, dport: number, proto: number, seed = MAGLEV_HASH_SEED.jhash4): number {
  const ports = ((rawPort(dport) << 16) | rawPort(sport)) >>> 0;
  return jhash3words(loadLe32(addrBytes(saddr, 4), 0), ports, proto, seed);
}

/** Cilium hash_from_tuple_v6: saddr words 1-3 mixed, word 4 + ports + nexthdr mixed, seed added to a, final. */
export function flowHash6(saddr: string, sport: number, dport: number, proto: number, seed = MAGLEV_HASH_SEED.jhash6): number {
  const w = addrBytes(saddr, 6);
  const s = new Int32Array([loadLe32(w, 0), loadLe32(w, 4), loadLe32(w, 8)]);
  jhashMix(s);
  s[0] = (s[0] + loadLe32(w, 12)) | 0;
  s[1] = (s[1] + ((rawPort(dport) << 16) | rawPort(sport))) | 0;
  s[2] = (s[2] + proto) | 0;
  jhashMix(s);
  s[0] = (s[0] + seed) | 0;
  return jhashFinal(s[0], s[1], s[2]);
}

/** Cells per backend index 0..n-1; a cell outside that range is a bug in whoever built or read the table. */
export function tableShares(table: Int32Array, n: number): number[] {
  const shares = new Array<number>(n).fill(0);
  for (const owner of table) {
    if (!(owner >= 0 && owner < n)) throw new LabError('E_INTERNAL', `Maglev table cell holds ${owner}, not a backend index below ${n}`);
    shares[owner]++;
  }
  return shares;
}

/**
 * Cells of `before` not owned by `removedIndex`, and how many of them have another owner in `after`. Both tables use
 * the same index space: build `after` from the same list with the removed backend's weight set to 0.
 */
export function remapCount(before: Int32Array, after: Int32Array, removedIndex: number): { changed: number; cells: number } {
  if (before.length !== after.length)
    throw new LabError('E_INTERNAL', `Maglev tables of different sizes (${before.length}, ${after.length}) cannot be compared`);
  let changed = 0;
  let cells = 0;
  for (let c = 0; c < before.length; c++) {
    if (before[c] === removedIndex) continue;
    cells++;
    if (after[c] !== before[c]) changed++;
  }
  return { changed, cells };
}

/** Fraction of the survivors' cells (remapCount) that changed owner; a table with no survivor cell has no answer. */
export function remapped(before: Int32Array, after: Int32Array, removedIndex: number): number {
  const { changed, cells } = remapCount(before, after, removedIndex);
  if (cells === 0) throw new LabError('E_INTERNAL', `every cell belonged to backend ${removedIndex}: no survivor cells to compare`);
  return changed / cells;
}
