import type { Command } from 'commander';
import { EXIT, LabError } from '../errors.js';
import { existsSync, rmSync } from 'node:fs';
import { knownLabs, labDir } from '../lifecycle/journal.js';
import { readLabState, setPhase } from '../lifecycle/labstate.js';
import { teardownLab } from '../lifecycle/teardown.js';
import { type Progress, printError, progressLogger } from './output.js';
import { takeEarlySignals } from './signals.js';

/**
 * SIGINT/SIGTERM during `lab down`: the teardown is what the signal asks for, so the first
 * finishes it (stopping halfway would leave a half-removed lab); a second stops at once
 * (the journal keeps what is left for the next `lab down`).
 */
function finishOnSignal(): () => void {
  let seen = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (seen) process.exit(EXIT.interrupted);
    seen = true;
    process.stderr.write(`\n${sig}: finishing the teardown (a second signal stops it; lab down again resumes it)\n`);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  for (const sig of takeEarlySignals()) onSignal(sig);
  return () => process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
}

/** Remove labs exactly as their journals record them. Returns the exit code. */
export async function down(names: string[], quiet = false): Promise<number> {
  const progress = progressLogger(quiet);
  const off = finishOnSignal();
  try {
    return await downAll(names, progress);
  } finally {
    off();
  }
}

async function downAll(names: string[], progress: Progress): Promise<number> {
  let code: number = EXIT.ok;
  for (const name of names) {
    setPhase(name, 'tearing-down');
    const r = await teardownLab(name, progress).finally(progress.end);
    if (r.left.length) {
      process.stderr.write(`lab ${name}: ${r.left.length} objects could not be removed (kept in its journal):\n  ${r.left.join('\n  ')}\n`);
      code = EXIT.labFailed;
    } else process.stdout.write(`lab ${name} is down (${r.removed} objects removed)\n`);
  }
  return code;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('down')
    .description('tear a lab down by replaying its journal: removes exactly what it created, even after a crash or kill -9')
    .argument('[name]', 'lab name')
    .option('--all', 'every lab on this machine')
    .option('-q, --quiet', 'no progress lines')
    .action(async (name: string | undefined, opts: { all?: boolean; quiet?: boolean }) => {
      const labs = knownLabs();
      const here = `labs here: ${labs.join(', ') || 'none'}`;
      const refuse = (e: LabError) => {
        printError(e);
        exit(EXIT.badInput);
      };
      if (!name && !opts.all) return refuse(new LabError('E_USAGE', 'name a lab or pass --all', here));
      if (name && !labs.includes(name)) {
        // A second `lab down`, or one that lost the race to another: the lab is gone, which is what was asked.
        // Its dir without a journal is what a `kill -9` between creating the two leaves (Journal.create): nothing it names exists.
        const stale = existsSync(labDir(name));
        if (stale) rmSync(labDir(name), { recursive: true, force: true });
        process.stdout.write(
          `lab ${name} is not up: nothing to remove${stale ? ' (its state dir had no journal: removed)' : ''} (${here})\n`,
        );
        return exit(EXIT.ok);
      }
      if (opts.all && !labs.length) process.stdout.write('no labs are up\n');
      // --all leaves labs whose own process is still at work (a run in progress tears itself down).
      const busy = (lab: string) => {
        const s = readLabState(lab);
        if (!s || s.phase === 'up') return false;
        try {
          process.kill(s.pid, 0);
          return s.pid !== process.pid;
        } catch {
          return false;
        }
      };
      const targets = name ? [name] : labs.filter((l) => !busy(l));
      for (const l of labs.filter((x) => !targets.includes(x) && (!name || x === name)))
        process.stderr.write(
          `lab ${l} is still being run by pid ${readLabState(l)!.pid} (${readLabState(l)!.phase}): left alone; lab down ${l} forces it\n`,
        );
      exit(await down(targets, opts.quiet));
    });
}
