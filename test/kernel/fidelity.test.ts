import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Fidelity, MetricPair } from '../../src/sim/fidelity.js';
import { cli, residue, topo } from './helpers.js';

const CHECKS = ['tso-probe', 'connectivity', 'backpressure', 'bigtcp'];

/**
 * The simulator against this machine's kernel on the quickstart topology. Verdicts must be
 * equal. Metrics, with the tolerance and why:
 * - device count and connection attempts: exact (both come from the same topology and plan);
 * - throughput through the 200mbit tbf, both host-routing modes: within 15%: the tbf sets it on
 *   both sides; the kernel's iperf3 goodput is a few % under the rate (headers, start-up);
 * - share of skbs over 64 KiB with BIG TCP on: above 0.5 on both (the kernel's counter also
 *   counts the pod's small skbs: ACKs, the handshake); 0 on both with it off;
 * - median socket-owned bytes and backlog: present on both sides; the model's (BBR, as the
 *   kernel's net.ipv4.tcp_congestion_control) is at most 2x the kernel's and in practice 10-20x
 *   under it (see below): a departure the model does not explain yet. The verdicts rest on the
 *   ratio owned/queued, which the model does get right.
 * CPU-bound throughputs (unshaped flows, bigtcp Gbit/s) are printed, not judged: the kernel's
 * halved between two runs here as other work shared the 2 cores.
 */
describe('fidelity: the simulator predicts the kernel on quickstart', () => {
  it('lab fidelity --json: the same verdicts, metrics within the stated tolerances', async () => {
    const file = topo(
      readFileSync(join(import.meta.dirname, '../../topologies/quickstart.yaml'), 'utf8').replace(/^name: quickstart$/m, 'name: sim-fid'),
    );
    const dir = mkdtempSync(join(tmpdir(), 'sim-fid-'));
    const r = await cli(['fidelity', file, '--only', CHECKS.join(','), '--json', '-q', '--report-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    const f = JSON.parse(r.stdout) as Fidelity;
    expect(f.verdicts.map((v) => v.check).sort()).toEqual([...CHECKS].sort());
    for (const v of f.verdicts) expect(v, JSON.stringify(v)).toMatchObject({ kernel: 'pass', sim: 'pass', agree: true });
    const m = (check: string, metric: string): MetricPair => {
      const p = f.metrics.find((x) => x.check === check && x.metric === metric);
      expect(p, `${check} ${metric}`).toBeDefined();
      return p!;
    };
    for (const [c, k] of [
      ['tso-probe', 'devices'],
      ['connectivity', 'attempts'],
      ['connectivity', 'reached'],
    ])
      expect(m(c, k).sim).toBe(m(c, k).kernel);
    for (const mode of ['bpf', 'legacy']) expect(m('backpressure', `${mode}.mbps`).relErr!).toBeLessThanOrEqual(0.15);
    for (const fam of ['ipv4', 'ipv6']) {
      expect(m('bigtcp', `${fam}.on.bigShare`).kernel!).toBeGreaterThan(0.5);
      expect(m('bigtcp', `${fam}.on.bigShare`).sim!).toBeGreaterThan(0.5);
      expect(m('bigtcp', `${fam}.off.bigShare`)).toMatchObject({ kernel: 0, sim: 0 });
    }
    // Queue and owned bytes: both sides have some, and the model's BBR holds less than the kernel's.
    // A known departure, not a tolerance: with BBR (both sides now) the model keeps ~24 kB queued
    // (cwnd = 2 x BDP + budget at a 200 Mbit/s estimate), the kernel 0.2-0.5 MB, with owned bytes
    // 2.4x the queue, the sign of skbs over the tbf's 64 kB max_size segmented by tbf_segment
    // (segments carry more truesize); so the kernel's BBR paces well above the bottleneck rate,
    // which the model does not reproduce. The verdicts rest on owned/queued, which agree.
    for (const k of ['bpf.wmemMedian', 'bpf.backlogMedian', 'legacy.backlogMedian']) {
      const { kernel, sim } = m('backpressure', k);
      expect(kernel! > 0 && sim! > 0, k).toBe(true);
      expect(sim!, `${k}: kernel ${kernel} sim ${sim}`).toBeLessThanOrEqual(kernel! * 2);
    }
    expect(m('backpressure', 'legacy.wmemMedian').sim).toBe(0);
    expect(await residue('sim-fid')).toEqual([]);
  });
});
