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
  /** Called with stdout as it arrives. */
  onStdout?: (chunk: string) => void;
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
  start(argv: readonly string[], opts?: StartOptions): Background;
}

export interface StartOptions {
  /** Aborting kills the process. */
  signal?: AbortSignal;
  /**
   * Called with stdout as it arrives (a sampler's records while it runs). A backend that
   * cannot stream (the QEMU guest agent keeps output until the process ends) calls it once, at the end.
   */
  onStdout?: (chunk: string) => void;
}

export interface Background {
  /** The process id where it runs (a guest's pid is -1 until the agent has answered). */
  pid: number;
  /** Resolves with the pid once the process runs (a guest's comes an agent round trip later). */
  started?: Promise<number>;
  done: Promise<ExecResult>;
  kill(signal?: NodeJS.Signals): void;
}

/** The pid of a started process, once it is known. */
export function startedPid(bg: Background): Promise<number> {
  return bg.started ?? Promise.resolve(bg.pid);
}

/**
 * The one place that starts processes. It spawns argv directly, without a shell:
 * zx (the usual Node choice for scripting processes) always goes through a shell, which costs one extra
 * process per command and quoting rules; the lab issues hundreds of argv-only
 * commands per bring-up and never needs shell syntax.
 */
/** DPL_TRACE=exec: every process the lab starts, on stderr, with when it started (ms since the lab's own start) and how long it ran. */
const TRACE = process.env.DPL_TRACE?.split(',').includes('exec') ?? false;

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
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    opts.onStdout?.(d);
  });
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
      const ms = performance.now() - t0;
      if (TRACE) process.stderr.write(`[exec +${t0.toFixed(0)} ms] ${ms.toFixed(1)} ms ${argv.join(' ').slice(0, 120)}\n`);
      resolve({ code, stdout, stderr, ms });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      stderr += e.code === 'ENOENT' ? `${argv[0]}: not found` : String(e.message);
      finish(e.name === 'AbortError' ? null : 127);
    });
    child.on('close', (code) => finish(code));
  });
  const pid = child.pid ?? -1;
  return { pid, started: Promise.resolve(pid), done, kill: (s = 'SIGTERM') => void child.kill(s) };
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
  start(argv: readonly string[], opts?: StartOptions) {
    return spawnArgv(argv, { signal: opts?.signal, onStdout: opts?.onStdout });
  }
}

/**
 * Commands inside a named network namespace. Uses `nsenter --net=` rather than
 * `ip netns exec`, which remounts /sys and so hides the host's bpffs pins (iproute2's netns_switch() in lib/namespace.c mounts a fresh sysfs).
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
  start(argv: readonly string[], opts?: StartOptions) {
    return spawnArgv(this.wrap(argv), { signal: opts?.signal, onStdout: opts?.onStdout });
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
