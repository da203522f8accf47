/**
 * Packets per second through the XDP load balancer between namespaces, against the same VIP forwarded by the LB
 * node's IP stack, with a generator that is not the limit. client -> LB node -> backend node over veth:
 *
 *   generator  bpf/user/xdpgen runs xg_tx (bpf/xdp_gen.c) in BPF_PROG_TEST_RUN live-frame mode on the client's c0:
 *              64-byte UDP frames to VIP:5201 over 1024 source ports, each an XDP_TX out of c0 into the LB's up0
 *   floor      xg_sink on up0 instead of the LB: what the generator and one veth hop cost alone
 *   dsr        xl_xdp (bpf/xdp_lb.c) natively on up0: Maglev, IPIP, bpf_fib_lookup, redirect to ln0
 *   snat       the same VIP in SNAT mode: conntrack lookup (new for the first frame of each flow), DNAT + SNAT, redirect
 *   stack      the same xl_xdp with the VIP marked pass (its parse and lookup, then XDP_PASS): up0 builds an skb, the
 *              LB node's IP stack forwards it (a route VIP/32 via the backend node) out of ln0
 *
 * The backend node's ln0 runs xg_sink, which counts what arrives by IP protocol and drops it: that count over the
 * generator's time is the figure. Each run also shows its path: IPIP arrives only after DSR, and xl_xdp's own counters
 * (redirect, or pass_control for the stack) cover every frame the sink got. The generator, the LB's NAPI (test_run
 * flushes each batch of 64 and the receiving veth's NAPI runs on the same CPU as its softirq) and the sink run one
 * after the other on one CPU, so a path's ns per packet is the sum of their costs; the floor is the generator's and
 * the sink's share, and what the LB adds is the path's ns minus the floor's. The paths alternate within each round so
 * a busy machine weighs on all alike; medians over the rounds. iperf3 (the previous version) managed ~13 kpps here for
 * both DSR and the stack: it measured iperf3.
 *
 * Usage (root, after `npm run build` and `bpf/build.sh`): node dist/bench/xdp-lb-pps.js [--seconds 2] [--rounds 3]
 *   [--cpu 1]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { vipKey, vipValue, XL_COUNTERS, type XlCounter, type XlMode } from '../src/datapath/xdp-lb/maps.js';
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

/** What xl_xdp counted so far, by action (xl_counters, per-CPU, summed). */
async function lbCounts(): Promise<Partial<Record<XlCounter, number>>> {
  const r = await sh(['bpftool', '-j', 'map', 'dump', 'pinned', `${PIN}/l/m/xl_counters`]);
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { value: number }[] } }[];
  return Object.fromEntries(rows.map(({ formatted: f }) => [XL_COUNTERS[f.key], f.values.reduce((s, v) => s + v.value, 0)]));
}

const attachUp0 = (prog: string) => sh(ns(L, ['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', prog, 'dev', 'up0', 'overwrite']));
const setVip = (mode: XlMode, pass: boolean) =>
  sh([
    ...['bpftool', 'map', 'update', 'pinned', `${PIN}/l/m/xl_vips`, 'key', 'hex'],
    ...vipKey({ family: 'ipv4', addr: VIP, proto: 'UDP', port: PORT }).split(' '),
    ...['value', 'hex', ...vipValue({ svc: 1, lutSize: LUT, mode, pass }).split(' ')],
  ]);

type Path = 'floor' | 'dsr' | 'snat' | 'stack';

/**
 * Each path: what holds up0, the VIP's mode, what the sink must count (IPIP only after DSR) and what xl_xdp must have
 * counted for every frame the sink got (its own evidence that the frames took that path).
 */
const PATHS: Record<Path, { what: string; prog: 'xg_sink' | 'xl_xdp'; mode: XlMode; pass: boolean; proto: number; lb?: XlCounter }> = {
  floor: { what: 'generator -> sink', prog: 'xg_sink', mode: 'dsr', pass: false, proto: PROTO.udp },
  dsr: { what: 'XDP LB (DSR, IPIP)', prog: 'xl_xdp', mode: 'dsr', pass: false, proto: PROTO.ipip, lb: 'redirect' },
  snat: { what: 'XDP LB (SNAT)', prog: 'xl_xdp', mode: 'snat', pass: false, proto: PROTO.udp, lb: 'redirect' },
  stack: { what: "LB node's stack (pass)", prog: 'xl_xdp', mode: 'dsr', pass: true, proto: PROTO.udp, lb: 'pass_control' },
};

/** One generator run on a path: the sink's count of the path's protocol, and the times. Throws when the path's evidence is missing. */
async function once(path: Path): Promise<{ frames: number; got: number; wallS: number; runS: number }> {
  const p = PATHS[path];
  await attachUp0(p.prog === 'xg_sink' ? `${PIN}/g/p/xg_sink` : `${PIN}/l/p/xl_xdp`);
  await setVip(p.mode, p.pass);
  const [sink0, lb0] = [await sinkCounts(), await lbCounts()];
  const gen = join(BPF_OBJ_DIR, 'xdpgen');
  const r = await sh(ns(C, ['taskset', '-c', String(CPU), gen, `${PIN}/g/p/xg_tx`, 'c0', String(SECONDS)]), 'xdpgen');
  const g = JSON.parse(r.stdout) as { frames: number; wall_ns: number; run_ns: number };
  // The last batch is flushed before BPF_PROG_TEST_RUN returns, and the NAPI that follows runs on this CPU's softirq
  // right after; a map read a process start later sees it.
  const [sink1, lb1] = [await sinkCounts(), await lbCounts()];
  const got = (sink1.get(p.proto) ?? 0) - (sink0.get(p.proto) ?? 0);
  const other = p.proto === PROTO.ipip ? PROTO.udp : PROTO.ipip;
  const stray = (sink1.get(other) ?? 0) - (sink0.get(other) ?? 0);
  const lb = p.lb ? (lb1[p.lb] ?? 0) - (lb0[p.lb] ?? 0) : got;
  if (got === 0 || stray > 0 || lb < got)
    throw new Error(`${path}: of ${g.frames} frames the sink counted ${got} as expected, ${stray} of the other kind; xl_xdp ${p.lb} ${lb}`);
  return { frames: g.frames, got, wallS: g.wall_ns / 1e9, runS: g.run_ns / 1e9 };
}

async function main(): Promise<void> {
  try {
    await setup();
    const paths = Object.keys(PATHS) as Path[];
    const res = Object.fromEntries(paths.map((p) => [p, [] as { pps: number; runPps: number; loss: number }[]])) as Record<
      Path,
      { pps: number; runPps: number; loss: number }[]
    >;
    for (let i = 0; i < ROUNDS; i++)
      for (const path of paths) {
        const o = await once(path);
        res[path].push({ pps: o.got / o.wallS, runPps: o.got / o.runS, loss: 1 - o.got / o.frames });
      }
    const med = (p: Path, k: 'pps' | 'runPps' | 'loss') => median(res[p].map((r) => r[k]));
    const ns = (pps: number) => 1e9 / pps;
    console.log(`64-byte UDP frames from xdpgen (live-frame XDP_TX), ${SECONDS} s x ${ROUNDS} rounds on CPU ${CPU}, median`);
    console.log('path                    kpps (wall)  kpps (run)  ns/pkt (run)  lost   LB adds ns/pkt');
    for (const p of paths) {
      const adds = p === 'floor' ? '' : (ns(med(p, 'runPps')) - ns(med('floor', 'runPps'))).toFixed(0);
      console.log(
        `${PATHS[p].what.padEnd(22)}  ${(med(p, 'pps') / 1000).toFixed(0).padStart(11)}  ${(med(p, 'runPps') / 1000).toFixed(0).padStart(10)}` +
          `  ${ns(med(p, 'runPps')).toFixed(0).padStart(12)}  ${(100 * med(p, 'loss')).toFixed(1).padStart(4)}%  ${adds.padStart(14)}`,
      );
    }
    for (const p of ['dsr', 'snat'] as const)
      console.log(
        `ratio ${p.toUpperCase()} / stack`.padEnd(24) +
          `${(med(p, 'pps') / med('stack', 'pps')).toFixed(2)} (wall), ${(med(p, 'runPps') / med('stack', 'runPps')).toFixed(2)} (run)`,
      );
  } finally {
    for (const n of [C, L, B]) await run(['ip', 'netns', 'del', n]);
    rmSync(PIN, { recursive: true, force: true });
  }
}

await main();
