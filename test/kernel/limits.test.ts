import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memAvailableMb } from '../../src/backends/qemu/memory.js';
import { VM_MEMORY_MB } from '../../src/backends/qemu/vm.js';
import { topo } from './helpers.js';
import { labCli, taggedProcesses } from './rel-harness.js';

/** A topology larger than this machine is refused up front (issue 15): exit 2 with the reason, nothing created. */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-rel-lim-'));
const LAB = 'rel-mem';
afterAll(() => rmSync(STATE, { recursive: true, force: true }));

describe('resource limits', () => {
  it('VMs needing more memory than MemAvailable: exit 2 naming the figures, no VM, no state', async () => {
    const avail = memAvailableMb(readFileSync('/proc/meminfo', 'utf8'));
    expect(avail).toBeGreaterThan(0);
    const nodes = Math.ceil(avail! / VM_MEMORY_MB) + 2;
    const text = `name: ${LAB}\nbackend: qemu\nkernel: "6.12"\nnodes:\n${Array.from({ length: nodes }, (_, i) => `  - name: n${i}\n    pods:\n      - name: p\n`).join('')}`;
    const cwd = mkdtempSync(join(tmpdir(), 'dpl-rel-lim-cwd-'));
    const r = await labCli(STATE, ['up', topo(text)], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`${nodes} VMs of ${VM_MEMORY_MB} MiB need ${nodes * VM_MEMORY_MB} MiB of memory; this machine has \\d+ MiB available`),
    );
    expect(existsSync(join(STATE, LAB))).toBe(false);
    expect(readdirSync(STATE).filter((d) => !d.startsWith('.'))).toEqual([]);
    expect(taggedProcesses(LAB)).toEqual([]);
    rmSync(cwd, { recursive: true, force: true });
  }, 30_000);
});
