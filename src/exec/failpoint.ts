import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * TEST-ONLY fail points: DPL_FAILPOINT=<step>:<n> makes the n-th process that a lifecycle
 * step starts through src/exec fail as a non-zero exit would (exit 1, never started).
 * Steps are the lab machine's (src/report/failure.ts LabStep: probe, provision, wire,
 * deploy, check, ...). The reliability tests walk every step and n with it; it is not a
 * user feature. Unset, nothing here runs: exec checks one constant.
 */
export interface FailPoint {
  /** The lifecycle step whose operations are counted. */
  step: string;
  /** Which operation of that step fails (1-based). */
  n: number;
}

/**
 * The fail point of this process, from DPL_FAILPOINT; undefined when unset or malformed.
 * `count` fails nothing and counts every step's operations (a walk's plan: which n exist).
 */
export function parseFailPoint(spec: string | undefined): FailPoint | undefined {
  if (spec === 'count') return { step: '*', n: 0 };
  const m = spec?.match(/^([a-z-]+):([1-9][0-9]*)$/);
  return m ? { step: m[1], n: Number(m[2]) } : undefined;
}

export const FAILPOINT = parseFailPoint(process.env.DPL_FAILPOINT);

/** The step an async call chain belongs to (node machines run wire/deploy side by side, so not a global). */
const current = new AsyncLocalStorage<string>();
let seen = 0;
let hit: readonly string[] | undefined;
/** Operations per step, in count mode. */
const counts = new Map<string, number>();

/** Run fn as part of a lifecycle step: the processes it starts count towards that step's fail point. */
export function inStep<T>(step: string, fn: () => Promise<T>): Promise<T> {
  return FAILPOINT ? current.run(step, fn) : fn();
}

/** Count one operation; true when it is the one that must fail. */
export function failHere(argv: readonly string[]): boolean {
  const step = current.getStore();
  if (FAILPOINT?.step === '*' && step) counts.set(step, (counts.get(step) ?? 0) + 1);
  if (!FAILPOINT || step !== FAILPOINT.step) return false;
  seen++;
  if (seen !== FAILPOINT.n) return false;
  hit = argv;
  return true;
}

/** What the fail point did, for the line the CLI prints at exit (tests read it to know when a step has no n-th operation). */
export function failPointSummary(): string | undefined {
  if (!FAILPOINT) return undefined;
  if (FAILPOINT.step === '*') return `DPL_FAILPOINT count: ${[...counts].map(([k, v]) => `${k}=${v}`).join(' ')}`;
  const fp = `DPL_FAILPOINT ${FAILPOINT.step}:${FAILPOINT.n}`;
  return hit ? `${fp}: hit (${hit.join(' ').slice(0, 100)})` : `${fp}: not reached (step ${FAILPOINT.step} ran ${seen} operations)`;
}

if (FAILPOINT) process.on('exit', () => process.stderr.write(`${failPointSummary()}\n`));
