import { describe, expect, it } from 'vitest';
import { memAvailableMb, memoryRefusal } from '../../src/backends/qemu/memory.js';

const meminfo = (kb: number) => `MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   ${kb} kB\n`;

describe('VM memory refusal', () => {
  it('reads MemAvailable in MiB, undefined without it', () => {
    expect(memAvailableMb(meminfo(2_097_152))).toBe(2048);
    expect(memAvailableMb('MemTotal: 1 kB\n')).toBeUndefined();
  });
  it('refuses VMs that need more than is available, with the figures', () => {
    const e = memoryRefusal(3, 1024, meminfo(2_097_152));
    expect(e?.code).toBe('E_REQUIREMENT');
    expect(e?.message).toBe(
      '3 VMs of 1024 MiB need 3072 MiB of memory; this machine has 2048 MiB available (MemAvailable in /proc/meminfo)',
    );
  });
  it('lets VMs that fit through, the exact fit included', () => {
    expect(memoryRefusal(2, 1024, meminfo(2_097_152))).toBeUndefined();
    expect(memoryRefusal(1, 1024, meminfo(1_000))).toBeDefined();
    expect(memoryRefusal(5, 1024, 'no meminfo')).toBeUndefined();
  });
});
