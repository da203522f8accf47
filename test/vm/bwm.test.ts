import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attach } from '../../src/lifecycle/steps.js';
import { readLabState } from '../../src/lifecycle/labstate.js';
import { bwmPins, setUplinkQdisc } from '../../src/datapath/bwm/bwm.js';
import { parseEdtRates } from '../../src/datapath/bwm/maps.js';
import { cli } from '../kernel/helpers.js';
import { inGuest, vmLab } from './vm-lab.js';

const LAB = 'bwm-vt';
const topology = () =>
  readFileSync(new URL('../../topologies/vm-bandwidth.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${LAB}`);
/** Run commands in namespaces of the guest through the lab's own backend. */
const inNetns = (cmds: [netns: string, argv: string[]][]): Promise<string[]> =>
  inGuest(LAB, async (ctx) => {
    const out: string[] = [];
    for (const [netns, argv] of cmds) out.push((await ctx.backend.exec(`dpl-${LAB}.${netns}`).run(argv)).stdout);
    return out;
  });
/** The node's edt_rates and edt_pods as the guest kernel holds them now. */
const edtMaps = () =>
  inGuest(LAB, async (ctx) => {
    const pins = bwmPins(ctx, ctx.lab.nodes[0]);
    const dump = async (m: string) =>
      JSON.parse((await ctx.backend.root('node1').run(['bpftool', '-j', 'map', 'dump', 'pinned', m])).stdout);
    return { rates: parseEdtRates(await dump(pins.rates)), pods: (await dump(pins.pods)) as unknown[] };
  });
const uplinkState = () =>
  inNetns([
    ['node1', ['tc', '-j', 'qdisc', 'show', 'dev', 'uplink']],
    ['node1', ['bpftool', 'net', 'show', 'dev', 'uplink']],
  ]);

type Check = { id: string; status: string; reason: string; metrics: Record<string, never> };

// One boot (TCG, kernel 7.3), both checks; the machine is shared, so keep it to this.
describe('Bandwidth Manager in a VM (kernel with sch_fq)', () => {
  vmLab({ lab: LAB, kernel: '7.3', topology: topology() });

  it('deploys EDT: fq with horizon 2s and 2^15 buckets on the uplink, edt_uplink on its egress, BBR in the pods', async () => {
    const status = JSON.parse((await cli(['status', LAB, '--json'])).stdout);
    const d = status.datapath.find((x: { feature: string }) => x.feature === 'bandwidth-manager');
    expect(d).toMatchObject({ status: 'applied', mode: 'edt' });
    const [qdisc, net, cc] = await inNetns([
      ['node1', ['tc', '-j', 'qdisc', 'show', 'dev', 'uplink']],
      ['node1', ['bpftool', 'net', 'show', 'dev', 'uplink']],
      ['node1.limited', ['sysctl', '-n', 'net.ipv4.tcp_congestion_control', 'net.ipv4.tcp_slow_start_after_idle']],
    ]);
    const fq = JSON.parse(qdisc)[0];
    expect(fq).toMatchObject({ kind: 'fq', root: true, options: { buckets: 32768, horizon: 2000000 } });
    // A flag: tc -j prints it as "horizon_drop": null (and "horizon_cap" when packets are capped instead).
    expect(Object.keys(fq.options)).toContain('horizon_drop');
    expect(net).toMatch(/tcx\/egress edt_uplink/);
    expect(cc.split('\n').slice(0, 2)).toEqual(['bbr', '0']);
  });

  it('lab bw set changes rates live: the EDT entry replaced and read back in the guest, lab.json and status show it', async () => {
    const limited = (l = readLabState(LAB)!.lab) => l.nodes[0].pods.find((p) => p.name === 'limited')!;
    // Bad input: exit 2, the kernel's entry and lab.json as they were (10M: 1250000 B/s).
    const bad = await cli(['bw', 'set', LAB, 'limited', '2mbit']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining("rate '2mbit' is not a Kubernetes quantity")]);
    expect((await edtMaps()).rates.map((r) => [r.id, r.bytesPerSec])).toEqual([[1, 1_250_000n]]);
    expect(limited().egressBps).toBe(10_000_000);
    // 2M: low enough that a TCG guest on a busy machine fills it (the checks below judge 2M and 1M).
    const set = await cli(['bw', 'set', LAB, 'limited', '2M', '-q']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('node1/limited: 10 Mbit/s -> 2 Mbit/s (edt_rates[1] = 250000 B/s');
    expect(limited().egressBps).toBe(2_000_000);
    const status = JSON.parse((await cli(['status', LAB, '--json'])).stdout);
    expect(status.nodes[0].pods.map((p: { egressBps?: number }) => p.egressBps)).toEqual([2_000_000, undefined]);
    // A limit for the unlimited pod, then none: its entries come and go, the other pod's stay.
    expect((await cli(['bw', 'set', LAB, 'free', '5M', '-q'])).code).toBe(0);
    let maps = await edtMaps();
    expect(maps.rates.map((r) => [r.id, r.bytesPerSec, r.tLast]).sort()).toEqual([
      [1, 250_000n, 0n],
      [2, 625_000n, 0n],
    ]);
    expect(maps.pods).toHaveLength(2);
    expect((await cli(['bw', 'set', LAB, 'node1/free', 'none', '-q'])).code).toBe(0);
    maps = await edtMaps();
    expect(maps.rates.map((r) => [r.id, r.bytesPerSec])).toEqual([[1, 250_000n]]);
    expect(maps.pods).toHaveLength(1);
    expect(readLabState(LAB)!.lab.nodes[0].pods.map((p) => p.egressBps)).toEqual([2_000_000, undefined]);
  });

  it('mq with an fq per queue on a multiqueue device (a veth with 4 tx queues: the uplink NICs sit on a one-queue QEMU hub)', async () => {
    const { ctx } = await attach(LAB, new AbortController().signal, () => {});
    try {
      const exec = ctx.backend.exec(`dpl-${LAB}.node1`);
      await exec.run(['ip', 'link', 'add', 'bwmq0', 'numtxqueues', '4', 'type', 'veth', 'peer', 'name', 'bwmq1', 'numtxqueues', '4']);
      try {
        await setUplinkQdisc(exec, 'bwmq0', { kind: 'fq' });
        const qs = JSON.parse((await exec.run(['tc', '-j', 'qdisc', 'show', 'dev', 'bwmq0'])).stdout) as {
          kind: string;
          root?: boolean;
          parent?: string;
          options?: { buckets?: number; horizon?: number };
        }[];
        expect(qs.find((q) => q.root)?.kind).toBe('mq');
        const fqs = qs.filter((q) => q.kind === 'fq');
        expect(fqs.map((q) => q.parent).sort()).toEqual(['1:1', '1:2', '1:3', '1:4']);
        for (const q of fqs) expect(q.options).toMatchObject({ buckets: 32768, horizon: 2000000 });
      } finally {
        await exec.run(['ip', 'link', 'del', 'bwmq0'], { nothrow: true });
      }
    } finally {
      ctx.backend.close?.();
    }
  });

  it('at the 2 Mbit/s set live: EDT stamps and fq paces every limited flow, which never exceeds its limit; the other checks run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bwm-vm-report-'));
    const ids = ['bwm-rate', 'bwm-latency', 'bwm-horizon', 'bwm-backpressure'];
    const r = await cli(['check', LAB, '--only', ids.join(','), '--report-dir', dir, '-q']);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const by = Object.fromEntries(rep.checks.map((c: Check) => [c.id, c])) as Record<string, Check>;
    // Under TCG on a busy machine a flow may not reach its limit: then `error` ("could not establish"), never `fail`.
    for (const id of ids) {
      expect(by[id].status, `${id}: ${by[id].reason}\n${r.stderr}`).not.toBe('fail');
      if (by[id].status === 'error') expect(by[id].reason).toMatch(/^could not establish: /);
    }
    // What holds however starved the guest is: the limits the check set (2M and 1M, from the rate set live above),
    // each flow's packets stamped by edt_uplink and held back by fq until their departure times (fq's throttled
    // counter, its qdisc new each run), at most a few beyond the horizon (TCP backs off first), never more than the limit.
    const rate = by['bwm-rate'].metrics as unknown as {
      free: { stamped: number; goodputBps: number };
      runs: {
        limitBps: number;
        stamped: number;
        dropHorizon: number;
        fqThrottled: number;
        goodputBps: number;
        expectedGoodputBps: number;
      }[];
    };
    expect(rate.runs.map((x) => x.limitBps)).toEqual([2_000_000, 1_000_000]);
    for (const run of rate.runs) {
      expect(run.stamped).toBeGreaterThan(0);
      expect(run.fqThrottled).toBeGreaterThan(0);
      // TCP small queues (net/ipv4/tcp_output.c tcp_small_queue_check) let a socket hold up to
      // tcp_limit_output_bytes in the qdisc; a starved TCG guest has been seen to stamp 3 packets beyond fq's
      // 2 s horizon at 2 Mbit/s before TCP backed off (CI, busy machine). A few, never a share of the flow.
      expect(run.dropHorizon, `${run.dropHorizon} of ${run.stamped} beyond the horizon`).toBeLessThanOrEqual(
        Math.max(5, 0.01 * run.stamped),
      );
      expect(run.goodputBps).toBeLessThanOrEqual(1.05 * run.expectedGoodputBps);
    }
    // The unlimited pod: never stamped, and faster than the limited one.
    expect(rate.free.stamped).toBe(0);
    expect(rate.free.goodputBps).toBeGreaterThan(Math.max(...rate.runs.map((x) => x.goodputBps)));
    // Not judged only for what TCG's starvation explains: a flow short of its limit, or a limit too high for the guest.
    if (by['bwm-rate'].status === 'error') expect(by['bwm-rate'].reason).toMatch(/did not fill the limit|too high for the emulated CPU/);
    const lat = by['bwm-latency'].metrics as Record<string, Record<string, { observations: number }>>;
    for (const s of ['edt', 'htb', 'tbf']) expect(lat.runs[s].observations, s).toBeGreaterThan(0);
    // UDP at ten times the limit: BPF drops beyond the horizon and counts it.
    expect(by['bwm-horizon'].status, by['bwm-horizon'].reason).toBe('pass');
    // Every check put EDT back: fq at the root, edt_uplink on the egress hook.
    const [qdisc, net] = await uplinkState();
    expect(JSON.parse(qdisc)[0]).toMatchObject({ kind: 'fq', root: true });
    expect(net).toMatch(/tcx\/egress edt_uplink/);
    expect(readLabState(LAB)!.lab.nodes[0].pods[0].egressBps).toBe(2_000_000);
  });
});
