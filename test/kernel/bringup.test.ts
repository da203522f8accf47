import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readPodLinks } from '../../src/backends/namespaces.js';
import { nodeConf, podBatch } from '../../src/backends/wiring.js';
import { HostExec } from '../../src/exec/exec.js';
import { runArgv } from '../../src/exec/exec.js';
import type { LabNode, Pod } from '../../src/topology/model.js';

const NSCONF = fileURLToPath(new URL('../../build/bpf/nsconf', import.meta.url));
const made: string[] = [];

/** A node namespace and one pod namespace joined by a veth pair, configured by nothing yet. */
async function pair(tag: string): Promise<{ node: LabNode; pod: Pod }> {
  const pod: Pod = { name: 'p', node: tag, netns: `bu-${tag}.p`, hostDev: 'lxc-p', dev: 'eth0', ipv4: '10.244.1.2', ipv6: 'fd00:244:1::2' };
  const node = { name: tag, netns: `bu-${tag}`, gw4: '10.244.1.1', gw6: 'fd00:244:1::1', pods: [pod] } as unknown as LabNode;
  for (const ns of [node.netns, pod.netns]) {
    await runArgv(['ip', 'netns', 'add', ns]);
    made.push(ns);
  }
  await runArgv(['ip', 'link', 'add', pod.hostDev, 'netns', node.netns, 'type', 'veth', 'peer', 'name', pod.dev, 'netns', pod.netns]);
  return { node, pod };
}

/**
 * What a person compares: addresses, routes of both families, admin state and addrgenmode.
 * Carrier flags and operstate are left out: the kernel sets them later (linkwatch), not
 * as an answer to the request.
 */
async function state(netns: string) {
  const j = async (...a: string[]) => JSON.parse((await runArgv(['ip', '-n', netns, '-j', ...a])).stdout);
  const links = (await j('-d', 'link', 'show')).map((l: Record<string, unknown>) => ({
    ifname: l.ifname,
    flags: (l.flags as string[]).filter((f) => f !== 'NO-CARRIER' && f !== 'LOWER_UP'),
    addrgenmode: l.inet6_addr_gen_mode,
  }));
  const addrs = (await j('addr', 'show')).map((a: { ifname: string; addr_info: Record<string, unknown>[] }) => ({
    ifname: a.ifname,
    addrs: a.addr_info.map((x) => `${x.local}/${x.prefixlen} ${x.scope}${x.nodad ? ' nodad' : ''}`).sort(),
  }));
  return { links, addrs, v4: await j('route', 'show'), v6: await j('-6', 'route', 'show') };
}

afterAll(async () => {
  for (const ns of made.reverse()) await runArgv(['ip', 'netns', 'del', ns], { nothrow: true });
});

describe('nsconf (one process, setns + rtnetlink) against ip -batch', () => {
  for (const kind of ['veth', 'netkit'] as const)
    it(`leaves a ${kind}-style pod exactly as ip -batch does: addresses, routes, link state`, async () => {
      const a = await pair(`bua${kind[0]}`);
      const b = await pair(`bub${kind[0]}`);
      await runArgv(['ip', '-n', a.pod.netns, '-batch', '-'], { input: podBatch(a.node, a.pod, kind) });
      await runArgv([NSCONF], { input: nodeConf(b.node, kind) });
      const [sa, sb] = [await state(a.pod.netns), await state(b.pod.netns)];
      expect(sb.addrs.flatMap((x: { addrs: string[] }) => x.addrs)).toContain('10.244.1.2/32 global');
      expect(sb.v4.length).toBeGreaterThan(0);
      if (kind === 'veth') expect(sb.links.find((l: { ifname: string }) => l.ifname === 'eth0')?.addrgenmode).toBe('none');
      expect(sb).toEqual(sa);
      // The node's sysctls were written in the node's namespace, not this process's.
      const fwd = await runArgv(['ip', 'netns', 'exec', b.node.netns, 'cat', '/proc/sys/net/ipv4/ip_forward']);
      expect(fwd.stdout.trim()).toBe('1');
    });

  it('a failing line is reported with its number and errno; the lines after it still run; exit 1', async () => {
    const { pod } = await pair('buf');
    const input = [`ns ${pod.netns}`, 'addr add 10.9.0.2/32 dev eth0', 'addr add 10.9.0.2/32 dev eth0', 'link up eth0', ''].join('\n');
    const r = await runArgv([NSCONF], { input, nothrow: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nsconf: line 3: errno 17 \(File exists\).*addr add 10\.9\.0\.2\/32 dev eth0/);
    const link = JSON.parse((await runArgv(['ip', '-n', pod.netns, '-j', 'link', 'show', 'eth0'])).stdout)[0];
    expect(link.flags).toContain('UP');
  });

  it('show: each pod device as ip -j link reports it (ifindex, MAC), from one process', async () => {
    const a = await pair('bus1');
    const b = await pair('bus2');
    const shown = await readPodLinks(new HostExec(), fileURLToPath(new URL('../../build/bpf', import.meta.url)), [a.pod, b.pod]);
    for (const [i, p] of [a.pod, b.pod].entries()) {
      const ip = JSON.parse((await runArgv(['ip', '-n', p.netns, '-j', 'link', 'show', p.dev])).stdout)[0];
      expect(ip.address).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(shown[i]).toEqual({ netns: p.netns, ifname: p.dev, ifindex: ip.ifindex, address: ip.address });
    }
  });
});
