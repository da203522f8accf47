import { describe, expect, it } from 'vitest';
import { judgeConnectivity, plannedAttempts, type Attempt } from '../../src/checks/connectivity.js';
import { parseConnect, parseConnectLines } from '../../src/measure/connect.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import type { Family } from '../../src/topology/schema.js';

const a = (from: string, to: string, family: Family, outcome: Attempt['outcome'] = 'refused', errno?: string): Attempt => ({
  from,
  to,
  kind: to.includes('/') ? 'pod' : 'peer',
  family,
  addr: family === 'ipv4' ? '10.244.3.2' : 'fd00:244:3::2',
  outcome,
  errno: errno ?? (outcome === 'refused' ? 'ECONNREFUSED' : undefined),
  ms: 3,
});
/** A full matrix between two pods and a peer, both families, every attempt refused (reached). */
const full = (): Attempt[] =>
  (['ipv4', 'ipv6'] as const).flatMap((f) => [
    a('left/a', 'right/x', f),
    a('right/x', 'left/a', f),
    a('left/a', 'web', f),
    a('right/x', 'web', f),
  ]);
const both: Family[] = ['ipv4', 'ipv6'];

describe('connectivity verdict', () => {
  it('passes when every attempt was answered by its destination (refused or connected)', () => {
    const m = full();
    m[0].outcome = 'connected';
    const v = judgeConnectivity(m, both);
    expect(v.status).toBe('pass');
    expect(v.reason).toContain('all 8 attempts (ipv4 4, ipv6 4)');
  });
  it('fails when one pair is unreachable, naming it', () => {
    const m = full();
    m[1] = a('right/x', 'left/a', 'ipv4', 'unreachable', 'EHOSTUNREACH');
    const v = judgeConnectivity(m, both);
    expect(v.status).toBe('fail');
    expect(v.reason).toBe('1 of 8 attempts did not reach: right/x -> left/a ipv4: unreachable (EHOSTUNREACH)');
  });
  it('fails when a pair reaches in one family only', () => {
    const m = full().map((x) => (x.family === 'ipv6' && x.to === 'web' ? { ...x, outcome: 'timeout' as const, errno: 'ETIMEDOUT' } : x));
    const v = judgeConnectivity(m, both);
    expect(v.status).toBe('fail');
    expect(v.reason).toContain('left/a -> web ipv6: timeout (ETIMEDOUT)');
    expect(v.reason).toContain('right/x -> web ipv6: timeout');
    expect(v.reason).not.toContain('ipv4:');
  });
  it('an empty matrix does not pass', () => {
    expect(judgeConnectivity([], both)).toMatchObject({ status: 'error', reason: expect.stringContaining('could not establish') });
  });
  it('a family of the lab with no attempt at all does not pass', () => {
    const v = judgeConnectivity(
      full().filter((x) => x.family === 'ipv4'),
      both,
    );
    expect(v).toMatchObject({ status: 'error', reason: 'could not establish: no attempt in ipv6' });
  });
  it('attempts that could not run are not a pass, and not the kernel saying no', () => {
    const m = full();
    m[2] = a('left/a', 'web', 'ipv4', 'error');
    expect(judgeConnectivity(m, both).status).toBe('error');
    m[3] = a('right/x', 'web', 'ipv4', 'unreachable', 'ENETUNREACH');
    const v = judgeConnectivity(m, both);
    expect(v.status).toBe('fail');
    expect(v.reason).toContain('1 attempts could not run');
  });
  it('names the separate parts of a topology whose nodes are not all linked', () => {
    const m = full();
    m[0] = a('left/a', 'right/x', 'ipv4', 'unreachable', 'ENETUNREACH');
    expect(judgeConnectivity(m, both, [['left'], ['right']]).reason).toContain(
      'nodes in separate parts, no path of links between them: [left] [right]',
    );
  });
  it('lists at most a dozen pairs and counts the rest', () => {
    const m = Array.from({ length: 20 }, (_, i) => a(`n/p${i}`, 'web', 'ipv4', 'timeout', 'ETIMEDOUT'));
    const v = judgeConnectivity(m, ['ipv4']);
    expect(v.reason).toMatch(/^20 of 20 attempts did not reach: .*; and 8 more$/);
  });
});

describe('connect outcome from iperf3', () => {
  const e = (s: string) => `iperf3: error - unable to connect to server: ${s}`;
  it.each([
    [e('Connection refused'), 'refused', 'ECONNREFUSED'],
    [e('Connection timed out'), 'timeout', 'ETIMEDOUT'],
    [e('No route to host'), 'unreachable', 'EHOSTUNREACH'],
    [e('Network is unreachable'), 'unreachable', 'ENETUNREACH'],
    [e('Permission denied'), 'unreachable', 'EACCES'],
    [e('Invalid argument'), 'unreachable', 'EINVAL'],
    ['iperf3: error - unable to connect to server - server may have exited: Connection refused', 'refused', 'ECONNREFUSED'],
  ])('%s', (text, outcome, errno) => {
    expect(parseConnect(1, `\n${text}\n`)).toMatchObject({ outcome, errno });
  });
  it('a handshake that completed with something that is not iperf3 is connected', () => {
    expect(parseConnect(1, 'iperf3: error - control socket has closed unexpectedly').outcome).toBe('connected');
    expect(parseConnect(0, 'iperf Done.').outcome).toBe('connected');
  });
  it('anything else is an error, not a reachability verdict', () => {
    expect(parseConnect(127, 'iperf3: not found')).toMatchObject({ outcome: 'error', detail: 'iperf3: not found' });
    expect(parseConnect(1, e('Address family not supported by protocol')).outcome).toBe('error');
    expect(parseConnect(1, '')).toMatchObject({ outcome: 'error', detail: 'exit 1' });
  });
});

describe('connectivity attempts', () => {
  it('every pod to every other pod and every peer, in each family', () => {
    const text = `name: t\nfamilies: [ipv4, ipv6]\nnodes:\n  - name: l\n    pods: [{ name: a }, { name: b }]\n    uplink: { peer: w }\n  - name: r\n    pods: [{ name: x }]\nlinks:\n  - endpoints: [l, r]\n`;
    const p = parseTopology(text, 'lab.yaml');
    if (!p.ok) throw new Error('parse');
    const r = resolve(p.value);
    if (!r.ok) throw new Error('resolve');
    const att = plannedAttempts(r.value);
    // 3 pods x (2 other pods + 1 peer) x 2 families.
    expect(att.length).toBe(18);
    expect(att.filter((x) => x.from === 'l/a' && x.family === 'ipv6').map((x) => `${x.to.label} ${x.addr}`)).toEqual([
      'l/b fd00:244:1::3',
      'r/x fd00:244:2::2',
      'w fd00:255:1::2',
    ]);
  });
});

describe('connect script lines', () => {
  it('each attempt by index, with its time from the two uptime readings; a missing line is an error', () => {
    const out = [
      '1 1 1041.27 1041.30 iperf3: error - unable to connect to server: Connection refused',
      '0 1 1041.25 1043.76 iperf3: error - unable to connect to server: Connection timed out',
    ].join('\n');
    expect(parseConnectLines(out, 3)).toEqual([
      { outcome: 'timeout', errno: 'ETIMEDOUT', ms: 2510, detail: 'iperf3: error - unable to connect to server: Connection timed out' },
      { outcome: 'refused', errno: 'ECONNREFUSED', ms: 30, detail: 'iperf3: error - unable to connect to server: Connection refused' },
      { outcome: 'error', ms: 0, detail: 'no result from the connect script' },
    ]);
  });
});
