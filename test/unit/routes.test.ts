import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeBatch, peerBatch, wireConf } from '../../src/backends/wiring.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import type { Lab } from '../../src/topology/model.js';
import { planRoutes, type Route } from '../../src/topology/routes.js';

function lab(text: string): Lab {
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  const r = resolve(p.value);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** A lab of these nodes (each with one pod) and links; `up` names the nodes with an uplink. */
const topo = (nodes: string[], links: [string, string][], up: string[] = [], families = '[ipv4, ipv6]') =>
  lab(
    `name: t\nfamilies: ${families}\nnodes:\n` +
      nodes.map((n) => `  - name: ${n}\n    pods: [{ name: p${n} }]\n` + (up.includes(n) ? `    uplink: { peer: w${n} }\n` : '')).join('') +
      (links.length ? `links:\n${links.map(([a, b]) => `  - endpoints: [${a}, ${b}]\n`).join('')}` : ''),
  );

/** prefix -> "dev via" of one namespace's routes. */
const table = (routes: Route[]) => Object.fromEntries(routes.map((r) => [r.prefix, `${r.dev} ${r.via}`]));

describe('routing plan', () => {
  it('line: the far node is reached through the middle, both families, pods and peers', () => {
    const l = topo(
      ['left', 'mid', 'right'],
      [
        ['left', 'mid'],
        ['mid', 'right'],
      ],
      ['left', 'right'],
    );
    const plan = planRoutes(l);
    // Link 1 is left-mid (10.254.1.0/30: left .1, mid .2), link 2 mid-right (10.254.2.0/30).
    expect(table(plan.nodes.left)).toEqual({
      '0.0.0.0/0': 'uplink 10.255.1.2',
      '::/0': 'uplink fd00:255:1::2',
      '10.244.2.0/24': 'n-mid 10.254.1.2',
      'fd00:244:2::/64': 'n-mid fd00:254:1::2',
      '10.244.3.0/24': 'n-mid 10.254.1.2',
      '10.255.3.0/30': 'n-mid 10.254.1.2',
      'fd00:244:3::/64': 'n-mid fd00:254:1::2',
      'fd00:255:3::/64': 'n-mid fd00:254:1::2',
    });
    // The middle has no uplink, hence no default: everything in the lab is routed.
    expect(table(plan.nodes.mid)).toEqual({
      '10.244.1.0/24': 'n-left 10.254.1.1',
      '10.255.1.0/30': 'n-left 10.254.1.1',
      'fd00:244:1::/64': 'n-left fd00:254:1::1',
      'fd00:255:1::/64': 'n-left fd00:254:1::1',
      '10.244.3.0/24': 'n-right 10.254.2.2',
      '10.255.3.0/30': 'n-right 10.254.2.2',
      'fd00:244:3::/64': 'n-right fd00:254:2::2',
      'fd00:255:3::/64': 'n-right fd00:254:2::2',
    });
    expect(table(plan.nodes.right)['10.244.1.0/24']).toBe('n-mid 10.254.2.1');
    // The peer behind left: every pod prefix and the other peer's prefix, through left; its own prefix is connected.
    expect(table(plan.peers.wleft)).toEqual({
      '10.244.1.0/24': 'eth0 10.255.1.1',
      'fd00:244:1::/64': 'eth0 fd00:255:1::1',
      '10.244.2.0/24': 'eth0 10.255.1.1',
      'fd00:244:2::/64': 'eth0 fd00:255:1::1',
      '10.244.3.0/24': 'eth0 10.255.1.1',
      '10.255.3.0/30': 'eth0 10.255.1.1',
      'fd00:244:3::/64': 'eth0 fd00:255:1::1',
      'fd00:255:3::/64': 'eth0 fd00:255:1::1',
    });
    expect(plan.parts).toEqual([['left', 'mid', 'right']]);
  });

  it('star: leaves reach each other through the hub', () => {
    const plan = planRoutes(
      topo(
        ['hub', 'a', 'b', 'c'],
        [
          ['hub', 'a'],
          ['hub', 'b'],
          ['c', 'hub'],
        ],
        [],
        '[ipv4]',
      ),
    );
    expect(table(plan.nodes.a)).toEqual({
      '10.244.1.0/24': 'n-hub 10.254.1.1',
      '10.244.3.0/24': 'n-hub 10.254.1.1',
      '10.244.4.0/24': 'n-hub 10.254.1.1',
    });
    // Link 3 is written [c, hub]: c is its a side (.1), the hub its b side (.2).
    expect(table(plan.nodes.c)['10.244.2.0/24']).toBe('n-hub 10.254.3.2');
    expect(table(plan.nodes.hub)).toEqual({
      '10.244.2.0/24': 'n-a 10.254.1.2',
      '10.244.3.0/24': 'n-b 10.254.2.2',
      '10.244.4.0/24': 'n-c 10.254.3.1',
    });
  });

  it('ring of four: the opposite node is two hops either way; the link listed first wins', () => {
    const links: [string, string][] = [
      ['n1', 'n2'],
      ['n2', 'n3'],
      ['n3', 'n4'],
      ['n4', 'n1'],
    ];
    const plan = planRoutes(topo(['n1', 'n2', 'n3', 'n4'], links, [], '[ipv4]'));
    // n1 -> n3: via n2 (link 1) or n4 (link 4): link 1 comes first.
    expect(table(plan.nodes.n1)['10.244.3.0/24']).toBe('n-n2 10.254.1.2');
    // n3 -> n1: via n2 (link 2) or n4 (link 3): link 2 comes first.
    expect(table(plan.nodes.n3)['10.244.1.0/24']).toBe('n-n2 10.254.2.1');
    // n2 -> n4: via n3 (link 2) or n1 (link 1): link 1 comes first.
    expect(table(plan.nodes.n2)['10.244.4.0/24']).toBe('n-n1 10.254.1.1');
    // Neighbours are direct either way.
    expect(table(plan.nodes.n1)['10.244.4.0/24']).toBe('n-n4 10.254.4.1');
    // Listing the links in another order changes the choice, and only by that order.
    const swapped = planRoutes(topo(['n1', 'n2', 'n3', 'n4'], [links[3], links[0], links[1], links[2]], [], '[ipv4]'));
    expect(table(swapped.nodes.n1)['10.244.3.0/24']).toBe('n-n4 10.254.1.1');
  });

  it('every hop gets closer: following the plan from any node reaches every pod prefix without a loop', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const l = topo(
      names,
      [
        ['a', 'b'],
        ['b', 'c'],
        ['c', 'd'],
        ['d', 'e'],
        ['e', 'f'],
        ['f', 'a'],
        ['b', 'e'],
      ],
      [],
      '[ipv4]',
    );
    const plan = planRoutes(l);
    const devTo = (from: string, dev: string) => l.links.find((k) => (k.a === from && k.devA === dev) || (k.b === from && k.devB === dev))!;
    let walks = 0;
    for (const src of names)
      for (const dst of l.nodes.filter((n) => n.name !== src)) {
        let at = src;
        const seen = [at];
        while (at !== dst.name) {
          const r = plan.nodes[at].find((x) => x.prefix === dst.podCidr4)!;
          const k = devTo(at, r.dev);
          at = k.a === at ? k.b : k.a;
          expect(seen, `${src} -> ${dst.name}`).not.toContain(at);
          seen.push(at);
        }
        expect(seen.length - 1).toBeLessThanOrEqual(3);
        walks++;
      }
    expect(walks).toBe(30);
  });

  it('disconnected parts: routes only within a part, and the parts are named', () => {
    const plan = planRoutes(
      topo(
        ['a', 'b', 'c', 'd'],
        [
          ['a', 'b'],
          ['c', 'd'],
        ],
        ['a'],
        '[ipv4]',
      ),
    );
    expect(plan.parts).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(Object.keys(table(plan.nodes.a))).toEqual(['0.0.0.0/0', '10.244.2.0/24']);
    expect(Object.keys(table(plan.nodes.c))).toEqual(['10.244.4.0/24']);
    // The peer behind a routes a's and b's pods, not c's or d's.
    expect(Object.keys(table(plan.peers.wa))).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
  });

  it('a single node: only its default through the uplink', () => {
    const plan = planRoutes(topo(['solo'], [], ['solo'], '[ipv6]'));
    expect(plan.nodes.solo).toEqual([{ prefix: '::/0', via: 'fd00:255:1::2', dev: 'uplink' }]);
    expect(table(plan.peers.wsolo)).toEqual({ 'fd00:244:1::/64': 'eth0 fd00:255:1::1' });
  });

  it('the wiring emits the plan after the devices are up, and no default through a link', () => {
    const l = topo(
      ['left', 'mid', 'right'],
      [
        ['left', 'mid'],
        ['mid', 'right'],
      ],
      ['left'],
      '[ipv4]',
    );
    const mid = nodeBatch(l, l.nodes[1], 'veth').trimEnd().split('\n');
    expect(mid.filter((x) => x.startsWith('route add 10.244'))).toEqual([
      'route add 10.244.2.2/32 dev lxc-pmid',
      'route add 10.244.1.0/24 via 10.254.1.1 dev n-left',
      'route add 10.244.3.0/24 via 10.254.2.2 dev n-right',
    ]);
    expect(mid.some((x) => /route add (default|0\.0\.0\.0\/0)/.test(x))).toBe(false);
    const lastUp = mid.findLastIndex((x) => / up$/.test(x));
    expect(mid.findIndex((x) => x.includes(' via '))).toBeGreaterThan(lastUp);
    expect(peerBatch(l, l.nodes[0])).toContain('route add 10.244.3.0/24 via 10.255.1.1 dev eth0');
  });
});

describe('one nsconf process per node', () => {
  it('enters the node, then each pod, then the peer, and carries the node routes and the peer routes', () => {
    const l = topo(['left', 'right'], [['left', 'right']], ['left'], '[ipv4]');
    const conf = wireConf(l, l.nodes[0], 'veth').trimEnd().split('\n');
    const entered = conf.filter((x) => x.startsWith('ns '));
    const left = l.nodes[0];
    const peer = l.peers.find((p) => p.node === 'left')!;
    expect(entered).toEqual([`ns ${left.netns}`, ...left.pods.map((p) => `ns ${p.netns}`), `ns ${peer.netns}`]);
    const inNode = conf.slice(0, conf.indexOf(entered[1]!));
    expect(inNode).toContain('route add 10.244.2.0/24 via 10.254.1.2 dev n-right');
    expect(conf.slice(conf.indexOf(`ns ${peer.netns}`))).toContain('route add 10.244.2.0/24 via 10.255.1.1 dev eth0');
    // Only nsconf's own words: nothing iproute2-only slipped through.
    expect(conf.filter((x) => x.startsWith('link set'))).toEqual([]);
  });
});

describe('shipped three-node topologies', () => {
  it('are valid, one connected line, and the same lab but for the backend', () => {
    const read = (f: string) => readFileSync(new URL(`../../topologies/${f}.yaml`, import.meta.url), 'utf8');
    const [local, vm] = [lab(read('three-node')), lab(read('vm-three-node'))];
    expect(planRoutes(local).parts).toEqual([['left', 'mid', 'right']]);
    expect(vm.backend).toBe('qemu');
    expect(planRoutes(vm)).toEqual(planRoutes(local));
    expect(local.nodes.map((n) => [n.name, n.pods.length, n.uplink?.rate ?? (n.uplink ? 'no rate' : '-')])).toEqual([
      ['left', 2, '200mbit'],
      ['mid', 1, '-'],
      ['right', 2, 'no rate'],
    ]);
  });
});
