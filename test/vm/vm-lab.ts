import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect } from 'vitest';
import type { LabContext } from '../../src/lifecycle/context.js';
import { attach } from '../../src/lifecycle/steps.js';
import { cli, residue, topo } from '../kernel/helpers.js';

/**
 * Live QEMU processes whose `-name` starts with `prefix` (a lab's guests are `-name LAB.NODE`).
 * Zombies are dead: this sandbox's init reaps daemonized ones lazily.
 */
export function qemus(prefix: string): string {
  try {
    return execFileSync('pgrep', ['-a', 'qemu-system'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(`-name ${prefix}`) && !l.includes('<defunct>'))
      .join('\n');
  } catch {
    return '';
  }
}

/** Work in a lab's guests through the lab's own backend, then let go of the agent (it serves one client at a time). */
export async function inGuest<T>(lab: string, fn: (ctx: LabContext) => Promise<T>): Promise<T> {
  const { ctx } = await attach(lab, new AbortController().signal, () => {});
  try {
    return await fn(ctx);
  } finally {
    ctx.backend.close?.();
  }
}

/** The VM lab a test file works on. */
export interface VmLab {
  /** Lab name (the topology's `name:`). */
  lab: string;
  /** The catalogue kernel its guests boot, fetched (or found cached) before anything else. */
  kernel: string;
  /** Topology text; with it the lab is brought up before the tests. Absent: the tests bring it up (`lab run`). */
  topology?: string;
}

/**
 * The hooks every VM test file opens with: fetch the kernel (and bring the lab up) before its
 * tests; after them, tear the lab down and require that no QEMU of it runs and nothing is left.
 */
export function vmLab({ lab, kernel, topology }: VmLab): void {
  beforeAll(async () => {
    expect((await cli(['kernels', 'fetch', kernel])).code).toBe(0);
    if (topology === undefined) return;
    const up = await cli(['up', topo(topology), '-q']);
    expect(up.code, up.stderr).toBe(0);
  });
  afterAll(async () => {
    await cli(['down', lab, '-q']);
    expect(qemus(`${lab}.`)).toBe('');
    expect(await residue(lab)).toEqual([]);
  });
}
