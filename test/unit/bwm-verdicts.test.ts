import { describe, expect, it } from 'vitest';
import { goodputOf, judgeRate, type FreeRun, type RateRun } from '../../src/checks/bwm-rate.js';
import { judgeLatency, type LatencyRun } from '../../src/checks/bwm-latency.js';
import { judgeHorizon } from '../../src/checks/bwm-horizon.js';
import { judgeBwmBackpressure, missingCondition, type BwmBackpressureRun } from '../../src/checks/bwm-backpressure.js';
import { summary } from '../../src/checks/backpressure.js';

const at = (limitBps: number, share: number, stamped = 1000): RateRun => ({
  limitBps,
  goodputBps: goodputOf(limitBps) * share,
  stamped,
  dropHorizon: 0,
});
const free: FreeRun = { goodputBps: 150e6, stamped: 0 };

describe('bwm-rate verdict', () => {
  it('goodput of a wire-rate limit: 20 Mbit/s leaves 20e6 x 1448/1514', () => {
    expect(goodputOf(20e6)).toBeCloseTo(19_128_137.38, 1);
  });
  it('passes two limits within ±5% and an unlimited pod not stamped and well above them', () => {
    const v = judgeRate([at(20e6, 0.99), at(10e6, 1.04)], free, 'emulated');
    expect(v.status).toBe('pass');
    expect(v.reason).toContain('20 Mbit/s: 18.94 Mbit/s goodput (99% of 19.13 Mbit/s expected)');
  });
  it('fails a limit 6% off either way, naming it', () => {
    expect(judgeRate([at(20e6, 0.94), at(10e6, 1)], free, 'native')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/^20 Mbit\/s: .*outside ±5%/),
    });
    expect(judgeRate([at(20e6, 1), at(10e6, 1.06)], free, 'native').status).toBe('fail');
  });
  it('on emulated CPUs a flow short of its limit is the starved sender: not judged, an error when fewer than two remain', () => {
    const v = judgeRate([at(20e6, 0.9), at(10e6, 1)], free, 'emulated');
    expect(v.status).toBe('error');
    expect(v.reason).toContain(
      "not judged: 20 Mbit/s: 17.22 Mbit/s goodput (90% of 19.13 Mbit/s expected): the emulated guest (its sender, or fq's timer) did not fill the limit",
    );
    const late = judgeRate([{ ...at(20e6, 0.9), fqLatencyUs: 16_100 }, at(10e6, 1)], free, 'emulated');
    expect(late.reason).toContain('expected), fq timer 16.1 ms late: the emulated guest');
    // Natively the same shortfall is the limiter's fault.
    expect(judgeRate([at(20e6, 0.9), at(10e6, 1)], free, 'native').status).toBe('fail');
  });
  it('on emulated CPUs a flow over its limit still fails', () => {
    expect(judgeRate([at(20e6, 1.06), at(10e6, 1)], free, 'emulated')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('outside ±5%'),
    });
  });
  it('fails when the limited pod was not stamped (the limit came from elsewhere)', () => {
    expect(judgeRate([at(20e6, 1, 0), at(10e6, 1)], free, 'native').reason).toContain('stamped no packet');
  });
  it('fails when the unlimited pod was stamped, or held near the limit', () => {
    expect(judgeRate([at(20e6, 1), at(10e6, 1)], { goodputBps: 150e6, stamped: 3 }, 'native')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining("unlimited pod's packets were stamped (3)"),
    });
    // 20 Mbit/s limit judged (19.13 <= 0.8 x 23.95), but 23.95 < 1.2 x 20
    expect(judgeRate([at(20e6, 1), at(10e6, 1)], { goodputBps: 23.95e6, stamped: 0 }, 'native').reason).toContain(
      'unlimited pod moved only 23.95 Mbit/s',
    );
  });
  it('a limit too high for the emulated CPU is not judged and says so; fewer than two judged is an error', () => {
    const v = judgeRate([at(200e6, 0.5), at(100e6, 0.9)], { goodputBps: 100e6, stamped: 0 }, 'emulated');
    expect(v.status).toBe('error');
    expect(v.reason).toMatch(/^could not establish: .*not judged: 200 Mbit\/s, 100 Mbit\/s, too high for the emulated CPU \(TCG\)/);
  });
  it('judges the two low limits and reports the high one as not judged', () => {
    const v = judgeRate([at(100e6, 0.5), at(20e6, 1), at(10e6, 1)], { goodputBps: 100e6, stamped: 0 }, 'emulated');
    expect(v.status).toBe('pass');
    expect(v.reason).toContain('not judged: 100 Mbit/s, too high for the emulated CPU (TCG), which carried 100 Mbit/s unlimited');
  });
});

const run = (shaper: 'edt' | 'htb', p99Us: number, o: Partial<LatencyRun> = {}): LatencyRun => ({
  shaper,
  observations: 500,
  p50Us: p99Us / 4,
  p99Us,
  p999Us: p99Us * 1.5,
  bulkBps: 19e6,
  ...o,
});

describe('bwm-latency verdict', () => {
  it('passes when EDT p99 is below HTB p99, with the ratio beside the seed 4.2x', () => {
    const v = judgeLatency(run('edt', 5000), run('htb', 21000), 20e6, 'native');
    expect(v).toMatchObject({ status: 'pass', ratio: 4.2 });
    expect(v.reason).toContain('HTB/EDT p99 4.2x (seed: 4.2x)');
  });
  it('fails when EDT p99 is not lower (equal included)', () => {
    expect(judgeLatency(run('edt', 30000), run('htb', 21000), 20e6, 'native').status).toBe('fail');
    expect(judgeLatency(run('edt', 21000), run('htb', 21000), 20e6, 'native').status).toBe('fail');
  });
  it('on an emulated CPU the figures are reported, not judged, either way', () => {
    for (const edtP99 of [5000, 30000])
      expect(judgeLatency(run('edt', edtP99), run('htb', 21000), 20e6, 'emulated')).toMatchObject({
        status: 'skip',
        reason: expect.stringMatching(/^not judged on emulated CPUs \(TCG\).*HTB\/EDT p99/),
      });
    // Could not establish stays an error: the condition comes first.
    expect(judgeLatency(run('edt', 5000, { observations: 50 }), run('htb', 21000), 20e6, 'emulated').status).toBe('error');
  });
  it('too few round trips, or a bulk flow under its limit, is an error, not a verdict', () => {
    expect(judgeLatency(run('edt', 5000, { observations: 50 }), run('htb', 21000), 20e6, 'native')).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/^could not establish: edt: 50 round trips/),
    });
    expect(judgeLatency(run('edt', 5000), run('htb', 21000, { bulkBps: 10e6 }), 20e6, 'native').reason).toMatch(
      /htb: the bulk flow moved 10 Mbit\/s, under 0.8 x its 20 Mbit\/s limit/,
    );
    expect(judgeLatency(run('edt', Number.NaN), run('htb', 21000), 20e6, 'native').status).toBe('error');
  });
});

describe('bwm-horizon verdict', () => {
  const ok = { limitBps: 100e3, sentBps: 1e6, receivedBps: 95e3, dropHorizon: 200, stamped: 40 };
  it('passes when BPF dropped beyond the horizon and the receiver got the limit', () => {
    expect(judgeHorizon(ok)).toMatchObject({
      status: 'pass',
      reason: expect.stringContaining('200 packets dropped in BPF beyond the 2 s horizon'),
    });
  });
  it('fails without horizon drops, with more than the limit received, or with nothing stamped', () => {
    expect(judgeHorizon({ ...ok, dropHorizon: 0 }).reason).toContain('no packet dropped at the horizon');
    // payload limit: 100k x 1400/1442 = 97.1 kbit/s; +5% = 101.9
    expect(judgeHorizon({ ...ok, receivedBps: 102e3 }).status).toBe('fail');
    expect(judgeHorizon({ ...ok, receivedBps: 101e3 }).status).toBe('pass');
    expect(judgeHorizon({ ...ok, stamped: 0 }).status).toBe('fail');
  });
  it('a sender that did not outrun its limit is an error: no queue could reach the horizon', () => {
    expect(judgeHorizon({ ...ok, sentBps: 150e3 })).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/^could not establish: /),
    });
  });
});

describe('bwm-backpressure verdict', () => {
  /** A run with `n` samples, each with the socket owning `wmem` while fq holds `backlog`. */
  const bp = (mode: 'bpf' | 'legacy', wmem: number, backlog: number, o: Partial<BwmBackpressureRun> = {}): BwmBackpressureRun => ({
    ...summary({
      bitsPerSecond: 1.9e6,
      samples: Array.from({ length: 12 }, (_, i) => ({ t: i * 200, wmem, backlog })),
      evidence: [],
    }),
    mode,
    limitBps: 2e6,
    goodputBps: 1.9e6,
    stamped: 700,
    dropHorizon: 0,
    notsentMedian: 0,
    attempts: 1,
    ...o,
  });
  const owning = bp('bpf', 4608, 3028);
  const orphaned = bp('legacy', 0, 151400, { goodputBps: 1.2e6 });

  it('passes when the socket owns what fq holds with BPF host routing and owns none of it orphaned in ip_rcv', () => {
    const v = judgeBwmBackpressure(owning, orphaned);
    expect(v.status).toBe('pass');
    expect(v.reason).toContain('bpf: the socket owned a median 4608 B while fq held 3028 B (owned/queued 1.52)');
  });
  it('fails when the socket owns little of what fq holds with BPF host routing (backpressure lost)', () => {
    const v = judgeBwmBackpressure(bp('bpf', 1000, 30280), orphaned);
    expect(v).toMatchObject({ status: 'fail', reason: expect.stringMatching(/owned\/queued 0\.03\), .*< 0\.5, the socket does not own/) });
    expect(judgeBwmBackpressure(bp('bpf', 0, 3028), orphaned).status).toBe('fail');
  });
  it('fails when the control still owns its backlog: the measurement would tell nothing apart', () => {
    const v = judgeBwmBackpressure(owning, bp('legacy', 100000, 150000));
    expect(v).toMatchObject({ status: 'fail', reason: expect.stringContaining('not orphaned in ip_rcv') });
  });
  it('is error, not a verdict, without a queue at the limit: no backlog, no stamps, a flow well under its limit', () => {
    for (const [run, why] of [
      [bp('bpf', 4608, 0), 'fq held a backlog in 0 of 12 samples'],
      [bp('bpf', 4608, 3028, { stamped: 0 }), 'edt_uplink stamped no packet'],
      [bp('bpf', 4608, 3028, { goodputBps: 1e6 }), 'under 0.8 x its 2 Mbit/s limit'],
    ] as const) {
      const v = judgeBwmBackpressure(run, orphaned);
      expect(v.status).toBe('error');
      expect(v.reason).toMatch(/^could not establish: /);
      expect(v.reason).toContain(why);
    }
    // The control's flow may fall short of its limit (fq drops what ip_rcv let through unpaced); its queue must be there.
    expect(judgeBwmBackpressure(owning, bp('legacy', 0, 0)).status).toBe('error');
    expect(missingCondition(orphaned)).toEqual([]);
  });
});
