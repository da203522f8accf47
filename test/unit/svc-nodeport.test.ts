import { describe, expect, it } from 'vitest';
import { judgeNodePort, type NodePortKernel, type NodePortRun } from '../../src/checks/svc-nodeport.js';
import { nodePortEntries, npEntry } from '../../src/datapath/kpr/nodeport.js';
import { servicePlan } from '../../src/datapath/kpr/plan.js';
import { parseSeen, type SvcAttempt } from '../../src/measure/services.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import { readFileSync } from 'node:fs';

const ans = (i: number, reply: string, peer = '10.255.1.1', peerPort = 30080): SvcAttempt => ({
  i,
  op: 'tcp',
  errno: '',
  stage: 'done',
  us: 80,
  peer,
  peerPort,
  reply,
});
const run = (attempts: SvcAttempt[], node = 'node1'): NodePortRun => ({
  node,
  client: 'ext1',
  clientAddr: '10.255.1.2',
  label: `web 10.255.1.1:30080/TCP`,
  addr: '10.255.1.1',
  nodePort: 30080,
  backends: [
    { name: 'node1/web1', local: true },
    { name: 'node2/web2', local: false },
  ],
  attempts,
});
const both = () => [ans(0, 'node1/web1'), ans(1, 'node2/web2'), ans(2, 'node2/web2')];
const kernel = (over: Partial<NodePortKernel> = {}): NodePortKernel => ({
  mode: 'bpf',
  nodeAddrs: { node1: ['10.255.1.1', '10.254.1.1'] },
  seen: { 'node1/web1': ['10.255.1.2'], 'node2/web2': ['10.255.1.1'] },
  bpf: { node1: { fwd: 12, rev: 10, local: 1, remote: 2, ct: 3 } },
  ...over,
});

describe('svc-nodeport verdict', () => {
  it('passes when local and remote backends answer from node:nodePort, the remote one saw the SNAT, counters moved', () => {
    const v = judgeNodePort([run(both())], kernel());
    expect(v.status, v.reason).toBe('pass');
    expect(v.reason).toContain('1 local/2 SNAT');
  });

  it('errors with no attempt at all', () => {
    expect(judgeNodePort([run([])], kernel()).status).toBe('error');
    expect(judgeNodePort([], kernel()).reason).toMatch(/could not establish/);
  });

  it('fails on a failed attempt, a reply from elsewhere, a stranger, a backend never picked', () => {
    const failed: SvcAttempt = { ...ans(3, ''), errno: 'ETIMEDOUT', stage: 'connect', peer: '', peerPort: 0 };
    expect(judgeNodePort([run([...both(), failed])], kernel()).reason).toMatch(/1\/4 failed/);
    expect(judgeNodePort([run([...both(), ans(3, 'node2/web2', '10.244.2.1', 8080)])], kernel()).reason).toMatch(
      /reply came from 10.244.2.1:8080/,
    );
    expect(judgeNodePort([run([...both(), ans(3, 'node9/x')])], kernel()).reason).toMatch(/node9\/x, not a backend/);
    expect(judgeNodePort([run([ans(0, 'node1/web1')])], kernel()).reason).toMatch(/node2\/web2 never picked/);
  });

  it('fails when the remote backend saw the client itself (no SNAT) or never the node', () => {
    const v = judgeNodePort([run(both())], kernel({ seen: { 'node1/web1': ['10.255.1.2'], 'node2/web2': ['10.255.1.2'] } }));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/never saw node1's address/);
    expect(v.reason).toMatch(/node2\/web2 saw 10.255.1.2/);
  });

  it('fails when the kernel counters did not move: bpf np_svc, local/SNAT split, conntrack; iptables KUBE-NODEPORTS', () => {
    const bpf = (c: Partial<NonNullable<NodePortKernel['bpf']>[string]>) =>
      judgeNodePort([run(both())], kernel({ bpf: { node1: { fwd: 12, rev: 10, local: 1, remote: 2, ct: 3, ...c } } })).reason;
    expect(bpf({ rev: 0 })).toMatch(/counted no packets/);
    expect(bpf({ remote: 0 })).toMatch(/no SNAT connection/);
    expect(bpf({ local: 0 })).toMatch(/no local connection/);
    expect(bpf({ ct: 0 })).toMatch(/no conntrack entry/);
    expect(judgeNodePort([run(both())], kernel({ bpf: undefined })).status).toBe('fail');
    const ipt = (n: number) => judgeNodePort([run(both())], kernel({ mode: 'iptables', bpf: undefined, iptables: { node1: n } }));
    expect(ipt(0).reason).toMatch(/KUBE-NODEPORTS rules matched no packet/);
    expect(ipt(40).status).toBe('pass');
  });
});

describe('NodePort map entries', () => {
  it('topologies/nodeport.yaml: each node serves its uplink address, TCP and UDP, as np_key/np_value hex', () => {
    const p = parseTopology(readFileSync(new URL('../../topologies/nodeport.yaml', import.meta.url), 'utf8'), 'nodeport.yaml');
    if (!p.ok) throw new Error(JSON.stringify(p.errors));
    const r = resolve(p.value);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const lab = r.value;
    const plan = servicePlan(lab);
    const e = nodePortEntries(plan, lab.nodes[0]);
    expect(e.map((x) => `${x.addr}:${x.nodePort}/${x.protocol} -> ${x.vip}:${x.port}`)).toEqual([
      '10.255.1.1:30080/TCP -> 10.96.0.20:80',
      '10.255.1.1:30053/UDP -> 10.96.0.20:53',
    ]);
    // struct np_key {be32 addr, be16 port, u8 proto, pad}, struct np_value {be32 vip, be16 vport, u16 pad}
    expect(npEntry(e[0])).toEqual({ key: '0a ff 01 01 75 80 06 00', value: '0a 60 00 14 00 50 00 00' });
    expect(nodePortEntries(plan, { ...lab.nodes[1], uplink: undefined })).toEqual([]);
  });

  it('parses the sources svcprobe serve saw, skipping its other lines', () => {
    expect(parseSeen('ready\n{"seen":"10.255.1.1","port":40000,"proto":"tcp"}\n')).toEqual([
      { seen: '10.255.1.1', port: 40000, proto: 'tcp' },
    ]);
  });
});
