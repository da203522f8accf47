import { LabError } from '../../errors.js';

/** MemAvailable of /proc/meminfo in MiB (the kernel's estimate of memory usable without swapping, fs/proc/meminfo.c). */
export function memAvailableMb(meminfo: string): number | undefined {
  const kb = meminfo.match(/^MemAvailable:\s+(\d+) kB$/m)?.[1];
  return kb === undefined ? undefined : Math.floor(Number(kb) / 1024);
}

/** The refusal of a lab whose VMs need more memory than the machine has available; undefined when they fit. */
export function memoryRefusal(vms: number, perVmMb: number, meminfo: string): LabError | undefined {
  const avail = memAvailableMb(meminfo);
  const need = vms * perVmMb;
  if (avail === undefined || need <= avail) return undefined;
  return new LabError(
    'E_REQUIREMENT',
    `${vms} VMs of ${perVmMb} MiB need ${need} MiB of memory; this machine has ${avail} MiB available (MemAvailable in /proc/meminfo)`,
    'fewer nodes in the topology, or a machine with more free memory',
  );
}
