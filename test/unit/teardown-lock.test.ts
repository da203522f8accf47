import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backends/backend.js';
import { Journal, type JournalEntry } from '../../src/lifecycle/journal.js';
import { teardownLab } from '../../src/lifecycle/teardown.js';

/** A backend whose destroy takes a few timer turns (as a real one awaits its processes), counting what it was handed. */
function slowBackend() {
  const handed: number[] = [];
  const make = () =>
    ({
      destroy: async (entries: JournalEntry[]) => {
        handed.push(...entries.map((e) => e.seq));
        await new Promise((r) => setTimeout(r, 20));
        return { gone: entries.map((e) => e.seq), left: [] };
      },
    }) as unknown as Backend;
  return { handed, make };
}

describe('two teardowns of one lab at once', () => {
  let root = '';
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'dpl-rel-lock-'));
    process.env.DPL_STATE_DIR = root;
  });

  it('the second waits for the first and finds nothing left: each object is handed over once', async () => {
    Journal.create('l1').record({ backend: 'local' }, [
      { kind: 'netns', name: 'a' },
      { kind: 'netns', name: 'b' },
    ]);
    const { handed, make } = slowBackend();
    const rs = await Promise.all([teardownLab('l1', () => {}, make), teardownLab('l1', () => {}, make)]);
    expect(handed.sort()).toEqual([1, 2]);
    expect(rs.map((r) => r.removed).sort()).toEqual([0, 2]);
    expect(Journal.open('l1')).toBeUndefined();
    expect(readdirSync(root)).toEqual([]);
  });

  it('takes over a lock whose holder is dead (a kill -9 mid-teardown)', async () => {
    Journal.create('l2').record({ backend: 'local' }, [{ kind: 'netns', name: 'a' }]);
    // pid 1 with a start time it never had: not the holder that wrote the lock.
    writeFileSync(join(root, '.l2.teardown.lock'), '1 0');
    const { make } = slowBackend();
    expect(await teardownLab('l2', () => {}, make)).toEqual({ removed: 1, left: [] });
    expect(existsSync(join(root, '.l2.teardown.lock'))).toBe(false);
  });
});
