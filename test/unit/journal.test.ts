import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { Journal, knownLabs } from '../../src/lifecycle/journal.js';

describe('journal', () => {
  beforeEach(() => {
    process.env.DPL_STATE_DIR = mkdtempSync(join(tmpdir(), 'dpl-journal-'));
  });

  it('records before creation, marks gone, and lists what is live in order', () => {
    const j = Journal.create('a');
    const [n1, n2] = j.record([{ kind: 'netns', name: 'dpl-a.n1' }, { kind: 'netns', name: 'dpl-a.n2' }]);
    j.record([{ kind: 'pin', path: '/sys/fs/bpf/dpl/a' }]);
    j.gone([n1.seq]);
    expect(j.live().map((e) => e.obj)).toEqual([{ kind: 'netns', name: 'dpl-a.n2' }, { kind: 'pin', path: '/sys/fs/bpf/dpl/a' }]);
    expect(n2.seq).toBe(2);
    expect(knownLabs()).toEqual(['a']);
  });

  it('is read back by another process (reopen) and continues its sequence', () => {
    Journal.create('b').record([{ kind: 'netns', name: 'x' }]);
    const j = Journal.open('b')!;
    const [e] = j.record([{ kind: 'netns', name: 'y' }]);
    expect(e.seq).toBe(2);
    expect(j.live()).toHaveLength(2);
  });

  it('refuses a second journal for the same lab', () => {
    Journal.create('c');
    expect(() => Journal.create('c')).toThrow(/EEXIST/);
  });

  it('ignores a line torn by a crash mid-write', () => {
    const j = Journal.create('d');
    j.record([{ kind: 'netns', name: 'x' }]);
    appendFileSync(j.file, '{"seq":2,"op":"cre');
    expect(Journal.open('d')!.live().map((e) => e.obj)).toEqual([{ kind: 'netns', name: 'x' }]);
  });

  it('close removes the lab state', () => {
    const j = Journal.create('e');
    j.close();
    expect(Journal.open('e')).toBeUndefined();
    expect(knownLabs()).toEqual([]);
  });
});
