import { describe, expect, it } from 'vitest';
import { parseBandwidth, parseQuantity, showBps } from '../../src/datapath/bwm/quantity.js';
import { formatIssue } from '../../src/errors.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const value = (s: string) => {
  const q = parseQuantity(s);
  if ('problem' in q) throw new Error(q.problem);
  return q.value;
};

describe('Kubernetes quantities (egressBandwidth)', () => {
  it('decimal SI suffixes are powers of 1000, binary ones of 1024', () => {
    expect(value('50M')).toBe(50_000_000);
    expect(value('1k')).toBe(1000);
    expect(value('2G')).toBe(2_000_000_000);
    expect(value('3T')).toBe(3e12);
    expect(value('1Ki')).toBe(1024);
    expect(value('100Mi')).toBe(104_857_600);
    expect(value('1.5Gi')).toBe(1_610_612_736);
    expect(value('1000')).toBe(1000);
  });
  it('decimal exponents, fractions and signs as the Kubernetes grammar has them', () => {
    expect(value('5e7')).toBe(50_000_000);
    expect(value('5E+6')).toBe(5_000_000);
    expect(value('2.5M')).toBe(2_500_000);
    expect(value('.5k')).toBe(500);
    expect(value('+10M')).toBe(10_000_000);
    expect(value('0.3G')).toBe(300_000_000);
  });
  it('rounds up to a whole number like Quantity.Value()', () => {
    expect(value('1500m')).toBe(2);
    expect(value('1.0001k')).toBe(1001);
  });
  it('refuses what is not a quantity: tc units, lower-case mega, spaces, two suffixes, K', () => {
    for (const s of ['50mbit', '50Mbps', '50 M', ' 50M', '50MM', '50K', '50ki', 'M', '', '5e', '1.2.3M', '50Mi ', 'fifty'])
      expect('problem' in parseQuantity(s), s).toBe(true);
  });
  it('bandwidth bounds are Kubernetes own: at least 1k, at most 1P', () => {
    expect(parseBandwidth('1k')).toEqual({ bps: 1000 });
    expect(parseBandwidth('1P')).toEqual({ bps: 1e15 });
    expect(parseBandwidth('999')).toMatchObject({ problem: expect.stringContaining('unreasonably small') });
    expect(parseBandwidth('500m')).toMatchObject({ problem: expect.stringContaining('unreasonably small') });
    expect(parseBandwidth('-50M')).toMatchObject({ problem: expect.stringContaining('unreasonably small') });
    expect(parseBandwidth('2P')).toMatchObject({ problem: expect.stringContaining('unreasonably large') });
    expect(parseBandwidth('1Ei')).toMatchObject({ problem: expect.stringContaining('unreasonably large') });
  });
  it('shows a rate for people', () => {
    expect(showBps(50e6)).toBe('50 Mbit/s');
    expect(showBps(1_610_612_736)).toBe('1.61 Gbit/s');
    expect(showBps(999)).toBe('999 bit/s');
  });
});

const topo = (pod: string, extra = '') => `name: bw
${extra}nodes:
  - name: n1
    pods:
      - name: a
${pod}
      - name: b
    uplink:
      peer: remote
`;
const run = (text: string) => {
  const p = parseTopology(text, 'bw.yaml');
  if (!p.ok) return p;
  return resolve(p.value);
};
const problems = (text: string) => {
  const r = run(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatIssue);
};

describe('pods[].egressBandwidth in the topology', () => {
  it('resolves to bit/s and turns the bandwidth manager on for the node only', () => {
    const r = run(topo('        egressBandwidth: "50M"'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const n = r.value.nodes[0];
    expect(n.pods.map((p) => p.egressBps)).toEqual([50_000_000, undefined]);
    expect(n.datapath.bandwidthManager).toBe(true);
    const plain = run(topo(''));
    if (!plain.ok) throw new Error('plain topology refused');
    expect(plain.value.nodes[0].datapath.bandwidthManager).toBeUndefined();
  });
  it('unquoted 50M is YAML text too; a bare number must be quoted', () => {
    const r = run(topo('        egressBandwidth: 50M'));
    expect(r.ok).toBe(true);
    expect(problems(topo('        egressBandwidth: 50000000'))).toEqual([
      'bw.yaml:6:26: nodes[0].pods[0].egressBandwidth: write the bandwidth as a quantity in quotes ("50000000"), like the annotation: "50M"',
    ]);
  });
  it('a bad quantity is located to file:line:col', () => {
    const [p] = problems(topo('        egressBandwidth: 50mbit'));
    expect(p).toMatch(/^bw\.yaml:6:26: nodes\[0\]\.pods\[0\]\.egressBandwidth: '50mbit' is not a Kubernetes quantity/);
    expect(problems(topo('        egressBandwidth: "10"'))[0]).toMatch(/^bw\.yaml:6:26: .*unreasonably small/);
  });
  it('refuses egressBandwidth with legacy host routing, naming ip_rcv', () => {
    const [p] = problems(topo('        egressBandwidth: 50M', 'datapath: { hostRouting: legacy }\n'));
    expect(p).toMatch(/^bw\.yaml:7:26: nodes\[0\]\.pods\[0\]\.egressBandwidth: the bandwidth manager needs hostRouting: bpf/);
    expect(p).toContain('orphans the pod skb in ip_rcv (net/ipv4/ip_input.c)');
  });
  it('refuses it where the node turns the bandwidth manager off, and beside an uplink tbf', () => {
    expect(problems(topo('        egressBandwidth: 50M', 'datapath: { bandwidthManager: false }\n'))[0]).toContain(
      'bandwidthManager: false',
    );
    const withRate = topo('        egressBandwidth: 50M').replace('peer: remote', 'peer: remote\n      rate: 200mbit');
    expect(problems(withRate)[0]).toMatch(/^bw\.yaml:10:13: nodes\[0\]\.uplink\.rate: an uplink rate \(a tbf\) and the bandwidth manager/);
  });
  it('legacy without any egressBandwidth stays allowed', () => {
    expect(run(topo('', 'datapath: { hostRouting: legacy }\n')).ok).toBe(true);
  });
});
