import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CALIBRATED_2VCPU, FAST_HOST } from '../../src/sim/cpu.js';
import { runFlows } from '../../src/sim/path.js';
import { Rng } from '../../src/sim/rng.js';

/**
 * The flow model's results pinned by digest, taken before the speed work of model 0.3 (cached BBR
 * max filter, reused ACK objects, one skb shape): a change that only makes the model faster must
 * leave every figure as it was. A change of the model itself updates these digests on purpose.
 */
const GOLDEN = {
  bbr: 'fccbce2c6f69e4ea',
  cubic: '4ecbb01aa31d59d5',
  reno: 'ecd196a7cd0e89e9',
} as const;

describe('flow model golden results', () => {
  it.each(Object.keys(GOLDEN) as (keyof typeof GOLDEN)[])(
    '%s: the 100G bench path and the 200 Mbit tbf path give the pinned results',
    (cc) => {
      const fast = runFlows({
        path: {
          family: 'ipv6',
          gsoMax: 65536,
          mtu: 1500,
          hostRouting: 'bpf',
          tbf: { rateBps: 10e9, burst: 262144, latencyNs: 5e6 },
          lineBps: 100e9,
          delayNs: 10_000,
          cpu: FAST_HOST,
          cc,
        },
        flows: 4,
        seconds: 3,
        sampleEveryNs: 100e6,
        rng: new Rng(1),
      });
      const slow = runFlows({
        path: {
          family: 'ipv4',
          gsoMax: 65536,
          mtu: 1500,
          hostRouting: 'legacy',
          tbf: { rateBps: 200e6, burst: 65536, latencyNs: 50e6 },
          delayNs: 20_000,
          cpu: CALIBRATED_2VCPU,
          cc,
        },
        flows: 1,
        seconds: 3,
        sampleEveryNs: 100e6,
        rng: new Rng(3),
      });
      const digest = createHash('sha256')
        .update(JSON.stringify([fast, slow]))
        .digest('hex')
        .slice(0, 16);
      expect(digest).toBe(GOLDEN[cc]);
    },
    60_000,
  );
});
