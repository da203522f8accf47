import { describe, expect, it } from 'vitest';
import { contains, formatAddr, nthAddr, overlaps, parseAddr, parsePrefix } from '../../src/topology/ip.js';

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
});
