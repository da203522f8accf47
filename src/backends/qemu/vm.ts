import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../../errors.js';
import { spawnArgv, type Background } from '../../exec/exec.js';
import { Qga } from './qga.js';

export type Accel = 'kvm' | 'tcg';

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
  /** Give up when the agent has not answered by then. */
  bootTimeoutMs?: number;
}

/** A guest whose boot failed: a panic, an early exit, or an agent that never answered. */
export class BootError extends LabError {
  constructor(
    readonly vm: string,
    readonly reason: 'panic' | 'exited' | 'timeout',
    readonly consoleTail: string,
  ) {
    super('E_LAB_FAILED', `VM ${vm} did not boot (${reason}); console tail:\n${consoleTail}`);
  }
}

export interface Vm {
  spec: VmSpec;
  proc: Background;
  qga: Qga;
  /** Milliseconds from QEMU's start to the agent's first answer. */
  bootMs: number;
  consoleLog: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function qemuArgv(spec: VmSpec): string[] {
  const sock = join(spec.dir, 'qga.sock');
  return [
    'qemu-system-x86_64',
    '-nodefaults',
    '-no-reboot',
    '-nographic',
    '-name', spec.name,
    ...(spec.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-m', String(spec.memoryMb ?? 1024),
    '-smp', String(spec.cpus ?? 2),
    '-kernel', spec.vmlinuz,
    '-initrd', spec.initramfs,
    // panic=-1: reboot at once on panic, and -no-reboot turns that into QEMU exiting.
    '-append', 'console=ttyS0 panic=-1 quiet loglevel=4',
    '-serial', `file:${join(spec.dir, 'console.log')}`,
    '-device', 'virtio-serial',
    '-chardev', `socket,path=${sock},server=on,wait=off,id=qga0`,
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    ...(spec.extra ?? []),
  ];
}

export function consoleTail(dir: string, lines = 25): string {
  const f = join(dir, 'console.log');
  if (!existsSync(f)) return '(no console output)';
  return readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Start QEMU and wait until the guest agent answers guest-sync: readiness is the
 * agent, not a sleep. A panic or an early exit is its own result, with the console tail.
 */
export async function bootVm(spec: VmSpec, onStart: (pid: number) => void, signal?: AbortSignal): Promise<Vm> {
  const t0 = performance.now();
  const proc = spawnArgv(qemuArgv(spec), { signal });
  onStart(proc.pid);
  let exited = false;
  void proc.done.then(() => (exited = true));
  const qga = new Qga(join(spec.dir, 'qga.sock'));
  const deadline = t0 + (spec.bootTimeoutMs ?? 90_000);
  const fail = async (reason: BootError['reason']) => {
    proc.kill('SIGKILL');
    await proc.done;
    throw new BootError(spec.name, reason, consoleTail(spec.dir));
  };
  while (performance.now() < deadline) {
    if (signal?.aborted) return fail('exited');
    if (exited) {
      const r = await proc.done;
      throw new BootError(spec.name, /Kernel panic/.test(consoleTail(spec.dir, 200)) ? 'panic' : 'exited', `${consoleTail(spec.dir)}\n${r.stderr.trim()}`);
    }
    if (/Kernel panic - not syncing/.test(consoleTail(spec.dir, 200))) return fail('panic');
    if (existsSync(join(spec.dir, 'qga.sock'))) {
      try {
        // Short rounds, so a panic or an exit is noticed while the agent is awaited.
        await qga.open(Math.min(2_000, deadline - performance.now()));
        return { spec, proc, qga, bootMs: performance.now() - t0, consoleLog: join(spec.dir, 'console.log') };
      } catch {
        qga.close();
      }
    }
    await sleep(100);
  }
  return fail('timeout');
}
