import { describe, expect, it } from 'vitest';
import { established, judgeBackpressure, sampledSeconds, summary } from '../../src/checks/backpressure.js';
import { judgeBigTcp, type BigTcpRun } from '../../src/checks/bigtcp.js';
import { judgeNetkit, type NetkitObservations } from '../../src/checks/netkit.js';
import { judgeNetkitThroughput } from '../../src/checks/netkit-throughput.js';
import { judgeDeviceSizes } from '../../src/checks/tso-probe.js';
import type { FlowSample } from '../../src/measure/flow.js';

/** A flow whose samples all show this wmem against this backlog. */
const run = (wmem: number | undefined, backlog: number, n = 10) =>
  summary({ bitsPerSecond: 2e8, samples: Array.from({ length: n }, (_, t): FlowSample => ({ t: t * 100, wmem, backlog })), evidence: [] });

describe('backpressure verdict', () => {
  it('passes when bpf owns the queue and legacy owns none', () => {
    expect(judgeBackpressure(run(150_000, 120_000), run(0, 130_000)).status).toBe('pass');
  });
  it('fails when bpf host routing loses ownership (the datapath orphaned the skb)', () => {
    const v = judgeBackpressure(run(0, 120_000), run(0, 130_000));
    expect(v).toMatchObject({ status: 'fail', reason: expect.stringContaining('backpressure lost') });
  });
  it('fails when legacy still owns the queue (no orphaning seen)', () => {
    expect(judgeBackpressure(run(150_000, 120_000), run(100_000, 130_000)).reason).toContain('expected orphaning');
  });
  it('is an error, not a pass or a fail, when ss never saw the socket (not read as wmem 0)', () => {
    const v = judgeBackpressure(run(150_000, 120_000), run(undefined, 130_000));
    expect(v.status).toBe('error');
    expect(v.reason).toMatch(/^could not establish: .*ss showed the sender's socket in only 0/);
  });
  it('is an error when the bottleneck never queued (the condition judged was not there)', () => {
    const v = judgeBackpressure(run(150_000, 0), run(0, 0));
    expect(v).toMatchObject({ status: 'error', reason: expect.stringContaining('held a backlog in only 0') });
  });
  it('is an error with a queue in only 2 samples, even when those 2 would pass', () => {
    expect(judgeBackpressure(run(150_000, 120_000, 2), run(0, 130_000)).status).toBe('error');
    expect(established(run(150_000, 120_000, 2))).toBe(false);
    expect(established(run(150_000, 120_000, 3))).toBe(true);
  });
  it('fails once the condition holds (3 samples with a queue) and the kernel went against the claim', () => {
    expect(judgeBackpressure(run(0, 120_000, 3), run(0, 130_000, 3)).status).toBe('fail');
  });
  it('stretches a sampled flow to about 10 records at the measured cadence, within 1x..4x the asked length', () => {
    expect(sampledSeconds(3, 100)).toBe(3);
    expect(sampledSeconds(3, 700)).toBe(7);
    expect(sampledSeconds(3, 2500)).toBe(12);
    expect(sampledSeconds(3, 0)).toBe(3);
  });
  it('reads the sampler cadence from node timestamps', () => {
    expect(run(1, 1, 5).cadenceMs).toBe(100);
  });
});

describe('bigtcp verdict', () => {
  const r = (family: 'ipv4' | 'ipv6', bigTcp: 'on' | 'off', big: number, all: number): BigTcpRun => ({
    family,
    bigTcp,
    mbps: 1000,
    counts: family === 'ipv4' ? { v4Big: big, v4All: all, v6Big: 0, v6All: 0 } : { v4Big: 0, v4All: 0, v6Big: big, v6All: all },
  });
  it('passes with big skbs on and none off', () => {
    expect(judgeBigTcp([r('ipv4', 'on', 900, 1200), r('ipv4', 'off', 0, 3000)]).status).toBe('pass');
  });
  it('fails with no big skb while BIG TCP is on', () => {
    expect(judgeBigTcp([r('ipv6', 'on', 0, 1200), r('ipv6', 'off', 0, 3000)]).reason).toContain('ipv6 on: no skb over 65535 B');
  });
  it('fails with big skbs while BIG TCP is off', () => {
    expect(judgeBigTcp([r('ipv4', 'on', 900, 1200), r('ipv4', 'off', 5, 3000)]).reason).toContain('ipv4 off: 5 skbs');
  });
  it('is an error when the counter saw nothing (a flow that never ran proves nothing either way)', () => {
    const v = judgeBigTcp([r('ipv4', 'on', 0, 0), r('ipv4', 'off', 0, 3000)]);
    expect(v).toMatchObject({ status: 'error', reason: expect.stringMatching(/^could not establish: .*saw no ipv4 skbs/) });
  });
  it('a failing run outranks an unseen one', () => {
    expect(judgeBigTcp([r('ipv4', 'on', 0, 1200), r('ipv4', 'off', 0, 0)]).status).toBe('fail');
  });
  it('no runs at all is an error, never a pass over nothing', () => {
    expect(judgeBigTcp([]).status).toBe('error');
  });
});

describe('tso-probe verdict per device', () => {
  const dev = { tso_max_size: 65536, gso_max_size: 65536, gro_max_size: 65536, gso_ipv4_max_size: 65536, gro_ipv4_max_size: 65536 };
  it('passes sizes clamped to tso_max_size with BIG TCP on, and at most 65536 off', () => {
    expect(judgeDeviceSizes(dev, true, true)).toMatchObject({ want: 65536, ok: true });
    expect(judgeDeviceSizes({ ...dev, tso_max_size: 524280 }, false, true)).toMatchObject({ want: 65536, ok: true });
    expect(judgeDeviceSizes({ tso_max_size: 524280, gso_max_size: 196608, gro_max_size: 196608 }, true, false).ok).toBe(true);
  });
  it('fails a size above the clamp', () => {
    expect(judgeDeviceSizes({ ...dev, gso_max_size: 196608 }, true, true).ok).toBe(false);
    expect(judgeDeviceSizes({ ...dev, tso_max_size: 524280, gro_max_size: 196608 }, false, true).ok).toBe(false);
  });
  it('fails a device that reports no sizes, with BIG TCP on and with it off', () => {
    expect(judgeDeviceSizes({ tso_max_size: 524280 }, true, true).ok).toBe(false);
    expect(judgeDeviceSizes({ tso_max_size: 524280 }, false, true).ok).toBe(false);
    expect(judgeDeviceSizes({ ...dev, gro_ipv4_max_size: undefined }, false, true).ok).toBe(false);
  });
  it('fails a device that reports no tso_max_size in both modes', () => {
    const { tso_max_size: _, ...noTso } = dev;
    expect(judgeDeviceSizes(noTso, true, true).ok).toBe(false);
    expect(judgeDeviceSizes(noTso, false, true).ok).toBe(false);
  });
});

describe('netkit verdict', () => {
  const good: NetkitObservations = {
    peer: { kind: 'netkit', mode: 'l3', policy: 'blackhole' },
    onPeer: ['from_pod_nk'],
    onPrimary: ['to_pod_nk'],
    fromPod: { 'query peer': 'EACCES', 'query primary': 'EACCES', 'detach peer': 'EACCES', 'detach primary': 'EPERM' },
    connect: { before: 'refused', during: 'timeout', after: 'refused' },
    txDropped: 3,
  };
  it('passes what the kernel shows for a netkit pod', () => {
    expect(judgeNetkit(good).status).toBe('pass');
  });
  it('fails a veth or L2 device, or a forwarding pod side', () => {
    expect(judgeNetkit({ ...good, peer: { kind: 'veth' } }).reason).toContain('expected netkit l3');
    expect(judgeNetkit({ ...good, peer: { ...good.peer, policy: 'forward' } }).reason).toContain('expected blackhole');
  });
  it('fails when the pod may query or detach the program', () => {
    expect(judgeNetkit({ ...good, fromPod: { ...good.fromPod, 'detach peer': 'allowed' } })).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('detach peer was allowed'),
    });
  });
  it('fails when traffic still flows (or is not dropped) without a program', () => {
    expect(judgeNetkit({ ...good, connect: { ...good.connect, during: 'refused' } }).status).toBe('fail');
    expect(judgeNetkit({ ...good, txDropped: 0 }).status).toBe('fail');
  });
  it('fails when the host lists no program on the hooks', () => {
    expect(judgeNetkit({ ...good, onPeer: [] }).reason).toContain('peer hook');
  });
  it('is an error when the path did not work with the program on (nothing to tell a blackhole from)', () => {
    expect(judgeNetkit({ ...good, connect: { before: 'timeout', during: 'timeout', after: 'timeout' } }).status).toBe('error');
  });
  it('fails with no operation tried from the pod (no pass over nothing)', () => {
    expect(judgeNetkit({ ...good, fromPod: {} }).status).toBe('fail');
  });
});

describe('netkit-throughput verdict', () => {
  it('never passes under TCG: skip, whatever the ratios', () => {
    expect(judgeNetkitThroughput({ host: 1000, netkit: 990, veth: 800 }, 'emulated')).toMatchObject({
      status: 'skip',
      reason: expect.stringContaining('0.99x'),
    });
    expect(judgeNetkitThroughput({ host: 1000, netkit: 100, veth: 800 }, 'emulated').status).toBe('skip');
  });
  it('judges the ratio without TCG', () => {
    expect(judgeNetkitThroughput({ host: 1000, netkit: 950, veth: 800 }, 'native').status).toBe('pass');
    expect(judgeNetkitThroughput({ host: 1000, netkit: 850, veth: 800 }, 'native')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('below 0.9x'),
    });
  });
  it('a pod path that moved nothing fails, also under TCG; a node that moved nothing is an error', () => {
    expect(judgeNetkitThroughput({ host: 1000, netkit: 0, veth: 800 }, 'emulated').status).toBe('fail');
    expect(judgeNetkitThroughput({ host: 0, netkit: 500, veth: 800 }, 'native').status).toBe('error');
  });
});
