import { describe, expect, it } from 'vitest';
import { vipRouteMtu } from '../../src/datapath/xdp-lb/feature.js';
import { dsrLines, dsrPodEntries, type XlBackend, type XlFrontend, xdpLbPlan } from '../../src/datapath/xdp-lb/plan.js';

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

describe("dsrPodEntries (a backend node's xl_dsr)", () => {
  const web2 = new Set(['10.244.2.2']);
  it('names each DSR frontend a local pod serves, with its target port, in struct xl_dsr_key byte order', () => {
    const e = dsrPodEntries([fe(1, [1, 1, 1]), fe(2, [1, 0, 1], 'UDP')], backends, web2);
    expect(e.map((x) => x.label)).toEqual(['172.16.0.10:80/TCP -> 10.244.2.2:8080', '172.16.0.10:53/UDP -> 10.244.2.2:8080']);
    // AF_INET 2, proto 6, port 80 (be), VIP 172.16.0.10 and pod 10.244.2.2 in 16 bytes each; value: 8080 (be) and pad.
    const pad12 = Array(12).fill('00').join(' ');
    expect(e[0].key).toBe(`02 06 00 50 ac 10 00 0a ${pad12} 0a f4 02 02 ${pad12}`);
    expect(e[0].value).toBe('1f 90 00 00');
    // Weight 0 keeps its entry: flows the LB already sends there drain.
    expect(e[1].key.startsWith('02 11 00 35')).toBe(true);
  });
  it("leaves out SNAT frontends, other nodes' pods and backends of another family than the frontend's", () => {
    expect(dsrPodEntries([{ ...fe(1, [1, 1, 1]), mode: 'snat' }], backends, web2)).toEqual([]);
    expect(dsrPodEntries([fe(1, [1, 1, 1])], backends, new Set(['10.244.9.9']))).toEqual([]);
    expect(dsrPodEntries([{ ...fe(1, [1, 1, 1]), family: 'ipv6' }], backends, web2)).toEqual([]);
  });
  it('turns one entry set into the next: stale keys deleted, the rest written', () => {
    const before = dsrPodEntries([fe(1, [1, 1, 1]), fe(2, [1, 1, 1], 'UDP')], backends, web2);
    const after = dsrPodEntries([fe(1, [1, 1, 1])], backends, web2);
    expect(dsrLines('/p/xl_dsr', before, after)).toEqual([
      `map delete pinned /p/xl_dsr key hex ${before[1].key}`,
      `map update pinned /p/xl_dsr key hex ${after[0].key} value hex 1f 90 00 00`,
    ]);
  });
  it("gives the client's route to a DSR VIP room for the IPIP header, and leaves SNAT VIPs alone", () => {
    expect(vipRouteMtu('dsr')).toEqual(['mtu', '1480', 'advmss', '1440']);
    expect(vipRouteMtu('snat')).toEqual([]);
  });
});
