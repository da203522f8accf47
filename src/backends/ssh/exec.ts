import { CommandError, LabError } from '../../errors.js';
import {
  inCgroup,
  runArgv,
  spawnArgv,
  wrapNetns,
  type Background,
  type Exec,
  type ExecOptions,
  type ExecResult,
  type StartOptions,
} from '../../exec/exec.js';
import type { RemoteTarget } from '../../lifecycle/remote.js';
import { failureText, sshArgv, sshFailure, targetName } from './args.js';

/** ssh's own exit status when it, not the remote command, failed (ssh(1) EXIT STATUS). */
const SSH_FAILED = 255;

/** The remote shell prints this line on stderr before exec'ing a background command: its pid, for kill. */
const PID_MARK = 'dpl-pid ';

/**
 * Commands on an ssh target over the lab's ControlMaster connection, behind the same
 * Exec interface as the host's: each run is one round trip on an open connection.
 * `wrap` maps an argv into one of the target's namespaces.
 */
export class SshExec implements Exec {
  /** Target processes live on another machine: the lab's namespaces there own them (teardown kills what is inside). */
  readonly hostPids = false;
  readonly where: string;
  constructor(
    readonly target: RemoteTarget,
    /** The login is not root: every command goes through sudo -n. */
    readonly sudo: boolean,
    private readonly wrap: (argv: readonly string[], needsBpffs?: boolean) => readonly string[] = (a) => a,
    where?: string,
  ) {
    this.where = where ?? targetName(target);
  }

  inNetns(netns: string): SshExec {
    return new SshExec(this.target, this.sudo, (argv, b) => wrapNetns(netns, argv, b), `${this.where} netns ${netns}`);
  }

  private argv(argv: readonly string[], opts?: { cgroup?: string; needsBpffs?: boolean }): string[] {
    return sshArgv(this.target, this.wrap(inCgroup(argv, opts?.cgroup), opts?.needsBpffs), this.sudo);
  }

  /** A connection failure is the target's, not the command's: it names the target and says what to do. */
  private connectionError(r: ExecResult): LabError | undefined {
    if (r.code !== SSH_FAILED) return undefined;
    const f = sshFailure(r.stderr);
    if (f === 'other') return undefined;
    const { message, hint } = failureText(f, this.target, r.stderr);
    return new LabError('E_REQUIREMENT', message, hint);
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await runArgv(this.argv(argv, opts), { ...opts, nothrow: true });
    const conn = this.connectionError(r);
    if (conn) throw conn;
    if (r.code !== 0 && !opts.nothrow)
      throw new CommandError([...this.wrap(argv, opts.needsBpffs)], r.code, r.stdout, r.stderr, opts.input);
    return r;
  }

  /**
   * A background command: the remote shell reports its pid first (on stderr), so kill()
   * signals the remote process itself; killing the local ssh client alone would leave it running.
   */
  start(argv: readonly string[], opts?: StartOptions): Background {
    const inner = this.wrap(inCgroup(argv, opts?.cgroup));
    const shell = ['sh', '-c', `echo "${PID_MARK}$$" >&2; exec "$@"`, 'sh', ...inner];
    let remotePid = -1;
    let resolvePid: (p: number) => void = () => {};
    const started = new Promise<number>((r) => (resolvePid = r));
    let head = '';
    const mark = new RegExp(`^${PID_MARK}(\\d+)\\n`);
    const bg = spawnArgv(sshArgv(this.target, shell, this.sudo), {
      signal: opts?.signal,
      onStdout: opts?.onStdout,
      onStderr: (d) => {
        if (remotePid > 0 || head.length > 64) return;
        head += d;
        const m = mark.exec(head);
        if (!m) return;
        remotePid = Number(m[1]);
        resolvePid(remotePid);
      },
    });
    const done = bg.done.then((r) => {
      resolvePid(remotePid);
      const m = mark.exec(r.stderr);
      return { ...r, stderr: m ? r.stderr.slice(m[0].length) : r.stderr };
    });
    return {
      get pid() {
        return remotePid;
      },
      started,
      done,
      kill: (sig = 'SIGTERM') => {
        void started.then((pid) => {
          if (pid > 0) void this.run(['kill', `-${sig.replace('SIG', '')}`, String(pid)], { nothrow: true }).catch(() => {});
          else bg.kill(sig);
        });
      },
    };
  }
}
