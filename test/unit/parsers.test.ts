import { describe, expect, it } from 'vitest';
import { median, parseSsWmem, parseTcBacklog } from '../../src/measure/flow.js';
import { chosenSize } from '../../src/datapath/bigtcp/bigtcp.js';
import { endpointKey, endpointValue } from '../../src/datapath/host-routing/host-routing.js';
import { junitXml } from '../../src/report/junit.js';

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
    expect(chosenSize(65536, true)).toBe(65536); // virtio-net (FACTS.md)
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
    expect(xml).toContain('tests="3" failures="1" skipped="1"');
    expect(xml).toContain('<skipped message="needs &lt;two&gt; pods"/>');
    expect(xml).toContain('<failure message="wmem 0">ss &amp; tc</failure>');
    expect(xml.match(/<testcase /g)).toHaveLength(3);
  });
});
