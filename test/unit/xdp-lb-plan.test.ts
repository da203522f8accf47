import { describe, expect, it } from 'vitest';
import { type XlBackend, type XlFrontend, xdpLbPlan } from '../../src/datapath/xdp-lb/plan.js';

const pins = { cfg: '/p/xl_cfg', backends: '/p/xl_backends', vips: '/p/xl_vips' };
const backends: XlBackend[] = [
  { id: 1, addr: '10.244.1.3', port: 8080, family: 'ipv4', nodeAddr: '10.0.0.11' },
  { id: 2, addr: '10.244.2.2', port: 8080, family: 'ipv4', nodeAddr: '10.0.0.12' },
  { id: 3, addr: '10.244.2.3', port: 8080, family: 'ipv4', nodeAddr: '10.0.0.12' },
];
const fe = (svcId: number, weights: number[], protocol: 'TCP' | 'UDP' = 'TCP'): XlFrontend => ({
  svcId,
  family: 'ipv4',
  port: protocol === 'TCP' ? 80 : 53,
  protocol,
  lbVip: '172.16.0.10',
  mode: 'dsr',
  backends: weights.map((weight, i) => ({ id: i + 1, weight })),
});
const self = { addr4: '10.0.0.1' };

describe('xdpLbPlan', () => {
  it('gives two LB nodes the same tables whatever order the backends come in', () => {
    const a = xdpLbPlan(pins, [fe(1, [1, 1, 1])], backends, 251, self);
    const f = fe(1, [1, 1, 1]);
    const b = xdpLbPlan(pins, [{ ...f, backends: [...f.backends].reverse() }], [...backends].reverse(), 251, { addr4: '10.0.0.2' });
    expect(b.tableLines).toEqual(a.tableLines);
    expect(a.tables.get(1)).toHaveLength(251);
    expect(new Set(a.tables.get(1))).toEqual(new Set([1, 2, 3]));
  });

  it('leaves a weight-0 backend out of every cell, and deletes the table when all are 0', () => {
    const p = xdpLbPlan(pins, [fe(1, [1, 0, 1]), fe(2, [0, 0, 0], 'UDP')], backends, 251, self);
    const t = p.tables.get(1) ?? [];
    expect(t).toHaveLength(251);
    expect(t.includes(2)).toBe(false);
    expect(p.tableLines).toContain('del 2');
    expect(p.tables.has(2)).toBe(false);
  });

  it('writes a frontend entry per port and one address entry per VIP (later fragments match by address)', () => {
    const p = xdpLbPlan(pins, [fe(1, [1, 1, 1]), fe(2, [1, 1, 1], 'UDP')], backends, 251, self);
    const vipLines = p.mapLines.filter((l) => l.includes(pins.vips));
    expect(vipLines).toHaveLength(3);
    // The address entry: family AF_INET, proto 0, port 0, the VIP.
    expect(vipLines.filter((l) => l.includes('key hex 02 00 00 00 ac 10 00 0a'))).toHaveLength(1);
    expect(p.mapLines[0]).toContain('value hex 0a 00 00 01');
  });

  it('refuses a frontend naming a backend the plan lacks', () => {
    expect(() => xdpLbPlan(pins, [fe(1, [1, 1, 1, 1])], backends, 251, self)).toThrow(/backend 4/);
  });
});
