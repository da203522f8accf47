import { LabError } from '../../errors.js';
import { runArgv, type ExecResult } from '../../exec/exec.js';
import {
  failureOf,
  parseMachineReadable,
  parseSshConfig,
  parseStatus,
  type MachineLine,
  type MachineState,
  type SshConfig,
} from './machine-readable.js';

/** A `vagrant` command that failed: the command line, and Vagrant's own error class and message. */
export class VagrantError extends LabError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    /** Vagrant's error class (`error-exit` line), e.g. VagrantPlugins::ProviderLibvirt::Errors::FogLibvirtConnectionError. */
    readonly errorClass: string,
    readonly vagrantMessage: string,
  ) {
    super(
      'E_COMMAND',
      `${argv.join(' ')} failed (exit ${exitCode})${errorClass ? `: ${errorClass}` : ''}\n  ${vagrantMessage.split('\n').join('\n  ')}`,
    );
    this.name = 'VagrantError';
  }
}

/** Where one lab's Vagrant project lives and which state Vagrant may write (never the user's home). */
export interface VagrantProject {
  /** Directory holding the generated Vagrantfile; Vagrant keeps `.vagrant/` there. */
  dir: string;
  /** VAGRANT_HOME: boxes, plugins data, keys (Vagrant docs, "Environmental Variables"). */
  home: string;
  /** Provider to use when the Vagrantfile does not say (`libvirt`, `virtualbox`). */
  provider: string;
}

/** What one command leaves to read: parsed lines, or the failure built from them. */
export function resultOf(argv: readonly string[], r: ExecResult): MachineLine[] {
  const lines = parseMachineReadable(r.stdout);
  if (r.code === 0) return lines;
  const f = failureOf(lines);
  throw new VagrantError(
    argv,
    r.code,
    f?.errorClass ?? '',
    f?.message ?? (r.stderr.trim() || r.stdout.trim().split('\n').slice(-3).join('\n')),
  );
}

/**
 * The `vagrant` CLI driven with --machine-readable (no maintained npm wrapper exists:
 * node-vagrant parses the human output). Every command runs in the project's dir with
 * its own VAGRANT_HOME.
 */
export class VagrantCli {
  constructor(
    readonly project: VagrantProject,
    private readonly onLine?: (l: MachineLine) => void,
  ) {}

  private env(): NodeJS.ProcessEnv {
    const { home, provider } = this.project;
    return {
      ...process.env,
      VAGRANT_HOME: home,
      VAGRANT_DEFAULT_PROVIDER: provider,
      VAGRANT_CHECKPOINT_DISABLE: '1',
      VAGRANT_NO_COLOR: '1',
    };
  }

  /** One vagrant command; `onLine` sees each machine-readable line as it arrives (progress). */
  async run(args: readonly string[], signal?: AbortSignal, timeoutMs = 900_000): Promise<MachineLine[]> {
    const argv = ['vagrant', ...args, '--machine-readable'];
    let partial = '';
    const r = await runArgv(argv, {
      cwd: this.project.dir,
      env: this.env(),
      nothrow: true,
      signal,
      timeoutMs,
      onStdout: this.onLine
        ? (chunk) => {
            partial += chunk;
            const cut = partial.lastIndexOf('\n');
            if (cut < 0) return;
            for (const l of parseMachineReadable(partial.slice(0, cut))) this.onLine!(l);
            partial = partial.slice(cut + 1);
          }
        : undefined,
    });
    return resultOf(argv, r);
  }

  async up(machines: readonly string[], signal?: AbortSignal): Promise<void> {
    await this.run(['up', ...machines], signal);
  }

  async status(signal?: AbortSignal): Promise<MachineState[]> {
    return parseStatus(await this.run(['status'], signal, 120_000));
  }

  async sshConfig(machine: string, signal?: AbortSignal): Promise<SshConfig> {
    const argv = ['vagrant', 'ssh-config', machine, '--machine-readable'];
    const r = await runArgv(argv, { cwd: this.project.dir, env: this.env(), nothrow: true, signal, timeoutMs: 120_000 });
    resultOf(argv, r);
    const hosts = parseSshConfig(r.stdout);
    const one = hosts.find((h) => h.host === machine);
    if (!one) throw new LabError('E_TOOL_OUTPUT', `${argv.join(' ')}: no Host ${machine} in its output`);
    return one;
  }

  /** destroy -f: no prompt; destroying a machine that was never created is not an error for Vagrant. */
  async destroy(machines: readonly string[], signal?: AbortSignal): Promise<void> {
    await this.run(['destroy', '-f', ...machines], signal, 300_000);
  }
}
