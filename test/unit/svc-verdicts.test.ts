import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { summary } from '../../src/checks/backpressure.js';
import { bottleneckedFrontend, judgeSvcBackpressure } from '../../src/checks/svc-backpressure.js';
import { servicePlan } from '../../src/datapath/kpr/plan.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import { judgeAffinity, type AffinityRun } from '../../src/checks/svc-affinity.js';
import { judgeBackendRemoval, type RemovalRun } from '../../src/checks/svc-backend-removal.js';
import { judgeKubeProxyFree, type NamespaceRules } from '../../src/checks/kube-proxy-free.js';
import { attemptsFor, judgeClusterIp, type FrontendRun } from '../../src/checks/svc-clusterip.js';
import { judgeGetpeername, type PeerRun } from '../../src/checks/svc-getpeername.js';
import { judgeNoBackend, type NoBackendRun } from '../../src/checks/svc-no-backend.js';
import { parseIptablesSave, parseNftRuleset } from '../../src/measure/netfilter.js';
import { parseAttempts, type SvcAttempt } from '../../src/measure/services.js';

const ok = (i: number, reply: string, peer = '10.96.0.10', peerPort = 80): SvcAttempt => ({
  i,
  op: 'tcp',
  errno: '',
  stage: 'done',
  us: 100,
  peer,
  peerPort,
  reply,
});
const failed = (i: number, errno: string, stage = 'connect', us = 10, op: SvcAttempt['op'] = 'tcp'): SvcAttempt => ({
  i,
  op,
  errno,
  stage,
  us,
  peer: '',
  peerPort: 0,
  reply: '',
});
const run = (attempts: SvcAttempt[], affinity = false): FrontendRun => ({
  label: 'web 10.96.0.10:80/TCP',
  backends: ['n1/a', 'n2/b'],
  affinity,
  attempts,
});

/** `nft -j list ruleset` of a node with kube-proxy's iptables rules (iptables-nft 1.8.9), a few entries of it. */
const NFT_WITH_KUBE_PROXY =
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "filter", "handle": 1}}, {"chain": {"family": "ip", "table": "nat", "name": "KUBE-SEP-RFTKWXRYBAKA3SMZ", "handle": 6}}, {"chain": {"family": "ip", "table": "nat", "name": "PREROUTING", "handle": 17, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, {"rule": {"family": "ip", "table": "nat", "chain": "KUBE-SEP-RFTKWXRYBAKA3SMZ", "handle": 30, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"xt": {"type": "match", "name": "comment"}}, {"xt": {"type": "match", "name": "tcp"}}, {"counter": {"packets": 2, "bytes": 120}}, {"xt": {"type": "target", "name": "DNAT"}}]}}, {"rule": {"family": "ip6", "table": "nat", "chain": "KUBE-POSTROUTING", "handle": 26, "expr": [{"xt": {"type": "match", "name": "comment"}}, {"counter": {"packets": 0, "bytes": 0}}, {"xt": {"type": "target", "name": "MASQUERADE"}}]}}]}';

describe('svc-clusterip verdict', () => {
  it('passes when every backend answered and nothing else did', () => {
    expect(judgeClusterIp([run([ok(0, 'n1/a'), ok(1, 'n2/b'), ok(2, 'n1/a')])]).status).toBe('pass');
  });
  it('fails when an attempt failed', () => {
    const v = judgeClusterIp([run([ok(0, 'n1/a'), ok(1, 'n2/b'), failed(2, 'ETIMEDOUT', 'reply', 1_000_000)])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1\/3 failed \(#2 tcp: ETIMEDOUT at reply/);
  });
  it('fails when a backend was never picked (no balancing)', () => {
    const v = judgeClusterIp([run([ok(0, 'n1/a'), ok(1, 'n1/a')])]);
    expect(v).toMatchObject({ status: 'fail' });
    expect(v.reason).toMatch(/n2\/b never picked in 2 attempts/);
  });
  it('fails when something that is not a backend answered', () => {
    const v = judgeClusterIp([run([ok(0, 'n1/a'), ok(1, 'n2/b'), ok(2, 'n1/c')])]);
    expect(v.reason).toMatch(/answered by n1\/c, not a backend/);
    expect(v.status).toBe('fail');
  });
  it('does not ask every backend of an affinity service to answer', () => {
    expect(judgeClusterIp([run([ok(0, 'n1/a'), ok(1, 'n1/a')], true)]).status).toBe('pass');
  });
  it('is an error without attempts', () => {
    expect(judgeClusterIp([]).status).toBe('error');
    expect(judgeClusterIp([run([])]).status).toBe('error');
  });
  it('makes enough attempts to see the smallest share with near certainty', () => {
    expect(attemptsFor({ backends: [{ id: 1, weight: 1 }], affinitySeconds: 0 })).toBe(8);
    const n = attemptsFor({ backends: [1, 2, 3].map((id) => ({ id, weight: 1 })), affinitySeconds: 0 });
    expect((2 / 3) ** n).toBeLessThan(1e-6);
    expect(
      attemptsFor({
        backends: [
          { id: 1, weight: 1 },
          { id: 2, weight: 100 },
        ],
        affinitySeconds: 0,
      }),
    ).toBe(200);
  });
});

describe('svc-getpeername verdict', () => {
  const peers = (attempts: SvcAttempt[]): PeerRun => ({ label: 'web', op: 'tcp', vip: '10.96.0.10', port: 80, attempts });
  it('passes when every completed attempt saw the ClusterIP and port', () => {
    expect(judgeGetpeername([peers([ok(0, 'n1/a'), failed(1, 'ETIMEDOUT', 'reply')])]).status).toBe('pass');
  });
  it('fails when the application saw the backend (no reverse translation)', () => {
    const v = judgeGetpeername([peers([ok(0, 'n1/a'), ok(1, 'n1/a', '10.244.1.3', 8080)])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/saw 10\.244\.1\.3:8080/);
  });
  it('fails on the right address with the backend port', () => {
    expect(judgeGetpeername([peers([ok(0, 'n1/a', '10.96.0.10', 8080)])]).status).toBe('fail');
  });
  it('is an error when no attempt completed', () => {
    expect(judgeGetpeername([peers([failed(0, 'ECONNREFUSED')])]).status).toBe('error');
  });
});

describe('svc-no-backend verdict', () => {
  const nb = (op: NoBackendRun['op'], attempts: SvcAttempt[]): NoBackendRun => ({ label: 'empty', op, attempts });
  it('passes when every call failed at once with EHOSTUNREACH', () => {
    const v = judgeNoBackend([nb('tcp', [failed(0, 'EHOSTUNREACH')]), nb('udp', [failed(0, 'EHOSTUNREACH', 'sendto', 12, 'udp')])]);
    expect(v.status).toBe('pass');
  });
  it('fails when the call went through', () => {
    expect(judgeNoBackend([nb('tcp', [ok(0, 'n1/a')])]).reason).toMatch(/went through/);
  });
  it("fails when the refusal came late: a UDP send accepted and no reply (kube-proxy's REJECT case)", () => {
    const v = judgeNoBackend([nb('udp', [failed(0, 'ETIMEDOUT', 'reply', 30, 'udp')])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/not refused at sendto/);
  });
  it('fails on another errno (EPERM: a program without bpf_set_retval; ECONNREFUSED: a REJECT rule)', () => {
    expect(judgeNoBackend([nb('tcp', [failed(0, 'EPERM')])]).reason).toMatch(/EPERM, not EHOSTUNREACH/);
    expect(judgeNoBackend([nb('tcp', [failed(0, 'ECONNREFUSED')])]).status).toBe('fail');
  });
  it('fails when the refusal took over 50 ms', () => {
    expect(judgeNoBackend([nb('tcp', [failed(0, 'EHOSTUNREACH', 'connect', 60_000)])]).reason).toMatch(/took 60000 us/);
  });
  it('is an error without attempts', () => {
    expect(judgeNoBackend([nb('tcp', [])]).status).toBe('error');
  });
});

describe('kube-proxy-free: reading netfilter and the verdict', () => {
  it("finds kube-proxy's chains and NAT targets in iptables-nft's ruleset", () => {
    const r = parseNftRuleset(NFT_WITH_KUBE_PROXY);
    expect(r.kubeChains).toEqual(['ip/nat/KUBE-SEP-RFTKWXRYBAKA3SMZ']);
    expect(r.natRules).toEqual(['ip/nat/KUBE-SEP-RFTKWXRYBAKA3SMZ: DNAT', 'ip6/nat/KUBE-POSTROUTING: MASQUERADE']);
  });
  it('finds native nft NAT statements and legacy iptables-save rules', () => {
    const native = JSON.stringify({
      nftables: [{ rule: { family: 'inet', table: 't', chain: 'c', expr: [{ dnat: { addr: '10.0.0.1' } }] } }],
    });
    expect(parseNftRuleset(native).natRules).toEqual(['inet/t/c: dnat']);
    const save =
      '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A KUBE-SEP-X -p tcp -j DNAT --to-destination 10.1.1.1:80\nCOMMIT\n';
    expect(parseIptablesSave(save, 'ip')).toEqual({ kubeChains: ['ip/nat/KUBE-SERVICES'], natRules: ['ip/nat/KUBE-SEP-X: DNAT'] });
  });
  it('an empty ruleset holds nothing', () => {
    expect(parseNftRuleset('{"nftables":[{"metainfo":{"version":"1.0.6"}}]}')).toEqual({ kubeChains: [], natRules: [] });
  });
  const ns = (netns: string, mode: NamespaceRules['mode'], json: string, unreadable: string[] = []): NamespaceRules => ({
    netns,
    node: 'n1',
    mode,
    reading: { ...parseNftRuleset(json), unreadable },
  });
  const EMPTY = '{"nftables":[]}';
  it('passes with clean socket-LB namespaces, whatever an iptables node holds', () => {
    expect(judgeKubeProxyFree([ns('a', 'bpf', EMPTY), ns('b', 'iptables', NFT_WITH_KUBE_PROXY)]).status).toBe('pass');
  });
  it('fails when a socket-LB namespace holds service rules', () => {
    const v = judgeKubeProxyFree([ns('a', 'bpf', EMPTY), ns('b', 'bpf', NFT_WITH_KUBE_PROXY)]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/^b: ip\/nat\/KUBE-SEP-RFTKWXRYBAKA3SMZ/);
  });
  it('is an error when a namespace could not be read or none was judged', () => {
    expect(judgeKubeProxyFree([ns('a', 'bpf', EMPTY, ['nft: exit 1'])]).status).toBe('error');
    expect(judgeKubeProxyFree([ns('a', 'iptables', EMPTY)]).status).toBe('error');
  });
});

describe('svcprobe output', () => {
  it('parses attempts and refuses a line that is not one', () => {
    const line = '{"i":0,"op":"udp","errno":"EHOSTUNREACH","stage":"sendto","us":12,"peer":"","peerPort":0,"reply":""}';
    expect(parseAttempts(`${line}\n`)).toEqual([failed(0, 'EHOSTUNREACH', 'sendto', 12, 'udp')]);
    expect(() => parseAttempts('{"i":0}\n')).toThrow(/unexpected line/);
  });
});

describe('svc-affinity verdict', () => {
  const aff = (attempts: SvcAttempt[]): AffinityRun => ({ label: 'sticky', backends: ['n1/a', 'n2/b'], attempts });
  it('passes when one client always reached the same backend', () => {
    expect(judgeAffinity([aff([ok(0, 'n2/b'), ok(1, 'n2/b'), failed(2, 'ETIMEDOUT', 'reply')])]).status).toBe('pass');
  });
  it('fails when one client reached two backends', () => {
    const v = judgeAffinity([aff([ok(0, 'n2/b'), ok(1, 'n1/a')])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/one client reached n2\/b, n1\/a/);
  });
  it('fails when a stranger answered, and is an error when nothing completed', () => {
    expect(judgeAffinity([aff([ok(0, 'n9/z')])]).status).toBe('fail');
    expect(judgeAffinity([aff([failed(0, 'ECONNREFUSED')])]).status).toBe('error');
  });
});

describe('svc-backend-removal verdict', () => {
  const removal = (before: SvcAttempt[], after: SvcAttempt[], restored: SvcAttempt[]): RemovalRun => ({
    label: 'web',
    removed: 'n2/b',
    survivors: ['n1/a'],
    before,
    after,
    restored,
  });
  const both = [ok(0, 'n1/a'), ok(1, 'n2/b')];
  it('passes when the removed backend answered before, never after, and again once back', () => {
    expect(judgeBackendRemoval(removal(both, [ok(0, 'n1/a'), ok(1, 'n1/a')], both)).status).toBe('pass');
  });
  it('fails when a new connection reached the removed backend', () => {
    const v = judgeBackendRemoval(removal(both, [ok(0, 'n1/a'), ok(1, 'n2/b')], both));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 new connections reached n2\/b after its removal/);
  });
  it('fails when attempts failed after the removal (a half-written set)', () => {
    expect(judgeBackendRemoval(removal(both, [ok(0, 'n1/a'), failed(1, 'ECONNREFUSED')], both)).reason).toMatch(/1\/2 attempts failed/);
  });
  it('fails when the backend never came back', () => {
    expect(judgeBackendRemoval(removal(both, [ok(0, 'n1/a')], [ok(0, 'n1/a')])).reason).toMatch(/not picked again/);
  });
  it('is an error when the removed backend never answered before (its absence would prove nothing)', () => {
    expect(judgeBackendRemoval(removal([ok(0, 'n1/a')], [ok(0, 'n1/a')], both)).status).toBe('error');
  });
});

describe('svc-backpressure', () => {
  const flow = (wmem: number, backlog: number) =>
    summary({
      bitsPerSecond: 1e8,
      samples: Array.from({ length: 10 }, (_, i) => ({ t: i * 100, wmem, backlog })),
      evidence: [],
    });
  it('passes when socket-LB keeps ownership and kube-proxy loses it, naming iptables', () => {
    const v = judgeSvcBackpressure(flow(150_000, 120_000), flow(0, 130_000));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/iptables: 0 B owned/);
  });
  it('fails when the socket owns nothing with socket-LB, or still owns the queue through kube-proxy', () => {
    expect(judgeSvcBackpressure(flow(0, 120_000), flow(0, 130_000)).status).toBe('fail');
    const v = judgeSvcBackpressure(flow(150_000, 120_000), flow(120_000, 130_000));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/^iptables: the socket still owned/);
  });
  it('is an error without a queue at the bottleneck', () => {
    expect(judgeSvcBackpressure(flow(150_000, 0), flow(0, 130_000)).status).toBe('error');
  });
  it('picks a TCP frontend whose backends all sit behind a rated link of the client node', () => {
    const text = readFileSync(new URL('../../topologies/services.yaml', import.meta.url), 'utf8');
    const p = parseTopology(text, 'services.yaml');
    if (!p.ok) throw new Error(JSON.stringify(p.errors));
    const r = resolve(p.value);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const lab = r.value;
    const plan = servicePlan(lab);
    const pick = bottleneckedFrontend(lab, lab.nodes[0], plan.frontends, plan);
    expect(pick && [pick.f.service, pick.f.family, pick.dev, `${pick.backend.node}/${pick.backend.pod}`]).toEqual([
      'bulk',
      'ipv4',
      'n-node2',
      'node2/web2',
    ]);
    // From node2 the backend is local: no link to cross.
    expect(bottleneckedFrontend(lab, lab.nodes[1], plan.frontends, plan)).toBeUndefined();
  });
});
