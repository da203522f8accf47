import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addr16 } from '../../src/datapath/kpr/maps.js';
import { buildMaglev, flowHash4, flowHash6, maglevKey } from '../../src/datapath/xdp-lb/maglev.js';
import {
  backendValue,
  cfgValue,
  tableLine,
  u32Key,
  vipKey,
  vipValue,
  XL_COUNTERS,
  type XlCounter,
} from '../../src/datapath/xdp-lb/maps.js';
import { runArgv } from '../../src/exec/exec.js';
import { csum, eth, flow, ipv4, ipv6, l4, PAD_OPTS } from '../../src/datapath/xdp-lb/packets.js';

/**
 * bpf/xdp_lb.c under BPF_PROG_TEST_RUN (`bpftool prog run`, net/bpf/test_run.c) on crafted frames, in a namespace
 * of its own so bpf_fib_lookup finds a dummy device with permanent neighbours: the backend a frame goes to is
 * predicted in TypeScript (Maglev table + Cilium's flow hash) and compared with the outer header the kernel wrote.
 */

const OBJ = fileURLToPath(new URL('../../build/bpf/xdp_lb.o', import.meta.url));
const XLCTL = fileURLToPath(new URL('../../build/bpf/xlctl', import.meta.url));
const NS = `xl-t${process.pid}`;
const PIN = `/sys/fs/bpf/xl-t${process.pid}`;
const TMP = mkdtempSync(join(tmpdir(), 'xl-prog-'));
const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 };

const LB4 = '10.200.0.1';
const LB6 = 'fd00:200::1';
const VIP4 = '10.96.0.10';
const VIP6 = 'fd00:96::10';
const VIP_SNAT = '10.96.0.20';
const VIP_EMPTY = '10.96.0.30';
const CLIENT4 = '192.0.2.50';
const CLIENT6 = '2001:db8::50';
const M4 = 251;
const M6 = 509;

interface Be {
  id: number;
  pod: string;
  node: string;
  mac: number[];
}
const BE4: Be[] = [2, 3, 4].map((n, i) => ({ id: i + 1, pod: `10.244.${n}.3`, node: `10.200.0.${n}`, mac: [2, 0, 0, 0, 1, n] }));
const BE6: Be[] = [2, 3, 4].map((n, i) => ({ id: i + 11, pod: `fd00:244:${n}::3`, node: `fd00:200::${n}`, mac: [2, 0, 0, 0, 1, n] }));

const table = (bes: Be[], proto: 'tcp' | 'udp', m: 251 | 509) =>
  buildMaglev(
    bes.map((b) => ({ key: maglevKey({ addr: b.pod, port: 8080, proto }), weight: 1 })),
    m,
  );
const T_TCP4 = table(BE4, 'tcp', M4);
const T_UDP4 = table(BE4, 'udp', M4);
const T_TCP6 = table(BE6, 'tcp', M6);

const bpftool = (args: string[], input?: string) => runArgv(['nsenter', `--net=/run/netns/${NS}`, '--', 'bpftool', ...args], { input });

let seq = 0;
async function run(frame: Uint8Array): Promise<{ retval: number; out: Uint8Array }> {
  const i = ++seq;
  const fin = join(TMP, `in${i}`);
  const fout = join(TMP, `out${i}`);
  writeFileSync(fin, frame);
  const r = await bpftool(['-j', 'prog', 'run', 'pinned', `${PIN}/p/xl_xdp`, 'data_in', fin, 'data_out', fout, 'data_size_out', '1024']);
  const j = JSON.parse(r.stdout) as { retval: number };
  return { retval: j.retval, out: new Uint8Array(readFileSync(fout)) };
}

async function counters(): Promise<Record<XlCounter, number>> {
  const r = await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', `${PIN}/m/xl_counters`]);
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { cpu: number; value: number }[] } }[];
  const out = Object.fromEntries(XL_COUNTERS.map((c) => [c, 0])) as Record<XlCounter, number>;
  for (const { formatted: row } of rows) out[XL_COUNTERS[row.key]] = row.values.reduce((s, v) => s + v.value, 0);
  return out;
}

async function vipPackets(svc: number): Promise<number> {
  const r = await runArgv(['bpftool', '-j', 'map', 'lookup', 'pinned', `${PIN}/m/xl_vip_stats`, 'key', 'hex', ...u32Key(svc).split(' ')], {
    nothrow: true,
  });
  if (r.code !== 0) return 0;
  const j = JSON.parse(r.stdout) as { formatted: { values: { value: { packets: number } }[] } };
  return j.formatted.values.reduce((s, v) => s + v.value.packets, 0);
}

const same = (a: Uint8Array, b: number[] | Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Asserts an IPIP (or IPv6-in-IPv6) frame to `be` that carries `inner` untouched. */
function expectEncap(out: Uint8Array, inner: Uint8Array, be: Be, v6: boolean) {
  expect(Array.from(out.subarray(0, 6))).toEqual(be.mac);
  expect(Array.from(out.subarray(6, 12))).toEqual([2, 0, 0, 0, 0, 1]);
  if (!v6) {
    expect([out[12], out[13]]).toEqual([0x08, 0x00]);
    expect(out[14]).toBe(0x45);
    expect(out[23]).toBe(4);
    expect(csum(out.subarray(14, 34))).toBe(0);
    expect((out[16] << 8) | out[17]).toBe(inner.length - 14 + 20);
    expect(Array.from(out.subarray(26, 30))).toEqual(addr16(LB4).slice(0, 4));
    expect(Array.from(out.subarray(30, 34))).toEqual(addr16(be.node).slice(0, 4));
    expect(same(out.subarray(34), inner.subarray(14))).toBe(true);
  } else {
    expect([out[12], out[13]]).toEqual([0x86, 0xdd]);
    expect(out[14] >> 4).toBe(6);
    expect(out[20]).toBe(41);
    expect((out[18] << 8) | out[19]).toBe(inner.length - 14);
    expect(Array.from(out.subarray(22, 38))).toEqual(addr16(LB6));
    expect(Array.from(out.subarray(38, 54))).toEqual(addr16(be.node));
    expect(same(out.subarray(54), inner.subarray(14))).toBe(true);
  }
}

beforeAll(async () => {
  await runArgv(['ip', 'netns', 'add', NS]);
  const ipb = [
    'link set lo up',
    'link add d0 address 02:00:00:00:00:01 type veth peer name d1',
    'link set d1 up',
    `addr add ${LB4}/24 dev d0`,
    `addr add ${LB6}/64 dev d0 nodad`,
    'link set d0 up',
    ...BE4.map((b) => `neigh add ${b.node} lladdr ${b.mac.map((x) => x.toString(16).padStart(2, '0')).join(':')} dev d0 nud permanent`),
    ...BE6.map((b) => `neigh add ${b.node} lladdr ${b.mac.map((x) => x.toString(16).padStart(2, '0')).join(':')} dev d0 nud permanent`),
    'route add 10.244.0.0/16 via 10.200.0.2',
  ];
  await runArgv(['ip', '-n', NS, '-batch', '-'], { input: `${ipb.join('\n')}\n` });
  // bpf_fib_lookup answers FWD_DISABLED on a device that does not forward (net/core/filter.c bpf_ipv4_fib_lookup).
  await runArgv([
    'nsenter',
    `--net=/run/netns/${NS}`,
    '--',
    'sysctl',
    '-qw',
    'net.ipv4.conf.all.forwarding=1',
    'net.ipv6.conf.all.forwarding=1',
  ]);
  mkdirSync(PIN, { recursive: true });
  await runArgv(['bpftool', 'prog', 'loadall', OBJ, `${PIN}/p`, 'pinmaps', `${PIN}/m`]);
  const m = (name: string) => `map update pinned ${PIN}/m/${name}`;
  const lines = [
    `${m('xl_cfg')} key hex ${u32Key(0)} value hex ${cfgValue(LB4, LB6)}`,
    ...BE4.map(
      (b) =>
        `${m('xl_backends')} key hex ${u32Key(b.id)} value hex ${backendValue({ family: 'ipv4', port: 8080, addr: b.pod, node: b.node })}`,
    ),
    ...BE6.map(
      (b) =>
        `${m('xl_backends')} key hex ${u32Key(b.id)} value hex ${backendValue({ family: 'ipv6', port: 8080, addr: b.pod, node: b.node })}`,
    ),
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: VIP4, proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 1, lutSize: M4, mode: 'dsr' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: VIP4, proto: 'UDP', port: 53 })} value hex ${vipValue({ svc: 2, lutSize: M4, mode: 'dsr' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv6', addr: VIP6, proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 3, lutSize: M6, mode: 'dsr' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: VIP_SNAT, proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 4, lutSize: M4, mode: 'snat' })}`,
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: VIP_EMPTY, proto: 'TCP', port: 80 })} value hex ${vipValue({ svc: 5, lutSize: M4, mode: 'dsr' })}`,
    ...[VIP4, VIP_SNAT, VIP_EMPTY].map(
      (a) => `${m('xl_vips')} key hex ${vipKey({ family: 'ipv4', addr: a })} value hex ${vipValue({ svc: 0, lutSize: 0, mode: 'dsr' })}`,
    ),
    `${m('xl_vips')} key hex ${vipKey({ family: 'ipv6', addr: VIP6 })} value hex ${vipValue({ svc: 0, lutSize: 0, mode: 'dsr' })}`,
  ];
  await runArgv(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n` });
  const ids = (t: Int32Array, bes: Be[]) => Array.from(t, (i) => bes[i].id);
  const tables = [
    tableLine(1, ids(T_TCP4, BE4)),
    tableLine(2, ids(T_UDP4, BE4)),
    tableLine(3, ids(T_TCP6, BE6)),
    tableLine(4, ids(T_TCP4, BE4)),
  ];
  await runArgv([XLCTL, `${PIN}/m/xl_maglev`], { input: `${tables.join('\n')}\n` });
});

afterAll(async () => {
  await runArgv(['ip', 'netns', 'del', NS], { nothrow: true });
  rmSync(PIN, { recursive: true, force: true });
  rmSync(TMP, { recursive: true, force: true });
});

describe('xdp_lb under BPF_PROG_TEST_RUN', () => {
  it('reads back each table exactly as written (xlctl get)', async () => {
    const r = await runArgv([XLCTL, `${PIN}/m/xl_maglev`], { input: `get 1 ${M4}\nget 3 ${M6}\n` });
    const [t1, t3] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ids: number[] });
    expect(t1.ids).toEqual(Array.from(T_TCP4, (i) => BE4[i].id));
    expect(t3.ids).toEqual(Array.from(T_TCP6, (i) => BE6[i].id));
  });

  it('sends a VIP hit (TCP and UDP, IPv4) by IPIP to the backend the Maglev table and flow hash predict', async () => {
    const before = await vipPackets(1);
    const seen = new Set<number>();
    for (let port = 40000; port < 40024; port++) {
      for (const [proto, vport, t, svcTable] of [
        ['TCP', 80, 6, T_TCP4],
        ['UDP', 53, 17, T_UDP4],
      ] as const) {
        const f = flow(CLIENT4, VIP4, { proto, sport: port, dport: vport });
        const be = BE4[svcTable[flowHash4(CLIENT4, port, vport, t) % M4]];
        seen.add(be.id);
        const r = await run(f);
        expect(r.retval).toBe(XDP.REDIRECT);
        expectEncap(r.out, f, be, false);
      }
    }
    // The prediction must have had a choice to make: more than one backend among the flows.
    expect(seen.size).toBe(3);
    expect((await vipPackets(1)) - before).toBe(24);
  });

  it('sends a VIP hit back out of the receiving device with XDP_TX when the next hop is there', async () => {
    const f = flow(CLIENT4, VIP4, { proto: 'TCP', sport: 40050, dport: 80 });
    const [d0] = JSON.parse((await runArgv(['ip', '-n', NS, '-j', 'link', 'show', 'd0'])).stdout) as { ifindex: number }[];
    // struct xdp_md: data 0, data_end = frame length, data_meta 0, ingress_ifindex d0, rx_queue_index 0, egress 0.
    const ctx = Buffer.alloc(24);
    ctx.writeUInt32LE(f.length, 4);
    ctx.writeUInt32LE(d0.ifindex, 12);
    const fctx = join(TMP, 'ctx');
    const fin = join(TMP, 'tx-in');
    const fout = join(TMP, 'tx-out');
    writeFileSync(fctx, ctx);
    writeFileSync(fin, f);
    const r = await bpftool([
      '-j',
      'prog',
      'run',
      'pinned',
      `${PIN}/p/xl_xdp`,
      'data_in',
      fin,
      'data_out',
      fout,
      'data_size_out',
      '1024',
      'ctx_in',
      fctx,
    ]);
    expect((JSON.parse(r.stdout) as { retval: number }).retval).toBe(XDP.TX);
    expectEncap(new Uint8Array(readFileSync(fout)), f, BE4[T_TCP4[flowHash4(CLIENT4, 40050, 80, 6) % M4]], false);
  });

  it('sends an IPv6 hit with hop-by-hop and destination options by IPv6-in-IPv6 to the predicted backend', async () => {
    for (let port = 41000; port < 41008; port++) {
      const seg = l4({ proto: 'TCP', sport: port, dport: 80 }, CLIENT6, VIP6);
      const f = eth(
        'ipv6',
        ipv6(CLIENT6, VIP6, 6, seg, [
          { type: 0, body: PAD_OPTS },
          { type: 60, body: PAD_OPTS },
        ]),
      );
      const r = await run(f);
      expect(r.retval).toBe(XDP.REDIRECT);
      expectEncap(r.out, f, BE6[T_TCP6[flowHash6(CLIENT6, port, 80, 6) % M6]], true);
    }
  });

  it('passes what is not for a VIP untouched: other address, other port, more than 4 extension headers, ICMP echo', async () => {
    const c0 = await counters();
    const frames = [
      flow(CLIENT4, '10.96.0.99', { proto: 'TCP', sport: 40000, dport: 80 }),
      flow(CLIENT4, VIP4, { proto: 'TCP', sport: 40000, dport: 81 }),
      flow(CLIENT4, VIP4, { proto: 'UDP', sport: 40000, dport: 80 }),
      eth(
        'ipv6',
        ipv6(CLIENT6, VIP6, 6, l4({ proto: 'TCP', sport: 1, dport: 80 }, CLIENT6, VIP6), Array(5).fill({ type: 60, body: PAD_OPTS })),
      ),
      eth('ipv4', ipv4(CLIENT4, VIP4, 1, [8, 0, 0xf7, 0xff, 0, 0, 0, 0])),
    ];
    for (const f of frames) {
      const r = await run(f);
      expect(r.retval).toBe(XDP.PASS);
      expect(same(r.out, f)).toBe(true);
    }
    const c1 = await counters();
    expect(c1.pass_not_vip - c0.pass_not_vip).toBe(3);
    expect(c1.pass_exthdr - c0.pass_exthdr).toBe(1);
    expect(c1.pass_l4 - c0.pass_l4).toBe(1);
  });

  it('balances a first fragment, drops later fragments to a VIP address and passes later fragments to others', async () => {
    const c0 = await counters();
    const seg = l4({ proto: 'UDP', sport: 40100, dport: 53, payload: Array(32).fill(7) }, CLIENT4, VIP4);
    const first = eth('ipv4', ipv4(CLIENT4, VIP4, 17, seg.slice(0, 24), { mf: true }));
    const r1 = await run(first);
    expect(r1.retval).toBe(XDP.REDIRECT);
    expectEncap(r1.out, first, BE4[T_UDP4[flowHash4(CLIENT4, 40100, 53, 17) % M4]], false);
    const later = eth('ipv4', ipv4(CLIENT4, VIP4, 17, seg.slice(24), { fragOff: 3 }));
    expect((await run(later)).retval).toBe(XDP.DROP);
    const other = eth('ipv4', ipv4(CLIENT4, '10.96.0.99', 17, seg.slice(24), { fragOff: 3 }));
    const r3 = await run(other);
    expect(r3.retval).toBe(XDP.PASS);
    expect(same(r3.out, other)).toBe(true);
    const v6later = eth('ipv6', ipv6(CLIENT6, VIP6, 17, Array(16).fill(1), [{ type: 44, body: [0, 0, 24, 0, 0, 0, 1] }]));
    expect((await run(v6later)).retval).toBe(XDP.DROP);
    const c1 = await counters();
    expect(c1.frag_first - c0.frag_first).toBe(1);
    expect(c1.drop_frag - c0.drop_frag).toBe(2);
  });

  it('finds the ports after IPv4 options', async () => {
    const seg = l4({ proto: 'TCP', sport: 40200, dport: 80 }, CLIENT4, VIP4);
    // Two NOPs, then End of options list padding (RFC 791): ihl 7.
    const f = eth('ipv4', ipv4(CLIENT4, VIP4, 6, seg, { options: [1, 1, 0, 0, 0, 0, 0, 0] }));
    expect(f[14]).toBe(0x47);
    const r = await run(f);
    expect(r.retval).toBe(XDP.REDIRECT);
    expectEncap(r.out, f, BE4[T_TCP4[flowHash4(CLIENT4, 40200, 80, 6) % M4]], false);
  });

  it('steers an ICMP error about a VIP flow to that flow’s backend (IPv4 frag-needed, ICMPv6 packet too big)', async () => {
    const c0 = await counters();
    for (const port of [40300, 40301, 40302, 40303]) {
      const orig = ipv4(VIP4, CLIENT4, 6, l4({ proto: 'TCP', sport: 80, dport: port }, VIP4, CLIENT4).slice(0, 8));
      const icmp = [3, 4, 0, 0, 0, 0, 0x05, 0xc8, ...orig];
      const c = csum(icmp);
      icmp[2] = c >> 8;
      icmp[3] = c & 255;
      const f = eth('ipv4', ipv4('10.200.9.9', VIP4, 1, icmp));
      const r = await run(f);
      expect(r.retval).toBe(XDP.REDIRECT);
      expectEncap(r.out, f, BE4[T_TCP4[flowHash4(CLIENT4, port, 80, 6) % M4]], false);
      const orig6 = ipv6(VIP6, CLIENT6, 6, l4({ proto: 'TCP', sport: 80, dport: port }, VIP6, CLIENT6).slice(0, 8));
      const f6 = eth('ipv6', ipv6('fd00:9::9', VIP6, 58, [2, 0, 0, 0, 0, 0, 0x05, 0x00, ...orig6]));
      const r6 = await run(f6);
      expect(r6.retval).toBe(XDP.REDIRECT);
      expectEncap(r6.out, f6, BE6[T_TCP6[flowHash6(CLIENT6, port, 80, 6) % M6]], true);
    }
    expect((await counters()).icmp_err - c0.icmp_err).toBe(8);
  });

  it('passes truncated headers (>= 14 bytes: test_run refuses shorter input) untouched', async () => {
    const c0 = await counters();
    const full = flow(CLIENT4, VIP4, { proto: 'TCP', sport: 40400, dport: 80 });
    const full6 = flow(CLIENT6, VIP6, { proto: 'TCP', sport: 40400, dport: 80 });
    const cuts = [
      full.slice(0, 14),
      full.slice(0, 14 + 12),
      full.slice(0, 14 + 20 + 2), // ports cut, and tot_len larger than the frame
      full6.slice(0, 14 + 30),
      full6.slice(0, 14 + 40 + 2),
      // tot_len honest about a header that ends before the ports: 20 + 2 bytes of TCP.
      eth('ipv4', ipv4(CLIENT4, VIP4, 6, [0x9c, 0x40])),
    ];
    for (const f of cuts) {
      const r = await run(f);
      expect(r.retval).toBe(XDP.PASS);
      expect(same(r.out, f)).toBe(true);
    }
    expect((await counters()).pass_trunc - c0.pass_trunc).toBe(cuts.length);
  });

  it('drops a VIP packet when its service has no table', async () => {
    const c0 = await counters();
    expect((await run(flow(CLIENT4, VIP_EMPTY, { proto: 'TCP', sport: 40500, dport: 80 }))).retval).toBe(XDP.DROP);
    expect((await counters()).drop_no_backend - c0.drop_no_backend).toBe(1);
  });

  it('SNAT: rewrites to the predicted backend pod and this node’s address with valid checksums, same port on repeat', async () => {
    for (const port of [40600, 40601, 40602]) {
      const f = flow(CLIENT4, VIP_SNAT, { proto: 'TCP', sport: port, dport: 80 });
      const be = BE4[T_TCP4[flowHash4(CLIENT4, port, 80, 6) % M4]];
      for (let i = 0; i < 2; i++) {
        const r = await run(f);
        expect(r.retval).toBe(XDP.REDIRECT);
        const o = r.out;
        expect(o.length).toBe(f.length);
        expect(csum(o.subarray(14, 34))).toBe(0);
        expect(Array.from(o.subarray(26, 30))).toEqual(addr16(LB4).slice(0, 4));
        expect(Array.from(o.subarray(30, 34))).toEqual(addr16(be.pod).slice(0, 4));
        expect((o[34] << 8) | o[35]).toBe(port);
        expect((o[36] << 8) | o[37]).toBe(8080);
        // Next hop: the route to the pods via backend node 10.200.0.2.
        expect(Array.from(o.subarray(0, 6))).toEqual(BE4[0].mac);
        const seg = Array.from(o.subarray(34));
        const pseudo = [...o.subarray(26, 34), 0, 6, seg.length >> 8, seg.length & 255];
        expect(csum([...pseudo, ...seg])).toBe(0);
      }
      // The backend's reply to LB:port comes back as VIP:80 -> client:port (xl_snat_rev, tc ingress of the links).
      const reply = flow(be.pod, LB4, { proto: 'TCP', sport: 8080, dport: port });
      const fin = join(TMP, `rev${port}`);
      const fout = join(TMP, `revout${port}`);
      writeFileSync(fin, reply);
      const rr = await bpftool(['-j', 'prog', 'run', 'pinned', `${PIN}/p/xl_snat_rev`, 'data_in', fin, 'data_out', fout]);
      // TCX_NEXT (-1): the stack routes the translated reply on to the client.
      expect((JSON.parse(rr.stdout) as { retval: number }).retval >> 0).toBe(-1);
      const o = new Uint8Array(readFileSync(fout));
      expect(csum(o.subarray(14, 34))).toBe(0);
      expect(Array.from(o.subarray(26, 30))).toEqual(addr16(VIP_SNAT).slice(0, 4));
      expect(Array.from(o.subarray(30, 34))).toEqual(addr16(CLIENT4).slice(0, 4));
      expect([(o[34] << 8) | o[35], (o[36] << 8) | o[37]]).toEqual([80, port]);
      const seg = Array.from(o.subarray(34));
      expect(csum([...o.subarray(26, 34), 0, 6, seg.length >> 8, seg.length & 255, ...seg])).toBe(0);
    }
    const c = await counters();
    expect([c.snat_new, c.snat_rev]).toEqual([3, 3]);
  });

  it('SNAT: a conntrack entry whose backend was removed is not followed: the flow picks again', async () => {
    const port = 40600;
    const f = flow(CLIENT4, VIP_SNAT, { proto: 'TCP', sport: port, dport: 80 });
    const be = BE4[T_TCP4[flowHash4(CLIENT4, port, 80, 6) % M4]];
    const entry = `key hex ${u32Key(be.id)}`.split(' ');
    const c0 = await counters();
    // The entry from the test above still maps this flow to `be`: following it again is no new connection.
    expect((await run(f)).retval).toBe(XDP.REDIRECT);
    expect((await counters()).snat_new).toBe(c0.snat_new);
    // lab svc deletes a removed backend's entry; the table still names it (the swap comes with it), so the pick drops.
    await bpftool(['map', 'delete', 'pinned', `${PIN}/m/xl_backends`, ...entry]);
    expect((await run(f)).retval).toBe(XDP.DROP);
    expect((await counters()).drop_no_backend - c0.drop_no_backend).toBe(1);
    // Back again: a new connection (the stale entries were forgotten), not the old one.
    await bpftool([
      'map',
      'update',
      'pinned',
      `${PIN}/m/xl_backends`,
      ...entry,
      'value',
      'hex',
      ...backendValue({ family: 'ipv4', port: 8080, addr: be.pod, node: be.node }).split(' '),
    ]);
    expect((await run(f)).retval).toBe(XDP.REDIRECT);
    expect((await counters()).snat_new - c0.snat_new).toBe(1);
  });
});
