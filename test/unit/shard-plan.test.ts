import { describe, expect, it } from 'vitest';
import { planKernels, planShare } from '../../src/report/shard-split.js';

const topologies = ['topologies/vm-quickstart.yaml', 'topologies/vm-two-node.yaml', 'topologies/vm-bandwidth.yaml'];
const kernels = ['6.1', '6.12', '7.3'];

describe('lab report plan: shares of a kernels x topologies matrix', () => {
  it('deals each (topology, kernel) cell to exactly one share, shares within one cell of each other', () => {
    for (const n of [1, 2, 4, 9, 10]) {
      const shares = Array.from({ length: n }, (_, i) => planShare(topologies, kernels, { index: i + 1, count: n }));
      const cells = shares.flatMap((s) => s.flatMap((p) => p.kernels.map((k) => `${p.topology} ${k}`)));
      expect(cells.sort()).toEqual(topologies.flatMap((t) => kernels.map((k) => `${t} ${k}`)).sort());
      const sizes = shares.map((s) => s.reduce((a, p) => a + p.kernels.length, 0));
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      // A topology appears once per share, with its kernels there, and none without a cell.
      for (const s of shares) {
        expect(new Set(s.map((p) => p.topology)).size).toBe(s.length);
        for (const p of s) expect(p.kernels.length).toBeGreaterThan(0);
      }
    }
  });

  it('fetches only what the share boots, the same plan whatever order the lists came in', () => {
    const two = planShare(topologies, kernels, { index: 2, count: 4 });
    // The 9 cells sorted (topology, kernel), dealt round robin: share 2 of 4 gets cells 2 and 6.
    expect(two).toEqual([
      { topology: 'topologies/vm-bandwidth.yaml', kernels: ['6.12'] },
      { topology: 'topologies/vm-quickstart.yaml', kernels: ['7.3'] },
    ]);
    expect(planKernels(two)).toEqual(['6.12', '7.3']);
    expect(planShare([...topologies].reverse(), [...kernels].reverse(), { index: 2, count: 4 })).toEqual(two);
    // A repeated name is one cell, not two.
    expect(planShare(['a.yaml', 'a.yaml'], ['7.3', '7.3'], { index: 1, count: 1 })).toEqual([{ topology: 'a.yaml', kernels: ['7.3'] }]);
    // More shares than cells: the last ones run nothing.
    expect(planShare(['a.yaml'], ['7.3'], { index: 2, count: 2 })).toEqual([]);
  });
});
