/**
 * Packets per second through the XDP load balancer between namespaces, against the same VIP forwarded by the LB
 * node's IP stack, with a generator that is not the limit. client -> LB node -> backend node over veth:
 *
 *   generator  bpf/user/xdpgen runs xg_tx (bpf/xdp_gen.c) in BPF_PROG_TEST_RUN live-frame mode on the client's c0:
 *              64-byte UDP frames to VIP:5201 over 1024 source ports, each an XDP_TX out of c0 into the LB's up0
 *   xdp        xl_xdp (bpf/xdp_lb.c, DSR) natively on up0: Maglev, IPIP, bpf_fib_lookup, redirect to ln0
 *   stack      the same xl_xdp with the VIP marked pass: up0 builds an skb, the LB node's IP stack forwards it
 *              (a route VIP/32 via the backend node) out of ln0
 *   floor      xg_sink on up0 instead of the LB: what the generator and one veth hop cost alone
 *
 * The backend node's ln0 runs xg_sink, which counts what arrives by IP protocol (IPIP through XDP, UDP through the
 * stack) and drops it: that count over the generator's time is the figure. The generator, the LB's NAPI (test_run
 * flushes each batch of 64 and the receiving veth's NAPI runs on the same CPU as its softirq) and the sink run one
 * after the other on one CPU, so a path's ns per packet is the sum of their costs; the floor is the generator's and
 * the sink's share, and what the LB adds is the path's ns minus the floor's. The runs alternate (floor, xdp, stack) so
 * a busy machine weighs on all three alike; medians over the rounds. iperf3 (the previous version) managed ~13 kpps
 * here for both paths: it measured iperf3.
 *
 * Usage (root, after `npm run build` and `bpf/build.sh`): node dist/bench/xdp-lb-pps.js [--seconds 2] [--rounds 3]
 *   [--cpu 1]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { markVipPassArgv, vipKey, vipValue } from '../src/datapath/xdp-lb/maps.js';
import { eth, ipv4, l4 } from '../src/datapath/xdp-lb/packets.js';
import { xdpLbPlan } from '../src/datapath/xdp-lb/plan.js';
import { BPF_OBJ_DIR } from '../src/paths.js';
import { median, must, run } from './common.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SECONDS = arg('seconds', 2);
const ROUNDS = arg('rounds', 3);
const CPU = arg('cpu', 1);
const id = process.pid;
const [C, L, B] = [`xl-pc${id}`, `xl-pl${id}`, `xl-pb${id}`];
const PIN = `/sys/fs/bpf/xl-pps${id}`;
const VIP = '10.96.0.10';
const PORT = 5201;
const LUT = 251;
/** IPv4 protocol numbers xg_sink counts by. */
const PROTO = { ipip: 4, udp: 17 } as const;
const ns = (n: string, argv: string[]) => ['nsenter', `--net=/run/netns/${n}`, '--', ...argv];
const sh = async (argv: string[], what = argv.join(' ')) => must(await run(argv), what);
const macOf = async (n: string, dev: string) =>
  (JSON.parse((await sh(['ip', '-n', n, '-j', 'link', 'show', dev])).stdout) as { address: string }[])[0].address;
const hexMac = (m: string) => m.split(':').map((x) => Number.parseInt(x, 16));
const hex = (b: ArrayLike<number>) => Array.from(b, (x) => x.toString(16).padStart(2, '0'));

async function setup(): Promise<void> {
  for (const n of [C, L, B]) await sh(['ip', 'netns', 'add', n]);
  await sh(['ip', '-n', C, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', L]);
  await sh(['ip', '-n', L, 'link', 'add', 'ln0', 'type', 'veth', 'peer', 'name', 'ln0', 'netns', B]);
  const ip = async (n: string, lines: string[]) => {
    for (const l of lines) await sh(['ip', '-n', n, ...l.split(' ')]);
  };
  await ip(C, ['link set lo up', 'addr add 10.71.0.2/24 dev c0', 'link set c0 up']);
  await ip(L, ['link set lo up', 'addr add 10.71.0.1/24 dev up0', 'link set up0 up', 'addr add 10.72.0.1/24 dev ln0', 'link set ln0 up']);
  await ip(B, ['link set lo up', 'addr add 10.72.0.2/24 dev ln0', 'link set ln0 up']);
  await sh(ns(L, ['sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.up0.rp_filter=0']));
  for (const n of ['l', 'g']) mkdirSync(`${PIN}/${n}`, { recursive: true });
  await sh(['bpftool', 'prog', 'loadall', join(BPF_OBJ_DIR, 'xdp_lb.o'), `${PIN}/l/p`, 'pinmaps', `${PIN}/l/m`]);
  await sh(['bpftool', 'prog', 'loadall', join(BPF_OBJ_DIR, 'xdp_gen.o'), `${PIN}/g/p`, 'pinmaps', `${PIN}/g/m`]);
  const pins = { cfg: `${PIN}/l/m/xl_cfg`, backends: `${PIN}/l/m/xl_backends`, vips: `${PIN}/l/m/xl_vips` };
  const backends = [{ id: 1, addr: '10.72.0.2', port: PORT, family: 'ipv4' as const, nodeAddr: '10.72.0.2' }];
  const frontend = { svcId: 1, family: 'ipv4' as const, port: PORT, protocol: 'UDP' as const, lbVip: VIP, mode: 'dsr' as const };
  const lb = xdpLbPlan(pins, [{ ...frontend, backends: [{ id: 1, weight: 1 }] }], backends, LUT, { addr4: '10.72.0.1' });
  for (const l of lb.mapLines) await sh(['bpftool', ...l.split(' ')]);
  await sh(['sh', '-c', `printf '%s\\n' "${lb.tableLines.join('" "')}" | ${join(BPF_OBJ_DIR, 'xlctl')} ${PIN}/l/m/xl_maglev`]);
  // xl_xdp drops on a failed fib lookup, so the backend node's MAC is known before the first frame.
  await sh(['ip', '-n', L, 'neigh', 'replace', '10.72.0.2', 'lladdr', await macOf(B, 'ln0'), 'dev', 'ln0', 'nud', 'permanent']);
  // The stack path's route; xl_xdp's own lookup is for the backend node, so it does not change the XDP path.
  await sh(['ip', '-n', L, 'route', 'add', `${VIP}/32`, 'via', '10.72.0.2']);
  // The sink gives the backend node's ln0 an XDP program, hence NAPI to receive redirected frames (veth_xdp_xmit).
  await sh(ns(B, ['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', `${PIN}/g/p/xg_sink`, 'dev', 'ln0']));
  // The frame xg_tx writes: to up0's MAC (the stack takes only frames for its own address), IPv4 checksum filled,
  // UDP checksum 0 (none) since xg_tx varies the source port.
  const seg = l4({ proto: 'UDP', sport: 40000, dport: PORT, payload: Array<number>(22).fill(0x61) }, '10.71.0.2', VIP);
  seg[6] = seg[7] = 0;
  const frame = eth('ipv4', ipv4('10.71.0.2', VIP, 17, seg, { df: true }));
  frame.set(hexMac(await macOf(L, 'up0')), 0);
  frame.set(hexMac(await macOf(C, 'c0')), 6);
  if (frame.length !== 64) throw new Error(`template frame is ${frame.length} bytes, xg_tx writes 64`);
  await sh([
    'bpftool',
    'map',
    'update',
    'pinned',
    `${PIN}/g/m/xg_tmpl`,
    'key',
    'hex',
    '00',
    '00',
    '00',
    '00',
    'value',
    'hex',
    ...hex(frame),
  ]);
}

/** What xg_sink counted so far, by IPv4 protocol. */
async function sinkCounts(): Promise<Map<number, number>> {
  const r = await sh(['bpftool', '-j', 'map', 'dump', 'pinned', `${PIN}/g/m/xg_rx`]);
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { value: number }[] } }[];
  return new Map(rows.map(({ formatted: f }) => [f.key, f.values.reduce((s, v) => s + v.value, 0)]));
}

const attachUp0 = (prog: string) => sh(ns(L, ['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', prog, 'dev', 'up0', 'overwrite']));
const setPass = (pass: boolean) =>
  pass
    ? sh(markVipPassArgv(`${PIN}/l/m/xl_vips`, VIP, PORT, { svc: 1, lutSize: LUT }))
    : sh([
        ...['bpftool', 'map', 'update', 'pinned', `${PIN}/l/m/xl_vips`, 'key', 'hex'],
        ...vipKey({ family: 'ipv4', addr: VIP, proto: 'UDP', port: PORT }).split(' '),
        ...['value', 'hex', ...vipValue({ svc: 1, lutSize: LUT, mode: 'dsr' }).split(' ')],
      ]);

type Path = 'floor' | 'xdp' | 'stack';

/** One generator run: frames generated, frames the sink counted under `proto` (and under the other one), the times. */
async function once(proto: number): Promise<{ frames: number; got: number; other: number; wallS: number; runS: number }> {
  const other = proto === PROTO.ipip ? PROTO.udp : PROTO.ipip;
  const before = await sinkCounts();
  const gen = join(BPF_OBJ_DIR, 'xdpgen');
  const r = await sh(ns(C, ['taskset', '-c', String(CPU), gen, `${PIN}/g/p/xg_tx`, 'c0', String(SECONDS)]), 'xdpgen');
  const g = JSON.parse(r.stdout) as { frames: number; wall_ns: number; run_ns: number };
  // The last batch is flushed before BPF_PROG_TEST_RUN returns, and the NAPI that follows runs on this CPU's softirq
  // right after; a map read a process start later sees it.
  const after = await sinkCounts();
  const delta = (k: number) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  return { frames: g.frames, got: delta(proto), other: delta(other), wallS: g.wall_ns / 1e9, runS: g.run_ns / 1e9 };
}

async function main(): Promise<void> {
  try {
    await setup();
    const res: Record<Path, { pps: number; runPps: number; loss: number }[]> = { floor: [], xdp: [], stack: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const path of ['floor', 'xdp', 'stack'] as const) {
        await attachUp0(path === 'floor' ? `${PIN}/g/p/xg_sink` : `${PIN}/l/p/xl_xdp`);
        await setPass(path === 'stack');
        const o = await once(path === 'xdp' ? PROTO.ipip : PROTO.udp);
        // IPIP only after xl_xdp's DSR, plain UDP only without it: the other kind arriving means the path was not the one named.
        if (o.got === 0 || o.other > 0)
          throw new Error(`${path}: the sink counted ${o.got} of ${o.frames} frames as expected and ${o.other} of the other kind`);
        res[path].push({ pps: o.got / o.wallS, runPps: o.got / o.runS, loss: 1 - o.got / o.frames });
      }
    }
    const med = (p: Path, k: 'pps' | 'runPps' | 'loss') => median(res[p].map((r) => r[k]));
    const ns = (pps: number) => 1e9 / pps;
    console.log(`64-byte UDP frames from xdpgen (live-frame XDP_TX), ${SECONDS} s x ${ROUNDS} rounds on CPU ${CPU}, median`);
    console.log('path                    kpps (wall)  kpps (run)  ns/pkt (run)  lost   LB adds ns/pkt');
    for (const [p, what] of [
      ['floor', 'generator -> sink'],
      ['xdp', 'XDP LB (DSR, IPIP)'],
      ['stack', "LB node's stack (pass)"],
    ] as const) {
      const adds = p === 'floor' ? '' : (ns(med(p, 'runPps')) - ns(med('floor', 'runPps'))).toFixed(0);
      console.log(
        `${what.padEnd(22)}  ${(med(p, 'pps') / 1000).toFixed(0).padStart(11)}  ${(med(p, 'runPps') / 1000).toFixed(0).padStart(10)}` +
          `  ${ns(med(p, 'runPps')).toFixed(0).padStart(12)}  ${(100 * med(p, 'loss')).toFixed(1).padStart(4)}%  ${adds.padStart(14)}`,
      );
    }
    console.log(
      `ratio XDP / stack       ${(med('xdp', 'pps') / med('stack', 'pps')).toFixed(2)} (wall), ${(med('xdp', 'runPps') / med('stack', 'runPps')).toFixed(2)} (run)`,
    );
  } finally {
    for (const n of [C, L, B]) await run(['ip', 'netns', 'del', n]);
    rmSync(PIN, { recursive: true, force: true });
  }
}

await main();
