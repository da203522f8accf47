import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Waiters racing to take over a lock left by a killed teardown (issue 15): separate processes,
 * released at one instant, each holding the lock for a moment and claiming a "holding" file
 * with O_EXCL while it does. Two holders at once show as a claim that finds the file there.
 * DPL_LOCK_IMPL points at another build of fileLock (the race check of an older lock).
 */
const LOCK = process.env.DPL_LOCK_IMPL ?? fileURLToPath(new URL('../../dist/src/lifecycle/lock.js', import.meta.url));
const WAITERS = 8;
const ROUNDS = Number(process.env.DPL_LOCK_ROUNDS ?? 2);

const child = `
const [lockJs, file, hold, go] = process.argv.slice(1);
const { fileLock } = await import(lockJs);
const { existsSync, writeFileSync, rmSync } = await import('node:fs');
console.log('ready');
const tick = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(go)) Atomics.wait(tick, 0, 0, 1);
const release = await fileLock(file);
try { writeFileSync(hold, String(process.pid), { flag: 'wx' }); } catch { console.log('two holders'); process.exit(1); }
await new Promise((r) => setTimeout(r, 20));
rmSync(hold);
release();
`;

/** One waiter; `ready` resolves once it waits for the go file. */
function waiter(file: string, hold: string, go: string) {
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => (ready = r));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child, LOCK, file, hold, go], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) ready();
    });
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => {
      ready();
      resolve({ code, out: out.replace('ready\n', '') });
    });
  });
  return { isReady, done };
}

describe('a lock left by a killed holder', () => {
  it(`is taken over by one of ${WAITERS} waiters at a time, and leaves no file behind (${ROUNDS} rounds)`, async () => {
    const results: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'dpl-r3-lock-'));
      const file = join(dir, '.lab.teardown.lock');
      // pid 1 with a start time it never had: a holder that is gone (as src/exec/process.ts tells a reused pid).
      writeFileSync(file, '1 0');
      const go = join(tmpdir(), `dpl-r3-lock-go-${process.pid}-${round}`);
      const ws = Array.from({ length: WAITERS }, () => waiter(file, join(dir, 'holding'), go));
      await Promise.all(ws.map((w) => w.isReady));
      writeFileSync(go, '');
      const rs = await Promise.all(ws.map((w) => w.done));
      rmSync(go);
      results.push(...rs.filter((r) => r.code !== 0).map((r) => `round ${round}: exit ${r.code}: ${r.out.trim().slice(0, 200)}`));
      expect(existsSync(file), `round ${round}`).toBe(false);
      expect(readdirSync(dir), `round ${round}`).toEqual([]);
    }
    expect(results).toEqual([]);
  });
});
