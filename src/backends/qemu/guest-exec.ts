import { CommandError } from '../../errors.js';
import { FAILPOINT, failHere, faultArgv, faultDeadline, type FaultKind } from '../../exec/failpoint.js';
import { inCgroup, wrapNetns, type Background, type Exec, type ExecOptions, type ExecResult, type StartOptions } from '../../exec/exec.js';
import type { Qga } from './qga.js';
import { sleep } from '../../sleep.js';

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
}

const b64 = (s?: string) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/**
 * Commands inside a QEMU guest through its agent (guest-exec, guest-exec-status),
 * behind the same Exec interface as the host. `wrap` maps an argv to the guest
 * namespace it must run in (the guest has its own /run/netns and bpffs).
 */
export class GuestExec implements Exec {
  /** Guest processes end with their VM, which is what the journal owns. */
  readonly hostPids = false;
  constructor(
    private readonly qga: Qga,
    readonly where: string,
    private readonly wrap: (argv: readonly string[], needsBpffs?: boolean) => readonly string[] = (a) => a,
  ) {}

  /** Close the agent connection (the VM keeps running). */
  close(): void {
    this.qga.close();
  }

  /** Exec for one of the guest's namespaces (`ip -n`, else nsenter --net). */
  inNetns(netns: string): GuestExec {
    return new GuestExec(this.qga, `${this.where} netns ${netns}`, (argv, needsBpffs) => wrapNetns(netns, argv, needsBpffs));
  }

  /** Start argv in the guest; `fault` (a test fail point) replaces it by a command that never ends. */
  private async spawn(argv: readonly string[], input?: string, needsBpffs?: boolean, fault?: FaultKind): Promise<number> {
    const full = fault === 'timeout' ? faultArgv(fault, argv) : this.wrap(argv, needsBpffs);
    const r = (await this.qga.send('guest-exec', {
      path: full[0],
      arg: full.slice(1),
      'capture-output': true,
      ...(input !== undefined ? { 'input-data': Buffer.from(input).toString('base64') } : {}),
    })) as { pid: number };
    return r.pid;
  }

  /** Poll until the process ends, or is stopped at its deadline; the agent keeps its output until asked once. */
  private async wait(pid: number, t0: number, signal?: AbortSignal, timeoutMs?: number): Promise<ExecResult> {
    let delay = 5;
    for (;;) {
      const late = timeoutMs !== undefined && performance.now() - t0 > timeoutMs;
      if (signal?.aborted || late) {
        // Stopped: kill it in the guest and stop asking (teardown may stop the VM next).
        await this.qga.send('guest-exec', { path: 'kill', arg: ['-9', String(pid)] }).catch(() => {});
        return { code: null, stdout: '', stderr: late ? `timed out after ${timeoutMs} ms` : 'aborted', ms: performance.now() - t0 };
      }
      const s = (await this.qga.send('guest-exec-status', { pid })) as ExecStatus;
      if (s.exited) {
        return {
          code: s.signal ? null : (s.exitcode ?? 0),
          stdout: b64(s['out-data']),
          stderr: b64(s['err-data']),
          ms: performance.now() - t0,
        };
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /** A guest command is an operation of its lifecycle step for the test fail points (src/exec/failpoint.ts), as a host process is. */
  private fault(argv: readonly string[], needsBpffs?: boolean): FaultKind | undefined {
    return FAILPOINT ? failHere(this.wrap(argv, needsBpffs)) : undefined;
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const t0 = performance.now();
    const fault = this.fault(argv, opts.needsBpffs);
    const r =
      fault === 'exit'
        ? { code: 1, stdout: '', stderr: `DPL_FAILPOINT: ${argv[0]} failed on purpose`, ms: 0 }
        : await this.wait(
            await this.spawn(inCgroup(argv, opts.cgroup), opts.input, opts.needsBpffs, fault),
            t0,
            opts.signal,
            fault === 'timeout' ? faultDeadline(opts.timeoutMs) : opts.timeoutMs,
          );
    if (r.code !== 0 && !opts.nothrow)
      throw new CommandError([...this.wrap(argv, opts.needsBpffs)], r.code, r.stdout, r.stderr, opts.input);
    return r;
  }

  /** guest-exec keeps a process's output until it ends: onStdout is called once, with all of it. */
  start(argv: readonly string[], opts?: StartOptions): Background {
    const t0 = performance.now();
    const fault = this.fault(argv);
    if (fault === 'exit') {
      const r: ExecResult = { code: 1, stdout: '', stderr: `DPL_FAILPOINT: ${argv[0]} failed on purpose`, ms: 0 };
      return { pid: -1, started: Promise.resolve(-1), done: Promise.resolve(r), kill: () => {} };
    }
    const pidP = this.spawn(inCgroup(argv, opts?.cgroup), undefined, undefined, fault);
    let guestPid = -1;
    const done = pidP.then(async (pid) => {
      guestPid = pid;
      const r = await this.wait(pid, t0, opts?.signal, fault === 'timeout' ? faultDeadline(undefined) : undefined);
      if (r.stdout) opts?.onStdout?.(r.stdout);
      return r;
    });
    pidP.catch(() => {});
    // A background command nobody awaits any more (its lab was interrupted) must not
    // crash the process when its VM goes away: callers that await still see the error.
    done.catch(() => {});
    return {
      // The guest's pid: the journal does not own it (the VM's teardown ends it).
      get pid() {
        return guestPid;
      },
      started: pidP,
      done,
      kill: (sig = 'SIGTERM') =>
        void pidP.then((pid) =>
          this.qga.send('guest-exec', { path: 'kill', arg: [`-${sig.replace('SIG', '')}`, String(pid)] }).catch(() => {}),
        ),
    };
  }
}
