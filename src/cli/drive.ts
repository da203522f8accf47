import { createActor, toPromise } from 'xstate';
import { EXIT, exitCodeFor } from '../errors.js';
import { printError, progressLogger } from './output.js';
import { takeEarlySignals } from './signals.js';
import { labMachine, type LabInput, type LabOutput } from '../lifecycle/lab-machine.js';
import { checksTable } from '../report/table.js';
import { flakeStats, flakeTable } from '../report/repeat.js';
import { bottlenecksRestored } from '../measure/bottleneck.js';
import { onFlowSample } from '../measure/flow.js';
import { recordSample, stateRecorder } from '../ui/inspect.js';

/**
 * Run the lab machine to its end; SIGINT/SIGTERM go through teardown. Returns the exit
 * code. `machine` is for tests, which swap actors with labMachine.provide().
 */
export async function drive(
  input: Omit<LabInput, 'progress'>,
  opts: { quiet?: boolean; json?: boolean } = {},
  machine: typeof labMachine = labMachine,
): Promise<{ code: number; out: LabOutput }> {
  // Every machine's states go to the state dir as they change, for `lab ui` (xstate's inspection API).
  const inspect = stateRecorder(input.mode);
  // And every sampled flow's records, for its live plot.
  const offSamples = onFlowSample(recordSample);
  const progress = progressLogger(opts.quiet);
  const actor = createActor(machine, { input: { ...input, progress }, inspect });
  const onSignal = (sig: string) => {
    process.stderr.write(`\n${sig}: stopping, tearing down what was created...\n`);
    actor.send({ type: 'INTERRUPT' });
  };
  const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
  // A stray rejection (a command of an interrupted step) must not kill the process before teardown ends.
  const stray = (e: unknown) => process.stderr.write(`(ignored after interruption: ${e instanceof Error ? e.message : String(e)})\n`);
  process.on('SIGINT', handlers.SIGINT).on('SIGTERM', handlers.SIGTERM).on('unhandledRejection', stray);
  try {
    actor.start();
    // A signal while the CLI loaded: stop now (nothing was created yet).
    const early = takeEarlySignals()[0];
    if (early) onSignal(early);
    const out = await toPromise(actor);
    progress.end();
    // An interrupted `lab check` leaves the lab up: a bottleneck a check changed must be back before we exit.
    await bottlenecksRestored();
    if (out.runs && out.runs.length > 1 && !opts.json)
      process.stdout.write(`\n${out.runs.length} runs\n${flakeTable(flakeStats(out.runs))}\n`);
    else if (out.results?.length && !opts.json) process.stdout.write(`\n${checksTable(out.results)}\n`);
    if (out.reports && !opts.json)
      process.stdout.write(
        `\nreports: ${out.reports.json}\n         ${out.reports.junit}\n${out.reports.html ? `         ${out.reports.html}\n` : ''}`,
      );
    if (out.teardown?.left.length)
      process.stderr.write(
        `teardown left ${out.teardown.left.length} objects (kept in the journal; run lab down again):\n  ${out.teardown.left.join('\n  ')}\n`,
      );
    if (out.error) {
      printError(out.error);
      const code = exitCodeFor(out.error);
      const where = out.step ? ` at step ${out.step}${out.failedNode ? ` (node ${out.failedNode})` : ''}` : '';
      if (code === EXIT.labFailed) process.stderr.write(`the lab failed${where}${out.teardown ? ' and was torn down' : ''}\n`);
      return { code, out };
    }
    // An error (a condition the check could not establish) is no pass: the same exit as a failure.
    const failed = out.results?.some((r) => r.status === 'fail' || r.status === 'error');
    return { code: failed ? EXIT.checkFailed : EXIT.ok, out };
  } finally {
    progress.end();
    offSamples();
    process.off('SIGINT', handlers.SIGINT).off('SIGTERM', handlers.SIGTERM).off('unhandledRejection', stray);
  }
}
