import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabState } from '../../src/lifecycle/labstate.js';
import { quickstart, topo } from './helpers.js';
import { fullResidue, labCli, rootNetSnapshot, seeded } from './rel-harness.js';

/**
 * SIGINT, SIGTERM and SIGKILL at seeded random moments of `lab up`, `check`, `run` and
 * `down` (issue 15). DPL_INTERRUPT_SEED replays a failing run (the seed is printed);
 * DPL_INTERRUPT_TRIALS runs more trials by hand.
 */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-rel-int-'));
const LAB = 'rel-int';
const SEED = Number(process.env.DPL_INTERRUPT_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Twelve trials: every verb under every signal once, at a random moment of each. */
const TRIALS = Number(process.env.DPL_INTERRUPT_TRIALS ?? 12);
const VERBS = ['up', 'check', 'run', 'down'] as const;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;
type Verb = (typeof VERBS)[number];
/** Two cheap checks: connectivity starts servers and probes in every pod, tso-probe reads every device. */
const CHECKS = 'connectivity,tso-probe';
/** A Node stack frame in the CLI's output: an interrupt must end in a message, never a trace. */
const TRACE = /^\s+at .+:\d+:\d+\)?$/m;

const file = topo(quickstart(LAB));
const reportDir = mkdtempSync(join(tmpdir(), 'dpl-rel-int-r-'));
const argv: Record<Verb, string[]> = {
  up: ['up', '-q', file],
  check: ['check', LAB, '-q', '--only', CHECKS, '--report-dir', reportDir],
  run: ['run', '-q', '--only', CHECKS, '--report-dir', reportDir, file],
  down: ['down', LAB, '-q'],
};
const lab = (args: string[], killAt?: { ms: number; signal: NodeJS.Signals }) => labCli(STATE, args, { killAt });
const journaled = () => existsSync(join(STATE, LAB, 'journal.jsonl'));
const phase = () =>
  existsSync(join(STATE, LAB, 'lab.json')) ? (JSON.parse(readFileSync(join(STATE, LAB, 'lab.json'), 'utf8')) as LabState).phase : 'none';

afterAll(async () => {
  if (journaled()) await lab(['down', LAB, '-q']);
  rmSync(STATE, { recursive: true, force: true });
});

describe('interrupts at random moments of up, check, run and down', () => {
  it(
    `leave nothing once the lab is down, and a second down is a no-op (seed ${SEED})`,
    async () => {
      process.stdout.write(`interrupts: seed ${SEED}, ${TRIALS} trials (DPL_INTERRUPT_SEED=${SEED} replays)\n`);
      const baseline = await rootNetSnapshot();
      // Calibration: each verb once, whole; its wall time is the window a signal lands in.
      const window: Record<Verb, number> = { up: 0, check: 0, run: 0, down: 0 };
      let devs: string[] = [];
      for (const verb of ['up', 'check', 'down', 'run'] as const) {
        const r = await lab(argv[verb]);
        expect(r.code, `${verb}: ${r.stderr}`).toBe(0);
        window[verb] = r.ms;
        process.stdout.write(`calibration: lab ${verb} ${r.ms.toFixed(0)} ms\n`);
        if (verb === 'up') {
          const s = JSON.parse(readFileSync(join(STATE, LAB, 'lab.json'), 'utf8')) as LabState;
          devs = s.lab.nodes.flatMap((n) => [
            ...n.pods.flatMap((p) => [p.hostDev, p.dev]),
            ...(n.uplink ? [n.uplink.nodeDev, n.uplink.peerDev] : []),
          ]);
        }
      }
      // Node's start-up (a verb that creates nothing): half of it is the earliest moment drawn, so most signals land in the work.
      const status = await lab(['status']);
      expect(status.code, status.stderr).toBe(0);
      const boot = status.ms;
      process.stdout.write(`calibration: lab status ${boot.toFixed(0)} ms\n`);
      expect(devs.length).toBeGreaterThan(0);
      expect(await fullResidue(LAB, STATE, baseline, devs)).toEqual([]);

      const rand = seeded(SEED);
      const offset = Math.floor(rand() * 12);
      const tally = { trials: 0, signalled: 0, finishedFirst: 0, leaked: 0 };
      for (let i = 0; i < TRIALS; i++) {
        const combo = (offset + i) % 12;
        const verb = VERBS[combo % 4];
        const signal = SIGNALS[Math.floor(combo / 4)];
        // Not the window's last fifth: a verb on a machine less busy than at calibration ends sooner.
        const ms = Math.round(boot / 2 + rand() * Math.max(0, 0.8 * window[verb] - boot / 2));
        const what = `trial ${i} (seed ${SEED}): ${signal} at ${ms} ms of lab ${verb}`;
        if (verb === 'check' || verb === 'down') {
          const up = await lab(argv.up);
          expect(up.code, `${what}: up before: ${up.stderr}`).toBe(0);
        }
        const t0 = performance.now();
        let leftBefore = -1;
        const r = await lab(argv[verb], { ms, signal });
        tally.trials++;
        expect(r.stderr, what).not.toMatch(TRACE);
        // A signal sent as the process was exiting on its own ends nothing; one that `lab down` kept (it says so) finished its teardown.
        const kept = verb === 'down' && r.stderr.includes(`${signal}: finishing the teardown`);
        if (!r.killed || (r.signal === null && r.code === 0 && !kept)) {
          // The verb finished before its moment came (a signalled down finishes too: nothing may be left).
          if (verb === 'down') expect(await fullResidue(LAB, STATE, baseline, devs), `${what}: down finished`).toEqual([]);
          tally.finishedFirst++;
          // The machine got quicker since calibration: later trials of this verb draw from what it took now.
          window[verb] = Math.min(window[verb], r.ms);
          expect(r.code, `${what}: ${r.stderr}`).toBe(0);
        } else {
          tally.signalled++;
          if (signal === 'SIGKILL') expect(r.signal, what).toBe('SIGKILL');
          // Handled: 130 after tearing down (down finishes its teardown); before the handlers or after them, the signal's own end.
          else
            expect(r.code === 130 || r.code === 0 || r.signal === signal, `${what}: code ${r.code} signal ${r.signal}: ${r.stderr}`).toBe(
              true,
            );
          const left = await fullResidue(LAB, STATE, baseline, devs);
          leftBefore = left.length;
          if (signal !== 'SIGKILL') {
            // up/run tear down what they created; the signal's own end came before anything was created, or after up finished.
            if (verb === 'up' || verb === 'run')
              expect(left.length === 0 || (verb === 'up' && r.code !== 130 && phase() === 'up'), `${what}: ${left.join(', ')}`).toBe(true);
            // An interrupted check leaves the lab up, and nothing the check started.
            if (verb === 'check') {
              expect(phase(), what).toBe('up');
              expect(
                left.filter((o) => o.startsWith('process ')),
                what,
              ).toEqual([]);
            }
            // A signalled down finishes its teardown.
            if (verb === 'down' && r.code === 0) expect(left, `${what}: down finishes its teardown`).toEqual([]);
          }
        }
        // Whatever is left, `lab down` removes; a second is a no-op.
        const down = await lab(argv.down);
        expect(down.code, `${what}: down: ${down.stderr}`).toBe(0);
        expect(down.stderr, what).not.toMatch(TRACE);
        const left = await fullResidue(LAB, STATE, baseline, devs);
        tally.leaked += left.length;
        expect(left, `${what}: left after lab down: ${left.join(', ')}`).toEqual([]);
        const again = await lab(argv.down);
        expect(again.code, `${what}: second down: ${again.stderr}`).toBe(0);
        expect(again.stdout, what).toContain('nothing to remove');
        const end = r.killed ? (r.signal ?? `exit ${r.code} after the signal`) : `finished first (exit ${r.code})`;
        const before = leftBefore >= 0 ? `, ${leftBefore} objects left before lab down` : '';
        process.stdout.write(`${what}: ${end}${before}; ${(performance.now() - t0).toFixed(0)} ms to nothing left\n`);
      }
      process.stdout.write(
        `interrupts: ${tally.trials} trials (${tally.signalled} signalled, ${tally.finishedFirst} finished first), leaked: ${tally.leaked}\n`,
      );
      // A run whose every verb finished before its signal would prove nothing (a loaded machine lengthens the verbs after calibration, or shortens them).
      expect(tally.signalled).toBeGreaterThanOrEqual(tally.trials / 3);
    },
    40_000 + TRIALS * 15_000,
  );

  it('lab down removes a state dir a kill -9 left without its journal', async () => {
    const dir = join(STATE, 'rel-int-stale');
    mkdirSync(dir);
    writeFileSync(join(dir, 'lab.json'), '{}');
    const r = await lab(['down', 'rel-int-stale']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('its state dir had no journal: removed');
    expect(existsSync(dir)).toBe(false);
  });
});
