import { LabError, TopologyError } from '../errors.js';

/** Progress lines on stderr, stamped with the time since the command started. */
export function progressLogger(quiet = false): (msg: string) => void {
  const t0 = performance.now();
  return (msg) => {
    if (!quiet) process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);
  };
}

/** Print an error the way a person can act on it: what went wrong, then what to do. */
export function printError(err: unknown): void {
  if (err instanceof TopologyError) process.stderr.write(`error: invalid topology\n${err.message.replace(/^/gm, '  ')}\n`);
  else if (err instanceof LabError) process.stderr.write(`error: ${err.message}\n${err.hint ? `  to fix: ${err.hint}\n` : ''}`);
  else process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}
