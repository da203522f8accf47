import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { atLeast, parseConfig } from '../kernel/facts.js';
import type { KernelEntry } from './catalogue.js';

/** A kernel ready to boot: from the catalogue's cache or (later) a user's own bzImage and modules. */
export interface CachedKernel {
  /** Catalogue name, or the user's label for a custom kernel. */
  name: string;
  /** `uname -r` of the kernel: the name of its modules dir. */
  release: string;
  /** Absolute path of the bootable image (bzImage). */
  vmlinuz: string;
  /** Absolute path of its config file; a custom kernel may have none. */
  config?: string;
  /** Absolute path of lib/modules/<release>: kernel/, modules.order, modules.builtin, modules.dep. */
  modulesDir: string;
}

/** One downloaded .deb, as checked against the suite's Packages index. */
export interface FetchedPackage {
  /** Debian package name. */
  name: string;
  /** Debian version (`apt-cache show` Version). */
  version: string;
  /** SHA256 of the .deb, equal to the Packages index entry. */
  sha256: string;
  /** Size of the .deb in bytes. */
  size: number;
}

/** kernel.json in a kernel's cache dir. Paths are relative to that dir so the cache can move. */
export interface KernelRecord {
  name: string;
  /** Suite the packages came from. */
  suite: string;
  packages: FetchedPackage[];
  /** Debian version of the kernel (its first package's). */
  version: string;
  /** `uname -r` of the kernel. */
  release: string;
  /** Relative paths of vmlinuz, config and the modules dir. */
  paths: { vmlinuz: string; config: string; modulesDir: string };
  /** ISO time of the fetch. */
  fetchedAt: string;
}

/** What a kernel can do for the datapath, read from its own config. */
export interface Supports {
  /** CONFIG_NETKIT: netkit pod devices (6.7+). */
  netkit: boolean;
  /** IPv4 BIG TCP: gso_ipv4_max_size/gro_ipv4_max_size arrived in 6.3. */
  bigTcpIpv4: boolean;
  /** CONFIG_NET_XGRESS: tcx attach points (6.6+). */
  tcx: boolean;
  /** CONFIG_NET_SCH_FQ, built in or module: the fq qdisc for EDT rate limiting. */
  fq: boolean;
}

export const KERNEL_RECORD = 'kernel.json';

/** Root of the lab's download cache; DPL_CACHE_DIR overrides it. */
export function cacheRoot(): string {
  return process.env.DPL_CACHE_DIR || '/var/cache/datapath-lab';
}

export function kernelsDir(root = cacheRoot()): string {
  return join(root, 'kernels');
}

export function kernelDir(name: string, root = cacheRoot()): string {
  return join(kernelsDir(root), name);
}

/** [major, minor] of a release string such as 6.12.95+deb12-cloud-amd64. */
export function releaseVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function supportsOf(configText: string, release: string): Supports {
  const c = parseConfig(configText);
  const on = (opt: string) => c[opt] === 'y' || c[opt] === 'm';
  return {
    netkit: on('CONFIG_NETKIT'),
    bigTcpIpv4: atLeast(releaseVersion(release), 6, 3),
    tcx: c.CONFIG_NET_XGRESS === 'y',
    fq: on('CONFIG_NET_SCH_FQ'),
  };
}

/** The record of a cached kernel, or undefined when it is not (completely) cached. */
export function readRecord(name: string, root = cacheRoot()): KernelRecord | undefined {
  const dir = kernelDir(name, root);
  try {
    const rec = JSON.parse(readFileSync(join(dir, KERNEL_RECORD), 'utf8')) as KernelRecord;
    return existsSync(join(dir, rec.paths.vmlinuz)) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** A cached catalogue kernel as the qemu backend uses it. */
export function cachedKernel(name: string, root = cacheRoot()): CachedKernel | undefined {
  const rec = readRecord(name, root);
  if (!rec) return undefined;
  const dir = kernelDir(name, root);
  const abs = (p: string) => (isAbsolute(p) ? p : join(dir, p));
  return {
    name,
    release: rec.release,
    vmlinuz: abs(rec.paths.vmlinuz),
    config: abs(rec.paths.config),
    modulesDir: abs(rec.paths.modulesDir),
  };
}

/** One row of `lab kernels list`: catalogue entry, cache state and (when cached) what it supports. */
export interface KernelStatus {
  name: string;
  suite: string;
  packages: string[];
  description: string;
  /** True when vmlinuz, config, modules and kernel.json are in the cache. */
  cached: boolean;
  /** Cache dir of this kernel (present or not). */
  dir: string;
  /** From kernel.json, once cached. */
  release?: string;
  version?: string;
  fetchedAt?: string;
  /** Read from the kernel's own config; null until it is cached. */
  supports: Supports | null;
}

export function kernelStatus(entry: KernelEntry, root = cacheRoot()): KernelStatus {
  const rec = readRecord(entry.name, root);
  const k = cachedKernel(entry.name, root);
  let supports: Supports | null = null;
  if (rec && k?.config) {
    try {
      supports = supportsOf(readFileSync(k.config, 'utf8'), rec.release);
    } catch {
      /* config missing: treated as not cached below */
    }
  }
  return {
    name: entry.name,
    suite: entry.suite,
    packages: entry.packages,
    description: entry.description,
    cached: supports !== null,
    dir: kernelDir(entry.name, root),
    release: rec?.release,
    version: rec?.version,
    fetchedAt: rec?.fetchedAt,
    supports,
  };
}
