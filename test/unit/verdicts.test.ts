import { describe, expect, it } from 'vitest';
import { judgeBackpressure, summary } from '../../src/checks/backpressure.js';
import { judgeBigTcp, type BigTcpRun } from '../../src/checks/bigtcp.js';
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
  it('fails when ss never saw the socket, rather than reading that as wmem 0', () => {
    expect(judgeBackpressure(run(150_000, 120_000), run(undefined, 130_000)).reason).toContain("ss showed the sender's socket in only 0");
  });
  it('fails when the bottleneck never queued', () => {
    expect(judgeBackpressure(run(150_000, 0), run(0, 0)).reason).toContain('held a backlog in only 0');
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
  it('fails when the counter saw nothing (a flow that never ran proves nothing)', () => {
    expect(judgeBigTcp([r('ipv4', 'on', 0, 0)]).reason).toContain('saw no ipv4 skbs');
  });
});
