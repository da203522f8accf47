import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/datapath/feature.js';
import { describeChange, labWithRate, parseRateArg, planRateChange, rateLines } from '../../src/datapath/bwm/live.js';
import { edtAddrKey, edtId, edtRate } from '../../src/datapath/bwm/maps.js';
import { LabError } from '../../src/errors.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import type { Lab } from '../../src/topology/model.js';

const TOPO = `name: bw-unit
families: [ipv4, ipv6]
nodes:
  - name: node1
    pods:
      - name: web
      - name: limited
        egressBandwidth: 10M
      - name: twin
    uplink:
      peer: remote
  - name: node2
    pods:
      - name: twin
`;

function lab(): Lab {
  const p = parseTopology(TOPO, 'bw.yaml');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  const r = resolve(p.value);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}
const edt: Decision = { feature: 'bandwidth-manager', node: 'node1', status: 'applied', mode: 'edt', detail: 'edt: ...' };
const off: Decision = { feature: 'bandwidth-manager', node: 'node2', status: 'off', mode: 'off', detail: 'no pod has egressBandwidth' };
const decisions = [edt, off];

/** The LabError a call throws (its code and message), or a test failure when it does not throw one. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof LabError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a LabError');
}

describe('lab bw set: validation against the running lab (nothing touched when it fails)', () => {
  it('a new rate for a limited pod: its id is its position on the node, the old rate kept for the message', () => {
    const c = planRateChange(lab(), decisions, 'limited', '2M');
    expect([c.node.name, c.pod.name, c.id, c.bps, c.before]).toEqual(['node1', 'limited', 2, 2_000_000, 10_000_000]);
    expect(describeChange(c)).toBe('node1/limited: 10 Mbit/s -> 2 Mbit/s');
  });
  it('0, none and unlimited take the limit away; a Kubernetes quantity sets one', () => {
    for (const t of ['0', 'none', 'None', 'unlimited', '0M']) expect(parseRateArg(t), t).toEqual({});
    expect(parseRateArg('1.5Mi')).toEqual({ bps: 1_572_864 });
    expect(parseRateArg('5e6')).toEqual({ bps: 5_000_000 });
    expect(planRateChange(lab(), decisions, 'node1/web', '1M')).toMatchObject({ id: 1, bps: 1_000_000, before: undefined });
    expect(planRateChange(lab(), decisions, 'limited', 'none')).toMatchObject({ id: 2, bps: undefined, before: 10_000_000 });
  });
  it('refuses a rate that is not a Kubernetes bandwidth (exit 2: E_USAGE), with the quantity grammar or bound named', () => {
    expect(refusal(() => planRateChange(lab(), decisions, 'limited', '50mbit'))).toMatchObject({
      code: 'E_USAGE',
      message: expect.stringMatching(/not a Kubernetes quantity/),
    });
    expect(refusal(() => planRateChange(lab(), decisions, 'limited', '500')).message).toMatch(/below 1k/);
    expect(refusal(() => planRateChange(lab(), decisions, 'limited', '2P')).message).toMatch(/above 1P/);
    expect(refusal(() => planRateChange(lab(), decisions, 'limited', '-5M')).code).toBe('E_USAGE');
  });
  it('refuses an unknown pod (listing the pods) and a name on two nodes (asking for node/pod)', () => {
    expect(refusal(() => planRateChange(lab(), decisions, 'nope', '1M')).message).toMatch(/no pod 'nope'; pods: node1\/web, /);
    expect(refusal(() => planRateChange(lab(), decisions, 'twin', '1M')).message).toMatch(/on several nodes \(node1, node2\)/);
    expect(refusal(() => planRateChange(lab(), decisions, 'node3/web', '1M')).code).toBe('E_USAGE');
    expect(planRateChange(lab(), decisions, 'node1/twin', '1M').id).toBe(3);
  });
  it('refuses a pod on a node where the bandwidth manager is off or declined (no maps to write), saying why', () => {
    expect(refusal(() => planRateChange(lab(), decisions, 'node2/twin', '1M')).message).toBe(
      'the bandwidth manager does not run on node node2 (off: no pod has egressBandwidth)',
    );
    const declined: Decision = { ...edt, status: 'declined', mode: 'off', detail: 'no sch_fq: kernel lacks CONFIG_NET_SCH_FQ' };
    expect(refusal(() => planRateChange(lab(), [declined], 'limited', '1M')).message).toMatch(/\(declined: no sch_fq/);
    const on2: Decision = { ...edt, node: 'node2' };
    expect(refusal(() => planRateChange(lab(), [on2], 'node2/twin', '1M')).message).toMatch(/node node2 has no uplink/);
  });
});

describe('lab bw set: what it writes', () => {
  const pins = { pods: '/p/edt_pods', rates: '/p/edt_rates' };
  it('a rate: the rate entry first (t_last 0), then each address mapped to the pod id', () => {
    const c = planRateChange(lab(), decisions, 'limited', '2M');
    const lines = rateLines(pins, c, c.bps);
    expect(lines[0]).toBe(`map update pinned /p/edt_rates key hex ${edtId(2)} value hex ${edtRate(2_000_000)}`);
    expect(edtRate(2_000_000).startsWith('90 d0 03 00 00 00 00 00 00 00 00 00 00 00 00 00')).toBe(true); // 250000 B/s, t_last 0
    expect(lines.slice(1)).toEqual(
      [c.pod.ipv4!, c.pod.ipv6!].map((a) => `map update pinned /p/edt_pods key hex ${edtAddrKey(a)} value hex ${edtId(2)}`),
    );
  });
  it('no limit: the addresses deleted first (the pod is then unlimited), then the rate entry', () => {
    const c = planRateChange(lab(), decisions, 'limited', 'none');
    expect(rateLines(pins, c, c.bps)).toEqual([
      `map delete pinned /p/edt_pods key hex ${edtAddrKey(c.pod.ipv4!)}`,
      `map delete pinned /p/edt_pods key hex ${edtAddrKey(c.pod.ipv6!)}`,
      `map delete pinned /p/edt_rates key hex ${edtId(2)}`,
    ]);
  });
  it('lab.json gets the new rate on that pod only', () => {
    const l = lab();
    const after = labWithRate(l, planRateChange(l, decisions, 'node1/twin', '3M'));
    expect(after.nodes.map((n) => n.pods.map((p) => p.egressBps))).toEqual([[undefined, 10_000_000, 3_000_000], [undefined]]);
    expect(labWithRate(l, planRateChange(l, decisions, 'limited', '0')).nodes[0].pods[1].egressBps).toBeUndefined();
    expect(l.nodes[0].pods[2].egressBps).toBeUndefined();
  });
});
