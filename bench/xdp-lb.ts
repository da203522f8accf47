/**
 * The XDP load balancer's per-packet cost: bpf/xdp_lb.c under BPF_PROG_TEST_RUN (`bpftool prog run ... repeat N`,
 * net/bpf/test_run.c: the kernel times N runs of the program on the same frame and reports the mean in ns).
 * Without BPF_F_TEST_XDP_LIVE_FRAMES a redirect is only a return code, so this is the program's own cost (parse,
 * Maglev lookup, encapsulation or NAT, bpf_fib_lookup), not the driver's.
 *
 *   dsr-hit    a TCP packet to a VIP: Maglev (M = 16381) + IPIP encapsulation + fib lookup
 *   dsr-hit6   the same over IPv6 (IPv6-in-IPv6)
 *   snat-hit   a TCP packet of a known SNAT connection: conntrack hit + rewrite + fib lookup
 *   miss       a packet to another address: parse, one hash lookup, XDP_PASS
 *
 * Usage (root, after `npm run build` and `bpf/build.sh`): node dist/bench/xdp-lb.js [--samples 500] [--repeat 1000000]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMaglev, maglevKey } from '../src/datapath/xdp-lb/maglev.js';
import { backendValue, cfgValue, tableLine, u32Key, vipKey, vipValue, XL_COUNTERS } from '../src/datapath/xdp-lb/maps.js';
import { flow } from '../src/datapath/xdp-lb/packets.js';
import { BPF_OBJ_DIR } from '../src/paths.js';
import { median, must, run } from './common.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const REPEAT = arg('repeat', 1_000_000);
const SAMPLES = arg('samples', 500);
const NS = `xl-bench${process.pid}`;
const PIN = `/sys/fs/bpf/xl-bench${process.pid}`;
const TMP = mkdtempSync(join(tmpdir(), 'xl-bench-'));
const M = 16381;
const nodes = [2, 3, 4];

async function setup(): Promise<void> {
  must(await run(['ip', 'netns', 'add', NS]), 'ip netns add');
  const ipb = [
    'link set lo up',
    'link add d0 address 02:00:00:00:00:01 type veth peer name d1',
    'link set d1 up',
    'addr add 10.200.0.1/24 dev d0',
    'addr add fd00:200::1/64 dev d0 nodad',
    'link set d0 up',
    ...nodes.flatMap((n) => [
      `neigh add 10.200.0.${n} lladdr 02:00:00:00:01:0${n} dev d0 nud permanent`,
      `neigh add fd00:200::${n} lladdr 02:00:00:00:01:0${n} dev d0 nud permanent`,
    ]),
    'route add 10.244.0.0/16 via 10.200.0.2',
  ];
  writeFileSync(join(TMP, 'ip'), `${ipb.join('\n')}\n`);
  must(await run(['ip', '-n', NS, '-batch', join(TMP, 'ip')]), 'ip batch');
  must(
    await run([
      'nsenter',
      `--net=/run/netns/${NS}`,
      '--',
      'sysctl',
      '-qw',
      'net.ipv4.conf.all.forwarding=1',
      'net.ipv6.conf.all.forwarding=1',
    ]),
    'sysctl',
  );
  mkdirSync(PIN, { recursive: true });
  must(await run(['bpftool', 'prog', 'loadall', join(BPF_OBJ_DIR, 'xdp_lb.o'), `${PIN}/p`, 'pinmaps', `${PIN}/m`]), 'bpftool loadall');
  const m = (name: string) => `map update pinned ${PIN}/m/${name}`;
  const be4 = nodes.map((n) => ({ id: n, pod: `10.244.${n}.3`, node: `10.200.0.${n}` }));
  const be6 = nodes.map((n) => ({ id: n + 10, pod: `fd00:244:${n}::3`, node: `fd00:200::${n}` }));
  const lines = [
    `${m('xl_cfg')} key hex ${u32Key(0)} value hex ${cfgValue('10.200.0.1', 'fd00:200::1')}`,
    ...be4.map(
      (b) =>
        `${m('xl_backends')} key hex ${u32Key(b.id)} value hex ${backendValue({ family: 'ipv4', port: 8080, addr: b.pod, node: b.node })}`,
    ),
    ...be6.map(
      (b) =>
        `${m('xl_backends')} key hex ${u32Key(b.id)} value hex ${backendValue({ family: 'ipv6', port: 8080, addr: b.pod, node: b.node })}`,
    ),
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: '10.96.0.10', proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 1, lutSize: M, mode: 'dsr' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv6', addr: 'fd00:96::10', proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 2, lutSize: M, mode: 'dsr' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: '10.96.0.20', proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 3, lutSize: M, mode: 'snat' })}`,
  ];
  writeFileSync(join(TMP, 'maps'), `${lines.join('\n')}\n`);
  must(await run(['bpftool', 'batch', 'file', join(TMP, 'maps')]), 'bpftool batch');
  const ids = (bes: { id: number; pod: string }[]) =>
    Array.from(
      buildMaglev(
        bes.map((b) => ({ key: maglevKey({ addr: b.pod, port: 8080, proto: 'tcp' }), weight: 1 })),
        M,
      ),
      (i) => bes[i].id,
    );
  writeFileSync(join(TMP, 'tables'), `${[tableLine(1, ids(be4)), tableLine(2, ids(be6)), tableLine(3, ids(be4))].join('\n')}\n`);
  must(await run(['sh', '-c', `${join(BPF_OBJ_DIR, 'xlctl')} ${PIN}/m/xl_maglev < ${join(TMP, 'tables')}`]), 'xlctl');
}

/** xl_counters summed over CPUs: the path the program took shows in which counter moved. */
async function counters(): Promise<number[]> {
  const r = must(await run(['bpftool', '-j', 'map', 'dump', 'pinned', `${PIN}/m/xl_counters`]), 'map dump');
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { value: number }[] } }[];
  const out = XL_COUNTERS.map(() => 0);
  for (const { formatted } of rows) out[formatted.key] = formatted.values.reduce((s, v) => s + v.value, 0);
  return out;
}

async function nsPerPacket(
  name: string,
  frame: Uint8Array,
): Promise<{ name: string; retval: number; ns: number; repeated?: number; path: string }> {
  const f = join(TMP, name);
  writeFileSync(f, frame);
  const argv = ['nsenter', `--net=/run/netns/${NS}`, '--', 'bpftool', '-j', 'prog', 'run', 'pinned', `${PIN}/p/xl_xdp`];
  const c0 = await counters();
  must(await run([...argv, 'data_in', f, 'data_size_out', '1024']), `prog run ${name}`);
  const c1 = await counters();
  const path = XL_COUNTERS.filter((_, i) => c1[i] > c0[i]).join('+');
  // One run per command, SAMPLES commands in one bpftool process: with `repeat N` the kernel runs the program N
  // times on the same buffer without restoring it (net/bpf/test_run.c bpf_test_run), so after one encapsulation
  // the next run sees the IPIP packet and passes it. A pass-only frame is unchanged, so `miss` also gets `repeat`.
  const batch = join(TMP, `${name}.batch`);
  writeFileSync(batch, `${Array(SAMPLES).fill(`prog run pinned ${PIN}/p/xl_xdp data_in ${f} data_size_out 1024`).join('\n')}\n`);
  const r = must(await run(['nsenter', `--net=/run/netns/${NS}`, '--', 'bpftool', '-j', 'batch', 'file', batch]), `batch ${name}`);
  const rows = (JSON.parse(r.stdout) as { output: { retval: number; duration: number } }[]).map((x) => x.output);
  const retval = rows[rows.length - 1].retval;
  const single = median(rows.map((x) => x.duration));
  let repeated: number | undefined;
  if (retval === 2) {
    const rr = must(await run([...argv, 'data_in', f, 'repeat', String(REPEAT)]), `prog run ${name} repeat`);
    repeated = (JSON.parse(rr.stdout) as { duration: number }).duration;
  }
  return { name, retval, ns: single, repeated, path };
}

async function main(): Promise<void> {
  try {
    await setup();
    const cases = [
      await nsPerPacket('dsr-hit', flow('192.0.2.50', '10.96.0.10', { proto: 'TCP', sport: 40000, dport: 80 })),
      await nsPerPacket('dsr-hit6', flow('2001:db8::50', 'fd00:96::10', { proto: 'TCP', sport: 40000, dport: 80 })),
      await nsPerPacket('snat-hit', flow('192.0.2.50', '10.96.0.20', { proto: 'TCP', sport: 40000, dport: 80 })),
      await nsPerPacket('miss', flow('192.0.2.50', '10.96.0.99', { proto: 'TCP', sport: 40000, dport: 80 })),
    ];
    const miss = cases[3].ns;
    const overhead = cases[3].repeated === undefined ? undefined : miss - cases[3].repeated;
    console.log(`xdp_lb under BPF_PROG_TEST_RUN, median of ${SAMPLES} single runs (one bpftool batch), M = ${M}`);
    console.log('case        retval  ns/packet  Mpps/core  vs miss  repeat-ns  path (counter)');
    for (const c of cases)
      console.log(
        `${c.name.padEnd(10)}  ${String(c.retval).padStart(6)}  ${c.ns.toFixed(0).padStart(9)}  ${(1000 / c.ns).toFixed(2).padStart(9)}  ${(c.ns / miss).toFixed(2).padStart(7)}  ${(c.repeated === undefined ? '-' : String(c.repeated)).padStart(9)}  ${c.path}`,
      );
    if (overhead !== undefined)
      console.log(`a single run carries about ${overhead} ns the repeated one spreads out (miss: single - repeat): subtract it to compare`);
  } finally {
    await run(['ip', 'netns', 'del', NS]);
    rmSync(PIN, { recursive: true, force: true });
    rmSync(TMP, { recursive: true, force: true });
  }
}

await main();
