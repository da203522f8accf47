import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { cli, labProcesses, residue, topo } from './helpers.js';

/**
 * topologies/xdp-lb.yaml as a user runs it: `lab up` puts xl_xdp natively (not generic XDP) on both LB nodes'
 * uplinks, the one client peer reaches the VIP through both (ECMP), `lab check` passes xdp-lb-reachable, xdp-lb-in-xdp, maglev-balance,
 * xdp-lb-weight-zero and maglev-consistency, `lab down` leaves no namespace, pin or process.
 */
const LAB = 'x2lb';
const SVCPROBE = fileURLToPath(new URL('../../build/bpf/svcprobe', import.meta.url));
const text = readFileSync(new URL('../../topologies/xdp-lb.yaml', import.meta.url), 'utf8').replace(/^name: xdp-lb$/m, `name: ${LAB}`);

interface Report {
  checks: { id: string; status: string; reason: string; metrics: Record<string, unknown>; evidence: string[] }[];
}

describe('lab: XDP load balancer (topologies/xdp-lb.yaml)', () => {
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
  });

  it('attaches natively on the LB uplinks, passes its checks, and leaves nothing behind', async () => {
    const up = await cli(['up', topo(text), '-q']);
    expect(up.code, up.stderr).toBe(0);
    for (const node of ['lb1', 'lb2']) {
      const r = await runArgv(['ip', '-n', `dpl-${LAB}.${node}`, '-j', '-d', 'link', 'show']);
      const links = JSON.parse(r.stdout) as { ifname: string; xdp?: { mode: number; prog?: { name: string } } }[];
      // XDP_ATTACHED_DRV = 1 (include/uapi/linux/if_link.h): native, not generic (2).
      const xdp = links.filter((l) => l.xdp).map((l) => `${l.ifname}:${l.xdp!.mode}:${l.xdp!.prog?.name}`);
      expect(xdp).toEqual(['uplink:1:xl_xdp']);
    }
    // One client behind both LB nodes: its VIP route is ECMP over them, hashed on L4, so 40 new TCP flows (fresh source
    // ports) spread over lb1 and lb2; each is answered from the VIP (a RST from the pod's closed port: the round trip),
    // and each LB node's xl_xdp counted its share.
    const route = await runArgv(['ip', '-n', `dpl-${LAB}.client`, '-j', 'route', 'show', '172.16.0.10/32']);
    const hops = (JSON.parse(route.stdout) as { nexthops?: { dev: string }[] }[])[0]?.nexthops?.map((h) => h.dev);
    expect(hops).toEqual(['n-lb1', 'n-lb2']);
    // The IPv6 VIP likewise (iproute2 lists IPv4 routes unless told -6).
    const route6 = await runArgv(['ip', '-n', `dpl-${LAB}.client`, '-6', '-j', 'route', 'show', 'fd00:172:16::10/128']);
    expect((JSON.parse(route6.stdout) as { nexthops?: { dev: string }[] }[])[0]?.nexthops?.map((h) => h.dev)).toEqual(['n-lb1', 'n-lb2']);
    const vipPackets = async () => {
      const st = JSON.parse((await cli(['status', LAB, '--json'])).stdout) as {
        xdpLb: Record<string, { vips: { name: string; packets: number }[] }>;
      };
      return ['lb1', 'lb2'].map((n) => st.xdpLb[n].vips.find((v) => v.name === '172.16.0.10:80/TCP')!.packets);
    };
    const [b1, b2] = await vipPackets();
    const probe = await runArgv(['ip', 'netns', 'exec', `dpl-${LAB}.client`, SVCPROBE, 'tcp', '172.16.0.10', '80', '40', '1000']);
    const attempts = probe.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { errno: string; stage: string });
    expect(attempts.map((a) => `${a.stage}:${a.errno}`)).toEqual(Array(40).fill('connect:ECONNREFUSED'));
    const [a1, a2] = await vipPackets();
    expect(a1 - b1 + (a2 - b2)).toBe(40);
    expect(a1 - b1).toBeGreaterThan(0);
    expect(a2 - b2).toBeGreaterThan(0);
    const dir = `/tmp/dpl-${LAB}`;
    const chk = await cli([
      'check',
      LAB,
      '-q',
      '--only',
      'xdp-lb-reachable,xdp-lb-in-xdp,maglev-balance,xdp-lb-weight-zero,maglev-consistency',
      '--report-dir',
      dir,
    ]);
    const rep = JSON.parse(readFileSync(`${dir}/report.json`, 'utf8')) as Report;
    const by = (id: string) => rep.checks.find((c) => c.id === id);
    expect(by('xdp-lb-reachable')?.status, by('xdp-lb-reachable')?.reason).toBe('pass');
    expect(by('xdp-lb-in-xdp')?.status, `${by('xdp-lb-in-xdp')?.reason}\n${by('xdp-lb-in-xdp')?.evidence.join('\n')}`).toBe('pass');
    for (const id of ['maglev-balance', 'xdp-lb-weight-zero', 'maglev-consistency'])
      expect(by(id)?.status, `${id}: ${by(id)?.reason}`).toBe('pass');
    expect(chk.code, chk.stderr).toBe(0);
    // Per LB node, one IPv4 and one IPv6 VIP, each judged by its family's stack counter.
    const runs = (by('xdp-lb-in-xdp')!.metrics.runs as { node: string; frontend: string; stackCounter: string }[]).map(
      (r) => `${r.node} ${r.frontend} ${r.stackCounter}`,
    );
    expect(runs).toEqual([
      'lb1 172.16.0.10:53/UDP (snat) Ip InReceives',
      'lb1 [fd00:172:16::10]:53/UDP (snat) Ip6InReceives',
      'lb2 172.16.0.10:53/UDP (snat) Ip InReceives',
      'lb2 [fd00:172:16::10]:53/UDP (snat) Ip6InReceives',
    ]);
    // A live change reaches the XDP tables: web2 removed from `web` with `lab svc` owns no cell on either LB node
    // (maglev-balance compares the kernel's tables with the new plan) and answers no client (xdp-lb-reachable).
    const del = await cli(['svc', 'backend', 'del', LAB, 'web', 'web2', '-q']);
    expect(del.code, del.stderr).toBe(0);
    const dir2 = `/tmp/dpl-${LAB}-after`;
    await cli(['check', LAB, '-q', '--only', 'xdp-lb-reachable,maglev-balance', '--report-dir', dir2]);
    const after = JSON.parse(readFileSync(`${dir2}/report.json`, 'utf8')) as Report;
    for (const c of after.checks) expect(c.status, `${c.id} after lab svc: ${c.reason}`).toBe('pass');
    const cells = (after.checks.find((c) => c.id === 'maglev-balance')!.metrics.tables as { cells: Record<string, number> }[]).map((t) =>
      Object.keys(t.cells).sort(),
    );
    // Both LB nodes, the IPv4 and the IPv6 VIP.
    expect(cells).toEqual(Array(4).fill(['w1/web1', 'w2/web3']));
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
    expect(await labProcesses(LAB, 'svcprobe')).toEqual([]);
  }, 90_000);
});
