import { describe, expect, it } from 'vitest';
import { NETNS_KIB, netnsMemoryRefusal, readMeminfo } from '../../src/backends/netns-memory.js';

const meminfo = (kb: number) => `MemTotal:        1000000 kB\nMemAvailable:    ${kb} kB\n`;

describe('network namespaces against MemAvailable', () => {
  it('refuses a lab whose namespaces need more kernel memory than is available, naming the figures', () => {
    const e = netnsMemoryRefusal(1002, meminfo(200 * 1024));
    expect(e?.code).toBe('E_REQUIREMENT');
    expect(e?.message).toBe(
      `the lab needs 1002 network namespaces of at least ${NETNS_KIB} KiB of kernel memory each (251 MiB); this machine has 200 MiB available (MemAvailable in /proc/meminfo)`,
    );
  });

  it('lets through a lab that fits to the MiB, and one whose MemAvailable cannot be read', () => {
    const fits = (1024 / NETNS_KIB) * 300;
    expect(netnsMemoryRefusal(fits, meminfo(300 * 1024))).toBeUndefined();
    expect(netnsMemoryRefusal(fits + 1, meminfo(300 * 1024))).toBeDefined();
    expect(netnsMemoryRefusal(10 ** 6, 'MemTotal: 1 kB\n')).toBeUndefined();
  });

  it('reads this machine’s MemAvailable', () => {
    expect(readMeminfo()).toMatch(/^MemAvailable:\s+\d+ kB$/m);
  });
});
