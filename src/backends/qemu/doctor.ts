import { existsSync } from 'node:fs';
import { HostExec } from '../../exec/exec.js';
import { loadCatalogue } from '../../kernels/catalogue.js';
import { kernelStatus } from '../../kernels/cache.js';
import type { DoctorSection } from '../backend.js';
import { cachedAccel } from './accel.js';

/** The qemu backend here: QEMU and the guest tools, the accelerator, the kernel catalogue's cache. */
export async function qemuDoctor(): Promise<DoctorSection> {
  const v = await new HostExec().run(['qemu-system-x86_64', '--version'], { nothrow: true });
  const accel = cachedAccel();
  const yn = (b?: boolean) => (b ? 'yes' : 'no');
  return {
    backend: 'qemu',
    facts: {
      QEMU: v.code === 0 ? v.stdout.split('\n')[0].replace(/^QEMU emulator version /, '') : 'missing (apt-get install qemu-system-x86)',
      'guest agent': existsSync('/usr/sbin/qemu-ga') ? 'present' : 'missing (apt-get install qemu-guest-agent)',
      busybox: existsSync('/usr/bin/busybox') ? 'present' : 'missing (apt-get install busybox-static)',
      accelerator: accel
        ? `${accel.accel}: ${accel.why}`
        : existsSync('/dev/kvm')
          ? 'not probed yet (the first VM lab boots a guest under KVM to find out)'
          : 'tcg (no /dev/kvm)',
    },
    tables: [
      {
        title: 'kernels (vms/kernels.yaml)',
        header: ['KERNEL', 'CACHED', 'RELEASE', 'NETKIT', 'BIGTCP4', 'TCX', 'FQ'],
        rows: loadCatalogue().map((e) => {
          const s = kernelStatus(e);
          const k = s.supports;
          return [
            s.name,
            s.cached ? 'yes' : `no (lab kernels fetch ${s.name})`,
            s.release ?? '-',
            ...(k ? [yn(k.netkit), yn(k.bigTcpIpv4), yn(k.tcx), yn(k.fq)] : ['-', '-', '-', '-']),
          ];
        }),
      },
    ],
  };
}
