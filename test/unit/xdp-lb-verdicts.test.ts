import { describe, expect, it } from 'vitest';
import { type InXdpRun, judgeInXdp } from '../../src/checks/xdp-lb-verdicts.js';

const ok: InXdpRun = {
  node: 'lb1',
  frontend: '10.96.0.10:53/UDP',
  sent: 60,
  answered: 60,
  xdpCounted: 60,
  stackDelta: 61,
  expectedOther: 60,
  control: { sent: 20, stackDelta: 21, xdpPassed: 20 },
};

describe('judgeInXdp', () => {
  it('passes when XDP counted every request and the stack only what it carries anyway', () => {
    expect(judgeInXdp([ok]).status).toBe('pass');
  });

  it('fails when the stack saw the requests', () => {
    const v = judgeInXdp([{ ...ok, stackDelta: 120 }]);
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/reached the stack/);
  });

  it('fails when the XDP program missed requests', () => {
    expect(judgeInXdp([{ ...ok, xdpCounted: 30 }]).status).toBe('fail');
  });

  it('errors without a working control, too few or unanswered requests, or nothing measured', () => {
    expect(judgeInXdp([]).status).toBe('error');
    expect(judgeInXdp([{ ...ok, control: undefined }]).status).toBe('error');
    expect(judgeInXdp([{ ...ok, control: { sent: 20, stackDelta: 3, xdpPassed: 20 } }]).reason).toMatch(/cannot see them/);
    expect(judgeInXdp([{ ...ok, control: { sent: 20, stackDelta: 20, xdpPassed: 0 } }]).reason).toMatch(/did not take/);
    expect(judgeInXdp([{ ...ok, sent: 5, answered: 5, xdpCounted: 5 }]).status).toBe('error');
    expect(judgeInXdp([{ ...ok, answered: 10 }]).status).toBe('error');
  });
});
