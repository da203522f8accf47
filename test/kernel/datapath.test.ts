import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostExec, runArgv, spawnArgv, type Background } from '../../src/exec/exec.js';
import { counterDelta, readDatapathCounters, type DatapathCounters } from '../../src/measure/datapath-counters.js';
import { cli, quickstart, residue, topo } from './helpers.js';

/** BPF host routing on this kernel: anti-spoofing, MACs on delivery, FIB redirects with MACs, counters. */
const LAB = 'bcdp';
const NODE = `dpl-${LAB}.node1`;
const CLIENT = `${NODE}.client`;
const SERVER = `${NODE}.server`;
const REMOTE = `dpl-${LAB}.remote`;
const PINS = `/sys/fs/bpf/dpl/${LAB}`;
const COUNTERS = `${PINS}/node1/maps/counters`;
const OBJ = fileURLToPath(new URL('../../build/bpf/l2_probe.o', import.meta.url));
const POD = { client: { v4: '10.244.1.2', v6: 'fd00:244:1::2' }, server: { v4: '10.244.1.3', v6: 'fd00:244:1::3' } };
/** Extra addresses the client claims: in its pod prefix, but not its own. */
const SPOOF = { v4: '10.244.1.99', v6: 'fd00:244:1::99' };

const inNs = (ns: string, argv: string[]) => ['nsenter', `--net=/run/netns/${ns}`, ...argv];
const json = async (argv: string[]) => JSON.parse((await runArgv(argv)).stdout);
const counters = () => readDatapathCounters(new HostExec(), COUNTERS);

/** One short iperf3 connection (1 MB); its exit code says whether it connected and moved the data. */
async function connect(from: string, dst: string, bind?: string): Promise<number | null> {
  const r = await runArgv(inNs(from, ['iperf3', '-c', dst, ...(bind ? ['-B', bind] : []), '-n', '1M', '--connect-timeout', '1500']), {
    nothrow: true,
    timeoutMs: 20_000,
  });
  return r.code;
}

/** Connect until it works or the deadline passes (the server may still be starting). */
async function connectWithin(ms: number, from: string, dst: string, bind?: string): Promise<number | null> {
  const end = Date.now() + ms;
  let code = await connect(from, dst, bind);
  while (code !== 0 && Date.now() < end) code = await connect(from, dst, bind);
  return code;
}

const macOf = async (ns: string, dev: string): Promise<string> =>
  (await json(['ip', '-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address;
const hexMac = (b: number[]) => b.map((x) => x.toString(16).padStart(2, '0')).join(':');

/** bpf/l2_probe.c on a pod's eth0 ingress: (source, destination) MAC pairs of the TCP frames it received. */
async function attachProbe(pod: string): Promise<() => Promise<Map<string, number>>> {
  const dir = join(PINS, `bc-l2-${pod}`);
  await runArgv(['mkdir', '-p', dir]); // bpftool pins only into an existing parent
  await runArgv(['bpftool', 'prog', 'loadall', OBJ, join(dir, 'prog'), 'pinmaps', join(dir, 'maps')]);
  await runArgv(
    inNs(`${NODE}.${pod}`, ['bpftool', 'net', 'attach', 'tcx_ingress', 'pinned', join(dir, 'prog', 'probe_l2'), 'dev', 'eth0']),
  );
  return async () => {
    const dump: { formatted: { key: { smac: number[]; dmac: number[] }; value: number } }[] = await json([
      'bpftool',
      '-j',
      'map',
      'dump',
      'pinned',
      join(dir, 'maps', 'l2_seen'),
    ]);
    return new Map(dump.map((e) => [`${hexMac(e.formatted.key.smac)} > ${hexMac(e.formatted.key.dmac)}`, e.formatted.value]));
  };
}

describe('BPF host routing datapath on this kernel (veth pods, IPv4 and IPv6)', () => {
  const servers: Background[] = [];
  let remote: { v4: string; v6: string };

  beforeAll(async () => {
    const r = await cli(['up', topo(quickstart(LAB)), '-q']);
    expect(r.code, r.stderr).toBe(0);
    const addrs: { addr_info: { family: string; local: string; scope: string }[] }[] = await json([
      'ip',
      '-n',
      REMOTE,
      '-j',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    const global = addrs.flatMap((a) => a.addr_info).filter((a) => a.scope === 'global');
    remote = { v4: global.find((a) => a.family === 'inet')!.local, v6: global.find((a) => a.family === 'inet6')!.local };
    for (const ns of [SERVER, REMOTE]) servers.push(spawnArgv(inNs(ns, ['iperf3', '-s'])));
  });

  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.done));
    await runArgv(['rm', '-rf', join(PINS, 'bc-l2-client'), join(PINS, 'bc-l2-server')], { nothrow: true });
    await cli(['down', LAB, '-q']);
  });

  it('a flow to the remote peer leaves through bpf_redirect with the FIB MACs and returns through bpf_redirect_peer', async () => {
    for (const fam of ['v4', 'v6'] as const) {
      const before = await counters();
      expect(await connectWithin(10_000, CLIENT, remote[fam]), fam).toBe(0);
      const d = counterDelta(before, await counters());
      expect(d.redirectFib, `${fam}: ${JSON.stringify(d)}`).toBeGreaterThan(0);
      expect(d.redirectPeer, `${fam}: ${JSON.stringify(d)}`).toBeGreaterThan(0);
      expect(d.dropSpoof + d.dropCsum + d.dropInvalid, fam).toBe(0);
    }
  });

  it('frames delivered into a pod carry the node device MAC as source and the pod MAC as destination', async () => {
    const read = { client: await attachProbe('client'), server: await attachProbe('server') };
    for (const fam of ['v4', 'v6'] as const) {
      expect(await connectWithin(10_000, CLIENT, POD.server[fam]), `pod to pod ${fam}`).toBe(0);
      expect(await connectWithin(10_000, CLIENT, remote[fam]), `pod to remote ${fam}`).toBe(0);
    }
    for (const pod of ['client', 'server'] as const) {
      const want = `${await macOf(NODE, `lxc-${pod}`)} > ${await macOf(`${NODE}.${pod}`, 'eth0')}`;
      const seen = await read[pod]();
      expect([...seen.keys()], pod).toEqual([want]);
      expect(seen.get(want)!, pod).toBeGreaterThanOrEqual(10); // 2 MB each way in GSO/GRO skbs: tens of frames at least
    }
  });

  it('a pod sending from an address that is not its own gets no connection; its own address still connects', async () => {
    // The spoofed addresses are routable back to the client, so only the source check stands in the way.
    await runArgv(['ip', '-n', CLIENT, 'addr', 'add', `${SPOOF.v4}/32`, 'dev', 'eth0']);
    await runArgv(['ip', '-n', CLIENT, 'addr', 'add', `${SPOOF.v6}/128`, 'dev', 'eth0', 'nodad']);
    await runArgv(['ip', '-n', NODE, 'route', 'add', `${SPOOF.v4}/32`, 'dev', 'lxc-client']);
    await runArgv(['ip', '-n', NODE, 'route', 'add', `${SPOOF.v6}/128`, 'dev', 'lxc-client']);
    for (const fam of ['v4', 'v6'] as const) {
      const before: DatapathCounters = await counters();
      expect(await connect(CLIENT, POD.server[fam], SPOOF[fam]), `spoofed ${fam}`).not.toBe(0);
      expect(counterDelta(before, await counters()).dropSpoof, fam).toBeGreaterThan(0);
      expect(await connectWithin(10_000, CLIENT, POD.server[fam], POD.client[fam]), `own address ${fam}`).toBe(0);
    }
    // Control: without from_pod on the client's device the node's stack forwards the same spoofed flow.
    await runArgv(inNs(NODE, ['bpftool', 'net', 'detach', 'tcx_ingress', 'dev', 'lxc-client']));
    for (const fam of ['v4', 'v6'] as const)
      expect(await connectWithin(10_000, CLIENT, POD.server[fam], SPOOF[fam]), `spoofed ${fam}, no program`).toBe(0);
  });

  it('lab down leaves nothing', async () => {
    for (const s of servers) s.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.done));
    const r = await cli(['down', LAB, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
  });
});
