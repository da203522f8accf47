import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InXdpRun, judgeInXdp, MIN_REQUESTS } from '../../src/checks/xdp-lb-verdicts.js';
import { markVipPassArgv, u32Key, XL_COUNTERS } from '../../src/datapath/xdp-lb/maps.js';
import { dsrLines, dsrPodEntries, xdpLbPlan } from '../../src/datapath/xdp-lb/plan.js';
import { endpointKey, endpointValue } from '../../src/datapath/host-routing/endpoints.js';
import { type Background, runArgv, spawnArgv } from '../../src/exec/exec.js';
import { until } from './helpers.js';

/**
 * DSR through real namespaces: a client, an LB node with xdp_lb.c attached natively (xdpdrv) to its uplink veth,
 * and a backend node whose link runs xl_decap at tcx ingress and holds the VIP on lo. The client reaches the VIP
 * over UDP and TCP; the reply goes from the backend node straight to the client (routed through the LB node's
 * stack, the way back, as a router would). Evidence that requests never reached the LB node's IP stack: its
 * `Ip: InReceives` (net/ipv4/ip_input.c ip_rcv_core) rises by the replies only, while the XDP program counted
 * every request; the control marks the VIP `pass` and the same requests show up in InReceives. A second VIP in SNAT
 * mode: the backend sees the LB node's address, xl_snat_rev (tcx ingress of the LB's link) turns replies back.
 * A third VIP in DSR mode to a pod: IPIP to the pod's address; on the backend node xl_decap (first on the link's tcx
 * ingress) decapsulates and DNATs VIP:5353 -> pod:8080, host routing's from_netdev delivers, its from_pod turns the
 * reply back to VIP:5353 (dsr_ct, shared by the two objects) and routes it to the client.
 * A fourth VIP, IPv6, in SNAT mode: the backend sees the LB node's IPv6 address; xl_snat_rev turns IPv6 replies back.
 * A fifth, IPv6, in DSR mode to the pod: IPv6-in-IPv6 to the pod's IPv6 address, xl_decap DNATs it (dsr_ct6), from_pod
 * turns the reply back to the IPv6 VIP.
 */

const OBJ = fileURLToPath(new URL('../../build/bpf/xdp_lb.o', import.meta.url));
const HR_OBJ = fileURLToPath(new URL('../../build/bpf/host_routing.o', import.meta.url));
const DECAP_OBJ = fileURLToPath(new URL('../../build/bpf/xl_decap.o', import.meta.url));
const SVCPROBE = fileURLToPath(new URL('../../build/bpf/svcprobe', import.meta.url));
const XLCTL = fileURLToPath(new URL('../../build/bpf/xlctl', import.meta.url));
const id = process.pid;
const C = `xl-c${id}`;
const L = `xl-l${id}`;
const B = `xl-b${id}`;
const P = `xl-p${id}`;
const PIN = `/sys/fs/bpf/xl-dsr${id}`;
const VIP = '10.96.0.10';
const VIP_SNAT = '10.96.0.20';
const VIP_POD = '10.96.0.30';
const POD = '10.73.0.2';
const VIP6_SNAT = 'fd00:96::20';
/** The LB node's and the backend node's addresses on their link. */
const L6 = 'fd72::1';
const B6 = 'fd72::2';
const VIP6_POD = 'fd00:96::30';
const POD6 = 'fd73::2';
const N = 60;

const inNs = (ns: string, argv: string[], input?: string) => runArgv(['nsenter', `--net=/run/netns/${ns}`, '--', ...argv], { input });
let server: Background | undefined;
let serverOut = '';
let pod: Background | undefined;
let podOut = '';
let measured: InXdpRun | undefined;

async function inReceives(ns: string): Promise<number> {
  const lines = (await inNs(ns, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf('InReceives')]);
}

async function counters(node: 'l' | 'b'): Promise<Record<string, number>> {
  const r = await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', `${PIN}/${node}/m/xl_counters`]);
  const rows = JSON.parse(r.stdout) as { formatted: { key: number; values: { value: number }[] } }[];
  return Object.fromEntries(rows.map(({ formatted: f }) => [XL_COUNTERS[f.key], f.values.reduce((s, v) => s + v.value, 0)]));
}

async function vipPackets(svc: number): Promise<number> {
  const r = await runArgv(
    ['bpftool', '-j', 'map', 'lookup', 'pinned', `${PIN}/l/m/xl_vip_stats`, 'key', 'hex', ...u32Key(svc).split(' ')],
    {
      nothrow: true,
    },
  );
  if (r.code !== 0) return 0;
  return (JSON.parse(r.stdout) as { formatted: { values: { value: { packets: number } }[] } }).formatted.values.reduce(
    (s, v) => s + v.value.packets,
    0,
  );
}

interface Attempt {
  errno: string;
  peer: string;
  reply: string;
  /** The source the server's socket saw, from its answer, and the client socket's own port. */
  seen: string;
  seenPort: number;
  localPort: number;
}
async function probe(proto: 'udp' | 'tcp', n: number, timeoutMs = 1000, vip = VIP): Promise<Attempt[]> {
  const r = await inNs(C, [SVCPROBE, proto, vip, '5353', String(n), String(timeoutMs)]);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Attempt);
}

/** The client sources a server printed from offset `from` of its output on (svcprobe serve: a seen line per client). */
const seenSince = (out: string, from: number) =>
  out
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { seen: string }).seen);

beforeAll(async () => {
  for (const ns of [C, L, B, P]) await runArgv(['ip', 'netns', 'add', ns]);
  await runArgv(['ip', '-n', C, 'link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', L]);
  await runArgv(['ip', '-n', L, 'link', 'add', 'ln0', 'type', 'veth', 'peer', 'name', 'ln0', 'netns', B]);
  await runArgv(['ip', '-n', B, 'link', 'add', 'lxc0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', P]);
  const batch = async (ns: string, lines: string[]) => runArgv(['ip', '-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  await batch(C, [
    'link set lo up',
    'addr add 10.71.0.2/24 dev c0',
    'link set c0 up',
    `route add ${VIP}/32 via 10.71.0.1`,
    `route add ${VIP_SNAT}/32 via 10.71.0.1`,
    // Room for IPIP's 20 bytes on the 1500-byte link, as the lab's feature sets it (vipRouteMtu).
    `route add ${VIP_POD}/32 via 10.71.0.1 mtu 1480 advmss 1440`,
    'addr add fd71::2/64 dev c0 nodad',
    `route add ${VIP6_SNAT}/128 via fd71::1`,
    // Room for the 40-byte IPv6 header (vipRouteMtu for IPv6).
    `route add ${VIP6_POD}/128 via fd71::1 mtu 1460 advmss 1400`,
  ]);
  await batch(L, [
    'link set lo up',
    'addr add 10.71.0.1/24 dev up0',
    'link set up0 up',
    'addr add 10.72.0.1/24 dev ln0',
    'link set ln0 up',
    `route add ${POD}/32 via 10.72.0.2`,
    'addr add fd71::1/64 dev up0 nodad',
    `addr add ${L6}/64 dev ln0 nodad`,
    `route add ${POD6}/128 via ${B6}`,
  ]);
  await batch(P, [
    'link set lo up',
    `addr add ${POD}/24 dev eth0`,
    `addr add ${POD6}/64 dev eth0 nodad`,
    'link set eth0 up',
    'route add default via 10.73.0.1',
    'route add default via fd73::1',
  ]);
  await batch(B, [
    'addr add 10.73.0.1/24 dev lxc0',
    'link set lxc0 up',
    'link set lo up',
    `addr add ${VIP}/32 dev lo`,
    'addr add 10.72.0.2/24 dev ln0',
    'link set ln0 up',
    // Replies leave from the VIP (a wildcard UDP socket answers from the route's source address).
    `route add 10.71.0.0/24 via 10.72.0.1 src ${VIP}`,
    `addr add ${B6}/64 dev ln0 nodad`,
    'addr add fd73::1/64 dev lxc0 nodad',
    `route add fd71::/64 via ${L6}`,
  ]);
  // The LB node has no route to the VIP (the control relies on that), so replies from it must pass reverse-path
  // filtering without one.
  // A node forwards (bpf_fib_lookup answers FWD_DISABLED for a device that does not, and from_pod's reply would be
  // left to a stack that drops it).
  await inNs(B, ['sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1', 'net.ipv6.conf.all.forwarding=1']);
  await inNs(L, [
    'sysctl',
    '-qw',
    'net.ipv4.conf.all.forwarding=1',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.ln0.rp_filter=0',
    'net.ipv6.conf.all.forwarding=1',
  ]);
  // A frame leaving a local socket over veth is CHECKSUM_PARTIAL; XDP_REDIRECT turns it into an xdp_frame without
  // that state, so the client computes checksums itself (Cilium test/l4lb/test.sh does the same on its veths).
  await inNs(C, ['ethtool', '-K', 'c0', 'tx', 'off']);
  // veth_xdp_xmit queues redirected frames only to a peer with NAPI: GRO on gives the backend node's end one.
  await inNs(B, ['ethtool', '-K', 'ln0', 'gro', 'on']);
  mkdirSync(`${PIN}/l`, { recursive: true });
  mkdirSync(`${PIN}/b`, { recursive: true });
  await runArgv(['bpftool', 'prog', 'loadall', OBJ, `${PIN}/l/p`, 'pinmaps', `${PIN}/l/m`]);
  // The backend node: host routing, and xl_decap.o sharing its dsr_ct, as the lab's feature loads them.
  await runArgv(['bpftool', 'prog', 'loadall', HR_OBJ, `${PIN}/b/hp`, 'pinmaps', `${PIN}/b/hm`]);
  await runArgv([
    'bpftool',
    'prog',
    'loadall',
    DECAP_OBJ,
    `${PIN}/b/p`,
    'map',
    'name',
    'dsr_ct',
    'pinned',
    `${PIN}/b/hm/dsr_ct`,
    'map',
    'name',
    'dsr_ct6',
    'pinned',
    `${PIN}/b/hm/dsr_ct6`,
    'pinmaps',
    `${PIN}/b/m`,
  ]);
  const pins = (n: string) => ({ cfg: `${PIN}/${n}/m/xl_cfg`, backends: `${PIN}/${n}/m/xl_backends`, vips: `${PIN}/${n}/m/xl_vips` });
  const backends = [
    { id: 1, addr: '10.72.0.2', port: 5353, family: 'ipv4' as const, nodeAddr: '10.72.0.2' },
    // A pod backend: the IPIP outer destination is the pod itself (xdpLbInputs).
    { id: 2, addr: POD, port: 8080, family: 'ipv4' as const, nodeAddr: POD },
    { id: 3, addr: B6, port: 5353, family: 'ipv6' as const, nodeAddr: B6 },
    { id: 4, addr: POD6, port: 8080, family: 'ipv6' as const, nodeAddr: POD6 },
  ];
  const frontends = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 1,
    family: 'ipv4' as const,
    port: 5353,
    protocol,
    lbVip: VIP,
    mode: 'dsr' as const,
    backends: [{ id: 1, weight: 1 }],
  }));
  const snat = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 3,
    family: 'ipv4' as const,
    port: 5353,
    protocol,
    lbVip: VIP_SNAT,
    mode: 'snat' as const,
    backends: [{ id: 1, weight: 1 }],
  }));
  const toPod = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 5,
    family: 'ipv4' as const,
    port: 5353,
    protocol,
    lbVip: VIP_POD,
    mode: 'dsr' as const,
    backends: [{ id: 2, weight: 1 }],
  }));
  const snat6 = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 7,
    family: 'ipv6' as const,
    port: 5353,
    protocol,
    lbVip: VIP6_SNAT,
    mode: 'snat' as const,
    backends: [{ id: 3, weight: 1 }],
  }));
  const toPod6 = (['UDP', 'TCP'] as const).map((protocol, i) => ({
    svcId: i + 9,
    family: 'ipv6' as const,
    port: 5353,
    protocol,
    lbVip: VIP6_POD,
    mode: 'dsr' as const,
    backends: [{ id: 4, weight: 1 }],
  }));
  const lb = xdpLbPlan(pins('l'), [...frontends, ...snat, ...toPod, ...snat6, ...toPod6], backends, 251, { addr4: '10.72.0.1', addr6: L6 });
  await runArgv(['bpftool', 'batch', 'file', '-'], { input: `${lb.mapLines.join('\n')}\n` });
  await runArgv([XLCTL, `${PIN}/l/m/xl_maglev`], { input: `${lb.tableLines.join('\n')}\n` });
  const be = xdpLbPlan(pins('b'), [], [], 251, { addr4: '10.72.0.2', addr6: B6 });
  const dsr = dsrLines(`${PIN}/b/m/xl_dsr`, [], dsrPodEntries(toPod, backends, new Set([POD])));
  expect(dsr).toHaveLength(2);
  const dsr6 = dsrLines(`${PIN}/b/m/xl_dsr`, [], dsrPodEntries(toPod6, backends, new Set([POD6])));
  expect(dsr6).toHaveLength(2);
  const [lxc] = JSON.parse((await runArgv(['ip', '-n', B, '-j', 'link', 'show', 'lxc0'])).stdout) as { ifindex: number; address: string }[];
  const [eth0] = JSON.parse((await runArgv(['ip', '-n', P, '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
  const ep = `map update pinned ${PIN}/b/hm/endpoints key hex ${endpointKey(POD)} value hex ${endpointValue({ ifindex: lxc.ifindex, mac: eth0.address, nodeMac: lxc.address })}`;
  const ep6 = `map update pinned ${PIN}/b/hm/endpoints key hex ${endpointKey(POD6)} value hex ${endpointValue({ ifindex: lxc.ifindex, mac: eth0.address, nodeMac: lxc.address })}`;
  await runArgv(['bpftool', 'batch', 'file', '-'], { input: `${[...be.mapLines, ...dsr, ...dsr6, ep, ep6].join('\n')}\n` });
  await inNs(L, ['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', `${PIN}/l/p/xl_xdp`, 'dev', 'up0']);
  // tcx runs programs in attach order (bpftool appends): xl_decap, then host routing's from_netdev.
  await inNs(B, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', `${PIN}/b/p/xl_decap`, 'dev', 'ln0']);
  await inNs(B, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', `${PIN}/b/hp/from_netdev`, 'dev', 'ln0']);
  await inNs(B, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', `${PIN}/b/hp/from_pod`, 'dev', 'lxc0']);
  await inNs(L, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', `${PIN}/l/p/xl_snat_rev`, 'dev', 'ln0']);
  // The program drops when bpf_fib_lookup finds no neighbour (it cannot hand the rewritten packet to the stack):
  // resolve the backend node's address first, as a deployment does.
  const [peer] = JSON.parse((await runArgv(['ip', '-n', B, '-j', 'link', 'show', 'ln0'])).stdout) as { address: string }[];
  await runArgv(['ip', '-n', L, 'neigh', 'replace', '10.72.0.2', 'lladdr', peer.address, 'dev', 'ln0', 'nud', 'permanent']);
  await runArgv(['ip', '-n', L, 'neigh', 'replace', B6, 'lladdr', peer.address, 'dev', 'ln0', 'nud', 'permanent']);
  server = spawnArgv(['nsenter', `--net=/run/netns/${B}`, '--', SVCPROBE, 'serve', 'web', '5353/udp', '5353/tcp'], {
    onStdout: (c) => {
      serverOut += c;
    },
  });
  pod = spawnArgv(['nsenter', `--net=/run/netns/${P}`, '--', SVCPROBE, 'serve', 'pod', '8080/udp', '8080/tcp'], {
    onStdout: (c) => {
      podOut += c;
    },
  });
  expect(await until(() => serverOut.includes('ready') && podOut.includes('ready'), 10_000)).toBe(true);
});

afterAll(async () => {
  server?.kill('SIGTERM');
  pod?.kill('SIGTERM');
  await server?.done;
  await pod?.done;
  for (const ns of [C, L, B, P]) await runArgv(['ip', 'netns', 'del', ns], { nothrow: true });
  rmSync(PIN, { recursive: true, force: true });
});

describe('XDP LB through namespaces (native XDP on veth; DSR with tc decapsulation, SNAT)', () => {
  it('answers the client from the VIP over UDP and TCP, requests handled in XDP, never in the LB node’s stack', async () => {
    const v0 = await vipPackets(1);
    const d0 = (await counters('b')).decap ?? 0;
    const in0 = await inReceives(L);
    const udp = await probe('udp', N);
    const in1 = await inReceives(L);
    const answered = udp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP).length;
    expect(answered).toBe(N);
    expect((await vipPackets(1)) - v0).toBe(N);
    expect(((await counters('b')).decap ?? 0) - d0).toBeGreaterThanOrEqual(N);
    // Replies are forwarded by the LB node's stack (N of them); requests through it would add N more.
    expect(in1 - in0).toBeGreaterThanOrEqual(N);
    expect(in1 - in0).toBeLessThan(N + N / 2);
    measured = {
      node: 'lb',
      frontend: `${VIP}:5353/UDP`,
      sent: N,
      answered,
      xdpCounted: (await vipPackets(1)) - v0,
      stackDelta: in1 - in0,
      expectedOther: answered,
    };
    expect((await counters('l')).redirect).toBeGreaterThanOrEqual(N);
    const tcp = await probe('tcp', 10);
    expect(tcp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP)).toHaveLength(10);
    expect(await vipPackets(2)).toBeGreaterThanOrEqual(10);
  });

  it('control: with the VIP marked pass the same requests reach the LB node’s stack (and go unanswered)', async () => {
    await runArgv(markVipPassArgv(`${PIN}/l/m/xl_vips`, VIP, 5353, { svc: 1, lutSize: 251 }));
    const in0 = await inReceives(L);
    const c0 = (await counters('l')).pass_control ?? 0;
    const udp = await probe('udp', MIN_REQUESTS, 200);
    const stackDelta = (await inReceives(L)) - in0;
    const xdpPassed = ((await counters('l')).pass_control ?? 0) - c0;
    expect(udp.filter((a) => a.reply === 'web')).toHaveLength(0);
    expect(stackDelta).toBeGreaterThanOrEqual(MIN_REQUESTS);
    expect(xdpPassed).toBe(MIN_REQUESTS);
    // The xdp-lb-in-xdp verdict over these kernel counters.
    expect(measured).toBeDefined();
    if (!measured) return;
    const v = judgeInXdp([{ ...measured, control: { sent: MIN_REQUESTS, stackDelta, xdpPassed } }]);
    expect(v.reason).toMatch(/counted in XDP/);
    expect(v.status).toBe('pass');
  });

  it('SNAT: the backend sees the LB node’s address, the client gets its answers from the VIP (xl_snat_rev)', async () => {
    const seen0 = serverOut.length;
    const c0 = await counters('l');
    const udp = await probe('udp', 20, 1000, VIP_SNAT);
    const tcp = await probe('tcp', 5, 1000, VIP_SNAT);
    expect(udp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP_SNAT)).toHaveLength(20);
    expect(tcp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP_SNAT)).toHaveLength(5);
    const seen = seenSince(serverOut, seen0);
    expect(seen.length).toBeGreaterThanOrEqual(25);
    expect(new Set(seen)).toEqual(new Set(['10.72.0.1']));
    // The same, as each answer tells the client.
    expect(new Set([...udp, ...tcp].map((a) => a.seen))).toEqual(new Set(['10.72.0.1']));
    const c1 = await counters('l');
    expect(c1.snat_new - c0.snat_new).toBeGreaterThanOrEqual(6);
    expect(c1.snat_rev - c0.snat_rev).toBeGreaterThanOrEqual(25);
  });

  it('SNAT over IPv6: the backend sees the LB node’s IPv6 address, the client gets its answers from the IPv6 VIP', async () => {
    const seen0 = serverOut.length;
    const c0 = await counters('l');
    const udp = await probe('udp', 20, 1000, VIP6_SNAT);
    const tcp = await probe('tcp', 5, 1000, VIP6_SNAT);
    expect(udp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP6_SNAT)).toHaveLength(20);
    expect(tcp.filter((a) => a.errno === '' && a.reply === 'web' && a.peer === VIP6_SNAT)).toHaveLength(5);
    const seen = serverOut
      .slice(seen0)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { seen: string }).seen);
    expect(seen.length).toBeGreaterThanOrEqual(25);
    expect(new Set(seen)).toEqual(new Set([L6]));
    const c1 = await counters('l');
    expect(c1.snat_new - c0.snat_new).toBeGreaterThanOrEqual(6);
    expect(c1.snat_rev - c0.snat_rev).toBeGreaterThanOrEqual(25);
    expect(await vipPackets(7)).toBeGreaterThanOrEqual(20);
  });

  it('DSR to a pod: the pod sees the client itself, the client gets its answers from the VIP (from_pod, dsr_ct)', async () => {
    const seen0 = podOut.length;
    const c0 = await counters('b');
    const udp = await probe('udp', 20, 1000, VIP_POD);
    const tcp = await probe('tcp', 5, 1000, VIP_POD);
    expect(udp.filter((a) => a.errno === '' && a.reply === 'pod' && a.peer === VIP_POD)).toHaveLength(20);
    expect(tcp.filter((a) => a.errno === '' && a.reply === 'pod' && a.peer === VIP_POD)).toHaveLength(5);
    const seen = seenSince(podOut, seen0);
    expect(seen.length).toBeGreaterThanOrEqual(25);
    // No SNAT: the pod answered the client's own address, on its target port 8080 (DNAT by xl_decap).
    expect(new Set(seen)).toEqual(new Set(['10.71.0.2']));
    // Each answer tells the client the pod saw its own address and port.
    expect([...udp, ...tcp].filter((a) => a.seen === '10.71.0.2' && a.seenPort === a.localPort && a.localPort > 0)).toHaveLength(25);
    const c1 = await counters('b');
    expect(c1.dsr_pod - (c0.dsr_pod ?? 0)).toBeGreaterThanOrEqual(25);
    expect(c1.drop_dsr ?? 0).toBe(0);
    // The requests crossed the LB as IPIP (counted per backend 2), never as plain packets to the pod.
    expect((await vipPackets(5)) + (await vipPackets(6))).toBeGreaterThanOrEqual(25);
  });

  it('DSR to a pod over IPv6: the pod sees the client itself, the client gets its answers from the IPv6 VIP (dsr_ct6)', async () => {
    const seen0 = podOut.length;
    const c0 = await counters('b');
    const udp = await probe('udp', 20, 1000, VIP6_POD);
    const tcp = await probe('tcp', 5, 1000, VIP6_POD);
    expect(udp.filter((a) => a.errno === '' && a.reply === 'pod' && a.peer === VIP6_POD)).toHaveLength(20);
    expect(tcp.filter((a) => a.errno === '' && a.reply === 'pod' && a.peer === VIP6_POD)).toHaveLength(5);
    const seen = podOut
      .slice(seen0)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { seen: string }).seen);
    expect(seen.length).toBeGreaterThanOrEqual(25);
    expect(new Set(seen)).toEqual(new Set(['fd71::2']));
    const c1 = await counters('b');
    expect(c1.dsr_pod - (c0.dsr_pod ?? 0)).toBeGreaterThanOrEqual(25);
    expect(c1.drop_dsr ?? 0).toBe(0);
    expect((await vipPackets(9)) + (await vipPackets(10))).toBeGreaterThanOrEqual(25);
  });

  it('DSR to a pod: full-size TCP segments get through with the VIP route’s MTU, and are dropped without it', async () => {
    // 200 KB to VIP_POD:5353 and the end of it: the pod's server closes only after reading everything.
    const upload = async (timeoutMs: number) => {
      const js =
        `const s=require('net').connect({host:'${VIP_POD}',port:5353});s.on('data',()=>{});` +
        `s.on('end',()=>{console.log('done');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});` +
        `s.on('connect',()=>s.end(Buffer.alloc(200000,120)));setTimeout(()=>{console.log('timeout');process.exit(0)},${timeoutMs})`;
      return (await inNs(C, [process.execPath, '-e', js])).stdout.trim();
    };
    const tooBig0 = (await counters('l')).drop_too_big ?? 0;
    expect(await upload(10_000)).toBe('done');
    expect((await counters('l')).drop_too_big ?? 0).toBe(tooBig0);
    // Control: a route without the MTU; the client's 1500-byte packets + 20 exceed the 1500-byte link.
    await runArgv(['ip', '-n', C, 'route', 'replace', `${VIP_POD}/32`, 'via', '10.71.0.1']);
    try {
      expect(await upload(2000)).toBe('timeout');
      expect((await counters('l')).drop_too_big ?? 0).toBeGreaterThan(tooBig0);
    } finally {
      await runArgv(['ip', '-n', C, 'route', 'replace', `${VIP_POD}/32`, 'via', '10.71.0.1', 'mtu', '1480', 'advmss', '1440']);
    }
  });
});
