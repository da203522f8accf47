import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { Journal, knownLabs, type JournalEntry } from '../../src/lifecycle/journal.js';
import { ownerRuns, teardownLab } from '../../src/lifecycle/teardown.js';
import type { Backend } from '../../src/backends/backend.js';

const o = { backend: 'local' };

describe('journal', () => {
  beforeEach(() => {
    process.env.DPL_STATE_DIR = mkdtempSync(join(tmpdir(), 'dpl-journal-'));
  });

  it('records before creation, marks gone, and lists what is live in order', () => {
    const j = Journal.create('a');
    const [n1, n2] = j.record(o, [
      { kind: 'netns', name: 'dpl-a.n1' },
      { kind: 'netns', name: 'dpl-a.n2' },
    ]);
    j.record(o, [{ kind: 'pin', path: '/sys/fs/bpf/dpl/a' }]);
    j.gone([n1.seq]);
    expect(j.live().map((e) => e.obj)).toEqual([
      { kind: 'netns', name: 'dpl-a.n2' },
      { kind: 'pin', path: '/sys/fs/bpf/dpl/a' },
    ]);
    expect(n2.seq).toBe(2);
    expect(knownLabs()).toEqual(['a']);
  });

  it('is read back by another process (reopen) and continues its sequence', () => {
    Journal.create('b').record(o, [{ kind: 'netns', name: 'x' }]);
    const j = Journal.open('b')!;
    const [e] = j.record(o, [{ kind: 'netns', name: 'y' }]);
    expect(e.seq).toBe(2);
    expect(j.live()).toHaveLength(2);
  });

  it('refuses a second journal for the same lab', () => {
    Journal.create('c');
    expect(() => Journal.create('c')).toThrow(/EEXIST/);
  });

  it('ignores a line torn by a crash mid-write', () => {
    const j = Journal.create('d');
    j.record(o, [{ kind: 'netns', name: 'x' }]);
    appendFileSync(j.file, '{"seq":2,"op":"cre');
    expect(
      Journal.open('d')!
        .live()
        .map((e) => e.obj),
    ).toEqual([{ kind: 'netns', name: 'x' }]);
  });

  it('close removes the lab state', () => {
    const j = Journal.create('e');
    j.close();
    expect(Journal.open('e')).toBeUndefined();
    expect(knownLabs()).toEqual([]);
  });
});

describe('teardown', () => {
  beforeEach(() => {
    process.env.DPL_STATE_DIR = mkdtempSync(join(tmpdir(), 'dpl-teardown-'));
  });

  /** Backends that record what they were handed, and leave what `stuck` names. */
  function owners(stuck: string[] = []) {
    const handed: string[][] = [];
    const make = (kind: string) =>
      ({
        kind,
        destroy: async (entries: JournalEntry[]) => {
          handed.push(entries.map((e) => `${kind}:${(e.obj as { name: string }).name}`));
          const left = entries.filter((e) => stuck.includes((e.obj as { name: string }).name));
          return {
            gone: entries.filter((e) => !left.includes(e)).map((e) => e.seq),
            left: left.map((e) => `stuck ${(e.obj as { name: string }).name}`),
          };
        },
      }) as unknown as Backend;
    return { handed, make };
  }

  it('replays strictly in reverse and hands each run of entries to the backend that owns it', async () => {
    const j = Journal.create('t1');
    j.record({ backend: 'qemu', node: 'a' }, [{ kind: 'vm', name: 'vm-a', dir: '/x' }]);
    j.record({ backend: 'local' }, [
      { kind: 'netns', name: 'n1' },
      { kind: 'netns', name: 'n2' },
    ]);
    j.record({ backend: 'qemu', node: 'a' }, [{ kind: 'pin', path: '/p' } as never]);
    j.record({ backend: 'local' }, [{ kind: 'netns', name: 'n3' }]);
    const { handed, make } = owners();
    const r = await teardownLab('t1', () => {}, make);
    expect(handed).toEqual([['local:n3'], ['qemu:undefined'], ['local:n2', 'local:n1'], ['qemu:vm-a']]);
    expect(r).toEqual({ removed: 5, left: [] });
    expect(Journal.open('t1')).toBeUndefined();
  });

  it('keeps what an owner could not remove, and a second teardown only retries that', async () => {
    const j = Journal.create('t2');
    j.record({ backend: 'local' }, [
      { kind: 'netns', name: 'n1' },
      { kind: 'netns', name: 'n2' },
    ]);
    const first = owners(['n1']);
    expect(await teardownLab('t2', () => {}, first.make)).toEqual({ removed: 1, left: ['stuck n1'] });
    const second = owners();
    expect(await teardownLab('t2', () => {}, second.make)).toEqual({ removed: 1, left: [] });
    expect(second.handed).toEqual([['local:n1']]);
  });

  it('groups consecutive entries only: ownerRuns never reorders', () => {
    const e = (seq: number, backend: string): JournalEntry => ({ seq, obj: { kind: 'netns', name: String(seq) }, owner: { backend } });
    expect(ownerRuns([e(3, 'a'), e(2, 'a'), e(1, 'b'), e(0, 'a')]).map((r) => r.map((x) => x.seq))).toEqual([[3, 2], [1], [0]]);
  });
});
