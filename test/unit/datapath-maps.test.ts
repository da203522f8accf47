import { describe, expect, it } from 'vitest';
import { endpointKey, endpointValue, linkMac } from '../../src/datapath/host-routing/endpoints.js';
import { counterDelta, DATAPATH_COUNTERS, parseDatapathCounters } from '../../src/measure/datapath-counters.js';

describe('endpoints map encoding (struct ep_key / ep_info, bpf/include/host_routing.h)', () => {
  it('a veth pod: ifindex little endian, no flags, pod MAC then node MAC', () => {
    const v = endpointValue({ ifindex: 0x01020304, mac: 'AA:bb:cc:00:11:22', nodeMac: '02:00:00:00:00:01' });
    expect(v).toBe('04 03 02 01 00 00 00 00 aa bb cc 00 11 22 02 00 00 00 00 01');
    expect(v.split(' ')).toHaveLength(20);
  });
  it('without both MACs (netkit L3) the value says EP_F_NO_L2 and carries zeros', () => {
    expect(endpointValue({ ifindex: 7, nodeMac: '02:00:00:00:00:01' })).toBe('07 00 00 00 01 00 00 00' + ' 00'.repeat(12));
    expect(endpointValue({ ifindex: 7, mac: '02:00:00:00:00:01' })).toBe('07 00 00 00 01 00 00 00' + ' 00'.repeat(12));
  });
  it('refuses what is not a MAC or an address', () => {
    expect(() => endpointValue({ ifindex: 1, mac: '02:00:00:00:00', nodeMac: '02:00:00:00:00:01' })).toThrow(/not a MAC/);
    expect(() => endpointKey('10.244.1')).toThrow(/not an IPv4 or IPv6/);
  });
  it('reads a MAC from ip -j link, none for netkit L3 (all zero) or a missing field', () => {
    expect(linkMac({ ifname: 'lxc-a', address: '9E:1f:00:aa:bb:cc' })).toBe('9e:1f:00:aa:bb:cc');
    expect(linkMac({ ifname: 'lxc-a', address: '00:00:00:00:00:00' })).toBeUndefined();
    expect(linkMac({ ifname: 'lxc-a' })).toBeUndefined();
    expect(linkMac(undefined)).toBeUndefined();
  });
});

/** A dump as bpftool 7.5 prints a BTF per-CPU array on two CPUs. */
const dump = (n: number, f: (key: number, cpu: number) => number) =>
  Array.from({ length: n }, (_, key) => ({
    key: ['0x00'],
    values: [],
    formatted: { key, values: [0, 1].map((cpu) => ({ cpu, value: f(key, cpu) })) },
  }));

describe('datapath counters', () => {
  it('sums per-CPU values by enum index', () => {
    const c = parseDatapathCounters(dump(DATAPATH_COUNTERS.length, (k, cpu) => k * 10 + cpu));
    expect(c.redirectPeer).toBe(1);
    expect(c.redirectFib).toBe(41);
    expect(c.dropSpoof).toBe(101);
    expect(Object.keys(c)).toEqual([...DATAPATH_COUNTERS]);
  });
  it('refuses a dump missing a counter (another map), or one without BTF formatting', () => {
    expect(() => parseDatapathCounters(dump(4, () => 1))).toThrow(/dropSpoof/);
    expect(() => parseDatapathCounters([{ key: ['0x00'], value: ['0x01'] }])).toThrow();
    expect(() => parseDatapathCounters(null)).toThrow();
  });
  it('delta per counter', () => {
    const a = parseDatapathCounters(dump(DATAPATH_COUNTERS.length, () => 1));
    const b = parseDatapathCounters(dump(DATAPATH_COUNTERS.length, (k) => (k === 2 ? 5 : 1)));
    expect(counterDelta(a, b).redirectFib).toBe(8);
    expect(counterDelta(a, b).toStack).toBe(0);
  });
});
