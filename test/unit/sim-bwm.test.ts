import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSimulated } from '../../src/backends/sim/run.js';
import type { CheckResult } from '../../src/checks/check.js';
import { compare } from '../../src/sim/fidelity.js';
import { runUdp } from '../../src/sim/udp.js';
import { loadTopologyFile } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

/** 1400-byte datagrams offered at `bps` for `seconds` through EDT at 100 kbit/s (12500 B/s) with fq's 2 s horizon. */
function udpAt(bps: number, seconds: number) {
  const c = { stamped: 0, dropHorizon: 0, unlimited: 0 };
  const r = runUdp({
    bps,
    len: 1400,
    seconds,
    delayNs: 20_000,
    edt: { bytesPerSec: 12_500n, horizonNs: 2_000_000_000n, tLast: 0n, counters: c },
  });
  return { r, c };
}

describe('UDP through EDT + fq (src/sim/udp.ts)', () => {
  it('offered 10x the limit: held to the limit, the rest dropped at the 2 s horizon', () => {
    // 100 kbit/s on the wire: 1442 B per datagram is 115.36 ms of departure time; 1 Mbit/s of 1400 B is one every 11.2 ms.
    const { r, c } = udpAt(1e6, 10);
    expect(r.sentPackets).toBe(Math.ceil(10 / 0.0112));
    // What leaves in 10 s: one per 115.36 ms, the first at once.
    expect(Math.abs(r.receivedBps - (100e3 * 1400) / 1442) / ((100e3 * 1400) / 1442)).toBeLessThan(0.02);
    // Stamped up to the horizon: 2 s / 115.36 ms = 17.3 ahead at most.
    expect(c.stamped - Math.round((r.receivedBps * 10) / 8 / 1400)).toBeLessThanOrEqual(18);
    expect(c.dropHorizon).toBe(r.sentPackets - c.stamped);
    expect(r.blocked).toBe(0);
  });
  it('offered under the limit: nothing dropped, all received', () => {
    const { r, c } = udpAt(50e3, 4);
    expect(c.dropHorizon).toBe(0);
    expect(r.lostPackets).toBe(0);
  });
});

async function bandwidthLab(name: string) {
  const loaded = await loadTopologyFile(join(import.meta.dirname, '../../topologies/bandwidth.yaml'));
  if (!loaded.ok) throw new Error('bandwidth.yaml did not load');
  const lab = resolve({ ...loaded.value, topology: { ...loaded.value.topology, name } });
  if (!lab.ok) throw new Error('bandwidth.yaml did not resolve');
  return lab.value;
}

describe('sim backend: the Bandwidth Manager checks through EDT + fq', () => {
  it('bandwidth.yaml: bwm-rate, bwm-horizon and bwm-backpressure judge the model; bwm-latency skips naming the model it lacks', async () => {
    process.env.DPL_SIM_STATE_DIR = mkdtempSync(join(tmpdir(), 'sim-state-'));
    const r = await runSimulated(await bandwidthLab('s3-bw'), { reportDir: mkdtempSync(join(tmpdir(), 's3-bw-')) });
    const by = Object.fromEntries(r.results.map((x) => [x.id, x]));
    expect(by['bwm-rate'].status).toBe('pass');
    expect(by['bwm-horizon'].status).toBe('pass');
    expect(by['bwm-backpressure'].status).toBe('pass');
    expect(by['bwm-latency']).toMatchObject({ status: 'skip', reason: expect.stringContaining('no latency probe model') });
    const runs = (by['bwm-rate'].metrics as { runs: { ratio: number }[] }).runs;
    for (const x of runs) expect(Math.abs(x.ratio - 1)).toBeLessThan(0.05);
  }, 120_000);
});

describe('fidelity: a side that skipped', () => {
  const r = (status: CheckResult['status'], reason = ''): CheckResult => ({
    id: 'bwm-rate',
    title: '',
    status,
    reason,
    metrics: {},
    evidence: [],
    ms: 0,
  });
  it('is named with its reason and marked, not silently agreeing', () => {
    const [v] = compare([r('skip', 'no sch_fq')], [r('pass')]).verdicts;
    expect(v).toMatchObject({ agree: false, skipped: 'kernel: no sch_fq' });
    expect(compare([r('fail')], [r('pass')]).verdicts[0].skipped).toBeUndefined();
  });
});
