import { describe, expect, it } from 'vitest';
import { judgeBackendRemoval, type RemovalRun } from '../../src/checks/svc-backend-removal.js';
import type { SvcAttempt } from '../../src/measure/services.js';

const at = (i: number, reply: string, stage = 'done', errno = '', op: SvcAttempt['op'] = 'tcp'): SvcAttempt => ({
  i,
  op,
  errno,
  stage,
  us: 90,
  peer: '10.96.0.10',
  peerPort: 80,
  reply,
});
const both = [at(0, 'n1/a'), at(1, 'n2/b')];
const hold = (...rest: SvcAttempt[]) => [at(0, 'n2/b', 'held', '', 'hold'), ...rest];
const run = (held?: SvcAttempt[]): RemovalRun => ({
  label: 'web 10.96.0.10:80/TCP',
  removed: 'n2/b',
  survivors: ['n1/a'],
  before: both,
  after: [at(0, 'n1/a'), at(1, 'n1/a')],
  restored: both,
  held,
});

describe('svc-backend-removal: a connection established to the removed backend', () => {
  it('passes when it kept answering through the removal, the last exchange after the new attempts', () => {
    const v = judgeBackendRemoval(run(hold(at(1, 'n2/b', 'done', '', 'hold'), at(2, 'n2/b', 'final', '', 'hold'))));
    expect(v.status, v.reason).toBe('pass');
    expect(v.reason).toMatch(/kept answering \(2 exchanges/);
  });

  it('fails when it broke or another backend answered on it', () => {
    const reset = judgeBackendRemoval(run(hold(at(1, 'n2/b', 'done', '', 'hold'), at(2, '', 'reply', 'ECONNRESET', 'hold'))));
    expect(reset.status).toBe('fail');
    expect(reset.reason).toMatch(/broke: #2 hold: ECONNRESET at reply/);
    expect(judgeBackendRemoval(run(hold(at(1, 'n1/a', 'final', '', 'hold')))).status).toBe('fail');
  });

  it('errors when no connection was held to it, or none exchanged after the removal', () => {
    const none = judgeBackendRemoval(run([at(0, 'n1/a', 'pick', 'ESRCH', 'hold')]));
    expect(none.status).toBe('error');
    expect(none.reason).toMatch(/could not establish: no connection held to n2\/b/);
    expect(judgeBackendRemoval(run([])).status).toBe('error');
    expect(judgeBackendRemoval(run(hold(at(1, 'n2/b', 'done', '', 'hold')))).reason).toMatch(/no exchange after the removal/);
  });
});
