import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Journal } from '../../src/lifecycle/journal.js';
import { CLI } from '../kernel/helpers.js';

/**
 * A SIGTERM to `lab down` while the CLI is still loading its modules (issue 15): the entry's
 * early handlers keep it, and the teardown it asks for is finished. Without them Node's default
 * action ended the process there, leaving the lab.
 */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-r3-early-'));
afterAll(() => rmSync(STATE, { recursive: true, force: true }));

describe('a signal while the CLI loads', () => {
  it('lab down keeps it and finishes the teardown', async () => {
    process.env.DPL_STATE_DIR = STATE;
    // A journal naming a namespace that is not there: the teardown has one entry to replay and nothing to touch.
    Journal.create('r3-early').record({ backend: 'local' }, [{ kind: 'netns', name: 'dpl-r3-early.absent' }]);
    const r = await new Promise<{ code: number | null; signal: string | null; out: string; err: string; sentEarly: boolean }>((resolve) => {
      const c = spawn(process.execPath, [CLI, 'down', 'r3-early'], {
        env: { ...process.env, DPL_STATE_DIR: STATE, DPL_TRACE: 'signals' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      let sentEarly = false;
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => {
        err += d;
        if (!sentEarly && err.includes('signals: early handlers installed')) {
          // Sent before a byte of `lab down` ran: the verb's modules load after this line.
          sentEarly = !out;
          c.kill('SIGTERM');
        }
      });
      c.on('close', (code, signal) => resolve({ code, signal, out, err, sentEarly }));
    });
    expect(r.sentEarly, r.err).toBe(true);
    expect(r.signal, r.err).toBeNull();
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('SIGTERM: finishing the teardown');
    expect(r.out).toContain('lab r3-early is down (1 objects removed)');
    expect(existsSync(join(STATE, 'r3-early'))).toBe(false);
  });
});
