import { describe, expect, it } from 'vitest';
import {
  judgeMaglevBalance,
  judgeMaglevConsistency,
  judgeWeightZero,
  type MaglevFlowRun,
  type MaglevRemovalRun,
  type MaglevTableRun,
  type TupleAfter,
  type TupleSeen,
  weightZeroFlowsNeeded,
  type WeightZeroRun,
} from '../../src/checks/maglev-verdicts.js';

const B = ['w1/web1', 'w2/web2', 'w2/web3'];
const table = (cells: number[], weights = [1, 1, 1], node = 'lb1'): MaglevTableRun => ({
  node,
  frontend: 'web 172.30.0.10:80/TCP',
  backends: B,
  weights,
  cells,
});
const flows = (counts: number[], cells = [5461, 5460, 5460], unanswered = 0): MaglevFlowRun => ({
  node: 'lb1',
  frontend: 'web 172.30.0.10:80/TCP',
  backends: B,
  cells,
  flows: counts,
  unanswered,
});

describe('judgeMaglevBalance', () => {
  it('passes an even table and flows within the binomial spread', () => {
    const v = judgeMaglevBalance([table([5461, 5460, 5460]), table([5461, 5460, 5460], undefined, 'lb2')], [flows([340, 330, 330])]);
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/binomial/);
    expect(v.threshold).toMatch(/4 binomial standard deviations/);
  });
  it('passes weighted shares within 1% of M', () => {
    // weights 1:2:1 of 16381: 4095.25 / 8190.5 / 4095.25
    expect(judgeMaglevBalance([table([4100, 8185, 4096], [1, 2, 1])], [flows([250, 500, 250], [4100, 8185, 4096])]).status).toBe('pass');
  });
  it('fails a backend off its even share by more than 1% of M/N', () => {
    const v = judgeMaglevBalance([table([5600, 5400, 5381])], [flows([340, 330, 330])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w1\/web1 owns 5600 of 16381 cells, 5460.3 expected/);
  });
  it('says when M < 100 x N makes 1% of even less than a cell', () => {
    const v = judgeMaglevBalance([table([85, 83, 83])], [flows([34, 33, 33], [85, 83, 83])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/M < 100 x N/);
  });
  it('fails a weighted share more than 1% of M off', () => {
    const v = judgeMaglevBalance([table([3000, 9381, 4000], [1, 2, 1])], [flows([250, 500, 250], [3000, 9381, 4000])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w1\/web1 owns 3000/);
  });
  it('fails a weight-0 backend that owns cells', () => {
    const v = judgeMaglevBalance([table([8190, 8190, 1], [1, 1, 0])], [flows([500, 500, 0], [8190, 8190, 1])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w2\/web3 has weight 0 and owns 1 cells/);
  });
  it('fails flows that stray beyond 4 standard deviations', () => {
    // K = 1000, p = 1/3: sd 14.9, allowed 59.6 around 333.4
    const v = judgeMaglevBalance([table([5461, 5460, 5460])], [flows([420, 290, 290])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w1\/web1 answered 420 of 1000 flows, 333.4 expected \+\/- 59.6/);
  });
  it('fails a flow answered by a backend with no cell', () => {
    const v = judgeMaglevBalance([table([8191, 8190, 0], [1, 1, 0])], [flows([495, 495, 10], [8191, 8190, 0])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w2\/web3 answered 10 of 1000 flows, 0 expected/);
  });
  it('errors without tables, flows, live backends, answers or enough flows', () => {
    expect(judgeMaglevBalance([], [flows([1, 1, 1])]).reason).toMatch(/could not establish: no Maglev table/);
    expect(judgeMaglevBalance([table([5461, 5460, 5460])], []).reason).toMatch(/could not establish: no client flows/);
    expect(judgeMaglevBalance([table([0, 0, 0], [0, 0, 0])], [flows([1, 1, 1])]).reason).toMatch(/no backend of weight > 0/);
    const lost = judgeMaglevBalance([table([5461, 5460, 5460])], [flows([330, 330, 330], undefined, 20)]);
    expect(lost).toMatchObject({ status: 'error' });
    expect(lost.reason).toMatch(/20 of 1010 flows got no answer/);
    const few = judgeMaglevBalance([table([5461, 5460, 5460])], [flows([5, 5, 5])]);
    expect(few).toMatchObject({ status: 'error' });
    expect(few.reason).toMatch(/15 answered flows; 31 are needed/);
  });
});

const removal = (changed: number, leftToRemoved = 0): MaglevRemovalRun => ({
  node: 'lb1',
  frontend: 'web 172.30.0.10:80/TCP',
  removed: 'w2/web3',
  survivorCells: 10921,
  changed,
  leftToRemoved,
});
const tuple = (i: number, first: string | undefined, second: string | undefined, predicted?: string): TupleSeen => ({
  tuple: `10.0.0.1:${40000 + i} > 172.30.0.10:80/TCP`,
  first,
  second,
  predicted,
});
const agreeing = (n: number) => Array.from({ length: n }, (_, i) => tuple(i, B[i % 3], B[i % 3], B[i % 3]));

describe('judgeMaglevConsistency', () => {
  it('passes a small remap and agreeing LB nodes', () => {
    const v = judgeMaglevConsistency([removal(14)], agreeing(12));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(
      /at most 0.13% of the others' cells; 12 5-tuples reached the same backend through lb1 and lb2 \(12 as the table/,
    );
  });
  it('fails a removal that moved more than 1% of the survivors cells', () => {
    const v = judgeMaglevConsistency([removal(110)], agreeing(12));
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/moved 110 of the others' 10921 cells \(1.01% > 1%\)/);
  });
  it('fails a removed backend that kept cells', () => {
    expect(judgeMaglevConsistency([removal(3, 2)], agreeing(12)).reason).toMatch(/w2\/web3 still owns 2 cells/);
  });
  it('fails a 5-tuple that reached different backends through the two LB nodes', () => {
    const v = judgeMaglevConsistency([removal(3)], [...agreeing(11), tuple(99, B[0], B[1])]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 of 12 5-tuples reached different backends: 10.0.0.1:40099 > .*: w1\/web1 via lb1, w2\/web2 via lb2/);
  });
  it('fails agreeing LB nodes that both miss the predicted backend', () => {
    const v = judgeMaglevConsistency([removal(3)], [...agreeing(11), tuple(99, B[0], B[0], B[2])], ['lbA', 'lbB']);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 5-tuples reached another backend than the table predicts: .*w1\/web1, predicted w2\/web3/);
  });
  it('errors without a removal, with an empty survivor set, or too few tuples answered by both', () => {
    expect(judgeMaglevConsistency([], agreeing(12)).reason).toMatch(/could not establish: no removal/);
    expect(judgeMaglevConsistency([{ ...removal(0), survivorCells: 0 }], agreeing(12)).status).toBe('error');
    const few = judgeMaglevConsistency([removal(3)], [...agreeing(9), tuple(50, B[0], undefined), tuple(51, undefined, B[0])]);
    expect(few.status).toBe('error');
    expect(few.reason).toMatch(/9 of 11 5-tuples were answered through both lb1 and lb2 \(10 needed\)/);
  });
  it('leaves tuples unanswered through one LB out, and says so', () => {
    const v = judgeMaglevConsistency([removal(3)], [...agreeing(10), tuple(50, B[0], undefined)]);
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/1 got no answer through one of them/);
  });
});

/** After removing w2/web3 (B[2]): tuple i was on B[i % 3]; its own go to web1, the others stay, each as predicted. */
const afterRemoval = (n: number): TupleAfter[] =>
  Array.from({ length: n }, (_, i) => {
    const now = i % 3 === 2 ? B[0] : B[i % 3];
    return { ...tuple(i, now, now, now), before: B[i % 3], removed: B[2] };
  });

describe('judgeMaglevConsistency after a removal with real traffic', () => {
  it('passes survivors that stayed and the removed backend’s tuples on survivors, as the new table predicts', () => {
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], afterRemoval(12));
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/after removing w2\/web3: 8 of 8 5-tuples on survivors stayed, 4 of its own went to survivors$/);
    expect(v.threshold).toMatch(/none on the removed backend/);
  });
  it('passes a survivor tuple that moved with its cell, and says so', () => {
    const a = afterRemoval(12);
    a[0] = { ...a[0], first: B[1], second: B[1], predicted: B[1] };
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], a);
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/7 of 8 5-tuples on survivors stayed \(1 moved with their cell\)/);
  });
  it('fails a tuple that reached the removed backend after its removal', () => {
    const a = afterRemoval(12);
    a[2] = { ...a[2], first: B[2], second: B[2], predicted: B[0] };
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], a);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 5-tuples reached w2\/web3 after its removal: 10.0.0.1:40002/);
  });
  it('fails LB nodes that split a tuple after the removal', () => {
    const a = afterRemoval(12);
    a[1] = { ...a[1], second: B[0] };
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lbA', 'lbB'], a);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(
      /after the removal 1 of 12 5-tuples reached different backends: 10.0.0.1:40001 .*: w2\/web2 via lbA, w1\/web1 via lbB/,
    );
  });
  it('fails a survivor tuple that moved where the new table keeps its cell', () => {
    const a = afterRemoval(12);
    a[0] = { ...a[0], first: B[1], second: B[1] };
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], a);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(
      /another backend than the new table predicts: 10.0.0.1:40000 .*: w2\/web2 \(was w1\/web1\), predicted w1\/web1/,
    );
  });
  it('fails a survivor tuple that moved when no prediction was made', () => {
    const a = afterRemoval(12).map((t) => ({ ...t, predicted: undefined }));
    a[0] = { ...a[0], first: B[1], second: B[1] };
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], a);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 5-tuples on survivors moved after removing w2\/web3: 10.0.0.1:40000 .*: w1\/web1 -> w2\/web2/);
  });
  it('errors with too few answered after, or no tuple on the removed backend or on survivors before', () => {
    const few = afterRemoval(12).map((t, i) => (i < 3 ? { ...t, second: undefined } : t));
    expect(judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], few).reason).toMatch(
      /could not establish: after the removal 9 of 12 5-tuples were answered through both \(10 needed\)/,
    );
    const noneOnRemoved = afterRemoval(12).map((t) => ({ ...t, before: B[0], first: B[0], second: B[0], predicted: B[0] }));
    const v = judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], noneOnRemoved);
    expect(v.status).toBe('error');
    expect(v.reason).toMatch(/none of the 5-tuples were on w2\/web3/);
    const allOnRemoved = afterRemoval(12).map((t) => ({ ...t, before: B[2], first: B[0], second: B[0], predicted: B[0] }));
    expect(judgeMaglevConsistency([removal(3)], agreeing(12), ['lb1', 'lb2'], allOnRemoved).reason).toMatch(
      /no 5-tuples were on a survivor/,
    );
  });
});

const zeroRun = (over: Partial<WeightZeroRun> = {}): WeightZeroRun => ({
  node: 'lb1',
  frontend: 'web 172.30.0.10:80/TCP',
  zeroed: ['w2/web3'],
  backends: B,
  shareBefore: 1 / 3,
  cells: 0,
  tried: 30,
  answeredBy: { 'w1/web1': 15, 'w2/web2': 15 },
  ...over,
});

describe('judgeWeightZero', () => {
  it('needs (1 - share)^K <= 0.001 flows: 18 at a third, 10 at least', () => {
    expect(weightZeroFlowsNeeded(1 / 3)).toBe(18);
    expect(weightZeroFlowsNeeded(0.01)).toBe(688);
    expect(weightZeroFlowsNeeded(1)).toBe(10);
    expect(weightZeroFlowsNeeded(0.9)).toBe(10);
  });
  it('passes when no new flow reached the weight-0 backend', () => {
    const v = judgeWeightZero([zeroRun()]);
    expect(v.status).toBe('pass');
    expect(v.reason).toMatch(/30 flows answered, none by w2\/web3 \(18 needed\)/);
  });
  it('passes all backends at 0 when no flow was answered', () => {
    const v = judgeWeightZero([zeroRun({ zeroed: B, shareBefore: 1, tried: 12, answeredBy: {} })]);
    expect(v.status).toBe('pass');
  });
  it('fails a flow answered by the weight-0 backend', () => {
    const v = judgeWeightZero([zeroRun({ answeredBy: { 'w1/web1': 15, 'w2/web2': 14, 'w2/web3': 1 } })]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/1 of 30 new flows reached w2\/web3 at weight 0/);
  });
  it('fails cells left to the weight-0 backend', () => {
    expect(judgeWeightZero([zeroRun({ cells: 1 })]).reason).toMatch(/still own 1 cells/);
  });
  it('fails answers when every backend is at 0', () => {
    const v = judgeWeightZero([zeroRun({ zeroed: B, shareBefore: 1, tried: 12, answeredBy: { 'w1/web1': 1 } })]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/w1\/web1 at weight 0|yet 1 flows were answered/);
  });
  it('errors with too few flows to judge, no zeroed backend, or no share before', () => {
    const few = judgeWeightZero([zeroRun({ answeredBy: { 'w1/web1': 9, 'w2/web2': 8 } })]);
    expect(few.status).toBe('error');
    expect(few.reason).toMatch(/17 flows answered; 18 are needed \(w2\/web3 owned 33.33% of the table before\)/);
    expect(judgeWeightZero([]).status).toBe('error');
    expect(judgeWeightZero([zeroRun({ zeroed: [] })]).status).toBe('error');
    expect(judgeWeightZero([zeroRun({ shareBefore: 0 })]).status).toBe('error');
  });
});
