import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const base = `name: s1
families: [ipv4, ipv6]
nodes:
  - name: n1
    pods:
      - name: client
      - name: web
  - name: n2
    pods:
      - name: web
      - name: db
services:
`;

const load = (services: string, head = base) => {
  const p = parseTopology(head + services, 'lab.yaml');
  return p.ok ? resolve(p.value) : p;
};
const errors = (services: string, head = base) => {
  const r = load(services, head);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.line}:${e.path}: ${e.message}`);
};

describe('services in the topology file', () => {
  it('resolves ports, backends by pod and node/pod, weights, affinity and the kubeProxy default', () => {
    const r = load(`  - name: echo
    clusterIP: 10.96.0.10
    clusterIP6: fd00:96::000a
    ports: [{ port: 80, targetPort: 8080 }, { port: 53, protocol: UDP, nodePort: 30053 }]
    sessionAffinity: { timeoutSeconds: 30 }
    backends: [n1/web, { pod: db, weight: 3 }]
`);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.services).toEqual([
      {
        name: 'echo',
        ipv4: '10.96.0.10',
        ipv6: 'fd00:96::a',
        ports: [
          { port: 80, protocol: 'TCP', targetPort: 8080, nodePort: undefined },
          { port: 53, protocol: 'UDP', targetPort: 53, nodePort: 30053 },
        ],
        affinitySeconds: 30,
        backends: [
          { node: 'n1', pod: 'web', weight: 1 },
          { node: 'n2', pod: 'db', weight: 3 },
        ],
      },
    ]);
    expect(r.value.nodes[0].datapath.kubeProxy).toBe('bpf');
  });

  it('refuses a backend naming a missing pod, with its line and the known pods', () => {
    const [e] = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 80 }]
    backends: [nope]
`);
    expect(e).toMatch(/^16:services\[0\].backends\[0\]: unknown pod 'nope'; pods are: n1\/client, n1\/web, n2\/web, n2\/db/);
  });

  it('refuses a pod name found on two nodes unless written node/pod', () => {
    const [e] = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 80 }]
    backends: [web]
`);
    expect(e).toMatch(/^16:services\[0\].backends\[0\]: pod 'web' is on several nodes \(n1, n2\): write node\/pod/);
  });

  it('refuses a duplicate ClusterIP:port/protocol across services, naming the first', () => {
    const es = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 80 }]
  - name: b
    clusterIP: 10.96.0.1
    ports: [{ port: 81 }, { port: 80 }]
`);
    expect(es).toHaveLength(1);
    expect(es[0]).toMatch(
      /^18:services\[1\].ports\[1\]: 10\.96\.0\.1:80\/TCP is already a frontend \(first at services\[0\]\.ports\[0\]\)/,
    );
  });

  it('accepts the same ClusterIP:port for TCP and UDP', () => {
    const r = load(`  - name: dns
    clusterIP: 10.96.0.10
    ports: [{ port: 53 }, { port: 53, protocol: UDP }]
`);
    expect(r.ok).toBe(true);
  });

  it('refuses ports and nodePorts out of range', () => {
    const es = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 0 }, { port: 65536 }, { port: 80, targetPort: 70000 }, { port: 81, nodePort: 8080 }]
`);
    expect(es).toEqual([
      '15:services[0].ports[0].port: port is a whole number from 1 to 65535',
      '15:services[0].ports[1].port: port is a whole number from 1 to 65535',
      '15:services[0].ports[2].targetPort: targetPort is a whole number from 1 to 65535',
      '15:services[0].ports[3].nodePort: nodePort is a whole number from 30000 to 32767',
    ]);
  });

  it('refuses a ClusterIP inside a pod prefix (v4 and v6)', () => {
    const es = errors(`  - name: a
    clusterIP: 10.244.1.200
    clusterIP6: fd00:244:2::99
    ports: [{ port: 80 }]
`);
    expect(es).toEqual([
      '14:services[0].clusterIP: 10.244.1.200 is inside 10.244.1.0/24 (nodes[0].name): a ClusterIP is a virtual address outside every lab prefix',
      '15:services[0].clusterIP6: fd00:244:2::99 is inside fd00:244:2::/64 (nodes[1].name): a ClusterIP is a virtual address outside every lab prefix',
    ]);
  });

  it('refuses a service without a ClusterIP, and a ClusterIP of a family the lab does not use', () => {
    const head = base.replace('families: [ipv4, ipv6]', 'families: [ipv4]');
    const es = errors(
      `  - name: a
    ports: [{ port: 80 }]
  - name: b
    clusterIP6: fd00:96::1
    ports: [{ port: 80 }]
`,
      head,
    );
    expect(es[0]).toMatch(/^13:services\[0\]: a service needs a clusterIP, a clusterIP6, or both/);
    expect(es[1]).toMatch(/^16:services\[1\].clusterIP6: ipv6 is set but families is \[ipv4\]/);
  });

  it('refuses a duplicate service name, a backend listed twice, a nodePort used twice, an unknown protocol', () => {
    const es = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 80, nodePort: 30080 }]
    backends: [client, n1/client]
  - name: a
    clusterIP: 10.96.0.2
    ports: [{ port: 80, nodePort: 30080 }, { port: 81, protocol: SCTP }]
`);
    expect(es).toEqual(["19:services[1].ports[1].protocol: unknown protocol 'SCTP'; protocols are: TCP, UDP"]);
    const es2 = errors(`  - name: a
    clusterIP: 10.96.0.1
    ports: [{ port: 80, nodePort: 30080 }]
    backends: [client, n1/client]
  - name: a
    clusterIP: 10.96.0.2
    ports: [{ port: 80, nodePort: 30080 }]
`);
    expect(es2).toEqual([
      '16:services[0].backends[1]: backend n1/client is listed twice',
      "17:services[1].name: duplicate service name 'a' (first at services[0])",
      '19:services[1].ports[0].nodePort: nodePort 30080/TCP is used twice (first at services[0].ports[0].nodePort)',
    ]);
  });

  it('refuses kubeProxy iptables with BPF host routing, at the field that set it', () => {
    const head = base.replace('nodes:\n  - name: n1\n', 'nodes:\n  - name: n1\n    datapath: { kubeProxy: iptables }\n');
    const es = errors('  []\n'.replace('  []\n', ''), head.replace('services:\n', ''));
    expect(es).toHaveLength(1);
    expect(es[0]).toMatch(/^5:nodes\[0\]\.datapath\.kubeProxy: kubeProxy iptables needs hostRouting legacy on node 'n1'/);
    const ok = load('', head.replace('{ kubeProxy: iptables }', '{ kubeProxy: iptables, hostRouting: legacy }').replace('services:\n', ''));
    expect(ok.ok).toBe(true);
  });
});
