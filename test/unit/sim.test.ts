import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulated } from '../../src/backends/sim/run.js';
import type { CheckResult } from '../../src/checks/check.js';
import { resolve } from '../../src/topology/resolver.js';
import { loadTopologyFile } from '../../src/topology/loader.js';
import { CALIBRATED_2VCPU } from '../../src/sim/cpu.js';
import { PROFILES, SimDevice } from '../../src/sim/devices.js';
import { Engine } from '../../src/sim/engine.js';
import { Fifo } from '../../src/sim/fifo.js';
import { compare, keyMetrics, relErr } from '../../src/sim/fidelity.js';
import { type PathSpec, runFlows } from '../../src/sim/path.js';
import { Fq, Pfifo, Tbf } from '../../src/sim/qdisc.js';
import { Rng } from '../../src/sim/rng.js';
import { free, orphan, setOwner, type Owned, type Skb } from '../../src/sim/skb.js';
import { MAX_TCP_HEADER, TcpSender } from '../../src/sim/tcp.js';

const skb = (len: number, flow = 0): Skb => ({ len, pktLen: len, payload: len - 52, truesize: len + 1024, family: 'ipv4', seq: 0, flow });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

describe('sim engine', () => {
  it('runs events in time order, ties in the order they were scheduled, and stops at `until`', () => {
    const e = new Engine();
    const seen: string[] = [];
    e.at(30, () => seen.push('c'));
    e.at(10, () => seen.push('a1'));
    e.at(10, () => seen.push('a2'));
    e.at(20, () => {
      seen.push('b');
      e.after(5, () => seen.push('b+5'));
    });
    e.at(100, () => seen.push('late'));
    e.run(50);
    expect(seen).toEqual(['a1', 'a2', 'b', 'b+5', 'c']);
    expect(e.now).toBe(50);
    expect(e.pending).toBe(1);
  });
  it('rounds a fractional time up: nothing runs early, and time always moves on', () => {
    const e = new Engine();
    const at: number[] = [];
    e.at(0.4, () => at.push(e.now));
    e.at(10.2, () => at.push(e.now));
    e.run();
    expect(at).toEqual([1, 11]);
  });
  it('keeps heap order over many random times', () => {
    const e = new Engine();
    const rng = new Rng(42);
    const times: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const t = rng.u32() % 100_000;
      e.at(t, () => times.push(e.now));
    }
    e.run();
    expect(times).toHaveLength(5000);
    expect(times.every((t, i) => i === 0 || times[i - 1] <= t)).toBe(true);
  });
  it('the RNG is a fixed sequence per seed', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const xs = [a.u32(), a.u32(), a.u32()];
    expect([b.u32(), b.u32(), b.u32()]).toEqual(xs);
    expect(c.u32()).not.toBe(xs[0]);
    // xorshift32 from 7: 7 ^ 7<<13 = 0xE007; ^ >>>17 leaves it; ^ <<5: 0xE007 ^ 0x1C00E0 = 0x1CE0E7.
    expect(xs[0]).toBe(0x1ce0e7);
  });
});

describe('sim fifo', () => {
  it('keeps order across wrap-around and growth', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < round; i++) q.push(next++);
      for (let i = 0; i < round / 2; i++) out.push(q.shift()!);
    }
    while (q.size) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
  });
});

describe('sim qdiscs', () => {
  it('a tbf at R bytes/s drains B queued bytes in B/R (empty bucket)', () => {
    const R = 1_000_000;
    const q = new Tbf(R, 1500, 10e9, false);
    for (let i = 0; i < 100; i++) expect(q.enqueue(skb(1000))).toBe(true);
    expect(q.backlog).toBe(100_000);
    const e = new Engine();
    let last = -1;
    const drain = () => {
      while (q.dequeue(e.now)) last = e.now;
      const t = q.readyAt(e.now);
      if (t !== undefined) e.at(t, drain);
    };
    e.at(0, drain);
    e.run();
    // B / R = 100000 / 1e6 s = 100 ms (the first packet waits 1 ms for its 1000 B of tokens).
    expect(q.backlog).toBe(0);
    expect(Math.abs(last - 100e6)).toBeLessThanOrEqual(1000);
  });
  it('a tbf drops past its limit: rate * latency + burst (tc/q_tbf.c)', () => {
    const q = new Tbf(1_000_000, 10_000, 10e6); // limit 10000 + 10000 B
    expect(q.limit).toBe(20_000);
    let accepted = 0;
    for (let i = 0; i < 25; i++) if (q.enqueue(skb(1000))) accepted++;
    expect(accepted).toBe(20);
    expect(q.drops).toBe(5);
  });
  it('a pfifo drops past its packet limit', () => {
    const q = new Pfifo(3);
    expect([1, 2, 3, 4].map(() => q.enqueue(skb(100)))).toEqual([true, true, true, false]);
    expect(q.drops).toBe(1);
    expect(q.backlog).toBe(300);
  });
});

describe('sim fq (EDT)', () => {
  it('holds an skb until its departure time and drops one stamped beyond the horizon', () => {
    const q = new Fq(3028, 2e9);
    const a = { ...skb(1000), tstamp: 5e6 };
    const far = { ...skb(1000), tstamp: 3e9 };
    expect(q.enqueue(a, 0)).toBe(true);
    expect(q.enqueue(far, 0)).toBe(false);
    expect([q.horizonDrops, q.drops]).toEqual([1, 1]);
    expect(q.dequeue(4e6)).toBeUndefined();
    expect(q.readyAt(4e6)).toBe(5e6);
    expect(q.dequeue(5e6)).toBe(a);
    expect(q.backlog).toBe(0);
  });
  it('serves flows round-robin by quantum', () => {
    const q = new Fq(1000);
    for (let i = 0; i < 3; i++) q.enqueue(skb(1000, 1), 0);
    for (let i = 0; i < 3; i++) q.enqueue(skb(1000, 2), 0);
    const order: number[] = [];
    for (let s = q.dequeue(0); s; s = q.dequeue(0)) order.push(s.flow);
    expect(order).toEqual([1, 2, 1, 2, 1, 2]);
  });
});

describe('sim skb ownership', () => {
  it('an owned skb charges its socket until orphaned; an orphaned skb no longer counts', () => {
    let released = 0;
    const sk: Owned = { wmemAlloc: 0, released: () => released++ };
    const a = skb(65000);
    const b = skb(1000);
    setOwner(a, sk);
    setOwner(b, sk);
    expect(sk.wmemAlloc).toBe(66024 + 2024);
    orphan(a);
    expect(sk.wmemAlloc).toBe(2024);
    orphan(a); // a second orphan is a no-op (skb->sk is already NULL)
    free(b);
    expect(sk.wmemAlloc).toBe(0);
    expect(released).toBe(2);
  });
});

describe('sim devices and TSO sizes', () => {
  it('refuses a gso_max_size above tso_max_size (ice: 131072)', () => {
    const d = new SimDevice('ns', 'eth0', PROFILES.ice, 2);
    expect(() => d.setSizes(196608, true)).toThrow(/gso_max_size 196608 > tso_max_size 131072/);
    d.setSizes(131072, true);
    expect([d.gsoFor('ipv4'), d.gsoFor('ipv6')]).toEqual([131072, 131072]);
  });
  it('IPv4 keeps 65536 when only the IPv6 sizes are set', () => {
    const d = new SimDevice('ns', 'veth0', PROFILES.veth, 2);
    d.setSizes(196608, false);
    expect([d.gsoFor('ipv4'), d.gsoFor('ipv6')]).toEqual([65536, 196608]);
  });
  it('TCP autosizing keeps skbs under 64 KiB at gso_max_size 65536 and goes past it at 196608', () => {
    const small = new TcpSender(1448, 65536);
    small.cwnd = 1e9;
    const big = new TcpSender(1448, 196608);
    big.cwnd = 1e9;
    // Unpaced (no RTT yet): the GSO cap, in whole MSS: floor((65536 - 1 - 320) / 1448) = 45 segments.
    expect(small.autosize()).toBe(45 * 1448);
    expect(small.autosize() + 52).toBeLessThanOrEqual(65535);
    expect(big.autosize()).toBe(Math.floor((196608 - 1 - MAX_TCP_HEADER) / 1448) * 1448);
  });
});

describe('sim TCP small queues', () => {
  it('TSQ holds a socket once sk_wmem_alloc passes max(2 * truesize, pacing_rate >> 10)', () => {
    const s = new TcpSender(1448, 65536);
    s.cwnd = 100 * 1448;
    s.srtt = 1e6; // 1 ms
    s.ssthresh = 0; // congestion avoidance: pacing = 1.2 * cwnd / srtt
    const pacing = (1.2 * 100 * 1448) / 1e-3; // 173760000 B/s
    expect(s.pacingRate()).toBeCloseTo(pacing, 0);
    const limit = Math.max(2 * 66_000, pacing / 1024); // 169687.5
    expect(s.tsqLimit(66_000)).toBeCloseTo(limit, 3);
    s.sndNxt = 100_000; // something in flight, so the "always send one" rule does not apply
    s.wmemAlloc = 169_000;
    expect(s.blockedBy(14480, 66_000)).toBeUndefined();
    s.wmemAlloc = 170_000;
    expect(s.blockedBy(14480, 66_000)).toBe('tsq');
  });

  const shaped = (hostRouting: 'bpf' | 'legacy'): PathSpec => ({
    family: 'ipv4',
    gsoMax: 196608,
    mtu: 1500,
    hostRouting,
    tbf: { rateBps: 200e6, burst: 65536, latencyNs: 50e6 },
    delayNs: 20_000,
    cpu: CALIBRATED_2VCPU,
  });

  it('with BPF host routing the socket owns what the bottleneck queues; TSQ caps it per socket', () => {
    const r = runFlows({ path: shaped('bpf'), flows: 1, seconds: 3, sampleEveryNs: 100e6, rng: new Rng(1) });
    const queued = r.samples.filter((s) => s.backlog > 0);
    expect(queued.length).toBeGreaterThanOrEqual(25);
    // Owned covers what is queued in every sample: nothing between the socket and the qdisc orphans it
    // (the qdisc counts every segment's headers, 66 B per 1448, which truesize does not: hence 0.9).
    expect(queued.every((s) => s.wmem >= 0.9 * s.backlog)).toBe(true);
    // The TSQ limit bounds it: at most max(2 * truesize of the largest skb, ~1 ms at the pacing rate) + one skb.
    const cap = 3 * (196608 + 1024);
    expect(Math.max(...r.samples.map((s) => s.wmem))).toBeLessThanOrEqual(cap);
    expect(r.bitsPerSecond / 1e6).toBeGreaterThan(190);
    expect(r.bitsPerSecond / 1e6).toBeLessThanOrEqual(201);
  });
  it('with legacy routing ip_rcv_core orphans: the qdisc queues bytes the socket no longer owns', () => {
    const r = runFlows({ path: shaped('legacy'), flows: 1, seconds: 3, sampleEveryNs: 100e6, rng: new Rng(1) });
    const queued = r.samples.filter((s) => s.backlog > 0);
    expect(queued.length).toBeGreaterThanOrEqual(25);
    expect(median(queued.map((s) => s.wmem / s.backlog))).toBeLessThan(0.05);
    // Unthrottled by TSQ, the sender fills the tbf to its limit and loses packets there.
    expect(r.tbfDrops).toBeGreaterThan(0);
  });
  it('four flows share a bottleneck and each socket is capped on its own', () => {
    const r = runFlows({ path: shaped('bpf'), flows: 4, seconds: 2, sampleEveryNs: 100e6, rng: new Rng(3) });
    expect(r.bitsPerSecond / 1e6).toBeGreaterThan(190);
    expect(Math.max(...r.samples.map((s) => s.wmem))).toBeLessThanOrEqual(4 * 3 * (196608 + 1024));
  });
});

async function quickstartLab(name: string) {
  const loaded = await loadTopologyFile(join(import.meta.dirname, '../../topologies/quickstart.yaml'));
  if (!loaded.ok) throw new Error('quickstart.yaml did not load');
  const lab = resolve({ ...loaded.value, topology: { ...loaded.value.topology, name } });
  if (!lab.ok) throw new Error('quickstart.yaml did not resolve');
  return lab.value;
}

describe('sim backend: quickstart through the same checks', () => {
  it('the same seed gives a byte-identical report; another seed another one', async () => {
    process.env.DPL_SIM_STATE_DIR = mkdtempSync(join(tmpdir(), 'sim-state-'));
    const lab = await quickstartLab('sim-det');
    const dirs = [1, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'sim-det-')));
    await runSimulated(lab, { reportDir: dirs[0], seed: 1 });
    const second = await runSimulated(lab, { reportDir: dirs[1], seed: 1 });
    await runSimulated(lab, { reportDir: dirs[2], seed: 2 });
    const bytes = dirs.map((d) => readFileSync(join(d, 'report.json'), 'utf8'));
    expect(bytes[1]).toBe(bytes[0]);
    expect(bytes[2]).not.toBe(bytes[0]);
    const byId = Object.fromEntries(second.results.map((r) => [r.id, r.status]));
    expect(byId).toMatchObject({ 'tso-probe': 'pass', connectivity: 'pass', backpressure: 'pass', bigtcp: 'pass' });
    const report = JSON.parse(bytes[0]);
    expect(report.simulated.model).toMatch(/^dpl-sim\//);
    expect(report.backend).toBe('sim');
  }, 120_000);
});

describe('fidelity comparison', () => {
  const r = (id: CheckResult['id'], status: CheckResult['status'], metrics: Record<string, unknown>): CheckResult => ({
    id,
    title: id,
    status,
    reason: '',
    metrics,
    evidence: [],
    ms: 0,
  });
  it('relative error, and none where the kernel measured 0 and the model did not', () => {
    expect(relErr(200, 190)).toBe(0.05);
    expect(relErr(0, 0)).toBe(0);
    expect(relErr(0, 5)).toBeUndefined();
    expect(relErr(undefined, 5)).toBeUndefined();
  });
  it('names disagreeing verdicts and pairs metrics by name', () => {
    const k = [r('connectivity', 'pass', { attempts: 8, reached: 8 }), r('tso-probe', 'fail', { devices: [{ ok: false }] })];
    const s = [r('connectivity', 'pass', { attempts: 8, reached: 8 }), r('tso-probe', 'pass', { devices: [{ ok: true }] })];
    const f = compare(k, s);
    expect(f.verdicts).toEqual([
      { check: 'connectivity', kernel: 'pass', sim: 'pass', agree: true },
      { check: 'tso-probe', kernel: 'fail', sim: 'pass', agree: false },
    ]);
    expect(f.metrics.find((m) => m.metric === 'devicesOk')).toMatchObject({ kernel: 0, sim: 1, relErr: undefined });
  });
  it('a check only one side ran does not agree', () => {
    expect(compare([r('bigtcp', 'pass', {})], []).verdicts[0].agree).toBe(false);
  });
  it('bigtcp metrics: per family and mode, the share of skbs over 64 KiB', () => {
    const runs = [{ family: 'ipv6', bigTcp: 'on', mbps: 10, counts: { v4Big: 0, v6Big: 3, v4All: 0, v6All: 4 } }];
    expect(keyMetrics(r('bigtcp', 'pass', { runs }))).toEqual({ 'ipv6.on.mbps': 10, 'ipv6.on.bigShare': 0.75 });
  });
});
