import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildMaglev,
  flowHash4,
  flowHash6,
  jhash3words,
  MAGLEV_DEFAULT_SEED_B64,
  MAGLEV_HASH_SEED,
  MAGLEV_SIZES,
  type MaglevBackend,
  type MaglevSize,
  maglevFill,
  maglevKey,
  murmur3x64_128,
  offsetAndSkip,
  parseMaglevSeed,
  remapCount,
  remapped,
  tableShares,
} from '../../src/datapath/xdp-lb/maglev.js';

const hex = (x: bigint) => x.toString(16).padStart(16, '0');
const keysOf = (bs: readonly MaglevBackend[], t: Int32Array) => Array.from(t, (i) => bs[i].key);
const runLength = (t: Int32Array) => {
  const runs: string[] = [];
  for (let c = 0; c < t.length; ) {
    let e = c;
    while (e < t.length && t[e] === t[c]) e++;
    runs.push(`${t[c]}(${e - c})`);
    c = e;
  }
  return runs.join(',');
};
const withoutWeight = (bs: readonly MaglevBackend[], k: number) => bs.map((b, i) => (i === k ? { ...b, weight: 0 } : b));
const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

/** Unique lab-style backends: IPv4 or IPv6 address, port, protocol; keys unique after canonicalisation. */
const backendsArb = (maxN: number, weight: fc.Arbitrary<number>) =>
  fc
    .uniqueArray(
      fc.record({
        addr: fc.oneof(fc.ipV4(), fc.ipV6()),
        port: fc.integer({ min: 1, max: 65535 }),
        proto: fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp'),
      }),
      { minLength: 1, maxLength: maxN, selector: (b) => maglevKey(b) },
    )
    .chain((bs) => fc.tuple(...bs.map((b) => weight.map((w) => ({ key: maglevKey(b), weight: w })))));
/** Table sizes quick enough for many runs. */
const sizeArb = fc.constantFrom<MaglevSize>(251, 509, 1021, 2039, 4093);
/** A size and a backend set with M >= 100 x N (Cilium's kubeproxy-free.rst sizing rule). */
const sizedSet = (weight: fc.Arbitrary<number>) => sizeArb.chain((m) => fc.tuple(fc.constant(m), backendsArb(Math.floor(m / 100), weight)));

describe('Maglev hashes', () => {
  it('splits the default seed as Cilium pkg/maglev Init does', () => {
    expect(parseMaglevSeed(MAGLEV_DEFAULT_SEED_B64)).toEqual(MAGLEV_HASH_SEED);
    expect(MAGLEV_HASH_SEED).toEqual({ murmur: 0x24b7ef82, jhash4: 1910299206, jhash6: 2454738568 });
    expect(codeOf(() => parseMaglevSeed('JLfvgnHc2kaSUF'))).toBe('E_USAGE');
    expect(codeOf(() => parseMaglevSeed('JLfvgnHc2kaSUFaIAAAA'))).toBe('E_USAGE');
    expect(codeOf(() => parseMaglevSeed('JLfvgnHc2ka?UFaI'))).toBe('E_USAGE');
  });

  it('murmur3 x64 128 matches Python mmh3 5.3.0 (hash64) on the default seed, short and block paths', () => {
    const one = murmur3x64_128(Buffer.from('one'), MAGLEV_HASH_SEED.murmur);
    expect(one.map(hex)).toEqual(['dc6f89782815d926', '23766effd248257b']);
    const key = murmur3x64_128(Buffer.from('[10.244.1.3:8080/TCP,State:active]'), MAGLEV_HASH_SEED.murmur);
    expect(key.map(hex)).toEqual(['9728461c509a3f8d', 'dd9c9ac62f4dd8a4']);
    expect(murmur3x64_128(new Uint8Array(0), 0)).toEqual([0n, 0n]);
  });

  it("murmur3 x64 128 gives SMHasher's verification value 0x6384BA69", () => {
    // SMHasher VerificationTest: hash keys {0}, {0,1}, ... {0..254} with seed 256 - len, hash the 16-byte
    // results (little-endian) with seed 0, read the first 4 bytes little-endian.
    const all = Buffer.alloc(256 * 16);
    for (let i = 0; i < 256; i++) {
      const [h1, h2] = murmur3x64_128(
        Uint8Array.from({ length: i }, (_, j) => j),
        256 - i,
      );
      all.writeBigUInt64LE(h1, i * 16);
      all.writeBigUInt64LE(h2, i * 16 + 8);
    }
    const [h1] = murmur3x64_128(all, 0);
    expect(Number(h1 & 0xffffffffn)).toBe(0x6384ba69);
  });

  it('offset and skip as Cilium getOffsetAndSkip computes them', () => {
    expect(offsetAndSkip('[10.244.1.3:8080/TCP,State:active]', 16381)).toEqual({ offset: 13922, skip: 15109 });
  });

  it("keys are Cilium's frozen hash strings, addresses canonical, IPv6 bracketed", () => {
    expect(maglevKey({ addr: '10.244.1.3', port: 8080, proto: 'tcp' })).toBe('[10.244.1.3:8080/TCP,State:active]');
    expect(maglevKey({ addr: 'fd00:0:0::1', port: 53, proto: 'udp' })).toBe('[[fd00::1]:53/UDP,State:active]');
    expect(maglevKey({ addr: 'FD00:244:1:0:0:0:0:3', port: 80, proto: 'tcp' })).toBe('[[fd00:244:1::3]:80/TCP,State:active]');
    expect(codeOf(() => maglevKey({ addr: '10.244.1', port: 1, proto: 'tcp' }))).toBe('E_INTERNAL');
  });

  // Expected values from a Python transcription of include/linux/jhash.h and Cilium bpf/lib/hash.h run in /tmp
  // (struct.unpack('<I') of the packet's bytes for the little-endian loads), not from this file's code.
  it('jhash_3words and the flow hashes match an independent Python transcription', () => {
    expect(jhash3words(1, 2, 3, 0)).toBe(2757843189);
    expect(jhash3words(0, 0, 0, 0)).toBe(459859287);
    expect(jhash3words(0xffffffff, 0x12345678, 0x9abcdef0, 0x71dcda46)).toBe(225518629);
    expect(flowHash4('192.168.1.10', 40000, 80, 6)).toBe(86022225);
    expect(flowHash4('10.0.0.1', 1234, 80, 17)).toBe(2635544656);
    expect(flowHash4('172.20.0.100', 65535, 53, 17)).toBe(2833868340);
    expect(flowHash4('0.0.0.0', 0, 0, 0)).toBe(1411736566);
    expect(flowHash4('192.168.1.10', 40000, 80, 6) % 16381).toBe(5594);
    expect(flowHash6('fd00::1', 40000, 80, 6)).toBe(3492638877);
    expect(flowHash6('2001:db8::ff00:42:8329', 1234, 53, 17)).toBe(1092252007);
  });

  it('flow hashes leave the destination out and see every other field', () => {
    const h = flowHash4('10.0.0.1', 1234, 80, 6);
    expect(
      new Set([flowHash4('10.0.0.2', 1234, 80, 6), flowHash4('10.0.0.1', 1235, 80, 6), flowHash4('10.0.0.1', 1234, 81, 6)]).has(h),
    ).toBe(false);
    expect(flowHash4('10.0.0.1', 1234, 80, 17)).not.toBe(h);
    expect(codeOf(() => flowHash4('fd00::1', 1, 2, 6))).toBe('E_INTERNAL');
  });
});

describe('Maglev fill by hand', () => {
  it('M = 7, three lanes, unweighted (sum / N = 1): derived turn by turn', () => {
    // lane 0: offset 3 skip 4 -> 3 0 4 1 5 2 6;  lane 1: offset 0 skip 2 -> 0 2 4 6 1 3 5;  lane 2: offset 3 skip 1 -> 3 4 5 6 0 1 2
    // turn 0 lane 0: 3 free            -> [3] = 0
    // turn 1 lane 1: 0 free            -> [0] = 1
    // turn 2 lane 2: 3 taken, 4 free   -> [4] = 2
    // turn 3 lane 0: 0, 4 taken, 1     -> [1] = 0
    // turn 4 lane 1: 2 free            -> [2] = 1
    // turn 5 lane 2: 5 free            -> [5] = 2
    // turn 6 lane 0: 5, 2 taken, 6     -> [6] = 0
    const lanes = [
      { offset: 3, skip: 4, weight: 1 },
      { offset: 0, skip: 2, weight: 1 },
      { offset: 3, skip: 1, weight: 1 },
    ];
    expect(Array.from(maglevFill(lanes, 7))).toEqual([1, 0, 1, 0, 2, 2, 0]);
  });

  it('M = 7, weights 3 and 1 (sum / N = 2 > 1, so weights apply): derived turn by turn', () => {
    // lane 0: offset 0 skip 1 -> 0 1 2 3 4 5 6;  lane 1: offset 0 skip 3 -> 0 3 6 2 5 1 4;  cntr = [1.5, 0.5], sum 4
    // turn 0 lane 0: 1*3 < 1? no, take: [0] = 0, cntr0 5.5
    // turn 1 lane 1: 2*1 < 0? no, take: 0 taken, 3 -> [3] = 1, cntr1 4.5
    // turn 2 lane 0: 3*3 < 5? no: [1] = 0, cntr0 9.5
    // turn 3 lane 1: 4*1 < 4? no: 6 -> [6] = 1, cntr1 8.5
    // turn 4 lane 0: 5*3 < 9? no: [2] = 0, cntr0 13.5
    // turn 5 lane 1: 6*1 < 8? yes, pass to lane 0: 6*3 < 13? no: 3 taken, 4 -> [4] = 0, cntr0 17.5
    // turn 6 lane 0: 7*3 < 17? no: [5] = 0
    const lanes = [
      { offset: 0, skip: 1, weight: 3 },
      { offset: 0, skip: 3, weight: 1 },
    ];
    expect(Array.from(maglevFill(lanes, 7))).toEqual([0, 0, 0, 1, 0, 0, 1]);
  });
});

describe('Maglev tables against Cilium', () => {
  it("reproduces Cilium's TestReproducible table cell for cell (M = 251, weights 2/13/111/10)", () => {
    // Cilium pkg/maglev/maglev_test.go: mkAddr(i) = IPv4 i, port i, TCP; weights fed as they are (scale 1).
    const expected =
      '2(5),3(1),2(3),1(1),2(2),0(1),2(1),3(1),2(1),3(1),2(1),1(1),2(7),1(1),2(14),3(1),2(1),' +
      '1(2),2(12),3(1),2(3),1(1),2(4),3(1),2(8),3(1),2(2),1(1),2(16),1(2),2(3),3(1),2(11),1(2),2(4),3(1),2(3),' +
      '1(1),2(4),3(1),2(1),0(1),1(1),2(8),1(1),2(7),1(1),2(4),3(1),2(1),3(1),2(9),1(2),2(5),1(1),2(7),3(1),2(1),' +
      '3(1),1(1),2(8),1(1),2(4),0(1),2(1),1(1),2(5),3(1),2(3),1(1),2(4),3(1),2(3),1(1),2(12),0(1),3(1),2(3),3(1),' +
      '2(4),3(1),2(2),1(1),2(7)';
    const bs = [
      [1, 2],
      [3, 13],
      [4, 111],
      [5, 10],
    ].map(([i, weight]) => ({ key: maglevKey({ addr: `0.0.0.${i}`, port: i, proto: 'tcp' }), weight }));
    expect(runLength(buildMaglev(bs, 251, undefined, 1))).toBe(expected);
  });

  it("gives Cilium's older golden counts, names hashed directly: 16 / 98 / 832 / 75 at M = 1021", () => {
    const bs = [
      { key: 'one', weight: 2 },
      { key: 'three', weight: 13 },
      { key: 'two', weight: 111 },
      { key: 'tzwe', weight: 10 },
    ];
    expect(tableShares(buildMaglev(bs, 1021, undefined, 1), 4)).toEqual([16, 98, 832, 75]);
  });

  it("Cilium's TestBackendRemoval: removing one of three equal backends moves < 1% of M", () => {
    const bs = [1, 2, 3].map((i) => ({ key: maglevKey({ addr: `0.0.0.${i}`, port: i, proto: 'tcp' }), weight: 1 }));
    const before = buildMaglev(bs, 1021);
    expect(remapCount(before, buildMaglev(withoutWeight(bs, 2), 1021), 2).changed / 1021).toBeLessThan(0.01);
  });

  it('lab-style backends: the first cells and counts cross-checked with the research scratch build', () => {
    const bs = ['10.244.1.3', '10.244.2.2', '10.244.2.3'].map((addr) => ({
      key: maglevKey({ addr, port: 8080, proto: 'tcp' }),
      weight: 1,
    }));
    const t = buildMaglev(bs, 251);
    expect(Array.from(t.slice(0, 16), (i) => i + 1)).toEqual([1, 2, 3, 2, 3, 2, 1, 2, 1, 3, 2, 1, 2, 3, 1, 1]);
    expect(tableShares(t, 3)).toEqual([84, 84, 83]);
    // What maglev-consistency will see with three pods: every removal stays under 1% from M = 1021 up
    // (at 509, removing 10.244.2.2 moves 1.5% of the others' cells).
    for (const m of [1021, 16381, 65521] as const) {
      const before = buildMaglev(bs, m);
      for (let k = 0; k < 3; k++) expect(remapped(before, buildMaglev(withoutWeight(bs, k), m), k)).toBeLessThan(0.01);
    }
  });
});

describe('Maglev table properties', () => {
  it('every cell belongs to a backend of weight > 0, and weight 0 gets none', () => {
    fc.assert(
      fc.property(sizeArb, backendsArb(40, fc.integer({ min: 0, max: 100 })), (m, bs) => {
        fc.pre(bs.some((b) => b.weight > 0));
        const t = buildMaglev(bs, m);
        const shares = tableShares(t, bs.length);
        return bs.every((b, i) => (b.weight > 0 ? shares[i] > 0 : shares[i] === 0)) && t.every((i) => bs[i].weight > 0);
      }),
      { numRuns: 150 },
    );
  });

  it('input order does not change which backend owns a cell', () => {
    fc.assert(
      fc.property(
        sizeArb,
        backendsArb(30, fc.integer({ min: 0, max: 100 })).chain((bs) =>
          fc.tuple(fc.constant(bs), fc.shuffledSubarray(bs, { minLength: bs.length, maxLength: bs.length })),
        ),
        (m, [bs, shuffled]) => {
          fc.pre(bs.some((b) => b.weight > 0));
          expect(keysOf(shuffled, buildMaglev(shuffled, m))).toEqual(keysOf(bs, buildMaglev(bs, m)));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a weight-0 backend is the same as an absent one', () => {
    fc.assert(
      fc.property(sizeArb, backendsArb(30, fc.integer({ min: 1, max: 100 })), fc.nat(), (m, bs, pick) => {
        fc.pre(bs.length > 1);
        const k = pick % bs.length;
        const zeroed = withoutWeight(bs, k);
        const absent = bs.filter((_, i) => i !== k);
        expect(keysOf(zeroed, buildMaglev(zeroed, m))).toEqual(keysOf(absent, buildMaglev(absent, m)));
      }),
      { numRuns: 100 },
    );
  });

  it('equal weights give every backend its even share within 1% when M >= 100 x N', () => {
    fc.assert(
      fc.property(
        sizeArb.filter((m) => m >= 509),
        fc.integer({ min: 1, max: 100 }),
        fc.nat(),
        (m, w, seed) => {
          const n = 1 + (seed % Math.floor(m / 100));
          const bs = Array.from({ length: n }, (_, i) => ({ key: `b${seed}-${i}`, weight: w }));
          const even = m / n;
          return tableShares(buildMaglev(bs, m), n).every((s) => Math.abs(s - even) <= 0.01 * even);
        },
      ),
      { numRuns: 150 },
    );
  });

  // Cilium's weighted turns miss M x w / sum by a few cells, more with more lanes: 0.5% of M failed at M = 509 (2.65 cells
  // off with N = 5); over 15000 random sets (M 251..4093, N <= M / 100) the worst was 0.58 x N cells.
  it("weights give shares within N cells of M x w / sum (Cilium's weighted turns)", () => {
    fc.assert(
      fc.property(sizedSet(fc.integer({ min: 1, max: 100 })), ([m, bs]) => {
        const sum = bs.reduce((a, b) => a + b.weight, 0);
        const shares = tableShares(buildMaglev(bs, m), bs.length);
        return bs.every((b, i) => Math.abs(shares[i] - (m * b.weight) / sum) <= bs.length);
      }),
      { numRuns: 200 },
    );
  });

  it("removal: the removed backend's cells all go to survivors, and the survivors' cells mostly stay", () => {
    fc.assert(
      fc.property(sizedSet(fc.constant(1)), fc.nat(), ([m, bs], pick) => {
        fc.pre(bs.length > 1);
        const k = pick % bs.length;
        const before = buildMaglev(bs, m);
        const after = buildMaglev(withoutWeight(bs, k), m);
        const { changed, cells } = remapCount(before, after, k);
        return after.every((i) => i !== k) && cells === m - tableShares(before, bs.length)[k] && changed < cells;
      }),
      { numRuns: 100 },
    );
  });

  // Cilium's kubeproxy-free.rst says M > 100 x N keeps reassignments within 1%; its own test checks one set of
  // three. Measured over random sets it is an average at best: 16381 with N <= 163 gives a mean near 0.9%, with
  // many single sets above 1%; at 1021 the mean is ~2%. These two tests keep that on record.
  it('removal: the 1% of kubeproxy-free.rst is not a bound: three pods at M = 4093 move 4% of the rest', () => {
    const bs = ['10.244.0.4', '10.244.0.49', '10.244.0.50'].map((addr) => ({
      key: maglevKey({ addr, port: 8080, proto: 'tcp' }),
      weight: 1,
    }));
    const before = buildMaglev(bs, 4093);
    expect(remapCount(before, buildMaglev(withoutWeight(bs, 2), 4093), 2)).toEqual({ changed: 109, cells: 2729 });
  });

  it('removal at the default M = 16381 with N <= 163: the mean over random sets stays under 1.5%', () => {
    const sets = fc.sample(fc.tuple(fc.integer({ min: 2, max: 163 }), fc.nat(), fc.nat()), { numRuns: 40, seed: 9 });
    const fractions = sets.map(([n, salt, pick]) => {
      const bs = Array.from({ length: n }, (_, i) => ({ key: `s${salt}-${i}`, weight: 1 }));
      const k = pick % n;
      return remapped(buildMaglev(bs, 16381), buildMaglev(withoutWeight(bs, k), 16381), k);
    });
    expect(fractions.length).toBe(40);
    expect(fractions.reduce((a, b) => a + b, 0) / fractions.length).toBeLessThan(0.015);
  });
});

describe('Maglev builder refusals and helpers', () => {
  it('no backend of weight > 0 is E_NO_BACKENDS', () => {
    expect(codeOf(() => buildMaglev([]))).toBe('E_NO_BACKENDS');
    expect(codeOf(() => buildMaglev([{ key: 'a', weight: 0 }], 251))).toBe('E_NO_BACKENDS');
  });
  it("refuses table sizes outside Cilium's list, duplicate keys and bad weights", () => {
    expect(codeOf(() => buildMaglev([{ key: 'a', weight: 1 }], 1000 as MaglevSize))).toBe('E_USAGE');
    expect(
      codeOf(() =>
        buildMaglev(
          [
            { key: 'a', weight: 1 },
            { key: 'a', weight: 2 },
          ],
          251,
        ),
      ),
    ).toBe('E_INTERNAL');
    expect(codeOf(() => buildMaglev([{ key: 'a', weight: 1.5 }], 251))).toBe('E_INTERNAL');
    expect(codeOf(() => buildMaglev([{ key: 'a', weight: -1 }], 251))).toBe('E_INTERNAL');
    expect(MAGLEV_SIZES).toContain(16381);
  });
  it('one backend owns every cell; the default size is 16381', () => {
    const t = buildMaglev([{ key: 'only', weight: 1 }]);
    expect(t.length).toBe(16381);
    expect(tableShares(t, 1)).toEqual([16381]);
  });
  it('tableShares refuses a cell outside the backends; remapped needs survivor cells', () => {
    expect(codeOf(() => tableShares(Int32Array.from([0, 2]), 2))).toBe('E_INTERNAL');
    expect(codeOf(() => tableShares(Int32Array.from([0, -1]), 2))).toBe('E_INTERNAL');
    expect(remapCount(Int32Array.from([0, 1, 1, 2]), Int32Array.from([0, 0, 1, 0]), 2)).toEqual({ changed: 1, cells: 3 });
    expect(remapped(Int32Array.from([0, 1, 1, 2]), Int32Array.from([0, 0, 1, 0]), 2)).toBeCloseTo(1 / 3);
    expect(codeOf(() => remapped(Int32Array.from([1, 1]), Int32Array.from([0, 0]), 1))).toBe('E_INTERNAL');
    expect(codeOf(() => remapCount(Int32Array.from([1]), Int32Array.from([0, 0]), 1))).toBe('E_INTERNAL');
  });
});
