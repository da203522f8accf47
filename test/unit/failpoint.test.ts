import { describe, expect, it } from 'vitest';
import { faultArgv, faultDeadline, FAULT_TIMEOUT_MS, isVmStart, parseFailPoint } from '../../src/exec/failpoint.js';
import { qemuArgv } from '../../src/backends/qemu/vm.js';

describe('fail points (test-only switch)', () => {
  it('parses step:n with an optional kind, and refuses anything else', () => {
    expect(parseFailPoint('deploy:3')).toEqual({ step: 'deploy', n: 3, kind: 'exit' });
    expect(parseFailPoint('wire:2:timeout')).toEqual({ step: 'wire', n: 2, kind: 'timeout' });
    expect(parseFailPoint('provision:1:noboot')).toEqual({ step: 'provision', n: 1, kind: 'noboot' });
    expect(parseFailPoint('count')).toMatchObject({ step: '*' });
    for (const bad of ['deploy', 'deploy:0', 'deploy:x', 'deploy:1:hang', ':1', undefined])
      expect(parseFailPoint(bad), String(bad)).toBeUndefined();
  });

  it('noboot gives the VM a kernel command line whose rdinit and init do not exist; other argvs are not VM starts', () => {
    const argv = qemuArgv({ name: 'x', vmlinuz: '/k', initramfs: '/i', dir: '/d', accel: 'tcg' });
    expect(isVmStart(argv)).toBe(true);
    expect(isVmStart(['ip', 'link'])).toBe(false);
    const broken = faultArgv('noboot', argv);
    const append = broken[broken.indexOf('-append') + 1];
    expect(append).toMatch(/^console=ttyS0 panic=-1 .* rdinit=\/dpl-failpoint-no-init init=\/dpl-failpoint-no-init$/);
    expect(broken.filter((a, i) => a !== argv[i])).toEqual([append]);
  });

  it('timeout runs a command that never ends, stopped at the shorter of its caller deadline and the fault one', () => {
    expect(faultArgv('timeout', ['tc', 'qdisc'])).toEqual(['sleep', '3600']);
    expect(faultDeadline(undefined)).toBe(FAULT_TIMEOUT_MS);
    expect(faultDeadline(500)).toBe(500);
    expect(faultDeadline(60_000)).toBe(FAULT_TIMEOUT_MS);
  });
});
