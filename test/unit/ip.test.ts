import { describe, expect, it } from 'vitest';
import { addrProblem, contains, formatAddr, nthAddr, overlaps, parseAddr, parsePrefix, prefixProblem } from '../../src/topology/ip.js';

describe('ip arithmetic', () => {
  it('parses and formats IPv4 and IPv6', () => {
    expect(formatAddr(4, parseAddr('10.244.1.2')!.value)).toBe('10.244.1.2');
    expect(formatAddr(6, parseAddr('fd00:244:1::2')!.value)).toBe('fd00:244:1::2');
    expect(formatAddr(6, parseAddr('2001:db8:0:0:1:0:0:1')!.value)).toBe('2001:db8::1:0:0:1');
    expect(formatAddr(6, 0n)).toBe('::');
    expect(parseAddr('10.0.0.256')).toBeUndefined();
    expect(parseAddr('1::2::3')).toBeUndefined();
  });
  it('takes the n-th host and refuses past the end', () => {
    expect(nthAddr(parsePrefix('10.255.1.0/30')!, 2)).toBe('10.255.1.2');
    expect(nthAddr(parsePrefix('10.255.1.0/30')!, 4)).toBeUndefined();
    expect(nthAddr(parsePrefix('fd00:244:a::/64')!, 1)).toBe('fd00:244:a::1');
  });
  it('masks the base, tests membership and overlap', () => {
    expect(parsePrefix('10.1.2.3/24')!.base).toBe(parseAddr('10.1.2.0')!.value);
    expect(contains(parsePrefix('10.1.2.0/24')!, '10.1.2.200')).toBe(true);
    expect(contains(parsePrefix('10.1.2.0/24')!, '10.1.3.1')).toBe(false);
    expect(overlaps(parsePrefix('10.0.0.0/8')!, parsePrefix('10.5.0.0/16')!)).toBe(true);
    expect(overlaps(parsePrefix('10.0.0.0/24')!, parsePrefix('10.0.1.0/24')!)).toBe(false);
    expect(overlaps(parsePrefix('fd00::/64')!, parsePrefix('10.0.0.0/8')!)).toBe(false);
  });
  it('reads IPv4 strictly: four octets up to 255, no leading zeros, no extras', () => {
    for (const bad of ['10.1.1.300', '10.1.1', '10.1.1.1.1', '010.1.1.1', '10.1.1.-1', '10.1.1.1 ', '', '1e1.1.1.1', '0x0a.1.1.1'])
      expect(parseAddr(bad), bad).toBeUndefined();
    expect(parseAddr('0.0.0.0')?.value).toBe(0n);
    expect(parseAddr('255.255.255.255')?.value).toBe(0xffffffffn);
  });
  it('reads IPv6 text: :: for one or more zero groups, a dotted quad at the end, nothing else', () => {
    expect(parseAddr('::')?.value).toBe(0n);
    expect(parseAddr('::1')?.value).toBe(1n);
    expect(parseAddr('1::')?.value).toBe(1n << 112n);
    expect(formatAddr(6, parseAddr('::ffff:10.1.2.3')!.value)).toBe('::ffff:a01:203');
    expect(parseAddr('1:2:3:4:5:6:7::')?.family).toBe(6);
    for (const bad of [
      '1:2:3:4:5:6:7:8::',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      ':1::',
      '1:::2',
      'fd00::g',
      'fd00::12345',
      'fe80::1%eth0',
      '::10.1.1.300',
    ])
      expect(parseAddr(bad), bad).toBeUndefined();
  });
  it('reads prefixes: a length in range and written plainly', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '10.0.0.0/1.5', 'fd00::/129', '10.0.0.0/24/1'])
      expect(parsePrefix(bad), bad).toBeUndefined();
    expect(parsePrefix('fd00::/128')?.len).toBe(128);
    expect(parsePrefix('0.0.0.0/0')?.len).toBe(0);
  });
  it('says what is wrong with an address or prefix', () => {
    expect(addrProblem('10.1.1.300', 4)).toBe("'10.1.1.300' is not an IPv4 address (like 10.244.1.2)");
    expect(addrProblem('fd00::1', 4)).toBe("'fd00::1' is an IPv6 address; this field takes IPv4 (like 10.244.1.2)");
    expect(addrProblem('fd00::1', 6)).toBeUndefined();
    expect(prefixProblem('10.1.1.0/24', 4)).toBeUndefined();
    expect(prefixProblem('10.1.1.300/24', 4)).toBe(
      "'10.1.1.300/24' is not an IPv4 prefix: '10.1.1.300' is not an IPv4 address (like 10.244.1.0/24)",
    );
    expect(prefixProblem('10.1.1.0/40', 4)).toBe("'10.1.1.0/40': prefix length '40' is not a number from 0 to 32");
    expect(prefixProblem('fd00::1/64', 6)).toBe("'fd00::1/64' has host bits set; the prefix is fd00::/64");
    expect(prefixProblem('fd00::', 6)).toBe("'fd00::' is not an IPv6 prefix: it lacks /LENGTH (like fd00:244:1::/64)");
  });
});
