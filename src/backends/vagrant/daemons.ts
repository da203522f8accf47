import { existsSync, readFileSync } from 'node:fs';
import { LabError } from '../../errors.js';
import { HostExec, type Exec } from '../../exec/exec.js';
import { processStartTime } from '../../exec/process.js';
import { sleep } from '../../sleep.js';

/** A libvirt daemon the lab may have to start: its binary and the pidfile it writes as root (libvirtd(8), virtlogd(8)). */
export interface Daemon {
  name: 'virtlogd' | 'libvirtd';
  argv: string[];
  /** Pidfile of the daemon run by root with its default config. */
  pidfile: string;
  /** Socket clients connect to: the daemon is ready once it exists. */
  socket: string;
}

/** virtlogd first: libvirtd's QEMU driver hands it each domain's console log (libvirtd(8)). */
export const LIBVIRT_DAEMONS: Daemon[] = [
  { name: 'virtlogd', argv: ['virtlogd', '-d'], pidfile: '/run/virtlogd.pid', socket: '/run/libvirt/virtlogd-sock' },
  { name: 'libvirtd', argv: ['libvirtd', '-d'], pidfile: '/run/libvirtd.pid', socket: '/run/libvirt/libvirt-sock' },
];

/** A daemon this lab started: journaled as a process so teardown stops exactly it (a reused pid has another start time). */
export interface StartedDaemon {
  pid: number;
  startTime: string;
  argv: string[];
}

/** Pid of a running daemon from its pidfile, if that process is alive. */
export function runningPid(pidfile: string): number | undefined {
  if (!existsSync(pidfile)) return undefined;
  const pid = Number(readFileSync(pidfile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && processStartTime(pid) ? pid : undefined;
}

/**
 * Start virtlogd and libvirtd where no service manager runs them (Debian's sysv scripts are
 * not run by a container's init); a daemon already running is used and never stopped.
 * `journal` is called with each daemon as soon as its pid is known, before the next step.
 */
export async function ensureLibvirt(
  journal: (d: StartedDaemon) => void,
  opts: { exec?: Exec; log?: (m: string) => void; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<StartedDaemon[]> {
  const exec = opts.exec ?? new HostExec();
  const started: StartedDaemon[] = [];
  for (const d of LIBVIRT_DAEMONS) {
    if (runningPid(d.pidfile)) continue;
    opts.log?.(`starting ${d.name} (no service manager runs it; the lab stops it at teardown)`);
    await exec.run(d.argv, { signal: opts.signal, timeoutMs: 30_000 });
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    let pid = runningPid(d.pidfile);
    while (!pid || !existsSync(d.socket)) {
      if (Date.now() > deadline)
        throw new LabError(
          'E_REQUIREMENT',
          `${d.name} did not come up (no live pid in ${d.pidfile} or no ${d.socket})`,
          `run ${d.argv.join(' ')} by hand`,
        );
      opts.signal?.throwIfAborted();
      await sleep(100);
      pid = runningPid(d.pidfile);
    }
    const s = { pid, startTime: processStartTime(pid), argv: d.argv };
    journal(s);
    started.push(s);
  }
  return started;
}

/** The libvirt domain type to ask for: kvm when libvirt's capabilities offer it, else qemu (TCG). */
export function domainDriver(capabilitiesXml: string): 'kvm' | 'qemu' {
  return /<domain type=['"]kvm['"]/.test(capabilitiesXml) ? 'kvm' : 'qemu';
}
