import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot, kernelDir, readRecord, type KernelRecord } from '../kernels/cache.js';
import type { Lab } from '../topology/model.js';

/** The kernel a lab ran on, named so that two results can be told apart. */
export interface KernelIdentity {
  /** catalogue: fetched by `lab kernels fetch`; custom: the user's own files; host: this machine's (local backend). */
  source: 'catalogue' | 'custom' | 'host';
  /** Catalogue name. */
  name?: string;
  /** `uname -r` (custom: the modules dir's name). */
  release?: string;
  /** Debian version of the kernel package; a host kernel's from /proc/version when Debian built it. */
  debianVersion?: string;
  /** Debian suite the packages came from. */
  suite?: string;
  /** Each .deb with the SHA256 that `lab kernels fetch` checked against the suite's signed Packages index. */
  packages?: { name: string; version: string; sha256: string }[];
  /** SHA256 of the kernel image booted, read when the report was written. */
  vmlinuzSha256?: string;
  /** SHA256 of its config, when there is one. */
  configSha256?: string;
  /** The host kernel's /proc/version line (build host, compiler, build number and date). */
  procVersion?: string;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sha256If = (file?: string) => (file && existsSync(file) ? sha256(file) : undefined);

/** A catalogue kernel's identity from its cache record; the image hashes are computed by the caller. */
export function catalogueIdentity(rec: KernelRecord, hashes: { vmlinuz?: string; config?: string } = {}): KernelIdentity {
  return {
    source: 'catalogue',
    name: rec.name,
    release: rec.release,
    debianVersion: rec.version,
    suite: rec.suite,
    packages: rec.packages.map(({ name, version, sha256 }) => ({ name, version, sha256 })),
    ...(hashes.vmlinuz ? { vmlinuzSha256: hashes.vmlinuz } : {}),
    ...(hashes.config ? { configSha256: hashes.config } : {}),
  };
}

/** The host kernel from its /proc/version line; Debian's kernels name their package version there ("Debian 6.1.123-1"). */
export function hostIdentity(procVersion: string, release: string): KernelIdentity {
  const deb = /\bDebian (\S+)/.exec(procVersion)?.[1];
  return { source: 'host', release, ...(deb ? { debianVersion: deb } : {}), procVersion: procVersion.trim() };
}

/** The kernel of a lab: the VM's (catalogue or custom) or, on the local backend, this machine's. Never throws. */
export function kernelIdentity(lab: Pick<Lab, 'backend' | 'kernel' | 'customKernel'>, release: string, root = cacheRoot()): KernelIdentity {
  try {
    if (lab.backend !== 'qemu') return hostIdentity(readFileSync('/proc/version', 'utf8'), release);
    if (lab.customKernel) {
      const c = lab.customKernel;
      return { source: 'custom', release, vmlinuzSha256: sha256If(c.vmlinuz), configSha256: sha256If(c.config) };
    }
    const rec = lab.kernel ? readRecord(lab.kernel, root) : undefined;
    if (!rec) return { source: 'catalogue', name: lab.kernel, release };
    const dir = kernelDir(rec.name, root);
    return catalogueIdentity(rec, { vmlinuz: sha256If(join(dir, rec.paths.vmlinuz)), config: sha256If(join(dir, rec.paths.config)) });
  } catch {
    return { source: lab.backend === 'qemu' ? 'catalogue' : 'host', release };
  }
}
