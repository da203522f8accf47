import { LabError } from '../../errors.js';
import type { Background, Exec, ExecResult } from '../../exec/exec.js';

/**
 * A place in the simulated lab. It names a namespace (the measurer reads `where`) and runs
 * nothing: a check that reached for a command instead of the measurement API would fail here, loudly.
 */
export class SimExec implements Exec {
  readonly hostPids = false;
  constructor(readonly where: string) {}
  run(argv: readonly string[]): Promise<ExecResult> {
    return Promise.reject(refuse(this.where, argv));
  }
  start(argv: readonly string[]): Background {
    throw refuse(this.where, argv);
  }
}

const refuse = (where: string, argv: readonly string[]) =>
  new LabError('E_INTERNAL', `the simulator runs no commands (${argv.join(' ')} in ${where}): this measurement has no model yet`);
