import { existsSync } from 'node:fs';
import { HostExec } from '../exec/exec.js';
import { cachedAccel } from '../backends/qemu/accel.js';
import { loadCatalogue } from '../kernels/catalogue.js';
import { kernelStatus } from '../kernels/cache.js';
import { probeLocal, type KernelFacts } from '../kernel/facts.js';
import { FEATURES } from '../datapath/registry.js';
import { CHECKS } from '../checks/registry.js';
import { DEFAULT_DATAPATH } from '../topology/schema.js';

/** What this machine supports: kernel and tool facts, every feature and every check with its reason. */
export function doctorReport(facts: KernelFacts) {
  return {
    kernel: { release: facts.release, arch: facts.arch, config: facts.configSource ?? 'unreadable', btf: facts.btf, bpffs: facts.bpffs, root: facts.root },
    tools: Object.fromEntries(Object.entries(facts.tools).map(([k, v]) => [k, v.path ? (v.version?.join('.') ?? 'present') : 'missing'])),
    features: FEATURES.map((f) => {
      const v = f.requires(facts);
      const d = f.decide(facts, { ...DEFAULT_DATAPATH, podDevice: 'auto' }, '-');
      return { id: f.id, title: f.title, supported: v.ok, reason: v.ok ? undefined : v.reason, withDefaults: `${d.status}: ${d.detail}` };
    }),
    checks: CHECKS.map((c) => {
      const v = c.requires({ facts });
      return { id: c.id, title: c.title, supported: v.ok, reason: v.ok ? undefined : v.reason, proves: c.proves };
    }),
  };
}

/** The qemu backend here: QEMU and the guest tools, the accelerator, the kernel catalogue's cache. */
async function qemuReport(exec: HostExec) {
  const v = await exec.run(['qemu-system-x86_64', '--version'], { nothrow: true });
  const accel = cachedAccel();
  return {
    qemu: v.code === 0 ? v.stdout.split('\n')[0].replace(/^QEMU emulator version /, '') : 'missing',
    guestAgent: existsSync('/usr/sbin/qemu-ga') ? 'present' : 'missing',
    busybox: existsSync('/usr/bin/busybox') ? 'present' : 'missing',
    accel: accel ? `${accel.accel}: ${accel.why}` : existsSync('/dev/kvm') ? 'not probed yet (the first VM lab boots a guest under KVM to find out)' : 'tcg (no /dev/kvm)',
    kernels: loadCatalogue().map((e) => {
      const s = kernelStatus(e);
      return { name: s.name, cached: s.cached, release: s.release, supports: s.supports };
    }),
  };
}

export async function doctorHere() {
  const exec = new HostExec();
  return { ...doctorReport(await probeLocal(exec, { allVersions: true })), qemuBackend: await qemuReport(exec) };
}
