/** Every error the lab raises on purpose; only the CLI entry maps them to exit codes. */

export type ErrorCode =
  | 'E_TOPOLOGY' // the topology file is malformed or invalid
  | 'E_USAGE' // bad command-line input
  | 'E_REQUIREMENT' // the machine lacks something the lab needs (root, a tool, a kernel feature)
  | 'E_LAB_EXISTS' // a lab of that name is already up
  | 'E_LAB_UNKNOWN' // no running lab of that name
  | 'E_COMMAND' // a command on a node failed
  | 'E_LAB_FAILED' // the lab failed during bring-up or checks and was torn down
  | 'E_BOOT' // a VM did not boot (panic, early exit, agent never answered)
  | 'E_GUEST' // the channel to a guest failed (agent socket, timeout)
  | 'E_TOOL_OUTPUT' // a tool printed something the lab cannot read
  | 'E_MEASURE' // a measurement could not be taken (a server never listened, a client failed)
  | 'E_INTERNAL' // the lab's own invariant broke (a bug: please report it)
  | 'E_NO_BACKENDS' // a service has no backend of weight > 0 (a Maglev table has nothing to fill it with)
  | 'E_INTERRUPTED'; // SIGINT or SIGTERM

export class LabError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'LabError';
  }
}

/** One problem found in a topology file, located to file:line and field path. */
export interface TopologyIssue {
  file: string;
  line?: number;
  column?: number;
  path: string;
  message: string;
}

export class TopologyError extends LabError {
  constructor(readonly issues: TopologyIssue[]) {
    const sorted = [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    super('E_TOPOLOGY', sorted.map(formatIssue).join('\n'));
  }
}

export function formatIssue(i: TopologyIssue): string {
  const where = i.line ? `${i.file}:${i.line}${i.column ? `:${i.column}` : ''}` : i.file;
  return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** A command that exited non-zero, with everything needed to see why. */
export class CommandError extends LabError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly input?: string,
  ) {
    const shown = argv.join(' ');
    const err = stderr.trim().split('\n').slice(-5).join('\n  ');
    super('E_COMMAND', `command failed (exit ${exitCode}): ${shown}${err ? `\n  ${err}` : ''}`);
  }
}

/** A guest whose boot failed: a panic, an early exit, or an agent that never answered. */
export class BootError extends LabError {
  constructor(
    readonly vm: string,
    readonly reason: 'panic' | 'exited' | 'timeout' | 'agent',
    readonly consoleTail: string,
  ) {
    super('E_BOOT', `VM ${vm} did not boot (${reason}); console tail:\n${consoleTail}`);
    this.name = 'BootError';
  }
}

/** A measurement that could not be taken; a check reports it as `error`, not as the kernel's answer. */
export class MeasureError extends LabError {
  constructor(message: string, hint?: string) {
    super('E_MEASURE', message, hint);
  }
}

/** Exit codes of the CLI (see README): 0 pass, 1 a check failed, 2 bad input, 3 the lab failed. */
export const EXIT = { ok: 0, checkFailed: 1, badInput: 2, labFailed: 3, interrupted: 130 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof LabError) {
    switch (err.code) {
      case 'E_TOPOLOGY':
      case 'E_USAGE':
      case 'E_REQUIREMENT':
      case 'E_LAB_EXISTS':
      case 'E_LAB_UNKNOWN':
        return EXIT.badInput;
      case 'E_INTERRUPTED':
        return EXIT.interrupted;
      default:
        return EXIT.labFailed;
    }
  }
  return EXIT.labFailed;
}
