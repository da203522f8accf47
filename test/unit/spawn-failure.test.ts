import { describe, expect, it } from 'vitest';
import { spawnFailure } from '../../src/kernel/spawn-failure.js';

const r = (code: number | null, stderr: string) => ({ code, stdout: '', stderr, ms: 1 });

describe('a tool probe that could not start', () => {
  it('names a process limit, not a missing tool, when fork() was refused', () => {
    const e = spawnFailure('bpftool', r(127, 'spawn bpftool EAGAIN'));
    expect(e?.code).toBe('E_REQUIREMENT');
    expect(e?.message).toBe('could not start bpftool to read its version: spawn bpftool EAGAIN');
    expect(e?.hint).toMatch(/pids\.max/);
    expect(spawnFailure('ip', r(127, 'spawn ip EMFILE'))?.hint).toMatch(/ulimit -n/);
  });

  it('leaves a missing tool and one that ran to the caller', () => {
    expect(spawnFailure('ip', r(127, 'ip: not found'))).toBeUndefined();
    expect(spawnFailure('clang', r(127, 'sh: 1: exec: clang: not found'))).toBeUndefined();
    expect(spawnFailure('ip', r(0, ''))).toBeUndefined();
    expect(spawnFailure('ip', r(1, 'spawn ip EAGAIN'))).toBeUndefined();
  });
});
