/**
 * Packets per second through the XDP load balancer between namespaces, against the same VIP forwarded by the LB
 * node's IP stack (the VIP marked pass, a plain route to the backend's node): client -> LB node (xdp_lb.c native on
 * its veth uplink; DSR by IPIP, xl_decap on the backend node) -> backend node, which holds the VIP on lo. iperf3 UDP,
 * 64-byte payloads at full speed; the figure is what the receiving iperf3 got per second. On a 2-core machine the
 * sending iperf3 may be the bottleneck for both paths: the ratio then says the LB is not the limit, not its cost
 * (bench/xdp-lb.ts measures the program's cost).
 *
 * Usage (root, after `npm run build` and `bpf/build.sh`): node dist/bench/xdp-lb-pps.js [--seconds 5]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { markVipPassArgv } from '../src/datapath/xdp-lb/maps.js';
import { xdpLbPlan } from '../src/datapath/xdp-lb/plan.js';
import { spawnArgv } from '../src/exec/exec.js';
import { BPF_OBJ_DIR } from '../src/paths.js';
import { must, run, sleep } from './common.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SECONDS = arg('seconds', 5);
const id = process.pid;
const [C, L, B] = [`xl-pc${id}`, `xl-pl${id}`, `xl-pb${id}`];
const PIN = `/sys/fs/bpf/xl-pps${id}`;
const VIP = '10.96.0.10';
const ns = (n: string, argv: string[]) => ['nsenter', `--net=/run/netns/${n}`, '--', ...argv];
const sh = async (argv: string[], what = argv.join(' ')) => must(await run(argv), what);

async function setup(): Promise<void> {
  for (const n of [C, L, B]) await sh(['ip', 'netns', 'add', n]);
  await sh(['ip', '-n', C, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', L]);
  await sh(['ip', '-n', L, 'link', 'add', 'ln0', 'type', 'veth', 'peer', 'name', 'ln0', 'netns', B]);
  const ip = async (n: string, lines: string[]) => {
    for (const l of lines) await sh(['ip', '-n', n, ...l.split(' ')]);
  };
  await ip(C, ['link set lo up', 'addr add 10.71.0.2/24 dev c0', 'link set c0 up', `route add ${VIP}/32 via 10.71.0.1`]);
  await ip(L, ['link set lo up', 'addr add 10.71.0.1/24 dev up0', 'link set up0 up', 'addr add 10.72.0.1/24 dev ln0', 'link set ln0 up']);
  await ip(B, [
    'link set lo up',
    `addr add ${VIP}/32 dev lo`,
    'addr add 10.72.0.2/24 dev ln0',
    'link set ln0 up',
    `route add 10.71.0.0/24 via 10.72.0.1 src ${VIP}`,
  ]);
  await sh(ns(L, ['sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.ln0.rp_filter=0']));
  await sh(ns(C, ['ethtool', '-K', 'c0', 'tx', 'off']));
  await sh(ns(B, ['ethtool', '-K', 'ln0', 'gro', 'on']));
  for (const n of ['l', 'b']) {
    mkdirSync(`${PIN}/${n}`, { recursive: true });
    await sh(['bpftool', 'prog', 'loadall', join(BPF_OBJ_DIR, 'xdp_lb.o'), `${PIN}/${n}/p`, 'pinmaps', `${PIN}/${n}/m`]);
  }
  const pins = (n: string) => ({ cfg: `${PIN}/${n}/m/xl_cfg`, backends: `${PIN}/${n}/m/xl_backends`, vips: `${PIN}/${n}/m/xl_vips` });
  const backends = [{ id: 1, addr: '10.72.0.2', port: 5201, family: 'ipv4' as const, nodeAddr: '10.72.0.2' }];
  const frontends = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 1,
    family: 'ipv4' as const,
    port: 5201,
    protocol,
    lbVip: VIP,
    mode: 'dsr' as const,
    backends: [{ id: 1, weight: 1 }],
  }));
  const lb = xdpLbPlan(pins('l'), frontends, backends, 251, { addr4: '10.72.0.1' });
  for (const l of lb.mapLines) await sh(['bpftool', ...l.split(' ')]);
  await sh(['sh', '-c', `printf '%s\\n' "${lb.tableLines.join('" "')}" | ${join(BPF_OBJ_DIR, 'xlctl')} ${PIN}/l/m/xl_maglev`]);
  for (const l of xdpLbPlan(pins('b'), [], [], 251, { addr4: '10.72.0.2' }).mapLines) await sh(['bpftool', ...l.split(' ')]);
  const link = JSON.parse((await sh(['ip', '-n', B, '-j', 'link', 'show', 'ln0'])).stdout) as { address: string }[];
  await sh(['ip', '-n', L, 'neigh', 'replace', '10.72.0.2', 'lladdr', link[0].address, 'dev', 'ln0', 'nud', 'permanent']);
  await sh(ns(L, ['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', `${PIN}/l/p/xl_xdp`, 'dev', 'up0']));
  await sh(ns(B, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', `${PIN}/b/p/xl_decap`, 'dev', 'ln0']));
}

/** The receiving iperf3's packets per second for one UDP run at full speed. */
async function pps(): Promise<{ pps: number; lost: number }> {
  const r = await sh(ns(C, ['iperf3', '-c', VIP, '-u', '-b', '0', '-l', '64', '-t', String(SECONDS), '-J']), 'iperf3 client');
  const j = JSON.parse(r.stdout) as { end: { sum?: { packets: number; lost_packets: number; seconds: number } }; error?: string };
  const s = j.end.sum;
  if (!s) throw new Error(`iperf3 gave no sum: ${j.error ?? r.stdout.slice(0, 300)}`);
  return { pps: (s.packets - s.lost_packets) / s.seconds, lost: s.lost_packets / Math.max(1, s.packets) };
}

async function main(): Promise<void> {
  let server: ReturnType<typeof spawnArgv> | undefined;
  try {
    await setup();
    let out = '';
    server = spawnArgv(ns(B, ['iperf3', '-s', '-B', VIP]), { onStdout: (c) => (out += c) });
    const end = Date.now() + 10_000;
    while (!out.includes('listening') && Date.now() < end) await sleep(50);
    const xdp = await pps();
    // The same VIP through the LB node's stack: the program passes it, a route sends it on unencapsulated.
    await sh(markVipPassArgv(`${PIN}/l/m/xl_vips`, VIP, 5201, { svc: 1, lutSize: 251 }));
    await sh(['ip', '-n', L, 'route', 'add', `${VIP}/32`, 'via', '10.72.0.2']);
    const stack = await pps();
    console.log(`iperf3 UDP, 64-byte payloads, ${SECONDS} s each, client -> LB node -> backend node (namespaces, veth)`);
    console.log(`XDP LB (DSR, IPIP)      ${(xdp.pps / 1000).toFixed(0)} kpps received, ${(100 * xdp.lost).toFixed(1)}% lost`);
    console.log(`LB node's stack (pass)  ${(stack.pps / 1000).toFixed(0)} kpps received, ${(100 * stack.lost).toFixed(1)}% lost`);
    console.log(`ratio XDP / stack       ${(xdp.pps / stack.pps).toFixed(2)}`);
  } finally {
    server?.kill('SIGTERM');
    await server?.done;
    for (const n of [C, L, B]) await run(['ip', 'netns', 'del', n]);
    rmSync(PIN, { recursive: true, force: true });
  }
}

await main();
