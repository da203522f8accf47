import { describe, expect, it } from 'vitest';
import type { CpuProfile } from '../../src/sim/cpu.js';
import { type PathSpec, runFlows } from '../../src/sim/path.js';
import { Rng } from '../../src/sim/rng.js';

/** Per-skb costs only, the node's softirq the dearest: 10 us to send, 30 us to forward, 1 us to receive. */
const CPU: CpuProfile = {
  name: 'test',
  send: { perSkbNs: 10_000, perByteNs: 0 },
  forward: { perSkbNs: 30_000, perByteNs: 0 },
  forwardLegacy: { perSkbNs: 30_000, perByteNs: 0 },
  receive: { perSkbNs: 1_000, perByteNs: 0 },
};
const path = (podDevice: 'veth' | 'netkit', hostRouting: 'bpf' | 'legacy'): PathSpec => ({
  family: 'ipv4',
  gsoMax: 65536,
  mtu: 1500,
  hostRouting,
  podDevice,
  delayNs: 20_000,
  cpu: CPU,
  cc: 'cubic',
});
const skbsPerSecond = (p: PathSpec, flows: number) => {
  const r = runFlows({ path: p, flows, seconds: 0.5, sampleEveryNs: 0, rng: new Rng(1) });
  return r.skbs / 0.5;
};

describe('netkit vs veth on the flow path', () => {
  it('veth: every pod skb crosses the node backlog, one softirq for all pods (30 us each, whatever the senders)', () => {
    // The node stage serialises: 1 / 30 us = 33.3k skbs/s with one sender or two.
    for (const flows of [1, 2]) expect(skbsPerSecond(path('veth', 'bpf'), flows) / (1e9 / 30_000)).toBeCloseTo(1, 1);
  });
  it('netkit with BPF host routing: no backlog, the redirect runs in each sender (10 + 30 us per skb, per sender)', () => {
    expect(skbsPerSecond(path('netkit', 'bpf'), 1) / (1e9 / 40_000)).toBeCloseTo(1, 1);
    // Two senders, two CPUs: twice that, past what veth's single backlog allows.
    expect(skbsPerSecond(path('netkit', 'bpf'), 2) / ((2 * 1e9) / 40_000)).toBeCloseTo(1, 1);
  });
  it('netkit with legacy routing passes the skb up the peer (__netif_rx): the backlog again, as veth', () => {
    expect(skbsPerSecond(path('netkit', 'legacy'), 2) / (1e9 / 30_000)).toBeCloseTo(1, 1);
  });
});
