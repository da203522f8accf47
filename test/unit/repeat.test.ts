import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import type { CheckResult } from '../../src/checks/check.js';
import { labMachine } from '../../src/lifecycle/lab-machine.js';
import { parseRepeat } from '../../src/cli/options.js';
import { devicesOf, mapPinsOf, snapshotPlan } from '../../src/lifecycle/snapshot.js';
import type { LabNode } from '../../src/topology/model.js';
import { flakeJunit, flakeStats, flakeTable, numericMetrics, spread } from '../../src/report/repeat.js';

const result = (id: string, status: CheckResult['status'], metrics: Record<string, unknown> = {}, reason: string = status, ms = 100) =>
  ({ id, title: id, status, reason, metrics, evidence: [], ms }) as CheckResult;

describe('flake rates', () => {
  it('spread: median of odd and even counts, min, max; refuses an empty list', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spread([4, 1, 2, 10])).toEqual({ median: 3, min: 1, max: 10, n: 4 });
    expect(() => spread([])).toThrow(RangeError);
  });

  it('numeric metrics: nested numbers as dotted keys; arrays, text and NaN are not metrics', () => {
    const m = {
      attempts: 12,
      byFamily: { ipv4: { reached: 6 } },
      matrix: [{ ms: 1 }],
      port: 'x',
      bad: Number.NaN,
      deep: { a: { b: { c: 1 } } },
    };
    expect(numericMetrics(m)).toEqual({ attempts: 12, 'byFamily.ipv4.reached': 6 });
  });

  it('counts per check, pass rate over judged runs, the runs of each distinct problem, metric spread over non-skipped runs', () => {
    const runs = [
      [result('tso-probe', 'pass', { n: 6 }, 'ok', 10), result('connectivity', 'skip')],
      [result('tso-probe', 'fail', { n: 5 }, 'size 65536', 30), result('connectivity', 'skip')],
      [result('tso-probe', 'pass', { n: 6 }, 'ok', 20), result('connectivity', 'skip')],
      [result('tso-probe', 'fail', { n: 5 }, 'size 65536', 40), result('connectivity', 'skip')],
      [result('tso-probe', 'error', {}, 'could not establish: x', 50), result('connectivity', 'skip')],
    ];
    const [tso, conn] = flakeStats(runs);
    expect(tso.counts).toEqual({ pass: 2, fail: 2, error: 1, skip: 0 });
    expect(tso.passRate).toBeCloseTo(2 / 5);
    expect(tso.metrics.n).toEqual({ median: 5.5, min: 5, max: 6, n: 4 });
    expect(tso.metrics.ms).toEqual({ median: 30, min: 10, max: 50, n: 5 });
    expect(tso.problems).toEqual([
      { status: 'fail', reason: 'size 65536', runs: [2, 4] },
      { status: 'error', reason: 'could not establish: x', runs: [5] },
    ]);
    expect(conn.counts.skip).toBe(5);
    expect(conn.passRate).toBeNull();
    expect(conn.metrics).toEqual({});
    const xml = flakeJunit('lab', [tso, conn], 1000);
    expect(xml.match(/<testcase /g)).toHaveLength(2);
    expect(xml).toContain('<property name="passRate" value="0.4000"/>');
    expect(xml).toContain('<failure message="passed 2 of 5 runs (40%)">fail in runs 2,4 of 5: size 65536');
    expect(xml).toContain('<skipped message="skipped in every run"/>');
    expect(xml).toContain('tests="2" failures="1" errors="0" skipped="1"');
    expect(flakeTable([tso])).toMatch(/tso-probe\s+5\s+2\s+2\s+1\s+0\s+40%\s+fail in runs 2,4: size 65536/);
  });

  it('a check that errors in some runs and never fails is a JUnit <error>; one that always passes is no failure', () => {
    const stats = flakeStats([
      [result('a', 'pass'), result('b', 'pass')],
      [result('a', 'error'), result('b', 'pass')],
    ]);
    const xml = flakeJunit('lab', stats, 0);
    expect(xml).toContain('<error message="passed 1 of 2 runs (50%)">');
    expect(xml).toContain('tests="2" failures="0" errors="1" skipped="0"');
    expect(stats[1].passRate).toBe(1);
  });

  it('--repeat takes 1..1000', () => {
    expect(parseRepeat('3')).toBe(3);
    for (const bad of ['0', '-1', '2.5', 'x', '1001', '']) expect(() => parseRepeat(bad), bad).toThrow(/--repeat/);
  });

  it('the lab machine runs the checks N times on one lab and hands every run to the report', async () => {
    let n = 0;
    let reported: CheckResult[][] | undefined;
    const lab = { name: 'rpt-m', nodes: [] };
    const machine = labMachine.provide({
      actors: {
        attach: fromPromise(async () => ({ ctx: { lab } })),
        // A check that fails every other run: the seam that tests the counting.
        check: fromPromise(async () => [result('tso-probe', ++n % 2 ? 'pass' : 'fail')]),
        report: fromPromise(async ({ input }: { input: { runs?: CheckResult[][] } }) => {
          reported = input.runs;
          return { dir: '/r', json: '/r/report.json', junit: '/r/junit.xml' };
        }),
      } as never,
    });
    const out = await toPromise(createActor(machine, { input: { mode: 'check', name: 'rpt-m', repeat: 4, progress: () => {} } }).start());
    expect(n).toBe(4);
    expect(out.runs).toHaveLength(4);
    expect(reported).toEqual(out.runs);
    expect(out.results?.map((r) => r.status)).toEqual(['pass', 'fail', 'pass', 'fail']);
    expect(flakeStats(out.runs!)[0].counts).toEqual({ pass: 2, fail: 2, error: 0, skip: 0 });
  });
});

describe('snapshot plan', () => {
  const exec = (where: string) => ({ where, hostPids: true, run: async () => ({ code: 0, stdout: '', stderr: '', ms: 0 }) }) as never;
  const lab = {
    name: 'l',
    peers: [{ name: 'remote', netns: 'dpl-l.remote', node: 'n1' }],
    nodes: [{ name: 'n1', netns: 'dpl-l.n1', pods: [{ name: 'a', netns: 'dpl-l.n1.a' }] }],
  } as never;
  const backend = (kind: string) => ({ kind, exec, root: () => exec('root') }) as never;

  it('per namespace of the node (node, pods, peer): links, addresses, routes, qdiscs, sockets, nstat, bpf attachments', () => {
    const plan = snapshotPlan({ lab, backend: backend('local') }, (lab as { nodes: LabNode[] }).nodes[0]);
    const files = plan.map((c) => c.file);
    for (const place of ['node', 'pod-a', 'peer-remote'])
      for (const f of ['ip-link.json', 'ip-addr.json', 'ip-route4.json', 'tc-qdisc.json', 'ss-tmi.txt', 'nstat.json', 'bpftool-net.json'])
        expect(files).toContain(`n1/${place}/${f}`);
    expect(files).toContain('n1/bpftool-prog.json');
    expect(files).not.toContain('n1/dmesg.txt');
    const vm = snapshotPlan({ lab, backend: backend('qemu') }, (lab as { nodes: LabNode[] }).nodes[0]);
    expect(vm.find((c) => c.file === 'n1/dmesg.txt')?.tailLines).toBeGreaterThan(0);
  });

  it('map pins: the node own and the lab-wide ones, never another node or lab', () => {
    const shown = JSON.stringify([
      { id: 1, pinned: ['/b/n1/maps/counters'] },
      { id: 2 },
      { id: 3, pinned: ['/b/n2/maps/endpoints'] },
      { id: 4, pinned: ['/b/count-eth0-1/maps/counts'] },
      { id: 5, pinned: ['/other/lab/maps/x'] },
    ]);
    expect(mapPinsOf(shown, '/b', 'n1', ['n1', 'n2'])).toEqual(['/b/n1/maps/counters', '/b/count-eth0-1/maps/counts']);
    expect(mapPinsOf('not captured: ...', '/b', 'n1', ['n1'])).toEqual([]);
    expect(devicesOf('[{"ifname":"lo"},{"ifname":"eth0"}]')).toEqual(['eth0']);
    expect(devicesOf('not json')).toEqual([]);
  });
});
