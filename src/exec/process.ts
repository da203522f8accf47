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
