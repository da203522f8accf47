import { describe, expect, it } from 'vitest';
import { median, parseSsWmem, parseTcBacklog } from '../../src/measure/flow.js';
import { chosenSize } from '../../src/datapath/bigtcp/bigtcp.js';
import { endpointKey, endpointValue } from '../../src/datapath/host-routing/host-routing.js';
import { junitXml } from '../../src/report/junit.js';
import { SampleParser, SAMPLER_SCRIPT } from '../../src/measure/sampler.js';
import { parseSockperf } from '../../src/measure/rr.js';
import { rateBps } from '../../src/measure/bottleneck.js';
import { checksTable } from '../../src/report/table.js';

describe('parsers of kernel tool output', () => {
  it('sums skmem t over the sockets ss lists', () => {
    const ss = `ESTAB 0 0 10.244.1.2:40000 10.255.1.2:5201\n\t skmem:(r0,rb131072,t0,tb46080,f0,w0,o0,bl0,d0) cubic\nESTAB 0 1200 10.244.1.2:40002 10.255.1.2:5201\n\t skmem:(r0,rb131072,t151832,tb4194304,f1200,w0,o0,bl0,d0) bbr`;
    expect(parseSsWmem(ss)).toBe(151832);
    expect(parseSsWmem('')).toBeUndefined();
    expect(parseSsWmem('ESTAB 0 0 a:1 b:5201\n\t skmem:(r0,rb131072,t0,tb46080)')).toBe(0);
  });
  it('reads the root qdisc backlog from tc -s -j', () => {
    expect(parseTcBacklog([{ kind: 'tbf', handle: '8001:', root: true, backlog: 122634, qlen: 3 }])).toBe(122634);
    expect(parseTcBacklog([{ kind: 'noqueue', handle: '0:', root: false }])).toBeUndefined();
  });
  it('median of even and odd series', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([0, 0, 10, 20])).toBe(5);
    expect(median([])).toBe(0);
  });
});

describe('datapath encodings', () => {
  it('TSO probing clamps BIG TCP to the device limit', () => {
    expect(chosenSize(524280, true)).toBe(196608); // veth
    expect(chosenSize(65536, true)).toBe(65536); // virtio-net reports 65536
    expect(chosenSize(524280, false)).toBe(65536);
  });
  it('endpoint map keys and values match struct ep_key / ep_info', () => {
    expect(endpointKey('10.244.1.2')).toBe('04 00 00 00 0a f4 01 02' + ' 00'.repeat(12));
    expect(endpointKey('fd00:244:1::2')).toBe('06 00 00 00 fd 00 02 44 00 01' + ' 00'.repeat(9) + ' 02');
    expect(endpointValue({ ifindex: 258 })).toBe('02 01 00 00 01 00 00 00' + ' 00'.repeat(12));
  });
});

describe('junit', () => {
  it('one testcase per check, skips skipped, failures with evidence, escaped', () => {
    const xml = junitXml('q', [
      { id: 'bigtcp', title: '', status: 'skip', reason: 'needs <two> pods', metrics: {}, evidence: [], ms: 0 },
      { id: 'backpressure', title: '', status: 'fail', reason: 'wmem 0', metrics: {}, evidence: ['ss & tc'], ms: 1500 },
      { id: 'tso-probe', title: '', status: 'pass', reason: 'ok', metrics: {}, evidence: [], ms: 10 },
    ]);
    expect(xml).toContain('tests="3" failures="1" errors="0" skipped="1"');
    expect(xml).toContain('<skipped message="needs &lt;two&gt; pods"/>');
    expect(xml).toContain('<failure message="wmem 0">ss &amp; tc</failure>');
    expect(xml.match(/<testcase /g)).toHaveLength(3);
  });
  it('errors as <error> with their evidence, counted apart from failures', () => {
    const xml = junitXml('q', [
      { id: 'backpressure', title: '', status: 'error', reason: 'could not establish: no queue', metrics: {}, evidence: ['tc'], ms: 1 },
    ]);
    expect(xml).toContain('tests="1" failures="0" errors="1" skipped="0"');
    expect(xml).toContain('<error message="could not establish: no queue">tc</error>');
    expect(checksTable([{ id: 'backpressure', title: '', status: 'error', reason: 'x', metrics: {}, evidence: [], ms: 1 }])).toContain(
      'ERROR',
    );
  });
});

describe('the node-side sampler', () => {
  const rec = (up: string, ss: string, tc: string) => `--dpl-sample-- ${up}\n${ss}\n--dpl-tc--\n${tc}\n\n--dpl-end--\n`;
  const ss = 'ESTAB 0 0 10.244.1.2:40000 10.255.1.2:5201\n\t skmem:(r0,rb131072,t151832,tb46080)';
  const tc = '[{"kind":"tbf","handle":"8001:","root":true,"backlog":122634,"qlen":3}]';
  it('parses records split anywhere across chunks, timestamped by the node', () => {
    const text = rec('100.25', ss, tc) + rec('100.35', '', tc) + rec('100.46', ss, '');
    const p = new SampleParser();
    const got = [...text].flatMap((c) => p.push(c));
    expect(got.map((r) => r.sample)).toEqual([
      { t: 0, wmem: 151832, backlog: 122634, notsent: 0 },
      { t: 100, wmem: undefined, backlog: 122634, notsent: undefined },
      { t: 210, wmem: 151832, backlog: undefined, notsent: 0 },
    ]);
    expect(got[0].ss).toContain('skmem');
  });
  it('sums notsent over the sockets ss lists (0 where it omits it), none without a socket', () => {
    const two = `${ss} notsent:1448\n${ss.replace('40000', '40002')} bbr notsent:2896 minrtt:0.1`;
    expect(new SampleParser().push(rec('1.00', two, tc))[0].sample).toMatchObject({ wmem: 303664, notsent: 4344 });
  });
  it('keeps a record back until its end marker arrives', () => {
    const p = new SampleParser();
    const text = rec('5.00', ss, tc);
    expect(p.push(text.slice(0, -3))).toEqual([]);
    expect(p.push(text.slice(-3))).toHaveLength(1);
  });
  it('runs as one loop whose cadence is the sleep beside the readings, by absolute tool paths', () => {
    expect(SAMPLER_SCRIPT).toMatch(/sleep "\$6" & s=\$!/);
    expect(SAMPLER_SCRIPT).toContain('wait "$s"');
    expect(SAMPLER_SCRIPT).toContain('/proc/uptime');
    expect(SAMPLER_SCRIPT).toContain('/usr/sbin/tc -n "$3" -s -j qdisc');
  });
});

describe('measure parsers', () => {
  it('sockperf ping-pong with --full-rtt', () => {
    const out = [
      'sockperf: Summary: Round trip is 60.945 usec',
      'sockperf: \x1b[2;35mTotal 8713 observations\x1b[0m; each percentile contains 87.13 observations',
      'sockperf: ---> <MAX> observation = 34739.160',
      'sockperf: ---> percentile 99.000 =   46.993',
      'sockperf: ---> percentile 50.000 =   17.603',
      'sockperf: ---> <MIN> observation =   16.311',
    ].join('\n');
    expect(parseSockperf(out)).toEqual({
      observations: 8713,
      meanUs: 60.945,
      percentilesUs: { '99': 46.993, '50': 17.603 },
      maxUs: 34739.16,
      minUs: 16.311,
    });
    expect(parseSockperf('sockperf: connect failed')).toBeUndefined();
  });
  it('tc rates as bits per second', () => {
    expect(rateBps('200mbit')).toBe(2e8);
    expect(rateBps('1.5gbit')).toBe(1.5e9);
    expect(rateBps('10mbps')).toBe(8e7);
    expect(() => rateBps('fast')).toThrow();
  });
});
