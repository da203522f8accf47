import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../../kernels/cache.js';
import type { Accel } from './vm.js';

export interface AccelProbe {
  bootId: string;
  accel: Accel;
  why: string;
}

const probeFile = () => join(cacheRoot(), 'accel.json');

/** The KVM probe's answer for this machine boot, if a VM lab has asked already. */
export function cachedAccel(): AccelProbe | undefined {
  try {
    const cached = JSON.parse(readFileSync(probeFile(), 'utf8')) as AccelProbe;
    return cached.bootId === readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() ? cached : undefined;
  } catch {
    return undefined;
  }
}

/**
 * KVM where it works, TCG otherwise, and say which. /dev/kvm existing is not enough
 * (on some hosts it belongs to a paravirtual scheme that standard kernels hang under), so the answer
 * is a real boot under KVM (`tryKvm`), remembered until the machine reboots.
 * DPL_ACCEL=kvm|tcg decides without probing.
 */
export async function chooseAccel(progress: (m: string) => void, tryKvm: () => Promise<boolean>): Promise<Accel> {
  const forced = process.env.DPL_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') {
    progress(`accelerator ${forced.toUpperCase()} (DPL_ACCEL)`);
    return forced;
  }
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    progress('no usable /dev/kvm: VMs run under TCG (software emulation, slow)');
    return 'tcg';
  }
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cached = cachedAccel();
  if (cached) {
    progress(`accelerator ${cached.accel.toUpperCase()}: ${cached.why} (probed earlier this boot)`);
    return cached.accel;
  }
  progress('probing KVM with a real boot (once per machine boot)');
  const ok = await tryKvm();
  const result: AccelProbe = ok
    ? { bootId, accel: 'kvm', why: 'a guest booted under KVM' }
    : { bootId, accel: 'tcg', why: '/dev/kvm exists but a guest did not boot under KVM; using TCG (software emulation, slow)' };
  mkdirSync(cacheRoot(), { recursive: true });
  writeFileSync(probeFile(), JSON.stringify(result, null, 2));
  progress(`accelerator ${result.accel.toUpperCase()}: ${result.why}`);
  return result.accel;
}
