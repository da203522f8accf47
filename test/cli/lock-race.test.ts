import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Waiters racing to take over a lock left by a killed teardown (issue 15): separate processes,
 * released at one instant (a go file per round), each holding the lock for a moment and
 * claiming a "holding" file with O_EXCL while it does. Two holders at once show as a claim
 * that finds the file there. DPL_LOCK_IMPL points at another build of fileLock (to see an
 * older lock fail this test).
 */
const LOCK = process.env.DPL_LOCK_IMPL ?? fileURLToPath(new URL('../../dist/src/lifecycle/lock.js', import.meta.url));
const WAITERS = 6;
const ROUNDS = Number(process.env.DPL_LOCK_ROUNDS ?? 15);

const child = `
const [lockJs, dir, rounds] = process.argv.slice(1);
const { fileLock } = await import(lockJs);
const { existsSync, writeFileSync, rmSync } = await import('node:fs');
const tick = new Int32Array(new SharedArrayBuffer(4));
for (let r = 0; r < Number(rounds); r++) {
  while (!existsSync(dir + '/go-' + r)) Atomics.wait(tick, 0, 0, 1);
  const release = await fileLock(dir + '/.lab.teardown.lock');
  try { writeFileSync(dir + '/holding', 'x', { flag: 'wx' }); } catch { console.log('two holders in round ' + r); }
  await new Promise((res) => setTimeout(res, 5));
  rmSync(dir + '/holding', { force: true });
  release();
  console.log('done ' + r);
}
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a lock left by a killed holder', () => {
  it(`is taken over by one of ${WAITERS} waiters at a time, and leaves no file behind (${ROUNDS} rounds)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-r3-lock-'));
    dirs.push(dir);
    const lock = join(dir, '.lab.teardown.lock');
    const outs: string[] = Array.from({ length: WAITERS }, () => '');
    const exits = Array.from(
      { length: WAITERS },
      (_, i) =>
        new Promise<number | null>((resolve) => {
          const p = spawn(process.execPath, ['--input-type=module', '-e', child, LOCK, dir, String(ROUNDS)], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          p.stdout.on('data', (d) => (outs[i] += d));
          p.stderr.on('data', (d) => (outs[i] += d));
          p.on('close', resolve);
        }),
    );
    const left: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // pid 1 with a start time it never had: a holder that is gone (src/exec/process.ts tells a reused pid so).
      writeFileSync(lock, '1 0');
      writeFileSync(join(dir, `go-${r}`), '');
      const end = Date.now() + 30_000;
      while (Date.now() < end && !outs.every((o) => o.includes(`done ${r}\n`) || /Error/.test(o)))
        await new Promise((res) => setTimeout(res, 10));
      left.push(
        ...readdirSync(dir)
          .filter((f) => !f.startsWith('go-'))
          .map((f) => `round ${r}: ${f}`),
      );
    }
    expect(await Promise.all(exits)).toEqual(Array(WAITERS).fill(0));
    expect(
      outs
        .join('')
        .split('\n')
        .filter((l) => l && !l.startsWith('done ')),
    ).toEqual([]);
    expect(outs.every((o) => o.includes(`done ${ROUNDS - 1}\n`))).toBe(true);
    expect(left).toEqual([]);
    expect(existsSync(lock)).toBe(false);
  });
});
