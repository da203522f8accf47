import { readFileSync } from 'node:fs';

/**
 * Field 22 of /proc/PID/stat: start time in clock ticks, which tells a pid apart from
 * a reused one. '' when the process is gone or a zombie (dead, waiting for a reaper
 * that may never come when its parent was killed).
 */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return '';
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

/**
 * The ownership tag every process the lab starts inherits: DPL_LAB=<lab> in its
 * environment (like containerlab's labels), so a lab's processes can be told from
 * another lab's (tests, and a person reading /proc/PID/environ).
 */
export const LAB_ENV = 'DPL_LAB';

export function tagProcesses(lab: string): void {
  process.env[LAB_ENV] = lab;
}

/** The lab a process belongs to, from its environment; undefined when untagged or gone. */
export function labOfProcess(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return env.find((e) => e.startsWith(`${LAB_ENV}=`))?.slice(LAB_ENV.length + 1);
  } catch {
    return undefined;
  }
}
