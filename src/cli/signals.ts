/**
 * SIGINT/SIGTERM that arrive while the CLI is still loading, before a verb installs its own
 * handlers (Node's default action would end the process there: a `lab down` signalled in its
 * first few hundred ms on a busy machine never reached the teardown it was asked to finish).
 * The entry records them for the verbs that handle signals; every other verb ends as the
 * default would.
 */
const HANDLED = new Set(['up', 'run', 'check', 'down']);
const seen: NodeJS.Signals[] = [];
let taken = false;

const early = (sig: NodeJS.Signals) => {
  // A verb with its own handler for this signal (lab ui stops its server on SIGINT) decides alone.
  if (process.listenerCount(sig) > 1) return;
  if (!HANDLED.has(process.argv[2] ?? '')) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  seen.push(sig);
};

/** Installed first thing by the entry (src/cli/entry.ts). */
export function installEarlySignals(): void {
  process.on('SIGINT', early).on('SIGTERM', early);
}

/**
 * A verb installs its own handlers, then takes over: the early ones go, and it learns
 * which signals came before (it treats them as its own first ones).
 */
export function takeEarlySignals(): NodeJS.Signals[] {
  process.off('SIGINT', early).off('SIGTERM', early);
  if (taken) return [];
  taken = true;
  return [...seen];
}
