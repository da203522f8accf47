import { readFileSync } from 'node:fs';

/**
 * The soft RLIMIT_NOFILE the CLI needs: measured, `lab up` and `lab down` keep at most 35 files open
 * at once (Node's own, the module files it loads, pipes to one child at a time) whatever the pod
 * count; below ~35 Node itself fails with EMFILE while it loads the CLI's modules. 40 leaves room.
 */
export const MIN_NOFILE = 40;

/** The soft "Max open files" of /proc/self/limits (fs/proc/base.c proc_pid_limits); undefined when unreadable or unlimited. */
export function softNofile(limits: string): number | undefined {
  const m = /^Max open files\s+(\d+)\s/m.exec(limits);
  return m ? Number(m[1]) : undefined;
}

/** The refusal, as the CLI prints one, of a soft RLIMIT_NOFILE below MIN_NOFILE; undefined when it is enough. */
export function nofileRefusal(limits: string): string | undefined {
  const soft = softNofile(limits);
  if (soft === undefined || soft >= MIN_NOFILE) return undefined;
  return (
    `error: the lab keeps up to 35 files open at once; the soft limit on open files (RLIMIT_NOFILE) is ${soft}\n` +
    `  to fix: ulimit -n ${MIN_NOFILE} or more\n`
  );
}

/** This process's /proc/self/limits; empty when it cannot be read (no refusal then). */
export function ownLimits(): string {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return '';
  }
}
