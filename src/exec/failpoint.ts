import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * TEST-ONLY fail points: DPL_FAILPOINT=<step>:<n>[:<kind>] makes the n-th operation that a
 * lifecycle step starts through src/exec (a process on this machine, or a command in a
 * guest through its agent) fail. Steps are the lab machine's (src/report/failure.ts LabStep:
 * probe, provision, wire, deploy, check, ...). The reliability tests walk every step and n
 * with it; it is not a user feature. Unset, nothing here runs: exec checks one constant.
 */
export interface FailPoint {
  /** The lifecycle step whose operations are counted. */
  step: string;
  /** Which operation of that step fails (1-based); for `noboot`, which VM start of the step. */
  n: number;
  /** How it fails. */
  kind: FaultKind;
}

/**
 * exit: the operation exits 1 without starting. timeout: it starts as a command that never
 * ends and is killed at its deadline (its caller's timeoutMs, at most FAULT_TIMEOUT_MS), as a
 * hung guest command would be. noboot: a VM start boots a kernel that finds no init and panics.
 */
export type FaultKind = 'exit' | 'timeout' | 'noboot';

/** Deadline of an operation failed with `timeout` when its caller set a longer one (or none). */
export const FAULT_TIMEOUT_MS = 2_000;

/**
 * The fail point of this process, from DPL_FAILPOINT; undefined when unset or malformed.
 * `count` fails nothing and counts every step's operations (a walk's plan: which n exist).
 */
export function parseFailPoint(spec: string | undefined): FailPoint | undefined {
  if (spec === 'count') return { step: '*', n: 0, kind: 'exit' };
  const m = spec?.match(/^([a-z-]+):([1-9][0-9]*)(?::(exit|timeout|noboot))?$/);
  return m ? { step: m[1], n: Number(m[2]), kind: (m[3] as FaultKind | undefined) ?? 'exit' } : undefined;
}

export const FAILPOINT = parseFailPoint(process.env.DPL_FAILPOINT);

/** A VM start: QEMU booting a kernel directly (src/backends/qemu/vm.ts qemuArgv). */
export const isVmStart = (argv: readonly string[]): boolean => argv[0]?.startsWith('qemu-system') === true && argv.includes('-kernel');

/** The step an async call chain belongs to (node machines run wire/deploy side by side, so not a global). */
const current = new AsyncLocalStorage<string>();
let seen = 0;
let hit: readonly string[] | undefined;
/** Operations per step, and VM starts per step. */
const counts = new Map<string, number>();
const boots = new Map<string, number>();

/** Run fn as part of a lifecycle step: the processes it starts count towards that step's fail point. */
export function inStep<T>(step: string, fn: () => Promise<T>): Promise<T> {
  return FAILPOINT ? current.run(step, fn) : fn();
}

/** Count one operation; its fault when it is the one that must fail. */
export function failHere(argv: readonly string[]): FaultKind | undefined {
  const step = current.getStore();
  if (!FAILPOINT || !step) return undefined;
  counts.set(step, (counts.get(step) ?? 0) + 1);
  const boot = isVmStart(argv);
  if (boot) boots.set(step, (boots.get(step) ?? 0) + 1);
  if (step !== FAILPOINT.step || (FAILPOINT.kind === 'noboot' && !boot)) return undefined;
  seen++;
  if (seen !== FAILPOINT.n) return undefined;
  hit = argv;
  return FAILPOINT.kind;
}

/**
 * The argv that carries out a fault other than `exit`: a command that never ends
 * (`timeout`), or a VM whose initramfs has no such rdinit, so the kernel tries to mount a
 * root= it was not given and panics (init/do_mounts.c mount_root_generic: "VFS: Unable to
 * mount root fs"); with panic=-1 and -no-reboot QEMU exits.
 */
export function faultArgv(kind: Exclude<FaultKind, 'exit'>, argv: readonly string[]): string[] {
  if (kind === 'timeout') return ['sleep', '3600'];
  const i = argv.indexOf('-append');
  const missing = '/dpl-failpoint-no-init';
  return argv.map((a, j) => (j === i + 1 ? `${a} rdinit=${missing} init=${missing}` : a));
}

/** The deadline of a `timeout` fault: the caller's if shorter. */
export const faultDeadline = (timeoutMs: number | undefined): number => Math.min(timeoutMs ?? FAULT_TIMEOUT_MS, FAULT_TIMEOUT_MS);

const list = (m: Map<string, number>) => [...m].map(([k, v]) => `${k}=${v}`).join(' ');

/** What the fail point did, for the line the CLI prints at exit (tests read it to know when a step has no n-th operation). */
export function failPointSummary(): string | undefined {
  if (!FAILPOINT) return undefined;
  // VM starts as `step n`, not `step=n`: readers of the counts match `step=n`.
  const counted = `${list(counts)}${boots.size ? ` (VM starts: ${[...boots].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`;
  if (FAILPOINT.step === '*') return `DPL_FAILPOINT count: ${counted}`;
  const fp = `DPL_FAILPOINT ${FAILPOINT.step}:${FAILPOINT.n}${FAILPOINT.kind === 'exit' ? '' : `:${FAILPOINT.kind}`}`;
  const what = hit
    ? `hit (${hit.join(' ').slice(0, 100)})`
    : `not reached (step ${FAILPOINT.step} ran ${seen} ${FAILPOINT.kind === 'noboot' ? 'VM starts' : 'operations'})`;
  return `${fp}: ${what}\nDPL_FAILPOINT counted: ${counted}`;
}

if (FAILPOINT) process.on('exit', () => process.stderr.write(`${failPointSummary()}\n`));
