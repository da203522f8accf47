import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { edtDeparture, parseEdtCounters, parseEdtRates, podRateLines } from '../../src/datapath/bwm/maps.js';
import { rateLines } from '../../src/datapath/bwm/live.js';
import { readLabState } from '../../src/lifecycle/labstate.js';
import { cli, residue, topo } from './helpers.js';

const OBJ = new URL('../../build/bpf/bwm_edt.o', import.meta.url).pathname;
const PIN = `/sys/fs/bpf/bwm-test-${process.pid}`;
const pins = { pods: `${PIN}/maps/edt_pods`, rates: `${PIN}/maps/edt_rates` };
const POD = '10.244.1.2';
const tmp = mkdtempSync(join(tmpdir(), 'bwm-'));

/** An Ethernet + IPv4 frame from `src`, padded to `len` bytes. */
function frame(src: string, len: number): string {
  const b = Buffer.alloc(len);
  b.fill(2, 0, 6);
  b.fill(4, 6, 12);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b[22] = 64;
  b[23] = 6;
  b.set(src.split('.').map(Number), 26);
  b.set([10, 255, 1, 2], 30);
  const f = join(tmp, `frame-${src}-${len}`);
  writeFileSync(f, b);
  return f;
}

/** A struct __sk_buff for BPF_PROG_TEST_RUN with wire_len set (offset 160 in linux/bpf.h; 192 bytes in all). */
function skbCtx(wireLen: number): string {
  const b = Buffer.alloc(192);
  b.writeUInt32LE(wireLen, 160);
  const f = join(tmp, `ctx-${wireLen}`);
  writeFileSync(f, b);
  return f;
}

/** Run edt_uplink `repeat` times in the kernel on one skb; monotonic clock read just before and after (Node's hrtime is CLOCK_MONOTONIC, like bpf_ktime_get_ns). */
async function run(src: string, len: number, repeat: number) {
  const ctxOut = join(tmp, 'ctx-out');
  const before = process.hrtime.bigint();
  const r = await runArgv([
    'bpftool',
    'prog',
    'run',
    'pinned',
    `${PIN}/prog/edt_uplink`,
    'data_in',
    frame(src, len),
    'ctx_in',
    skbCtx(len),
    'ctx_out',
    ctxOut,
    'repeat',
    String(repeat),
  ]);
  const after = process.hrtime.bigint();
  const ret = Number(/Return value: (\d+)/.exec(r.stdout + r.stderr)?.[1]);
  const tstamp = readFileSync(ctxOut).readBigUInt64LE(152);
  return { before, after, ret, tstamp };
}
const dump = async (m: string) => JSON.parse((await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', m])).stdout);
const setRate = (bps: number) => runArgv(['bpftool', 'batch', 'file', '-'], { input: `${podRateLines(pins, 1, [POD], bps).join('\n')}\n` });

describe('EDT arithmetic of bpf/bwm_edt.c in the kernel (BPF_PROG_TEST_RUN), against hand-computed departures', () => {
  beforeAll(async () => {
    await runArgv(['mkdir', '-p', PIN]);
    await runArgv(['bpftool', 'prog', 'loadall', OBJ, `${PIN}/prog`, 'pinmaps', `${PIN}/maps`]);
  });
  afterAll(async () => {
    await runArgv(['rm', '-rf', PIN]);
  });

  it('1 Mbit/s, 1500-byte packets, 100 back to back: each 12 ms after the last, the first 12 ms after now', async () => {
    await setRate(1_000_000); // 125000 bytes/s: 1500 * 1e9 / 125000 = 12,000,000 ns per packet
    const c0 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    const r = await run(POD, 1500, 100);
    const [rate] = parseEdtRates(await dump(pins.rates));
    expect(rate.bytesPerSec).toBe(125_000n);
    // t_last = now_first + 100 * 12 ms, with now_first between the two clock reads.
    expect(rate.tLast - 1_200_000_000n).toBeGreaterThanOrEqual(r.before);
    expect(rate.tLast - 1_200_000_000n).toBeLessThanOrEqual(r.after);
    expect(r.tstamp).toBe(rate.tLast);
    expect(r.ret).toBe(0xffffffff); // TCX_NEXT (-1)
    const c1 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    expect(c1.stamped - c0.stamped).toBe(100);
    expect(c1.dropHorizon - c0.dropHorizon).toBe(0);
  });

  it('8 kbit/s, 1000-byte packets: +1 s, +2 s, and the third (3 s ahead) is dropped at the 2 s horizon and counted', async () => {
    await setRate(8000); // 1000 bytes/s: one second a packet
    const c0 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    const r = await run(POD, 1000, 3);
    const [rate] = parseEdtRates(await dump(pins.rates));
    expect(r.ret).toBe(2); // TC_ACT_SHOT
    expect(rate.tLast - 2_000_000_000n).toBeGreaterThanOrEqual(r.before);
    expect(rate.tLast - 2_000_000_000n).toBeLessThanOrEqual(r.after);
    const c1 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    expect([c1.stamped - c0.stamped, c1.dropHorizon - c0.dropHorizon]).toEqual([2, 1]);
    // The TypeScript mirror agrees from the same start, each run a little later on the clock than the one before.
    const now = rate.tLast - 2_000_000_000n;
    const a = edtDeparture({ now, tLast: 0n, wireLen: 1000, bytesPerSec: 1000n });
    const b = edtDeparture({ now: now + 1n, tLast: a.tLast, wireLen: 1000, bytesPerSec: 1000n });
    const c = edtDeparture({ now: now + 2n, tLast: b.tLast, wireLen: 1000, bytesPerSec: 1000n });
    expect([a.action, b.action, c.action, c.tLast]).toEqual(['stamp', 'stamp', 'drop', rate.tLast]);
  });

  it("lab bw set's writes take effect at the next packet: a new rate replaces the entry (clock restarted), none removes it", async () => {
    const pod = { pod: { ipv4: POD } as never, id: 1 };
    const write = (bps: number | undefined) =>
      runArgv(['bpftool', 'batch', 'file', '-'], { input: `${rateLines(pins, pod, bps).join('\n')}\n` });
    await write(8000); // 1000 B/s, then run 1000-byte packets twice: t_last 2 s ahead
    await run(POD, 1000, 2);
    await write(2_000_000); // 250000 B/s: 1000 bytes are 4 ms; the entry is replaced whole, t_last 0
    expect(parseEdtRates(await dump(pins.rates))).toEqual([{ id: 1, bytesPerSec: 250_000n, tLast: 0n, horizonNs: 2_000_000_000n }]);
    const r = await run(POD, 1000, 1);
    // Stamped 4 ms after its own now (not behind the old 2 s of t_last).
    expect(r.tstamp - 4_000_000n).toBeGreaterThanOrEqual(r.before);
    expect(r.tstamp - 4_000_000n).toBeLessThanOrEqual(r.after);
    const c0 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    await write(undefined);
    expect(await dump(pins.rates)).toEqual([]);
    expect(await dump(pins.pods)).toEqual([]);
    const free = await run(POD, 1000, 1);
    expect([free.ret, free.tstamp]).toEqual([0xffffffff, 0n]);
    const c1 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    expect([c1.unlimited - c0.unlimited, c1.stamped - c0.stamped]).toEqual([1, 0]);
  });

  it('a packet of no limited pod passes untouched (no tstamp) and is counted as unlimited', async () => {
    const c0 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    const r = await run('10.244.1.3', 1500, 1);
    expect([r.ret, r.tstamp]).toEqual([0xffffffff, 0n]);
    const c1 = parseEdtCounters(await dump(`${PIN}/maps/edt_counters`));
    expect(c1.unlimited - c0.unlimited).toBe(1);
    expect(c1.stamped - c0.stamped).toBe(0);
  });
});

const bwTopo = (name: string, extra = '') => `name: ${name}
${extra}nodes:
  - name: node1
    pods:
      - name: client
        egressBandwidth: 50M
      - name: server
    uplink:
      peer: remote
`;

describe('the bandwidth manager on this machine', () => {
  it('declines where the kernel has no sch_fq: exit 2 naming it, nothing created', async (t) => {
    const fq = await runArgv(['sh', '-c', 'zcat /proc/config.gz | grep -E "^CONFIG_NET_SCH_FQ=" || true']);
    if (fq.stdout.trim()) return t.skip();
    const r = await cli(['up', topo(bwTopo('bwm-nofq')), '-q']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('bandwidth-manager: no sch_fq: kernel lacks CONFIG_NET_SCH_FQ');
    expect(await residue('bwm-nofq')).toEqual([]);
  });

  it('legacy host routing with egressBandwidth: exit 2 at the line, naming ip_rcv, nothing created', async () => {
    const f = topo(bwTopo('bwm-legacy', 'datapath: { hostRouting: legacy }\n'));
    const r = await cli(['up', f, '-q']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:7:26: nodes[0].pods[0].egressBandwidth: the bandwidth manager needs hostRouting: bpf`);
    expect(r.stderr).toContain('ip_rcv');
    expect(await residue('bwm-legacy')).toEqual([]);
  });

  it('lab bw set where the bandwidth manager does not run: exit 2 saying why, lab.json unchanged', async () => {
    const lab = 'bw-host';
    const up = await cli(['up', topo(`name: ${lab}\nnodes:\n  - name: node1\n    pods: [{ name: a }, { name: b }]\n`), '-q']);
    expect(up.code, up.stderr).toBe(0);
    try {
      const before = readLabState(lab);
      const off = await cli(['bw', 'set', lab, 'a', '10M']);
      expect(off.code).toBe(2);
      expect(off.stderr).toContain('the bandwidth manager does not run on node node1 (off: no pod has egressBandwidth)');
      const bad = await cli(['bw', 'set', lab, 'a', '10mbit']);
      expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining("rate '10mbit' is not a Kubernetes quantity")]);
      const nopod = await cli(['bw', 'set', lab, 'c', '10M']);
      expect([nopod.code, nopod.stderr]).toEqual([2, expect.stringContaining("no pod 'c'; pods: node1/a, node1/b")]);
      expect((await cli(['bw', 'set', 'bw-nolab', 'a', '10M'])).code).toBe(2);
      expect(readLabState(lab)).toEqual(before);
    } finally {
      await cli(['down', lab, '-q']);
    }
    expect(await residue(lab)).toEqual([]);
  });
});
