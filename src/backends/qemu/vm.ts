import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BootError } from '../../errors.js';
import { sleep } from '../../sleep.js';
import { runArgv } from '../../exec/exec.js';
import { processStartTime } from '../../exec/process.js';
import { Qga } from './qga.js';

export type Accel = 'kvm' | 'tcg';

/** Memory of one node's VM (qemu -m) when its spec names none. */
export const VM_MEMORY_MB = 1024;

export interface VmSpec {
  name: string;
  vmlinuz: string;
  initramfs: string;
  /** Directory for the VM's files: agent socket, console log. */
  dir: string;
  accel: Accel;
  memoryMb?: number;
  cpus?: number;
  /** Extra QEMU arguments (network devices for links). */
  extra?: string[];
  /** Kernel parameters after the lab's own (a custom kernel's cmdline). */
  cmdline?: string;
  /** Give up when the agent has not answered by then. */
  bootTimeoutMs?: number;
}

export interface Vm {
  spec: VmSpec;
  /** pid of the daemonized QEMU (from its pidfile). */
  pid: number;
  qga: Qga;
  /** Milliseconds from QEMU's start to the agent's first answer. */
  bootMs: number;
  consoleLog: string;
}

export const pidfileOf = (dir: string) => join(dir, 'qemu.pid');

export function qemuArgv(spec: VmSpec): string[] {
  const sock = join(spec.dir, 'qga.sock');
  return [
    'qemu-system-x86_64',
    '-nodefaults',
    '-no-reboot',
    '-display',
    'none',
    '-name',
    spec.name,
    ...(spec.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-m',
    String(spec.memoryMb ?? VM_MEMORY_MB),
    '-smp',
    String(spec.cpus ?? 2),
    '-kernel',
    spec.vmlinuz,
    '-initrd',
    spec.initramfs,
    // panic=-1: reboot at once on panic, and -no-reboot turns that into QEMU exiting.
    '-append',
    `console=ttyS0 panic=-1 quiet loglevel=4${spec.cmdline ? ` ${spec.cmdline}` : ''}`,
    '-serial',
    `file:${join(spec.dir, 'console.log')}`,
    '-device',
    'virtio-serial',
    '-chardev',
    `socket,path=${sock},server=on,wait=off,id=qga0`,
    '-device',
    'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    // Daemonized, the VM outlives `lab up`; the pidfile is how the journal finds it.
    '-daemonize',
    '-pidfile',
    pidfileOf(spec.dir),
    ...(spec.extra ?? []),
  ];
}

export function consoleTail(dir: string, lines = 25): string {
  const f = join(dir, 'console.log');
  if (!existsSync(f)) return '(no console output)';
  return readFileSync(f, 'utf8')
    .replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1bc/g, '')
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .join('\n');
}

/** The QEMU of this VM dir, if it is still running (pid from the pidfile, checked against its command line). */
export function runningPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidfileOf(dir), 'utf8').trim());
    return processStartTime(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stop a VM: SIGTERM, then SIGKILL after a second. True when it is gone. */
export async function stopVm(dir: string): Promise<boolean> {
  const pid = runningPid(dir);
  if (pid === undefined) return true;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 20 && runningPid(dir) !== undefined; i++) await sleep(50);
  if (runningPid(dir) !== undefined) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 20 && runningPid(dir) !== undefined; i++) await sleep(50);
  return runningPid(dir) === undefined;
}

/**
 * Start QEMU and wait until the guest agent answers guest-sync: readiness is the
 * agent, not a sleep. A panic or an early exit is its own result, with the console tail.
 */
export async function bootVm(spec: VmSpec, signal?: AbortSignal): Promise<Vm> {
  const t0 = performance.now();
  const started = await runArgv(qemuArgv(spec), { nothrow: true, signal, timeoutMs: 60_000 });
  if (started.code !== 0) throw new BootError(spec.name, 'exited', `${started.stderr.trim()}\n${consoleTail(spec.dir)}`);
  const qga = new Qga(join(spec.dir, 'qga.sock'));
  const deadline = t0 + (spec.bootTimeoutMs ?? 90_000);
  const fail = async (reason: BootError['reason']) => {
    qga.close();
    const tail = consoleTail(spec.dir);
    await stopVm(spec.dir);
    throw new BootError(spec.name, reason, tail);
  };
  while (performance.now() < deadline) {
    if (signal?.aborted) return fail('exited');
    const panicked = /Kernel panic - not syncing/.test(consoleTail(spec.dir, 200));
    if (runningPid(spec.dir) === undefined) return fail(panicked ? 'panic' : 'exited');
    if (panicked) return fail('panic');
    // qemu-ga's own words when it cannot open its port: no point waiting for it.
    if (/error initializing guest agent/.test(consoleTail(spec.dir, 200))) return fail('agent');
    try {
      // Short rounds, so a panic or an exit is noticed while the agent is awaited.
      await qga.open(Math.min(2_000, deadline - performance.now()));
      return { spec, pid: runningPid(spec.dir)!, qga, bootMs: performance.now() - t0, consoleLog: join(spec.dir, 'console.log') };
    } catch {
      qga.close();
    }
    await sleep(100);
  }
  return fail('timeout');
}
