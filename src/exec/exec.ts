import { spawn } from 'node:child_process';
import { CommandError, LabError } from '../errors.js';

/** Result of one command on a node. */
export interface ExecResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

export interface ExecOptions {
  /** Text written to the command's stdin (batch files for ip/tc/bpftool). */
  input?: string;
  /** Aborting kills the process (the lifecycle passes its actor's signal). */
  signal?: AbortSignal;
  /** When true a non-zero exit is data, not an error. */
  nothrow?: boolean;
  /** Kill the process after this many milliseconds. */
  timeoutMs?: number;
  /** Environment of the process (default: the lab's own). */
  env?: NodeJS.ProcessEnv;
  /**
   * The command reads pinned BPF objects: in a namespace, enter only the network
   * namespace (nsenter --net), never `ip -n` / `tc -n`, which remount /sys and hide bpffs.
   */
  needsBpffs?: boolean;
}

/** Runs an argv on one place (the host, a namespace, a guest, an ssh host). */
export interface Exec {
  /** Human name of where commands run, for messages. */
  readonly where: string;
  /** True when started processes are this machine's (the journal records and later kills them). */
  readonly hostPids: boolean;
  /** Run argv to completion. Throws CommandError on non-zero exit unless nothrow. */
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start argv in the background; returns its pid and a promise of its end. */
  start(argv: readonly string[], opts?: { signal?: AbortSignal }): Background;
}

export interface Background {
  pid: number;
  done: Promise<ExecResult>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * The one place that starts processes. It spawns argv directly, without a shell:
 * zx (named in DESIGN.md) always goes through a shell, which costs one extra
 * process per command and quoting rules; the lab issues hundreds of argv-only
 * commands per bring-up and never needs shell syntax.
 */
export function spawnArgv(argv: readonly string[], opts: ExecOptions = {}): Background {
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), {
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    signal: opts.signal,
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
    env: opts.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (opts.input !== undefined) {
    child.stdin!.on('error', () => {}); // a command that exits early closes its stdin
    child.stdin!.end(opts.input);
  }
  const done = new Promise<ExecResult>((resolve) => {
    let settled = false;
    const finish = (code: number | null) => {
      if (settled) return;
      settled = true;
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      stderr += e.code === 'ENOENT' ? `${argv[0]}: not found` : String(e.message);
      finish(e.name === 'AbortError' ? null : 127);
    });
    child.on('close', (code) => finish(code));
  });
  return { pid: child.pid ?? -1, done, kill: (s = 'SIGTERM') => void child.kill(s) };
}

export async function runArgv(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await spawnArgv(argv, opts).done;
  if (r.code !== 0 && !opts.nothrow) throw new CommandError(argv, r.code, r.stdout, r.stderr, opts.input);
  return r;
}

/** Commands on this machine, in its own network namespace. */
export class HostExec implements Exec {
  readonly where = 'host';
  readonly hostPids = true;
  run(argv: readonly string[], opts?: ExecOptions) {
    return runArgv(argv, opts);
  }
  start(argv: readonly string[], opts?: { signal?: AbortSignal }) {
    return spawnArgv(argv, { signal: opts?.signal });
  }
}

/**
 * Commands inside a named network namespace. Uses `nsenter --net=` rather than
 * `ip netns exec`, which remounts /sys and so hides the host's bpffs pins (FACTS.md).
 * iproute2 and tc take `-n NS` themselves, which saves the nsenter process.
 */
export class NetnsExec implements Exec {
  readonly where: string;
  readonly hostPids = true;
  constructor(readonly netns: string) {
    this.where = `netns ${netns}`;
  }
  wrap(argv: readonly string[], needsBpffs = false): string[] {
    return wrapNetns(this.netns, argv, needsBpffs);
  }
  run(argv: readonly string[], opts?: ExecOptions) {
    return runArgv(this.wrap(argv, opts?.needsBpffs), opts);
  }
  start(argv: readonly string[], opts?: { signal?: AbortSignal }) {
    return spawnArgv(this.wrap(argv), { signal: opts?.signal });
  }
}

/** An argv to run in a named network namespace (see NetnsExec). */
export function wrapNetns(netns: string, argv: readonly string[], needsBpffs = false): string[] {
  if (!needsBpffs && (argv[0] === 'ip' || argv[0] === 'tc')) return [argv[0], '-n', netns, ...argv.slice(1)];
  return ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv];
}

/** Parse a command's JSON output; a parse failure names the command. */
export function parseJson<T = unknown>(r: ExecResult, what: string): T {
  try {
    return JSON.parse(r.stdout || 'null') as T;
  } catch {
    throw new LabError('E_TOOL_OUTPUT', `${what}: output is not JSON: ${r.stdout.slice(0, 200)}`);
  }
}
