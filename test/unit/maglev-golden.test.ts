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
const weigh = (keys: string[], w: (i: number) => number): MaglevBackend[] => keys.map((key, i) => ({ key, weight: w(i) }));
const digest = (t: Int32Array) =>
  createHash('sha256')
    .update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength))
    .digest('hex')
    .slice(0, 16);

/** Whole tables pinned by digest, taken from the builder before its cold-start rewrite (murmur on u32 pairs, float counters). */
const cases: { name: string; m: MaglevSize; scale: number; backends: () => MaglevBackend[]; digest: string }[] = [
  {
    name: 'M=16381, 100 IPv4 pods at lab weight 1 (x100: weighted turns)',
    m: 16381,
    scale: 100,
    backends: () => weigh(podKeys(100, 4), () => 1),
    digest: '852f07144a3a0b25',
  },
  {
    name: 'M=16381, 100 IPv4 pods at lab weights 1..100',
    m: 16381,
    scale: 100,
    backends: () => {
      const r = lcg(1);
      return weigh(podKeys(100, 4), () => 1 + (r() % 100));
    },
    digest: '988b13ec82373e5f',
  },
  {
    name: 'M=65521, 1000 IPv4 pods at lab weights 0..100',
    m: 65521,
    scale: 100,
    backends: () => {
      const r = lcg(2);
      return weigh(podKeys(1000, 4), () => r() % 101);
    },
    digest: 'ba2d6f79222965b1',
  },
  {
    name: 'M=8191, 60 IPv6 pods at lab weights 1..100',
    m: 8191,
    scale: 100,
    backends: () => {
      const r = lcg(3);
      return weigh(podKeys(60, 6), () => 1 + (r() % 100));
    },
    digest: '18d24884b6c73014',
  },
  {
    name: 'M=16381, 100 keys of 2..101 bytes (every murmur tail length), weight 1 unscaled (plain turns)',
    m: 16381,
    scale: 1,
    backends: () =>
      weigh(
        Array.from({ length: 100 }, (_, i) => `${i % 10}${'x'.repeat(i + 1)}`),
        () => 1,
      ),
    digest: '04dbd4c7f44a6534',
  },
  {
    name: 'M=4093, 40 keys at weights 1..65535 unscaled (Cilium u16 weights)',
    m: 4093,
    scale: 1,
    backends: () => {
      const r = lcg(4);
      return weigh(podKeys(40, 4), () => 1 + (r() % 65535));
    },
    digest: '52d09704b6199ca6',
  },
  {
    name: 'M=131071, 7 keys at weights 60000..65535 unscaled (counters past 2^32)',
    m: 131071,
    scale: 1,
    backends: () => {
      const r = lcg(5);
      return weigh(podKeys(7, 6), () => 60000 + (r() % 5536));
    },
    digest: '39ac4d7e9beeb10f',
  },
  {
    name: 'M=131071, 5 keys at weights up to 2^22 unscaled (counters past 2^34: float counters as Cilium keeps them)',
    m: 131071,
    scale: 1,
    backends: () => {
      const r = lcg(6);
      return weigh(
        Array.from({ length: 5 }, (_, i) => maglevKey({ addr: `10.244.9.${i}`, port: 80, proto: 'udp' })),
        () => 1 + (r() % 2 ** 22),
      );
    },
    digest: '8989135fe44f58f4',
  },
];

describe('Maglev golden tables (whole-table digests)', () => {
  it.each(cases)('$name', (c) => {
    expect(digest(buildMaglev(c.backends(), c.m, undefined, c.scale))).toBe(c.digest);
  });
});
