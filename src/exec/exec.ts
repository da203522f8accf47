import { spawn } from 'node:child_process';
import { CommandError, LabError } from '../errors.js';
import { FAILPOINT, failHere, faultArgv, faultDeadline } from './failpoint.js';

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
  /** Called with stderr as it arrives (a child lab CLI's progress lines for the dashboard; an ssh target's background command reports its pid there). */
  onStderr?: (chunk: string) => void;
  /** Working directory of the process (default: the lab's own). */
  cwd?: string;
  /**
   * The command reads pinned BPF objects: in a namespace, enter only the network
   * namespace (nsenter --net), never `ip -n` / `tc -n`, which remount /sys and hide bpffs.
   */
  needsBpffs?: boolean;
  /** Run the process in this cgroup v2 directory (a pod's, for socket-LB): it joins before exec. */
  cgroup?: string;
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
  /** Run the process in this cgroup v2 directory (see ExecOptions.cgroup). */
  cgroup?: string;
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
  const fault = FAILPOINT ? failHere(argv) : undefined;
  if (fault === 'exit') return failed(argv);
  if (fault) {
    argv = faultArgv(fault, argv);
    if (fault === 'timeout') opts = { ...opts, timeoutMs: faultDeadline(opts.timeoutMs) };
  }
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), {
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    signal: opts.signal,
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
    env: opts.env,
    cwd: opts.cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    opts.onStdout?.(d);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    opts.onStderr?.(d);
  });
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

/** A process that failed as if it had exited 1, never started (a test fail point, see failpoint.ts). */
function failed(argv: readonly string[]): Background {
  const r: ExecResult = { code: 1, stdout: '', stderr: `DPL_FAILPOINT: ${argv[0]} failed on purpose`, ms: 0 };
  return { pid: -1, started: Promise.resolve(-1), done: Promise.resolve(r), kill: () => {} };
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
    return runArgv(this.wrap(inCgroup(argv, opts?.cgroup), opts?.needsBpffs), opts);
  }
  start(argv: readonly string[], opts?: StartOptions) {
    return spawnArgv(this.wrap(inCgroup(argv, opts?.cgroup)), { signal: opts?.signal, onStdout: opts?.onStdout });
  }
}

/**
 * argv run as a member of a cgroup v2 directory: the shell writes its own pid to
 * cgroup.procs, then execs argv in the same process. Membership is by cgroup.procs
 * (Documentation/admin-guide/cgroup-v2.rst, "Processes"); `nsenter --cgroup` only
 * changes the cgroup namespace, not membership. A socket belongs to the cgroup of the
 * process that created it (sock_cgroup_data, set at socket creation), so the process
 * must be in the cgroup before it opens one.
 */
export function inCgroup(argv: readonly string[], cgroup: string | undefined): readonly string[] {
  if (!cgroup) return argv;
  return ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...argv];
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
