import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildMaglev, type MaglevBackend, type MaglevSize, maglevKey } from '../../src/datapath/xdp-lb/maglev.js';

/** A fixed LCG, so the weights are the same on every run. */
const lcg = (seed: number) => {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
};
const podKeys = (n: number, family: 4 | 6) =>
  Array.from({ length: n }, (_, i) =>
    maglevKey({
      addr: family === 4 ? `10.244.${(i >> 8) + 1}.${i & 255}` : `fd00:244:${i >> 8}::${(i & 255).toString(16)}`,
      port: 8080,
      proto: 'tcp',
    }),
  );
/** Backends with these keys at weights lo + (the LCG from seed) mod span. */
const weighed = (keys: string[], seed: number, lo: number, span: number): MaglevBackend[] => {
  const r = lcg(seed);
  return keys.map((key) => ({ key, weight: lo + (r() % span) }));
};
const digest = (t: Int32Array) =>
  createHash('sha256')
    .update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength))
    .digest('hex')
    .slice(0, 16);
/** Keys of 2..101 bytes: every murmur3 tail length. */
const longKeys = Array.from({ length: 100 }, (_, i) => `${i % 10}${'x'.repeat(i + 1)}`);
const udpKeys = Array.from({ length: 5 }, (_, i) => maglevKey({ addr: `10.244.9.${i}`, port: 80, proto: 'udp' }));

/**
 * Whole tables pinned by digest, taken from the builder before its cold-start rewrite (murmur on u32 pairs, float
 * counters): [case, M, weight scale, backends, digest].
 */
const cases: [string, MaglevSize, number, () => MaglevBackend[], string][] = [
  [
    'M=16381, 100 IPv4 pods at lab weight 1 (x100: weighted turns)',
    16381,
    100,
    () => weighed(podKeys(100, 4), 0, 1, 1),
    '852f07144a3a0b25',
  ],
  ['M=16381, 100 IPv4 pods at lab weights 1..100', 16381, 100, () => weighed(podKeys(100, 4), 1, 1, 100), '988b13ec82373e5f'],
  ['M=65521, 1000 IPv4 pods at lab weights 0..100', 65521, 100, () => weighed(podKeys(1000, 4), 2, 0, 101), 'ba2d6f79222965b1'],
  ['M=8191, 60 IPv6 pods at lab weights 1..100', 8191, 100, () => weighed(podKeys(60, 6), 3, 1, 100), '18d24884b6c73014'],
  [
    'M=16381, keys of every murmur tail length, weight 1 unscaled (plain turns)',
    16381,
    1,
    () => weighed(longKeys, 0, 1, 1),
    '04dbd4c7f44a6534',
  ],
  [
    'M=4093, 40 keys at weights 1..65535 unscaled (Cilium u16 weights)',
    4093,
    1,
    () => weighed(podKeys(40, 4), 4, 1, 65535),
    '52d09704b6199ca6',
  ],
  [
    'M=131071, 7 keys at weights 60000..65535 unscaled (counters past 2^32)',
    131071,
    1,
    () => weighed(podKeys(7, 6), 5, 60000, 5536),
    '39ac4d7e9beeb10f',
  ],
  [
    'M=131071, 5 keys at weights up to 2^22 unscaled (counters past 2^34: float counters as Cilium keeps them)',
    131071,
    1,
    () => weighed(udpKeys, 6, 1, 2 ** 22),
    '8989135fe44f58f4',
  ],
];

describe('Maglev golden tables (whole-table digests)', () => {
  it.each(cases)('%s', (_, m, scale, backends, want) => {
    expect(digest(buildMaglev(backends(), m, undefined, scale))).toBe(want);
  });
});
