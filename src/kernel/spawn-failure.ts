import type { ExecResult } from '../exec/exec.js';
import { LabError } from '../errors.js';

/**
 * A tool's version probe that could not start for a reason other than a missing binary (exec
 * reports every spawn error as 127): EAGAIN when fork() meets pids.max of the cgroup, RLIMIT_NPROC
 * or kernel.pid_max (kernel/fork.c), EMFILE at RLIMIT_NOFILE. Undefined when it ran, or is not installed.
 */
export function spawnFailure(tool: string, r: ExecResult): LabError | undefined {
  if (r.code !== 127 || /not found/.test(r.stderr)) return undefined;
  const detail = r.stderr.trim().split('\n')[0];
  const hint = /EAGAIN/.test(detail)
    ? 'the machine refused a new process: raise pids.max of this cgroup, ulimit -u, or kernel.pid_max'
    : /EMFILE|ENFILE/.test(detail)
      ? 'the lab ran out of file descriptors: raise ulimit -n'
      : 'see the error above';
  return new LabError('E_REQUIREMENT', `could not start ${tool} to read its version: ${detail}`, hint);
}
