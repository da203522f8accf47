import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostIdentity, kernelIdentity } from '../../src/report/kernel-id.js';

describe('kernels named exactly in reports', () => {
  it('a catalogue kernel: release, Debian version, the verified .deb SHA256 and the booted image hash', () => {
    const root = mkdtempSync(join(tmpdir(), 'dpl-kid-'));
    const dir = join(root, 'kernels', '6.1');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vmlinuz'), 'image bytes');
    writeFileSync(join(dir, 'config'), 'CONFIG_NETKIT=y\n');
    const pkg = { name: 'linux-image-6.1.0-50-cloud-amd64-unsigned', version: '6.1.176-1', sha256: 'ab'.repeat(32), size: 3 };
    const paths = { vmlinuz: 'vmlinuz', config: 'config', modulesDir: 'lib/modules/x' };
    const rec = {
      name: '6.1',
      suite: 'bookworm',
      packages: [pkg],
      version: '6.1.176-1',
      release: '6.1.0-50-cloud-amd64',
      paths,
      fetchedAt: '',
    };
    writeFileSync(join(dir, 'kernel.json'), JSON.stringify(rec));
    const id = kernelIdentity({ backend: 'qemu', kernel: '6.1' }, '6.1.0-50-cloud-amd64', root);
    expect(id).toEqual({
      source: 'catalogue',
      name: '6.1',
      release: '6.1.0-50-cloud-amd64',
      debianVersion: '6.1.176-1',
      suite: 'bookworm',
      packages: [{ name: pkg.name, version: '6.1.176-1', sha256: pkg.sha256 }],
      vmlinuzSha256: createHash('sha256').update('image bytes').digest('hex'),
      configSha256: createHash('sha256').update('CONFIG_NETKIT=y\n').digest('hex'),
    });
    // Not cached: named, not invented.
    expect(kernelIdentity({ backend: 'qemu', kernel: '9.9' }, 'r', root)).toEqual({ source: 'catalogue', name: '9.9', release: 'r' });
  });

  it('a host kernel: the Debian version when /proc/version names one, the build line always', () => {
    const deb = 'Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\n';
    expect(hostIdentity(deb, '6.1.0-28-amd64')).toMatchObject({ source: 'host', debianVersion: '6.1.119-1', procVersion: deb.trim() });
    expect(hostIdentity('Linux version 6.18.44 (b@h) #1 SMP\n', '6.18.44').debianVersion).toBeUndefined();
  });
});
