import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { namespacesOf } from '../../src/backends/namespaces.js';
import { peerBatch, provisionBatch, wireConf } from '../../src/backends/wiring.js';
import { hopsShown, lbHops, routeVipOnPeer, vipRouteArgv } from '../../src/datapath/xdp-lb/peer-route.js';
import type { Exec, ExecResult } from '../../src/exec/exec.js';
import { formatIssue } from '../../src/errors.js';
import { loadTopologyFile, parseTopology } from '../../src/topology/loader.js';
import type { Lab } from '../../src/topology/model.js';
import { resolve } from '../../src/topology/resolver.js';
import { planRoutes, type Route } from '../../src/topology/routes.js';

const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return resolve(p.value);
};
const lab = (text: string): Lab => {
  const r = load(text);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

/** lb1 and lb2 behind one peer 'client' (lb2's uplink listed first in the file only when asked), a worker w behind both. */
const shared = (extra = '', families = '[ipv4, ipv6]') => `name: t
families: ${families}
${extra}nodes:
  - name: lb1
    uplink: { peer: client }
  - name: lb2
    uplink: { peer: client }
  - name: w
    pods: [{ name: web }]
  - name: far
    pods: [{ name: x }]
links:
  - endpoints: [lb1, w]
  - endpoints: [lb2, w]
  - endpoints: [lb2, far]
`;

const table = (routes: Route[]) => Object.fromEntries(routes.map((r) => [r.prefix, `${r.dev} ${r.via}`]));

describe('a peer behind several nodes', () => {
  it('is one namespace with a device per node, each uplink with its own subnet', () => {
    const l = lab(shared());
    const [lb1, lb2] = l.nodes;
    expect(lb1.uplink).toMatchObject({ peer: 'client', peerDev: 'n-lb1', node4: { addr: '10.255.1.1' }, peer4: { addr: '10.255.1.2' } });
    expect(lb2.uplink).toMatchObject({ peer: 'client', peerDev: 'n-lb2', node4: { addr: '10.255.2.1' }, peer4: { addr: '10.255.2.2' } });
    expect(l.peers).toEqual([
      { name: 'client', netns: 'dpl-t.client', node: 'lb1' },
      { name: 'client', netns: 'dpl-t.client', node: 'lb2' },
    ]);
    // Created once, with the first node it is behind.
    expect(namespacesOf(l, l.nodes).filter((n) => n === 'dpl-t.client')).toHaveLength(1);
    expect(namespacesOf(l, [lb2])).not.toContain('dpl-t.client');
    const batch = provisionBatch(l, [], () => 'veth', l.nodes);
    expect(batch).toContain('link add uplink netns dpl-t.lb1 type veth peer name n-lb1 netns dpl-t.client');
    expect(batch).toContain('link add uplink netns dpl-t.lb2 type veth peer name n-lb2 netns dpl-t.client');
  });

  it('routes each prefix through the nearest of its nodes (ties: the first listed); its nodes route its other addresses to it', () => {
    const l = lab(shared());
    const plan = planRoutes(l);
    // w (10.244.3.0/24) is one hop from lb1 and lb2: lb1 is listed first. far (10.244.4.0/24) is one hop from lb2 only.
    expect(table(plan.peers.client)).toEqual({
      '10.244.1.0/24': 'n-lb1 10.255.1.1',
      'fd00:244:1::/64': 'n-lb1 fd00:255:1::1',
      '10.244.2.0/24': 'n-lb2 10.255.2.1',
      'fd00:244:2::/64': 'n-lb2 fd00:255:2::1',
      '10.244.3.0/24': 'n-lb1 10.255.1.1',
      'fd00:244:3::/64': 'n-lb1 fd00:255:1::1',
      '10.244.4.0/24': 'n-lb2 10.255.2.1',
      'fd00:244:4::/64': 'n-lb2 fd00:255:2::1',
    });
    // Its own uplink prefixes are connected, never routed.
    expect(plan.peers.client.some((r) => r.prefix.startsWith('10.255.') || r.prefix.startsWith('fd00:255:'))).toBe(false);
    expect(table(plan.nodes.lb2)).toMatchObject({
      '0.0.0.0/0': 'uplink 10.255.2.2',
      '10.255.1.2/32': 'uplink 10.255.2.2',
      'fd00:255:1::2/128': 'uplink fd00:255:2::2',
      // lb1's own address stays on the links.
      '10.255.1.0/30': 'n-w 10.254.2.2',
    });
    expect(table(plan.nodes.lb1)['10.255.2.2/32']).toBe('uplink 10.255.1.2');
    // Nodes without the peer route its addresses by their prefixes, as before.
    expect(plan.nodes.w.some((r) => r.prefix.endsWith('/32'))).toBe(false);
  });

  it('wires each uplink with the routes through its device: the peer gets every route once', () => {
    const l = lab(shared());
    const [lb1, lb2] = l.nodes;
    const b1 = peerBatch(l, lb1);
    const b2 = peerBatch(l, lb2);
    expect(b1).toContain('addr add 10.255.1.2/30 dev n-lb1');
    expect(b1).not.toMatch(/dev n-lb2/);
    expect(b2).toContain('route add 10.244.4.0/24 via 10.255.2.1 dev n-lb2');
    expect(b2).not.toMatch(/dev n-lb1/);
    const routes = [...b1.split('\n'), ...b2.split('\n')].filter((x) => x.startsWith('route add'));
    expect(routes).toHaveLength(planRoutes(l).peers.client.length);
    expect(wireConf(l, lb2, 'veth')).toContain('ns dpl-t.client');
  });

  it('a peer of one node keeps eth0 and every route, as before', () => {
    const l = lab(shared().replace('  - name: lb2\n    uplink: { peer: client }', '  - name: lb2\n    uplink: { peer: other }'));
    expect(l.nodes[0].uplink?.peerDev).toBe('eth0');
    expect(peerBatch(l, l.nodes[0])).toContain('route add 10.244.3.0/24 via 10.255.1.1 dev eth0');
    expect(planRoutes(l).nodes.lb1.some((r) => r.prefix.endsWith('/32'))).toBe(false);
  });

  it('is refused with file:line where a node is a machine of its own (qemu, vagrant, ssh)', () => {
    for (const backend of ['qemu', 'vagrant']) {
      const r = load(shared(`backend: ${backend}\n`, '[ipv4]'));
      expect(r.ok).toBe(false);
      const e = !r.ok ? r.errors.map(formatIssue) : [];
      expect(e.find((x) => x.includes("peer 'client'"))).toBe(
        `lab.yaml:8:21: nodes[1].uplink.peer: peer 'client' is also behind the node at nodes[0].uplink.peer: a peer shared by nodes ` +
          `runs on the local backend only (the ${backend} backend puts each node's peer on the node's own machine); give this uplink its own peer`,
      );
    }
  });

  it('a peer named like a node is still refused', () => {
    const r = load(shared().replaceAll('peer: client', 'peer: w'));
    expect(!r.ok && r.errors.map(formatIssue)).toEqual([
      "lab.yaml:8:11: nodes[2].name: duplicate node name 'w' (first at nodes[0].uplink.peer)",
    ]);
  });

  it('topologies/xdp-lb.yaml: one client behind lb1 and lb2', async () => {
    const r = await loadTopologyFile(join(import.meta.dirname, '../../topologies/xdp-lb.yaml'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const l = resolve(r.value);
    if (!l.ok) throw new Error(JSON.stringify(l.errors));
    expect(new Set(l.value.peers.map((p) => p.netns))).toEqual(new Set(['dpl-xdp-lb.client']));
    expect(lbHops(l.value, 'client')).toEqual([
      { via: '10.255.1.1', dev: 'n-lb1' },
      { via: '10.255.2.1', dev: 'n-lb2' },
    ]);
  });
});

describe('the VIP route on a client peer', () => {
  it('is a plain route through one LB node, one ECMP route through several', () => {
    expect(vipRouteArgv({ vip: '172.16.0.10' }, [{ via: '10.255.1.1', dev: 'eth0' }])).toEqual([
      ...['ip', 'route', 'replace', '172.16.0.10/32', 'via', '10.255.1.1', 'dev', 'eth0'],
    ]);
    expect(
      vipRouteArgv({ vip: '172.16.0.10', attrs: ['mtu', '1480'] }, [
        { via: '10.255.1.1', dev: 'n-lb1' },
        { via: '10.255.2.1', dev: 'n-lb2' },
      ]).join(' '),
    ).toBe('ip route replace 172.16.0.10/32 mtu 1480 nexthop via 10.255.1.1 dev n-lb1 nexthop via 10.255.2.1 dev n-lb2');
  });

  it('reads the next hops of ip -j route show, plain or multipath, and of no route', () => {
    expect(hopsShown('[{"dst":"172.16.0.10","gateway":"10.255.1.1","dev":"n-lb1","flags":[]}]')).toEqual([
      { via: '10.255.1.1', dev: 'n-lb1' },
    ]);
    expect(
      hopsShown(
        '[{"dst":"172.16.0.10","flags":[],"nexthops":[{"gateway":"10.255.1.1","dev":"n-lb1","weight":1,"flags":[]},' +
          '{"gateway":"10.255.2.1","dev":"n-lb2","weight":1,"flags":[]}]}]',
      ),
    ).toEqual([
      { via: '10.255.1.1', dev: 'n-lb1' },
      { via: '10.255.2.1', dev: 'n-lb2' },
    ]);
    expect(hopsShown('[]')).toEqual([]);
    expect(hopsShown('')).toEqual([]);
  });
});

/**
 * The peer's route table as ip would keep it: `ip -j route show` answers from it, `ip route replace` sets it; each run
 * yields first, so two LB nodes deploying at once interleave as they would.
 */
function fakePeer() {
  const routes = new Map<string, { via: string; dev: string }[]>();
  const ran: string[] = [];
  const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' }) as ExecResult;
  const exec = {
    where: 'peer',
    hostPids: true,
    async run(argv: readonly string[]) {
      await new Promise((r) => setTimeout(r, 1));
      ran.push(argv.join(' '));
      if (argv[1] === '-j') {
        const hops = routes.get(argv[4]) ?? [];
        if (!hops.length) return ok('[]');
        const shown =
          hops.length === 1 ? { gateway: hops[0].via, dev: hops[0].dev } : { nexthops: hops.map((h) => ({ gateway: h.via, dev: h.dev })) };
        return ok(JSON.stringify([{ dst: argv[4], ...shown }]));
      }
      if (argv[2] === 'replace') {
        const rest = argv.slice(4);
        const hops = rest[0] === 'via' ? [{ via: rest[1], dev: rest[3] }] : [];
        for (let i = 0; rest[i] === 'nexthop'; i += 5) hops.push({ via: rest[i + 2], dev: rest[i + 4] });
        routes.set(argv[3], hops);
      }
      return ok();
    },
    start() {
      throw new Error('not used');
    },
  } as unknown as Exec;
  return { exec, routes, ran };
}

describe('routeVipOnPeer', () => {
  it('two LB nodes deploying at once leave one ECMP route over both, and L4 hashing on', async () => {
    const l = lab(
      shared('', '[ipv4]')
        .replace('uplink: { peer: client }', 'loadBalancer: true\n    uplink: { peer: client }')
        .replace('  - name: lb2\n    uplink', '  - name: lb2\n    loadBalancer: true\n    uplink'),
    );
    const [lb1, lb2] = l.nodes;
    const peer = fakePeer();
    await Promise.all([lb2, lb1].map((n) => routeVipOnPeer(l, n, peer.exec, 'dpl-t.client', [{ vip: '172.16.0.10' }])));
    expect(peer.routes.get('172.16.0.10/32')).toEqual([
      { via: '10.255.1.1', dev: 'n-lb1' },
      { via: '10.255.2.1', dev: 'n-lb2' },
    ]);
    expect(peer.ran.filter((c) => c.startsWith('sysctl'))).toEqual(Array(2).fill('sysctl -qw net.ipv4.fib_multipath_hash_policy=1'));
  });

  it('a peer of one LB node gets a plain route and no sysctl', async () => {
    const l = lab(
      shared('', '[ipv4]').replace(
        '  - name: lb1\n    uplink: { peer: client }',
        '  - name: lb1\n    loadBalancer: true\n    uplink: { peer: client }',
      ),
    );
    const peer = fakePeer();
    await routeVipOnPeer(l, l.nodes[0], peer.exec, 'dpl-t.client', [{ vip: '172.16.0.10' }]);
    expect(peer.ran).toEqual(['ip -j route show 172.16.0.10/32', 'ip route replace 172.16.0.10/32 via 10.255.1.1 dev n-lb1']);
  });
});
