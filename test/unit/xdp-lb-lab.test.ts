import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { judgeXlReachable, type XlReachRun } from '../../src/checks/xdp-lb.js';
import { lbNodePlan, xdpLbInputs } from '../../src/datapath/xdp-lb/feature.js';
import { parseAttempts, type SvcAttempt } from '../../src/measure/services.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const head = (lbNode = 'true', uplink = '    uplink: { peer: c1 }\n') => `name: x1
families: [ipv4]
nodes:
  - name: lb1
    loadBalancer: ${lbNode}
${uplink}  - name: w1
    pods: [{ name: web1 }, { name: web2 }]
links:
  - endpoints: [lb1, w1]
`;
const svc = (lb: string, backends = '[web1, { pod: web2, weight: 0 }]', extra = '') => `${extra}services:
  - name: web
    clusterIP: 10.96.0.10
    ports: [{ port: 80, targetPort: 8080 }, { port: 53, protocol: UDP }]
    backends: ${backends}
    loadBalancer: ${lb}
`;
const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  return p.ok ? resolve(p.value) : p;
};
const errors = (text: string) => {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map((e) => `${e.line}:${e.path}: ${e.message}`);
};

describe('services[].loadBalancer in the topology file', () => {
  it('resolves the VIP, mode, LB nodes, weight 0 and the Maglev size', () => {
    const r = load(head() + svc('{ vip: 172.16.0.10 }', undefined, 'maglev: { tableSize: 1021 }\n'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.services[0].loadBalancer).toEqual({ vip: '172.16.0.10', mode: 'snat' });
    expect(r.value.services[0].backends.map((b) => b.weight)).toEqual([1, 0]);
    expect(r.value.nodes.map((n) => n.loadBalancer)).toEqual([true, undefined]);
    expect(r.value.maglevSize).toBe(1021);
  });
  it('refuses DSR to a pod without BPF host routing or on an LB node, a VIP inside a lab prefix, an LB node without an uplink, no LB node, a bad M', () => {
    expect(load(head() + svc('{ vip: 172.16.0.10, mode: dsr }')).ok).toBe(true);
    expect(errors(head() + svc('{ vip: 172.16.0.10, mode: dsr }', undefined, 'datapath: { hostRouting: legacy }\n'))).toEqual([
      expect.stringMatching(/^16:services\[0\]\.backends\[0\]: dsr to pod w1\/web1 needs hostRouting: bpf on node 'w1'/),
      expect.stringMatching(/^16:services\[0\]\.backends\[1\]\.pod: dsr to pod w1\/web2 needs hostRouting: bpf/),
    ]);
    const lbPods = head().replace('    uplink: { peer: c1 }\n', '    uplink: { peer: c1 }\n    pods: [{ name: lbpod }]\n');
    expect(errors(lbPods + svc('{ vip: 172.16.0.10, mode: dsr }', '[lbpod, web1]'))).toEqual([
      expect.stringMatching(/services\[0\]\.backends\[0\]: dsr to pod lb1\/lbpod on a loadBalancer node is not supported/),
    ]);
    expect(errors(head() + svc('{ vip: 10.244.1.7 }'))).toEqual([
      expect.stringMatching(/services\[0\]\.loadBalancer\.vip: 10\.244\.1\.7 is inside/),
    ]);
    expect(errors(head('true', '') + svc('{ vip: 172.16.0.10 }'))).toEqual([
      expect.stringMatching(/^5:nodes\[0\]\.loadBalancer: node 'lb1' serves load-balancer VIPs on its uplink/),
    ]);
    expect(errors(head('false') + svc('{ vip: 172.16.0.10 }'))).toEqual([expect.stringMatching(/no node has loadBalancer: true/)]);
    expect(errors(head() + svc('{ vip: 172.16.0.10 }', undefined, 'maglev: { tableSize: 1000 }\n'))).toEqual([
      expect.stringMatching(/maglev\.tableSize: tableSize is one of Cilium's Maglev sizes: 251, 509/),
    ]);
  });
  it('plans the LB node: IPv4 frontends at the VIP, SNAT from the uplink address, weight-0 backends without a cell', () => {
    const r = load(head() + svc('{ vip: 172.16.0.10 }', undefined, 'maglev: { tableSize: 251 }\n'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const lab = r.value;
    const { frontends, backends } = xdpLbInputs(lab);
    expect(frontends.map((f) => `${f.lbVip}:${f.port}/${f.protocol} ${f.mode}`)).toEqual([
      '172.16.0.10:80/TCP snat',
      '172.16.0.10:53/UDP snat',
    ]);
    expect(backends).toHaveLength(4);
    const plan = lbNodePlan({ bpfDir: '/sys/fs/bpf/dpl/x1', lab }, lab.nodes[0]);
    const tables = [...plan.tables.values()];
    expect(tables).toHaveLength(2);
    const web2 = backends.filter((b) => b.addr === lab.nodes[1].pods[1].ipv4).map((b) => b.id);
    expect(web2).toHaveLength(2);
    for (const t of tables) {
      expect(t).toHaveLength(251);
      expect(t.filter((id) => web2.includes(id))).toEqual([]);
    }
    expect(plan.mapLines[0]).toContain(
      `value hex ${lab.nodes[0]
        .uplink!.node4!.addr.split('.')
        .map((x) => Number(x).toString(16).padStart(2, '0'))
        .join(' ')}`,
    );
  });
  it('ships topologies/xdp-lb.yaml: two LB nodes, three backend pods over two nodes', () => {
    const r = load(readFileSync(new URL('../../topologies/xdp-lb.yaml', import.meta.url), 'utf8'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.nodes.filter((n) => n.loadBalancer).map((n) => n.name)).toEqual(['lb1', 'lb2']);
    expect(new Set(r.value.services[0].backends.map((b) => b.node)).size).toBe(2);
    expect(r.value.services[0].backends).toHaveLength(3);
  });
});

/** The client peer's address toward lb1, and lb1's uplink address (the SNAT source). */
const CLIENT = '10.255.1.2';
const LB = '10.255.1.1';
const ok = (reply: string, seen = LB, seenPort = 40000): SvcAttempt => ({
  i: 0,
  op: 'udp',
  errno: '',
  stage: 'done',
  us: 50,
  peer: '172.16.0.10',
  peerPort: 53,
  reply,
  seen,
  seenPort,
  localPort: 40000,
});
const run = (attempts: SvcAttempt[], mode: XlReachRun['mode'] = 'snat'): XlReachRun => ({
  node: 'lb1',
  frontend: `172.16.0.10:53/UDP (${mode})`,
  vip: '172.16.0.10',
  backends: ['w1/web1'],
  mode,
  client: CLIENT,
  snatAddr: LB,
  attempts,
});

describe('xdp-lb-reachable verdict', () => {
  it('passes when every attempt is answered from the VIP by a weighted backend', () => {
    expect(judgeXlReachable([run([ok('w1/web1'), ok('w1/web1')])]).status).toBe('pass');
  });
  it('fails on an errno, a reply from another address, or a backend outside the weighted set (weight 0)', () => {
    expect(judgeXlReachable([run([ok('w1/web1'), { ...ok(''), errno: 'ETIMEDOUT' }])]).reason).toMatch(/errno ETIMEDOUT/);
    expect(judgeXlReachable([run([{ ...ok('w1/web1'), peer: '10.244.1.2' }])]).reason).toMatch(/answered from 10.244.1.2/);
    const v = judgeXlReachable([run([ok('w1/web2')])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/answered by 'w1\/web2'/);
  });
  it('cannot establish anything without attempts', () => {
    expect(judgeXlReachable([]).status).toBe('error');
    expect(judgeXlReachable([run([])]).status).toBe('error');
  });
  it('passes when a SNAT pod saw the LB node and a DSR pod the client itself, port included', () => {
    const v = judgeXlReachable([run([ok('w1/web1')]), run([ok('w1/web1', CLIENT)], 'dsr')]);
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/DSR pods saw the client's own address and port, SNAT pods saw the LB node's address/);
  });
  it('fails when a SNAT pod saw the client itself, or another address than the LB node', () => {
    const own = judgeXlReachable([run([ok('w1/web1'), { ...ok('w1/web1', CLIENT), i: 1 }])]);
    expect(own.status).toBe('fail');
    expect(own.reason).toMatch(/#1 the pod saw 10.255.1.2:40000, the client's own address: not SNATed to 10.255.1.1/);
    const other = judgeXlReachable([run([ok('w1/web1', '10.0.1.1')])]);
    expect(other.status).toBe('fail');
    expect(other.reason).toMatch(/saw 10.0.1.1:40000, not the LB node's 10.255.1.1/);
  });
  it('fails when a DSR pod saw anything but the client: the LB node, another address, or another port', () => {
    for (const [seen, port] of [
      [LB, 40000],
      ['10.0.1.1', 40000],
      [CLIENT, 40001],
    ] as const) {
      const v = judgeXlReachable([run([ok('w1/web1', seen, port)], 'dsr')]);
      expect(v.status).toBe('fail');
      expect(v.reason).toContain(`the pod saw ${seen}:${port}, not the client's own 10.255.1.2:40000`);
    }
  });
  it('cannot judge the source when the answer did not carry it (or the client its port, in DSR)', () => {
    const { seen: _s, seenPort: _p, ...bare } = ok('w1/web1');
    expect(judgeXlReachable([run([bare])]).reason).toMatch(/could not establish.*did not say the source the pod saw/);
    const v = judgeXlReachable([run([{ ...ok('w1/web1', CLIENT), localPort: 0 }], 'dsr')]);
    expect(v.status).toBe('error');
    expect(v.reason).toMatch(/did not say its port/);
  });
  it('judges reachability before the source: an unanswered attempt fails as such', () => {
    const v = judgeXlReachable([run([{ ...ok('', ''), errno: 'ETIMEDOUT' }], 'dsr')]);
    expect(v.reason).toMatch(/errno ETIMEDOUT/);
  });
});

describe('svcprobe answer', () => {
  it("parses the source the server saw and the client socket's port beside the name, and lines without them", () => {
    const line =
      '{"i":3,"op":"tcp","errno":"","stage":"done","us":52,"peer":"172.16.0.12","peerPort":80,"reply":"w1/web1",' +
      '"seen":"10.255.1.2","seenPort":40000,"localPort":40000}';
    const [a] = parseAttempts(`${line}\n`);
    expect([a.reply, a.seen, a.seenPort, a.localPort]).toEqual(['w1/web1', '10.255.1.2', 40000, 40000]);
    const old = '{"i":0,"op":"udp","errno":"","stage":"done","us":9,"peer":"172.16.0.10","peerPort":53,"reply":"w1/web1"}';
    expect(parseAttempts(old)[0].seen).toBeUndefined();
  });
});
