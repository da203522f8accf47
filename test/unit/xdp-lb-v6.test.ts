import { describe, expect, it } from 'vitest';
import { dsrEntriesOf, lbNodePlan, vipRouteMtu, xdpLbInputs } from '../../src/datapath/xdp-lb/feature.js';
import { cfgValue } from '../../src/datapath/xdp-lb/maps.js';
import { lbHops, routeVipOnPeer, vipRouteArgv } from '../../src/datapath/xdp-lb/peer-route.js';
import type { Exec, ExecResult } from '../../src/exec/exec.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

/** Two LB nodes behind one client, a worker with two pods; `families` and the service's loadBalancer vary. */
const lab = (lb: string, families = '[ipv4, ipv6]', extra = '    clusterIP6: fd00:96::10\n') => `name: x6
families: ${families}
nodes:
  - name: lb1
    loadBalancer: true
    uplink: { peer: client }
  - name: lb2
    loadBalancer: true
    uplink: { peer: client }
  - name: w1
    pods: [{ name: web1 }, { name: web2 }]
links:
  - endpoints: [lb1, w1]
  - endpoints: [lb2, w1]
services:
  - name: web
    clusterIP: 10.96.0.10
${extra}    ports: [{ port: 80, targetPort: 8080 }, { port: 53, protocol: UDP }]
    backends: [web1, web2]
    loadBalancer: ${lb}
`;
const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  return p.ok ? resolve(p.value) : p;
};
const ok = (text: string) => {
  const r = load(text);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const errors = (text: string) => {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.line}:${e.path}: ${e.message}`);
};

describe('services[].loadBalancer.vip6', () => {
  it('resolves beside vip, in canonical form; a service may have only an IPv6 VIP', () => {
    expect(ok(lab("{ vip: 172.16.0.10, vip6: 'FD00:172:16:0::10' }")).services[0].loadBalancer).toEqual({
      vip: '172.16.0.10',
      vip6: 'fd00:172:16::10',
      mode: 'snat',
    });
    expect(ok(lab("{ vip6: 'fd00:172:16::10' }")).services[0].loadBalancer).toEqual({ vip6: 'fd00:172:16::10', mode: 'snat' });
  });

  it('refuses, at the field: no VIP at all, a vip6 inside a lab prefix, twice, outside families, without clusterIP6', () => {
    expect(errors(lab('{ mode: snat }'))).toEqual([
      expect.stringMatching(/^21:services\[0\]\.loadBalancer: a loadBalancer needs a vip, a vip6/),
    ]);
    expect(errors(lab("{ vip6: 'fd00:244:1::9' }"))).toEqual([
      expect.stringMatching(/^21:services\[0\]\.loadBalancer\.vip6: fd00:244:1::9 is inside fd00:244:1::\/64 \(nodes\[0\]\.name\)/),
    ]);
    const twice = `${lab("{ vip6: 'fd00:172:16::10' }")}  - name: web6
    clusterIP6: fd00:96::20
    ports: [{ port: 80 }]
    backends: [web1]
    loadBalancer: { vip6: 'fd00:172:16:0:0::10' }
`;
    expect(errors(twice)).toEqual([
      expect.stringMatching(
        /^26:services\[1\]\.loadBalancer\.vip6: VIP fd00:172:16:0:0::10 is already used \(first at services\[0\]\.loadBalancer\.vip6\)/,
      ),
    ]);
    expect(errors(lab("{ vip6: 'fd00:172:16::10' }", '[ipv4]', ''))).toEqual([
      expect.stringMatching(/^20:services\[0\]\.loadBalancer\.vip6: the vip6 is ipv6 but families is \[ipv4\]/),
      expect.stringMatching(/^20:services\[0\]\.loadBalancer\.vip6: a vip6 needs the service's clusterIP6/),
    ]);
    expect(errors(lab("{ vip: 172.16.0.10, vip6: 'fd00:172:16::10' }", '[ipv4, ipv6]', ''))).toEqual([
      expect.stringMatching(/^20:services\[0\]\.loadBalancer\.vip6: a vip6 needs the service's clusterIP6 \(the ipv6 frontends/),
    ]);
  });
});

describe('the LB node plan with an IPv6 VIP', () => {
  it('serves IPv6 frontends at vip6 with IPv6 pod backends, SNAT from the uplink IPv6 address', () => {
    const l = ok(lab("{ vip: 172.16.0.10, vip6: 'fd00:172:16::10' }"));
    const { frontends, backends } = xdpLbInputs(l);
    expect(frontends.map((f) => `${f.family} ${f.lbVip}:${f.port}/${f.protocol}`)).toEqual([
      'ipv4 172.16.0.10:80/TCP',
      'ipv4 172.16.0.10:53/UDP',
      'ipv6 fd00:172:16::10:80/TCP',
      'ipv6 fd00:172:16::10:53/UDP',
    ]);
    const pods6 = new Set(l.nodes[2].pods.map((p) => p.ipv6));
    const v6 = frontends.filter((f) => f.family === 'ipv6').flatMap((f) => f.backends.map((b) => backends.find((x) => x.id === b.id)!));
    expect(v6.map((b) => `${b.family} ${pods6.has(b.addr)}`)).toEqual(Array(4).fill('ipv6 true'));
    const lb1 = l.nodes[0];
    const plan = lbNodePlan({ bpfDir: '/sys/fs/bpf/dpl/x6', lab: l }, lb1);
    const cfg = cfgValue(lb1.uplink!.node4!.addr, lb1.uplink!.node6!.addr);
    expect(cfg).not.toBe(cfgValue(lb1.uplink!.node4!.addr));
    expect(plan.mapLines[0]).toMatch(new RegExp(`value hex ${cfg}$`));
    expect(lb1.uplink!.node6!.addr).toMatch(/^fd00:255:/);
    // An IPv6 VIP key: family AF_INET6 (10) first.
    const vipLines = plan.mapLines.filter((x) => x.includes('/xl_vips key hex 0a'));
    expect(vipLines).toHaveLength(3);
    expect(plan.tables.size).toBe(4);
  });

  it('routes an IPv6 VIP on the peer as a /128, ECMP over the LB nodes’ uplink IPv6 addresses, with IPv6 L4 hashing', async () => {
    const l = ok(lab("{ vip: 172.16.0.10, vip6: 'fd00:172:16::10' }"));
    const hops = lbHops(l, 'client', 'ipv6');
    expect(hops).toEqual([
      { via: l.nodes[0].uplink!.node6!.addr, dev: 'n-lb1' },
      { via: l.nodes[1].uplink!.node6!.addr, dev: 'n-lb2' },
    ]);
    expect(vipRouteArgv({ vip: 'fd00:172:16::10' }, hops).slice(0, 5)).toEqual([
      'ip',
      'route',
      'replace',
      'fd00:172:16::10/128',
      'nexthop',
    ]);
    const ran: string[] = [];
    const exec = {
      where: 'peer',
      hostPids: true,
      async run(argv: readonly string[]) {
        ran.push(argv.join(' '));
        return { code: 0, stdout: '[]', stderr: '' } as ExecResult;
      },
    } as unknown as Exec;
    await routeVipOnPeer(l, l.nodes[1], exec, 'dpl-x6.client', [{ vip: '172.16.0.10' }, { vip: 'fd00:172:16::10' }]);
    expect(ran).toEqual([
      'sysctl -qw net.ipv4.fib_multipath_hash_policy=1',
      'sysctl -qw net.ipv6.fib_multipath_hash_policy=1',
      'ip -j route show 172.16.0.10/32',
      `ip route replace 172.16.0.10/32 via ${l.nodes[1].uplink!.node4!.addr} dev n-lb2`,
      // iproute2 lists IPv4 routes unless told the family.
      'ip -j -6 route show fd00:172:16::10/128',
      `ip route replace fd00:172:16::10/128 via ${l.nodes[1].uplink!.node6!.addr} dev n-lb2`,
    ]);
  });
});

describe('DSR with an IPv6 VIP', () => {
  it('gives the pods’ node xl_dsr entries of the IPv6 VIP to each local pod’s IPv6 address, and the client route room for 40 bytes', () => {
    const l = ok(lab("{ vip: 172.16.0.10, vip6: 'fd00:172:16::10', mode: dsr }"));
    const w1 = l.nodes[2];
    const [web1, web2] = w1.pods;
    const labels = dsrEntriesOf(l, w1).map((e) => e.label);
    expect(labels).toEqual([
      `172.16.0.10:80/TCP -> ${web1.ipv4}:8080`,
      `172.16.0.10:80/TCP -> ${web2.ipv4}:8080`,
      `172.16.0.10:53/UDP -> ${web1.ipv4}:53`,
      `172.16.0.10:53/UDP -> ${web2.ipv4}:53`,
      `[fd00:172:16::10]:80/TCP -> [${web1.ipv6}]:8080`,
      `[fd00:172:16::10]:80/TCP -> [${web2.ipv6}]:8080`,
      `[fd00:172:16::10]:53/UDP -> [${web1.ipv6}]:53`,
      `[fd00:172:16::10]:53/UDP -> [${web2.ipv6}]:53`,
    ]);
    // struct xl_dsr_key: AF_INET6 (10), TCP, port 80, then the VIP's 16 bytes.
    expect(dsrEntriesOf(l, w1)[4].key.startsWith('0a 06 00 50 fd 00 01 72 00 16')).toBe(true);
    // RFC 2473's 40-byte header; IPv6's TCP MSS is the MTU - 60 (ip6_default_advmss).
    expect(vipRouteMtu('dsr', 'ipv6')).toEqual(['mtu', '1460', 'advmss', '1400']);
  });
});
