import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, labProcesses, quickstart, residue, topo, type CliResult } from './helpers.js';

/** The built CLI with DPL_FAILPOINT set (test-only, src/exec/failpoint.ts). */
function cliWithFailPoint(args: string[], failpoint: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DPL_FAILPOINT: failpoint },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const LAB = 'rel-fp';
/** The lab machine's steps of `lab up`, in order (src/report/failure.ts LabStep); validate and mark-up start no process. */
const UP_STEPS = ['validate', 'probe', 'provision', 'wire', 'deploy', 'mark-up'] as const;
/** Bound on n per step: the quickstart's steps start at most a handful of processes each. */
const MAX_N = 12;
/** The check step is walked with one cheap check (connectivity: one batch per source pod), at most this far. */
const CHECK_N = 3;

interface Walked {
  /** Runs whose injected failure ended the lab. */
  failed: number;
  /** Runs whose injected failure the step tolerated (a probe of an optional tool). */
  tolerated: number;
}

describe('fail points: every operation of every step of the quickstart', () => {
  it('each injected failure ends in exit 3 naming the step, with nothing left behind', async () => {
    const file = topo(quickstart(LAB));
    const reportDir = mkdtempSync(join(tmpdir(), 'dpl-rel-fp-'));
    const walked: Walked = { failed: 0, tolerated: 0 };
    const leaks: string[] = [];
    for (const step of UP_STEPS) {
      for (let n = 1; n <= MAX_N; n++) {
        const r = await cliWithFailPoint(['up', '-q', file], `${step}:${n}`);
        const reached = r.stderr.includes(`DPL_FAILPOINT ${step}:${n}: hit`);
        if (r.code === 0) {
          // The lab came up: the step had no n-th operation, or it tolerated the failure.
          const down = await cliWithFailPoint(['down', LAB], '');
          expect(down.code, down.stderr).toBe(0);
          leaks.push(...(await residue(LAB)));
          if (!reached) break;
          walked.tolerated++;
          continue;
        }
        expect(reached, `${step}:${n}: ${r.stderr}`).toBe(true);
        expect(r.code, `${step}:${n}: ${r.stderr}`).toBe(3);
        expect(r.stderr).toMatch(new RegExp(`the lab failed at step ${step}\\b`));
        walked.failed++;
        leaks.push(...(await residue(LAB)).map((o) => `${step}:${n}: ${o}`));
        leaks.push(...(await labProcesses(LAB)).map((o) => `${step}:${n}: ${o}`));
      }
    }
    // The check step: a failed operation is a check that could not run (error, exit 1), and teardown still runs.
    for (let n = 1; n <= CHECK_N; n++) {
      const r = await cliWithFailPoint(['run', '-q', '--only', 'connectivity', '--report-dir', reportDir, file], `check:${n}`);
      if (!r.stderr.includes(`DPL_FAILPOINT check:${n}: hit`)) {
        // The check has no n-th operation: it ran whole and passed.
        expect(r.code, r.stderr).toBe(0);
        leaks.push(...(await residue(LAB)));
        break;
      }
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/connectivity\s+ERROR/);
      walked.failed++;
      leaks.push(...(await residue(LAB)).map((o) => `check:${n}: ${o}`));
    }
    expect(leaks).toEqual([]);
    // provision, wire and deploy of the quickstart each start processes: a walk that failed none would prove nothing.
    expect(walked.failed).toBeGreaterThanOrEqual(10);
    process.stdout.write(`fail points walked: ${walked.failed} failed, ${walked.tolerated} tolerated, leaked: ${leaks.length}\n`);
  }, 120_000);
});
