import { exitCodeFor, LabError, TopologyError } from '../errors.js';

/** A progress sink: one call per step; `end` clears a live line before the command's own output. */
export type Progress = ((msg: string) => void) & { end: () => void };

/** What a progress line writes to: stderr, or a test's fake terminal. */
export interface ProgressStream {
  /** Writes text as is. */
  write(s: string): unknown;
  /** A terminal: one live line; otherwise a line per step. */
  isTTY?: boolean;
  /** Terminal width, to keep the live line on one row. */
  columns?: number;
}

/** How often the live line's elapsed time moves. */
const TICK_MS = 500;

/** Progress a person must still see when the live line has moved on: a check's verdict, a warning. */
const KEEP = /^check \S+: (PASS|FAIL|ERROR|SKIP)\b|\bwarning:/;

const stamp = (ms: number) => `[${(ms / 1000).toFixed(1).padStart(5)}s]`;

/** The length a step announces of itself ("backpressure: 3 s flow ...", "bwm-latency: 3 s of round trips"), in seconds. */
export function expectedSeconds(msg: string): number | undefined {
  const m = /:\s(\d+(?:\.\d+)?) s\b/.exec(msg);
  return m ? Number(m[1]) : undefined;
}

/**
 * The live line: the time since the command started, the running step, how long it has
 * run and, when it said how long it takes, what is left; cut to the terminal's width.
 */
export function liveLine(msg: string, sinceStartMs: number, stepMs: number, columns = 80): string {
  const total = expectedSeconds(msg);
  const ran = stepMs / 1000;
  const clock =
    total === undefined
      ? `${ran.toFixed(1)} s`
      : ran < total
        ? `${ran.toFixed(1)} s, ~${(total - ran).toFixed(1)} s left`
        : `${ran.toFixed(1)} s of ~${total} s`;
  const tail = ` (${clock})`;
  const head = `${stamp(sinceStartMs)} ${msg}`;
  const room = Math.max(10, columns - 1 - tail.length);
  return (head.length > room ? `${head.slice(0, room - 1)}…` : head) + tail;
}

/**
 * Progress on stderr, stamped with the time since the command started. On a terminal one
 * live line, rewritten in place (\r) with each step and ticking while a step runs; otherwise
 * a plain line per step.
 */
export function progressLogger(quiet = false, stream: ProgressStream = process.stderr, now = () => performance.now()): Progress {
  const t0 = now();
  if (quiet) return Object.assign(() => {}, { end: () => {} });
  if (!stream.isTTY) return Object.assign((msg: string) => void stream.write(`${stamp(now() - t0)} ${msg}\n`), { end: () => {} });
  let step: { msg: string; at: number } | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const draw = () => {
    if (step) stream.write(`\r\x1b[K${liveLine(step.msg, now() - t0, now() - step.at, stream.columns || 80)}`);
  };
  const end = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (step) stream.write('\r\x1b[K');
    step = undefined;
  };
  const log = (msg: string) => {
    // Results and warnings stay on screen above the live line.
    if (KEEP.test(msg)) {
      stream.write(`\r\x1b[K${stamp(now() - t0)} ${msg}\n`);
      step = undefined;
      return;
    }
    step = { msg, at: now() };
    draw();
    // unref: a live line never keeps the process alive.
    timer ??= setInterval(draw, TICK_MS).unref();
  };
  return Object.assign(log, { end });
}

/** Print an error the way a person can act on it: what went wrong, then what to do. */
export function printError(err: unknown): void {
  if (err instanceof TopologyError) process.stderr.write(`error: invalid topology\n${err.message.replace(/^/gm, '  ')}\n`);
  else if (err instanceof LabError) process.stderr.write(`error: ${err.message}\n${err.hint ? `  to fix: ${err.hint}\n` : ''}`);
  else process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

/** A commander action that prints a failure as the CLI does (no stack trace) and exits with its code. */
export const guarded = (exit: (code: number) => void) => (fn: () => Promise<void>) => async (): Promise<void> => {
  try {
    await fn();
  } catch (e) {
    printError(e);
    exit(exitCodeFor(e));
  }
};
