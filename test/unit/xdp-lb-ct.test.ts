import { describe, expect, it } from 'vitest';
import { removedMembers, staleCtKeys } from '../../src/datapath/xdp-lb/ct.js';
import type { XlFrontend } from '../../src/datapath/xdp-lb/plan.js';

const fe = (svcId: number, ids: number[]): XlFrontend => ({
  svcId,
  family: 'ipv4',
  port: 53,
  protocol: 'UDP',
  lbVip: '172.16.0.10',
  mode: 'snat',
  backends: ids.map((id) => ({ id, weight: 1 })),
});
const hex = (bytes: number[]) => bytes.map((b) => `0x${b.toString(16).padStart(2, '0')}`);
/** A bpftool -j dump row of xl_ct: a 40-byte key and a 44-byte struct xl_ct_value with svc and backend at 36 and 40. */
const row = (tag: number, svc: number, backend: number) => ({
  key: hex([2, 17, 0, 0, 0, tag, ...Array<number>(34).fill(0)]),
  value: hex([...Array<number>(36).fill(0), svc & 255, svc >>> 8, 0, 0, backend & 255, backend >>> 8, 0, 0]),
});

describe('SNAT conntrack purge after lab svc', () => {
  it('names the (service, backend) pairs a change removed, including those of a deleted service', () => {
    expect([...removedMembers([fe(1, [1, 2, 3]), fe(2, [2])], [fe(1, [1, 3])])].sort()).toEqual(['1/2', '2/2']);
    expect(removedMembers([fe(1, [1, 2])], [fe(1, [1, 2]), fe(3, [2])]).size).toBe(0);
  });
  it('picks both directions of the removed pairs only; a backend still in another service keeps its entries there', () => {
    const dump = [row(1, 1, 2), row(2, 1, 2), row(3, 2, 2), row(4, 1, 3), row(5, 258, 2)];
    const keys = staleCtKeys(dump, new Set(['1/2', '258/2']));
    expect(keys.map((k) => k.split(' ')[5])).toEqual(['01', '02', '05']);
    expect(keys[0].split(' ')).toHaveLength(40);
    expect(staleCtKeys(dump, new Set())).toEqual([]);
  });
  it('refuses a dump it cannot read', () => {
    expect(() => staleCtKeys([{ key: 'x' }], new Set(['1/2']))).toThrow();
  });
});
