import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/checks/check.js';
import { flakeJunit, flakeStats, flakeTable } from '../../src/report/repeat.js';

const result = (status: CheckResult['status'], retries?: number): CheckResult => ({
  id: 'backpressure',
  title: 'backpressure',
  status,
  reason: status === 'pass' ? 'ok' : 'no queue',
  metrics: {},
  evidence: [],
  ms: 10,
  ...(retries ? { retries: { count: retries, why: 'a shaped flow queued too rarely: shaped lower, ran longer' } } : {}),
});

describe('retries a check makes by design', () => {
  it('are counted apart from the verdicts: a retried pass is still one pass, and the retries are shown with their runs', () => {
    const [s] = flakeStats([[result('pass', 1)], [result('pass')], [result('error', 2)]]);
    expect(s!.counts).toEqual({ pass: 2, fail: 0, error: 1, skip: 0 });
    expect(s!.retries).toEqual({ count: 3, runs: [1, 3], why: ['a shaped flow queued too rarely: shaped lower, ran longer'] });
    expect(flakeTable([s!])).toMatch(/3 retries by design in runs 1,3 \(a shaped/);
    expect(flakeJunit('lab', [s!], 30)).toContain('<property name="retriesByDesign" value="3"/>');
  });

  it('are zero and not shown when no run retried', () => {
    const [s] = flakeStats([[result('pass')], [result('fail')]]);
    expect(s!.retries).toEqual({ count: 0, runs: [], why: [] });
    expect(flakeTable([s!])).not.toMatch(/by design/);
  });
});
