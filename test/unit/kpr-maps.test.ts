import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kubeProxyRules, probability, chainHash } from '../../src/datapath/kpr/iptables.js';
import { backendEntry, frontendLines, svcEntry, svcKey } from '../../src/datapath/kpr/maps.js';
import { servicePlan, slotsOf } from '../../src/datapath/kpr/plan.js';
import type { Lab } from '../../src/topology/model.js';

const OBJ = 'build/bpf/sock_lb.o';
const bytes = (hex: string) => hex.split(' ').length;

const lab: Pick<Lab, 'services' | 'nodes'> = {
  nodes: [
    {
      name: 'n1',
      netns: 'x',
      datapath: { hostRouting: 'bpf', bigTcp: true, podDevice: 'auto', kubeProxy: 'bpf' },
      pods: [
        { name: 'a', node: 'n1', netns: 'x', hostDev: 'lxc-a', dev: 'eth0', ipv4: '10.244.1.2', ipv6: 'fd00:244:1::2' },
        { name: 'b', node: 'n1', netns: 'x', hostDev: 'lxc-b', dev: 'eth0', ipv4: '10.244.1.3' },
      ],
    },
  ],
  services: [
    {
      name: 'web',
      ipv4: '10.96.0.10',
      ipv6: 'fd00:96::10',
      ports: [{ port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
      backends: [
        { node: 'n1', pod: 'a', weight: 1 },
        { node: 'n1', pod: 'b', weight: 3 },
      ],
    },
    { name: 'empty', ipv4: '10.96.0.12', ports: [{ port: 53, protocol: 'UDP', targetPort: 53 }], backends: [] },
  ],
};

describe('socket-LB map entries (bpf/include/sock_lb.h)', () => {
  it('keys and values have the sizes the object file declares in its BTF', () => {
    if (!existsSync(OBJ)) throw new Error(`${OBJ} is not built (bpf/build.sh)`);
    const raw = spawnSync('bpftool', ['btf', 'dump', 'file', OBJ, 'format', 'raw'], { encoding: 'utf8' }).stdout;
    const size = (name: string) => Number(new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(raw)?.[1]);
    const f = { vip: '10.96.0.10', port: 80, protocol: 'TCP' as const, family: 'ipv4' as const, svcId: 1, affinitySeconds: 0 };
    expect(bytes(svcKey(f))).toBe(size('svc_key'));
    expect(bytes(svcEntry(f, 2, 1))).toBe(size('svc_value'));
    expect(bytes(backendEntry({ id: 1, addr: '10.244.1.2', port: 8080, family: 'ipv4' }).value)).toBe(size('backend'));
  });

  it('puts address and port in network order, slot and revision in host order', () => {
    const f = { vip: 'fd00:96::10', port: 80, protocol: 'UDP' as const, family: 'ipv6' as const };
    expect(svcKey(f, 2, 0x0102)).toBe('fd 00 00 96 00 00 00 00 00 00 00 00 00 00 00 10 00 50 11 0a 02 00 02 01');
    expect(backendEntry({ id: 258, addr: '10.244.1.2', port: 8080, family: 'ipv4' })).toEqual({
      key: '02 01 00 00',
      value: '0a f4 01 02 00 00 00 00 00 00 00 00 00 00 00 00 1f 90 02 00',
    });
  });

  it('plans a frontend per family and port, weights as repeated slots, a pod without the family left out', () => {
    const plan = servicePlan(lab);
    expect(plan.frontends.map((f) => [f.service, f.family, f.vip, f.backends.length])).toEqual([
      ['web', 'ipv4', '10.96.0.10', 2],
      ['web', 'ipv6', 'fd00:96::10', 1],
      ['empty', 'ipv4', '10.96.0.12', 0],
    ]);
    expect(slotsOf(plan.frontends[0])).toEqual([1, 2, 2, 2]);
    expect(plan.nodePorts?.get(1)).toBe(30080);
  });

  it('an update writes the new revision, flips the service entry, then deletes the old slots', () => {
    const f = servicePlan(lab).frontends[0];
    const lines = frontendLines({ services: '/m/services' }, f, 3, { rev: 2, slots: 2 });
    const flip = lines.findIndex((l) => l.includes(`key hex ${svcKey(f)} `));
    expect(lines.slice(0, flip).every((l) => l.startsWith('map update') && l.includes(' 03 00 value'))).toBe(true);
    expect(flip).toBe(4);
    expect(lines[flip]).toContain(`value hex ${svcEntry(f, 4, 3)}`);
    expect(lines.slice(flip + 1)).toEqual([
      `map delete pinned /m/services key hex ${svcKey(f, 1, 2)}`,
      `map delete pinned /m/services key hex ${svcKey(f, 2, 2)}`,
    ]);
  });
});

describe("kube-proxy's iptables rules", () => {
  it('hashes chain names like kube-proxy (base32 of sha256, 16 characters)', () => {
    expect(chainHash('default/web:80TCP')).toMatch(/^[A-Z2-7]{16}$/);
    expect(chainHash('a')).not.toBe(chainHash('b'));
  });

  it('gives each endpoint its share through the statistic match, the last without one', () => {
    expect([0, 1, 2].map((i) => probability([1, 1, 1], i))).toEqual(['0.3333333333', '0.5000000000', '1.0000000000']);
    expect(probability([1, 3], 0)).toBe('0.2500000000');
    const rules = kubeProxyRules(servicePlan(lab), 'ipv4');
    const svc = `KUBE-SVC-${chainHash('default/web:80TCP')}`;
    expect(rules).toContain(
      `-A KUBE-SERVICES -m comment --comment "default/web:80 cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j ${svc}`,
    );
    const picks = rules.split('\n').filter((l) => l.startsWith(`-A ${svc} `));
    expect(picks).toHaveLength(2);
    expect(picks[0]).toContain('-m statistic --mode random --probability 0.2500000000');
    expect(picks[1]).not.toContain('statistic');
    expect(rules).toContain('-j DNAT --to-destination 10.244.1.3:8080');
    expect(rules).toContain('-A KUBE-NODEPORTS -m comment --comment "default/web:80" -m tcp -p tcp --dport 30080');
    expect(rules).toMatch(/"default\/empty:53 has no endpoints" -m udp -p udp -d 10\.96\.0\.12\/32 --dport 53 -j REJECT/);
  });

  it('writes IPv6 endpoints in brackets and no IPv4 frontend into the IPv6 rules', () => {
    const rules = kubeProxyRules(servicePlan(lab), 'ipv6');
    expect(rules).toContain('-j DNAT --to-destination [fd00:244:1::2]:8080');
    expect(rules).not.toContain('10.96.0.');
  });
});
