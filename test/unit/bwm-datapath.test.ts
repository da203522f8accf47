import { describe, expect, it } from 'vitest';
import { bandwidthManager, fqLines, shaperLines } from '../../src/datapath/bwm/bwm.js';
import { fqThrottled, fqTimerLatencyUs } from '../../src/datapath/bwm/shaper.js';
import { edtDeparture, edtRate, podRateLines } from '../../src/datapath/bwm/maps.js';
import type { KernelFacts } from '../../src/kernel/facts.js';

const S = 1_000_000_000n;

describe('EDT arithmetic (the C of bpf/bwm_edt.c), against departures computed by hand', () => {
  it('50 Mbit/s = 6,250,000 B/s: a 1514-byte packet takes 242,240 ns; idle sender starts from now', () => {
    const d = edtDeparture({ now: 10n * S, tLast: 0n, wireLen: 1514, bytesPerSec: 6_250_000n });
    expect(d).toEqual({ action: 'stamp', tNext: 10n * S + 242_240n, tLast: 10n * S + 242_240n });
  });
  it('a backlogged sender goes from t_last, not from now: 64 KiB GSO skb at 10 Mbit/s lasts 52,428,800 ns', () => {
    const d = edtDeparture({ now: 5n * S, tLast: 5n * S + 1_000_000n, wireLen: 65536, bytesPerSec: 1_250_000n });
    expect(d.tNext).toBe(5n * S + 1_000_000n + 52_428_800n);
  });
  it('integer division truncates like the C: 1 byte at 3 B/s is 333,333,333 ns', () => {
    expect(edtDeparture({ now: 0n, tLast: 0n, wireLen: 1, bytesPerSec: 3n }).tNext).toBe(333_333_333n);
  });
  it('a sender-paced skb later than the EDT time keeps its own tstamp', () => {
    const d = edtDeparture({ now: S, tLast: 0n, tstamp: S + 900_000n, wireLen: 1500, bytesPerSec: 125_000_000n });
    expect(d.tNext).toBe(S + 900_000n);
  });
  it('horizon: exactly 2 s ahead is dropped (>=), t_last stays; 1 ns less is stamped', () => {
    const drop = edtDeparture({ now: S, tLast: S + 1_999_000_000n, wireLen: 1000, bytesPerSec: 1_000_000n });
    expect(drop).toEqual({ action: 'drop', tNext: 3n * S, tLast: S + 1_999_000_000n });
    const keep = edtDeparture({ now: S + 1n, tLast: S + 1_999_000_000n, wireLen: 1000, bytesPerSec: 1_000_000n });
    expect(keep.action).toBe('stamp');
  });
  it('a steady sender at the limit: N packets leave N x len/rate after the first', () => {
    let tLast = 0n;
    for (let i = 0; i < 1000; i++) tLast = edtDeparture({ now: 0n, tLast, wireLen: 1500, bytesPerSec: 1_250_000n }).tLast;
    // 1000 x 1500 B at 1.25 MB/s = 1.2 s, inside the 2 s horizon
    expect(tLast).toBe(1_200_000_000n);
  });
});

describe('map bytes (bpf/include/bwm.h)', () => {
  it('struct edt_rate: bytes/s, t_last 0, horizon 2 s, little endian', () => {
    // 50M bit/s = 6,250,000 B/s = 0x5f5e10; 2e9 ns = 0x77359400
    expect(edtRate(50e6)).toBe('10 5e 5f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 94 35 77 00 00 00 00');
  });
  it('one rate line and one address line per family, all under the pod id', () => {
    const lines = podRateLines({ pods: 'P', rates: 'R' }, 3, ['10.244.1.2', 'fd00::2'], 8000);
    expect(lines[0]).toBe(`map update pinned R key hex 03 00 00 00 value hex ${edtRate(8000)}`);
    expect(lines[1]).toBe('map update pinned P key hex 04 00 00 00 0a f4 01 02 00 00 00 00 00 00 00 00 00 00 00 00 value hex 03 00 00 00');
    expect(lines[2]).toMatch(/^map update pinned P key hex 06 00 00 00 fd 00 (00 ){13}02 value hex 03 00 00 00$/);
  });
});

describe('qdiscs', () => {
  it("fq with Cilium's horizon and buckets; mq with an fq per queue on a multiqueue device", () => {
    expect(fqLines('uplink', 1)).toEqual(['qdisc replace dev uplink root fq buckets 32768 horizon 2000000us']);
    expect(fqLines('eth0', 12)).toEqual([
      'qdisc replace dev eth0 root handle 1: mq',
      ...Array.from({ length: 12 }, (_, q) => `qdisc replace dev eth0 parent 1:${(q + 1).toString(16)} fq buckets 32768 horizon 2000000us`),
    ]);
  });
  it('HTB: a class per pod id at its rate; tbf: one bucket', () => {
    expect(shaperLines('uplink', { kind: 'htb', classes: [{ id: 1, bps: 50e6 }] })).toEqual([
      'qdisc replace dev uplink root handle 1: htb',
      'class replace dev uplink parent 1: classid 1:1 htb rate 50000000bit ceil 50000000bit',
    ]);
    expect(shaperLines('uplink', { kind: 'tbf', bps: 2e7 })).toEqual([
      'qdisc replace dev uplink root tbf rate 20000000bit burst 64kb latency 100ms',
    ]);
  });
});

const facts = (config: Record<string, string>, version: [number, number] = [6, 12]) =>
  ({
    version,
    release: '6.12.0',
    config: { CONFIG_NET_XGRESS: 'y', CONFIG_NET_CLS_BPF: 'm', CONFIG_NET_SCH_INGRESS: 'm', ...config },
    configSource: '/proc/config.gz',
    modules: ['sch_fq', 'tcp_bbr', 'cls_bpf'],
    tools: { tc: { path: 'tc' }, bpftool: { path: 'bpftool', version: [7, 5] } },
  }) as unknown as KernelFacts;
const dp = { hostRouting: 'bpf' as const, bigTcp: true, podDevice: 'auto' as const, kubeProxy: 'bpf' as const };

describe('bandwidth-manager decisions', () => {
  it('off without a limited pod, whatever the kernel', () => {
    expect(bandwidthManager.decide(facts({}), dp, 'n')).toMatchObject({ status: 'off', mode: 'off' });
  });
  it('declined without sch_fq, saying so (this host: 6.18 without CONFIG_NET_SCH_FQ)', () => {
    const d = bandwidthManager.decide(facts({}, [6, 18]), { ...dp, bandwidthManager: true }, 'n');
    expect(d).toMatchObject({ status: 'declined', mode: 'off' });
    expect(d.detail).toMatch(/^no sch_fq: kernel lacks CONFIG_NET_SCH_FQ/);
  });
  it('edt with fq as a module; BBR named when the kernel has it, its absence named when not', () => {
    const d = bandwidthManager.decide(facts({ CONFIG_NET_SCH_FQ: 'm', CONFIG_TCP_CONG_BBR: 'm' }), { ...dp, bandwidthManager: true }, 'n');
    expect(d).toMatchObject({ status: 'applied', mode: 'edt' });
    expect(d.detail).toContain('BBR and tcp_slow_start_after_idle=0');
    const noBbr = bandwidthManager.decide(facts({ CONFIG_NET_SCH_FQ: 'y' }), { ...dp, bandwidthManager: true }, 'n');
    expect(noBbr.detail).toContain('no BBR: kernel lacks CONFIG_TCP_CONG_BBR');
  });
  it('declined with legacy host routing (ip_rcv orphans the skb)', () => {
    const d = bandwidthManager.decide(facts({ CONFIG_NET_SCH_FQ: 'y' }), { ...dp, hostRouting: 'legacy', bandwidthManager: true }, 'n');
    expect(d).toMatchObject({ status: 'declined', mode: 'off' });
    expect(d.detail).toContain('ip_rcv');
  });
});

describe("fq's timer lateness from tc -s qdisc", () => {
  const line = (lat: string) =>
    `qdisc fq 8002: root refcnt 2 limit 10000p flow_limit 100p buckets 32768 horizon 2s horizon_drop\n Sent 63753 bytes 63 pkt (dropped 0, overlimits 0 requeues 0)\n  gc 0 highprio 0 fastpath 1 throttled 61 latency ${lat}\n`;
  it('reads it in microseconds whatever the unit tc chose', () => {
    expect(fqTimerLatencyUs(line('16.1ms'))).toBeCloseTo(16_100);
    expect(fqTimerLatencyUs(line('4.79ms'))).toBeCloseTo(4_790);
    expect(fqTimerLatencyUs(line('812us'))).toBe(812);
    expect(fqTimerLatencyUs(line('1.2s'))).toBe(1_200_000);
  });
  it('throttled: the times fq held a flow until its departure time, summed over the fq of each queue under mq', () => {
    expect(fqThrottled(line('1ms'))).toBe(61);
    const mq = `qdisc mq 1: root\n Sent 0 bytes 0 pkt\n${line('1ms')}${line('2ms').replace('throttled 61', 'throttled 9')}`;
    expect(fqThrottled(mq)).toBe(70);
    // The count in parentheses is of flows throttled now, not the counter.
    expect(fqThrottled(' flows 2 (inactive 1 throttled 1)\n  gc 0 highprio 0 throttled 5 latency 1ms')).toBe(5);
    expect(fqThrottled('qdisc htb 1: root refcnt 2 r2q 10')).toBeUndefined();
  });
  it('undefined where the root is not fq (HTB has no such line)', () => {
    expect(fqTimerLatencyUs('qdisc htb 1: root refcnt 2 r2q 10 default 0 direct_packets_stat 0 direct_qlen 1000')).toBeUndefined();
  });
});
