import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimLab } from '../../src/backends/sim/model.js';
import { runSimulated } from '../../src/backends/sim/run.js';
import { formatIssue, LabError } from '../../src/errors.js';
import { compare } from '../../src/sim/fidelity.js';
import { fidelitySection, simulatedSection } from '../../src/sim/report-html.js';
import { probe } from '../../src/lifecycle/steps.js';
import { loadTopologyFile } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import { Bbr, CUBIC_BETA, type CcSocket, Cubic, cubicK, cubicW, Reno } from '../../src/sim/cc.js';
import { groSizes, segmentsOf } from '../../src/sim/gro.js';
import { Htb } from '../../src/sim/htb.js';
import { type PathSpec, runFlows } from '../../src/sim/path.js';
import { CALIBRATED_2VCPU } from '../../src/sim/cpu.js';
import { Rng } from '../../src/sim/rng.js';
import type { Skb } from '../../src/sim/skb.js';

const MSS = 1000;
const sock = (cwndPkts: number, inflight = 0): CcSocket & { inflight: number } => ({
  mss: MSS,
  cwnd: cwndPkts * MSS,
  ssthresh: Number.POSITIVE_INFINITY,
  inflight,
});

describe('CUBIC (tcp_cubic.c)', () => {
  it('W(t) = C (t - K)^3 + Wmax at hand-computed points (Wmax 100, beta 0.7, C 0.4)', () => {
    // K = cbrt(100 * 0.3 / 0.4) = cbrt(75) = 4.2172 s
    const k = cubicK(100, 70);
    expect(k).toBeCloseTo(4.2172, 4);
    expect(cubicW(0, k, 100)).toBeCloseTo(70, 6);
    expect(cubicW(k, k, 100)).toBeCloseTo(100, 9);
    expect(cubicW(k + 1, k, 100)).toBeCloseTo(100.4, 9);
    expect(cubicW(k + 2, k, 100)).toBeCloseTo(103.2, 9);
    expect(cubicW(1, k, 100)).toBeCloseTo(0.4 * (1 - 4.2172) ** 3 + 100, 3); // 86.69
  });

  it('a loss cuts cwnd to 0.7 x; a second loss below Wmax lowers Wmax (fast convergence)', () => {
    const c = new Cubic();
    const sk = sock(100);
    c.onLoss(sk);
    // 100 x 717 / 1024
    expect(sk.cwnd / MSS).toBeCloseTo(70.01953125, 9);
    expect(sk.ssthresh / MSS).toBeCloseTo(70.01953125, 9);
    expect(c.lastMaxCwnd).toBe(100);
    sk.cwnd = 80 * MSS;
    c.onLoss(sk);
    expect(c.lastMaxCwnd).toBeCloseTo((80 * (1 + CUBIC_BETA)) / 2, 9); // 68.0078
    expect(c.lastMaxCwnd).toBeLessThan(80);
    expect(sk.cwnd / MSS).toBeCloseTo(56.015625, 9); // 80 x 717 / 1024
  });

  it('after a loss the window follows the cubic curve back to Wmax (RTT 100 ms: above the Reno estimate)', () => {
    const c = new Cubic();
    const sk = sock(100);
    c.onLoss(sk);
    const rtt = 100e6;
    const at: Record<number, number> = {};
    // One window of ACKs per RTT, one ACK per packet, from t = 0 (the epoch starts at the first ACK).
    for (let r = 1; r <= 70; r++) {
      const now = r * rtt;
      const pkts = Math.floor(sk.cwnd / MSS);
      for (let p = 0; p < pkts; p++) c.onAck(sk, { now, bytes: MSS, rttNs: rtt, cwndLimited: true, roundStart: p === 0 });
      at[r] = sk.cwnd / MSS;
    }
    const k = cubicK(100, 100 * CUBIC_BETA);
    // After r RTTs the window stands near W((r - 1) x RTT + RTT): the curve one min_rtt ahead of the epoch's start.
    const near = (r: number) => cubicW(r * 0.1, k, 100);
    for (const r of [10, 20, 42, 60]) expect(Math.abs(at[r] - near(r))).toBeLessThan(2.5);
    // The plateau: it spends the RTTs around K within 1 packet of Wmax.
    expect(Math.abs(at[42] - 100)).toBeLessThan(1.5);
    // And not the Reno line (70 + 0.5 / RTT would be at 91 after 42 RTTs).
    expect(at[20]).toBeGreaterThan(90);
  });

  it('grows nothing while not cwnd-limited (RFC 7661), unlike a sender that ignores the rule', () => {
    const c = new Cubic();
    const sk = sock(50);
    sk.ssthresh = 10 * MSS;
    for (let i = 0; i < 100; i++) c.onAck(sk, { now: i * 1e6, bytes: MSS, rttNs: 1e6, cwndLimited: false, roundStart: false });
    expect(sk.cwnd).toBe(50 * MSS);
  });

  it('Reno halves per loss and adds one MSS per window', () => {
    const r = new Reno();
    const sk = sock(40);
    r.onLoss(sk);
    expect(sk.cwnd).toBe(20 * MSS);
    for (let i = 0; i < 20; i++) r.onAck(sk, { now: 0, bytes: MSS, rttNs: 1e6, cwndLimited: true, roundStart: false });
    expect(sk.cwnd / MSS).toBeCloseTo(21, 1);
  });
});

describe('BBR (tcp_bbr.c)', () => {
  /** ACKs of `ackBytes` at a steady `bw` (bytes/s) with RTT `rtt`; a round per RTT. */
  function drive(b: Bbr, sk: CcSocket, bw: number, rtt: number, seconds: number, t0 = 0) {
    const ack = 10_000;
    const dt = (ack / bw) * 1e9;
    let t = t0;
    let lastRound = t0;
    while (t < t0 + seconds * 1e9) {
      t += dt;
      const roundStart = t - lastRound >= rtt;
      if (roundStart) lastRound = t;
      b.onAck(sk, { now: t, bytes: ack, rttNs: rtt, cwndLimited: true, rate: bw, roundStart });
    }
    return t;
  }

  it('leaves startup after 3 rounds without 25% growth; cwnd = 2 x BDP + aggregation, paced at bw less 1%', () => {
    const b = new Bbr(
      () => 0.5,
      () => 0,
    );
    const sk = sock(10, 0);
    expect(b.mode).toBe('startup');
    // 10 MB/s, min_rtt 10 ms: BDP 100 kB.
    drive(b, sk, 10e6, 10e6, 0.5);
    expect(b.fullBwReached).toBe(true);
    expect(b.mode).toBe('probe_bw');
    expect(b.bdp(1)).toBeCloseTo(100_000, 0);
    // 2 x BDP + extra acked (one 10 kB ACK over what bw predicts); +2 MSS in the 1.25 phase.
    expect(sk.cwnd).toBeGreaterThanOrEqual(210_000);
    expect(sk.cwnd).toBeLessThanOrEqual(210_000 + 2 * MSS);
    // The pacing gains cycle through [1.25, 0.75, 1 x 6]: the rate is one of them x bw x 0.99.
    const r = b.pacingRate(sk) / 9.9e6;
    expect([1.25, 0.75, 1].some((g) => Math.abs(r - g) < 1e-9)).toBe(true);
  });

  it('the max filter keeps a higher rate for 10 rounds, then follows a lower one', () => {
    const b = new Bbr(
      () => 0,
      () => 0,
    );
    const sk = sock(10);
    let t = drive(b, sk, 10e6, 10e6, 0.5);
    t = drive(b, sk, 5e6, 10e6, 0.05, t); // ~5 rounds at half the rate
    expect(b.bw()).toBe(10e6);
    drive(b, sk, 5e6, 10e6, 0.1, t); // 10 more rounds
    expect(b.bw()).toBe(5e6);
  });

  it('in startup the pacing rate is 2.885 x bw and only rises', () => {
    const b = new Bbr(
      () => 0,
      () => 0,
    );
    const sk = sock(10);
    b.onAck(sk, { now: 1e6, bytes: 1000, rttNs: 1e6, cwndLimited: true, rate: 4e6, roundStart: true });
    expect(b.pacingRate(sk)).toBeCloseTo(2.885 * 4e6 * 0.99, 3);
    b.onAck(sk, { now: 2e6, bytes: 1000, rttNs: 1e6, cwndLimited: true, rate: 1e6, roundStart: false });
    expect(b.pacingRate(sk)).toBeCloseTo(2.885 * 4e6 * 0.99, 3);
  });

  it('enters PROBE_RTT at 4 packets when min_rtt is 10 s old, and leaves after 200 ms', () => {
    const b = new Bbr(
      () => 0,
      () => 0,
    );
    const sk = sock(10);
    let t = drive(b, sk, 10e6, 10e6, 0.5);
    // RTT samples above the minimum for 10 s: the minimum expires.
    t = drive(b, sk, 10e6, 12e6, 9.4, t); // t = 9.9 s: the 10 ms sample (t = 1 ms) still holds
    expect(b.mode).not.toBe('probe_rtt');
    expect(b.minRtt).toBe(10e6);
    t = drive(b, sk, 10e6, 12e6, 0.12, t); // past 10.001 s
    expect(b.mode).toBe('probe_rtt');
    expect(sk.cwnd).toBe(4 * MSS);
    drive(b, sk, 10e6, 12e6, 0.25, t);
    expect(b.mode).toBe('probe_bw');
    expect(b.minRtt).toBe(12e6);
  });
});

describe('GRO (net/core/gro.c)', () => {
  it('merges up to gro_max_size: 45 segments of 1448 at 65536, 135 at 196608 (BIG TCP)', () => {
    expect(groSizes(segmentsOf(45 * 1448, 1448), 52, 65536)).toEqual([1500 + 44 * 1448]); // 65212
    expect(groSizes(segmentsOf(46 * 1448, 1448), 52, 65536)).toEqual([65212, 1500]);
    expect(groSizes(segmentsOf(135 * 1448, 1448), 52, 196608)).toEqual([1500 + 134 * 1448]); // 195532
    expect(groSizes(segmentsOf(136 * 1448, 1448), 52, 196608)).toEqual([195532, 1500]);
  });
  it('without BIG TCP a 135-segment skb arrives as three 45-segment packets', () => {
    expect(groSizes(segmentsOf(135 * 1448, 1448), 52, 65536)).toEqual([65212, 65212, 65212]);
  });
  it('a short last segment and an empty train', () => {
    expect(segmentsOf(3000, 1448)).toEqual([1448, 1448, 104]);
    expect(groSizes(segmentsOf(3000, 1448), 52, 65536)).toEqual([3052]);
    expect(groSizes([], 52, 65536)).toEqual([]);
  });
});

describe('htb (sch_htb.c)', () => {
  const pkt = (len: number, flow: number): Skb => ({ len, pktLen: len, payload: len, truesize: len, family: 'ipv4', seq: 0, flow });

  /** Dequeue whatever may leave, waking at readyAt, until `until` ns; bytes sent per flow. */
  function run(h: Htb, until: number, refill?: (t: number) => void) {
    const sent: number[] = [0, 0];
    const times: number[] = [];
    let now = 0;
    while (now <= until) {
      refill?.(now);
      const skb = h.dequeue(now);
      if (skb) {
        sent[skb.flow] += skb.pktLen;
        times.push(now);
        continue;
      }
      const t = h.readyAt(now);
      if (t === undefined) break;
      now = Math.max(t, now + 1);
    }
    return { sent, times };
  }

  it('a class at rate R with burst L drains N packets of L: the k-th leaves at (k - 2) L / R', () => {
    // 1.25 MB/s (10 Mbit/s), 1250 B packets: 1 ms each; the bucket starts full (one packet) and may go negative by one.
    const h = new Htb(1.25e6, 1250, [{ rate: 1.25e6, burst: 1250 }], () => 0);
    for (let i = 0; i < 100; i++) expect(h.enqueue(pkt(1250, 0))).toBe(true);
    const { times } = run(h, 1e9);
    expect(times).toHaveLength(100);
    expect(times[0]).toBe(0);
    expect(times[1]).toBe(0);
    expect(times[2]).toBe(1e6);
    expect(times[99]).toBe(98e6);
  });

  it('a class borrows up to its ceil when its sibling is idle, and not past it', () => {
    const mk = (ceil: number) =>
      new Htb(
        1.25e6,
        1250,
        [
          { rate: 0.5e6, ceil, burst: 1250 },
          { rate: 0.5e6, ceil: 1.25e6, burst: 1250 },
        ],
        (s) => s.flow,
      );
    const full = mk(1.25e6);
    const capped = mk(0.75e6);
    const refillOf = (h: Htb) => () => {
      while (h.queued(0) < 10) h.enqueue(pkt(1250, 0));
    };
    const a = run(full, 1e9, refillOf(full));
    const b = run(capped, 1e9, refillOf(capped));
    // 1 s: the link's 1.25 MB (+ the buckets' start), and 0.75 MB at ceil.
    expect(a.sent[0]).toBeGreaterThan(1.24e6);
    expect(a.sent[0]).toBeLessThan(1.26e6 + 2500);
    expect(b.sent[0]).toBeGreaterThan(0.74e6);
    expect(b.sent[0]).toBeLessThan(0.76e6 + 2500);
  });

  it('two busy classes with equal rates share the link evenly; without ceil a class keeps to its rate', () => {
    const h = new Htb(
      1.25e6,
      1250,
      [
        { rate: 0.5e6, ceil: 1.25e6, burst: 1250 },
        { rate: 0.5e6, ceil: 1.25e6, burst: 1250 },
      ],
      (s) => s.flow,
    );
    const r = run(h, 1e9, () => {
      while (h.queued(0) < 10) h.enqueue(pkt(1250, 0));
      while (h.queued(1) < 10) h.enqueue(pkt(1250, 1));
    });
    expect(Math.abs(r.sent[0] - 625_000)).toBeLessThan(10_000);
    expect(Math.abs(r.sent[1] - 625_000)).toBeLessThan(10_000);
    const solo = new Htb(
      1.25e6,
      1250,
      [
        { rate: 0.5e6, burst: 1250 },
        { rate: 0.5e6, burst: 1250 },
      ],
      (s) => s.flow,
    );
    const s = run(solo, 1e9, () => {
      while (solo.queued(0) < 10) solo.enqueue(pkt(1250, 0));
    });
    expect(s.sent[0]).toBeLessThan(0.5e6 + 2500 + 1);
    expect(s.sent[0]).toBeGreaterThan(0.49e6);
  });

  it('drops past the leaf limit and for an unclassified skb', () => {
    const h = new Htb(1e6, 1000, [{ rate: 1e6, burst: 1000 }], (s) => s.flow, 2);
    expect(h.enqueue(pkt(100, 0))).toBe(true);
    expect(h.enqueue(pkt(100, 0))).toBe(true);
    expect(h.enqueue(pkt(100, 0))).toBe(false);
    expect(h.enqueue(pkt(100, 5))).toBe(false);
    expect(h.drops).toBe(2);
  });
});

describe('NIC profiles and congestion control from the topology (sim:)', () => {
  async function load(text?: (s: string) => string) {
    const file = join(import.meta.dirname, '../../topologies/sim-100g.yaml');
    const src = readFileSync(file, 'utf8');
    let path = file;
    if (text) {
      path = join(mkdtempSync(join(tmpdir(), 'sim-models-')), 'sim-100g.yaml');
      writeFileSync(path, text(src));
    }
    const loaded = await loadTopologyFile(path);
    return loaded.ok ? resolve(loaded.value) : loaded;
  }
  it('sim-100g: mlx5 and ice uplinks back to back, bbr by default and cubic where the node says so', async () => {
    const lab = await load();
    if (!lab.ok) throw new LabError('E_INTERNAL', JSON.stringify(lab.errors));
    const m = new SimLab(lab.value, [], 1);
    const [n1, n2] = lab.value.nodes;
    expect(m.device(n1.netns, 'uplink')?.profile).toMatchObject({ kind: 'mlx5', tsoMaxSize: 524280, lineBps: 100e9 });
    expect(m.device(n2.netns, 'uplink')?.profile).toMatchObject({ kind: 'ice', tsoMaxSize: 131072, lineBps: 100e9 });
    expect(m.device(lab.value.peers[0].netns, 'eth0')?.profile.kind).toBe('mlx5');
    expect(m.cpu.name).toBe('fast-host');
    expect([m.congestionControl(n1), m.congestionControl(n2)]).toEqual(['bbr', 'cubic']);
  });
  it('sim-100g: bigtcp across the mlx5 wire stays under 100 Gbit/s with BIG TCP on and off', async () => {
    const lab = await load();
    if (!lab.ok) throw new LabError('E_INTERNAL', JSON.stringify(lab.errors));
    const dir = mkdtempSync(join(tmpdir(), 'sim-100g-'));
    process.env.DPL_SIM_STATE_DIR = join(dir, 'state');
    const run = await runSimulated(
      { ...lab.value, name: 'sim100gt', families: ['ipv4'], checks: [{ id: 'bigtcp', seconds: 1 }] },
      { only: ['bigtcp'], reportDir: dir },
    );
    delete process.env.DPL_SIM_STATE_DIR;
    const [r] = run.results;
    expect(r.status, r.reason).toBe('pass');
    const runs = (r.metrics as { runs: { family: string; bigTcp: string; mbps: number }[] }).runs;
    expect(runs.map((x) => `${x.family} ${x.bigTcp}`)).toEqual(['ipv4 on', 'ipv4 off']);
    // The wire is the limit: 100 Gbit/s less the headers of every segment (66 B per 1448 of payload: at most 95.6%).
    for (const x of runs) {
      expect(x.mbps).toBeGreaterThan(85_000);
      expect(x.mbps).toBeLessThanOrEqual(95_640);
    }
  }, 60_000);
  it('a kernel backend refuses sim: with the place in the file (exit 2, before anything is created)', async () => {
    const lab = await load((s) => s.replace('backend: sim', 'backend: local'));
    if (!lab.ok) throw new LabError('E_INTERNAL', JSON.stringify(lab.errors));
    const e = await probe(lab.value).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).code).toBe('E_USAGE');
    expect((e as LabError).message).toMatch(/sim-100g\.yaml:\d+:\d+: nodes\[0\]\.sim: applies to the simulator only/);
  });
  it('an unknown NIC profile is a topology error at its line', async () => {
    const lab = await load((s) => s.replace('nic: ice-e810', 'nic: cx7'));
    expect(lab.ok).toBe(false);
    if (!lab.ok)
      expect(lab.errors.map(formatIssue)).toEqual([
        expect.stringMatching(/sim-100g\.yaml:\d+:\d+: nodes\[1\]\.sim\.nic: unknown nic profile 'cx7'/),
      ]);
  });
});

describe('1000 nodes in the simulator', () => {
  it('topologies/sim-1000.yaml resolves and tso-probe reads every modelled device', async () => {
    const loaded = await loadTopologyFile(join(import.meta.dirname, '../../topologies/sim-1000.yaml'));
    if (!loaded.ok) throw new LabError('E_INTERNAL', JSON.stringify(loaded.errors.slice(0, 2)));
    const lab = resolve(loaded.value);
    if (!lab.ok) throw new LabError('E_INTERNAL', JSON.stringify(lab.errors.slice(0, 2)));
    expect(lab.value.nodes).toHaveLength(1000);
    const dir = mkdtempSync(join(tmpdir(), 'sim-1000-'));
    process.env.DPL_SIM_STATE_DIR = join(dir, 'state');
    const run = await runSimulated({ ...lab.value, name: 'sim1kt' }, { only: ['tso-probe'], reportDir: dir });
    delete process.env.DPL_SIM_STATE_DIR;
    const [r] = run.results;
    expect(r.status).toBe('pass');
    // 1001 pods (two on n1) x 2 ends, 999 links x 2 ends, the uplink's 2 ends.
    expect((r.metrics.devices as unknown[]).length).toBe(1001 * 2 + 999 * 2 + 2);
  }, 60_000);
});

describe('report.html for the simulator', () => {
  it('marks a page as simulated, with model, seed and virtual time', () => {
    const s = simulatedSection({ model: 'dpl-sim/x', seed: 7, cpu: 'fast-host', virtualMs: 1234, events: 99 });
    expect(s.html).toContain("Simulated: these results are the model's predictions");
    expect(s.html).toContain('<td>dpl-sim/x</td><td>7</td><td>fast-host</td><td>1234 ms</td><td>99</td>');
  });
  it('the fidelity section sets prediction beside measurement and flags a verdict that differs', () => {
    const f = compare(
      [{ id: 'backpressure', title: 't', status: 'pass', reason: '', metrics: { bpf: { mbps: 180 } }, evidence: [], ms: 0 }],
      [{ id: 'backpressure', title: 't', status: 'fail', reason: '', metrics: { bpf: { mbps: 198 } }, evidence: [], ms: 0 }],
    );
    const s = fidelitySection(f, 'dpl-sim/x');
    expect(s.html).toContain('<tr class="disagree"><td>backpressure</td><td>pass</td><td>fail</td><td>NO</td></tr>');
    expect(s.html).toContain('<td>backpressure</td><td>bpf.mbps</td><td>180</td><td>198</td><td>10.0%</td>');
    // A check only the kernel ran does not agree either.
    const one = fidelitySection(
      compare([{ id: 'bigtcp', title: '', status: 'pass', reason: '', metrics: {}, evidence: [], ms: 0 }], []),
      'm',
    );
    expect(one.html).toContain('<td>bigtcp</td><td>pass</td><td>-</td><td>NO</td>');
  });
});

describe('htb on the flow path (the bandwidth manager htb control)', () => {
  const path = (classes: { rateBps: number; ceilBps?: number }[], cc: 'cubic' | 'bbr'): PathSpec => ({
    family: 'ipv4',
    gsoMax: 65536,
    mtu: 1500,
    hostRouting: 'bpf',
    htb: { rootBps: 300e6, burst: 65536, classes },
    delayNs: 20_000,
    cpu: CALIBRATED_2VCPU,
    cc,
  });
  /** Goodput at a class rate: 1448 of every 1514 bytes the qdisc counts are payload. */
  const goodput = (bps: number) => (bps * 1448) / 1514;
  it.each(['cubic', 'bbr'] as const)('%s: each flow gets its class rate; a class with a ceil borrows what the other leaves', (cc) => {
    const fixed = runFlows({
      path: path([{ rateBps: 100e6 }, { rateBps: 200e6 }], cc),
      flows: 2,
      seconds: 2,
      sampleEveryNs: 0,
      rng: new Rng(1),
    });
    expect(fixed.flowBps[0] / goodput(100e6)).toBeGreaterThan(0.97);
    expect(fixed.flowBps[0] / goodput(100e6)).toBeLessThan(1.01);
    expect(fixed.flowBps[1] / goodput(200e6)).toBeGreaterThan(0.97);
    const borrow = runFlows({
      path: path([{ rateBps: 50e6, ceilBps: 300e6 }, { rateBps: 100e6 }], cc),
      flows: 2,
      seconds: 2,
      sampleEveryNs: 0,
      rng: new Rng(1),
    });
    // 50 Mbit/s guaranteed, 150 more borrowed from the root the other class (held at 100) leaves.
    expect(borrow.flowBps[0] / goodput(200e6)).toBeGreaterThan(0.97);
    expect(borrow.flowBps[1] / goodput(100e6)).toBeLessThan(1.01);
  });
});
