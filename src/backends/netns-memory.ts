import { readFileSync } from 'node:fs';
import { LabError } from '../errors.js';
import { memAvailableMb } from './qemu/memory.js';

/**
 * Kernel memory one lab namespace holds while it exists (the namespace, its veth pair, routes,
 * sysctls). Measured on Linux 6.18: a 2-node, 1000-pod IPv4 lab raised SUnreclaim in /proc/meminfo
 * by 311 KiB per namespace, freed again by the kernel's cleanup_net worker after `lab down`
 * (net/core/net_namespace.c). A lower bound, so only a lab that certainly does not fit is refused.
 */
export const NETNS_KIB = 256;

/**
 * /proc/meminfo, or (TEST-ONLY) the file DPL_TEST_MEMINFO names: the CLI test of the refusal
 * cannot lower this machine's MemAvailable, and a topology file is capped below the pods it would take.
 */
export function readMeminfo(): string {
  try {
    return readFileSync(process.env.DPL_TEST_MEMINFO ?? '/proc/meminfo', 'utf8');
  } catch {
    return '';
  }
}

/** The refusal of a lab whose `need` namespaces hold more kernel memory than MemAvailable; undefined when they fit. */
export function netnsMemoryRefusal(need: number, meminfo: string): LabError | undefined {
  const avail = memAvailableMb(meminfo);
  const needMb = Math.ceil((need * NETNS_KIB) / 1024);
  if (avail === undefined || needMb <= avail) return undefined;
  return new LabError(
    'E_REQUIREMENT',
    `the lab needs ${need} network namespaces of at least ${NETNS_KIB} KiB of kernel memory each (${needMb} MiB); ` +
      `this machine has ${avail} MiB available (MemAvailable in /proc/meminfo)`,
    'fewer pods or nodes, or a machine with more free memory',
  );
}
