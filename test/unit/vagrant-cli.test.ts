import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/errors.js';
import { boxCatalog, boxKey, systemMirror } from '../../src/backends/vagrant/box.js';
import { resultOf, VagrantError } from '../../src/backends/vagrant/cli.js';
import type { KernelRecord } from '../../src/kernels/cache.js';
import { failureOf, parseMachineReadable, parseSshConfig, parseStatus } from '../../src/backends/vagrant/machine-readable.js';

/** Output captured from Vagrant 2.3.4 with vagrant-libvirt 0.11.2 on Debian 12. */
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', 'vagrant', name), 'utf8');

describe('vagrant --machine-readable', () => {
  it('reads every line with its target, type and unescaped fields', () => {
    const lines = parseMachineReadable(fixture('status-not-created.txt'));
    expect(lines).toHaveLength(11);
    expect(lines[0]).toEqual({ timestamp: 1796011028, target: 'n1', type: 'metadata', data: ['provider', 'libvirt'] });
    const ui = lines.at(-1)!;
    expect(ui.target).toBe('');
    expect(ui.data[0]).toBe('info');
    expect(ui.data[1]).toContain('VM, run `vagrant status NAME`.');
    expect(ui.data[1].split('\n').length).toBeGreaterThan(3);
  });

  it('status: one state per machine, in order, with its provider', () => {
    expect(parseStatus(parseMachineReadable(fixture('status-not-created.txt')))).toEqual([
      { name: 'n1', provider: 'libvirt', state: 'not_created' },
      { name: 'n2', provider: 'libvirt', state: 'not_created' },
    ]);
  });

  it('status: a machine with a provider but no state line is unreadable output, not a state', () => {
    const text = '1,n1,provider-name,libvirt\n1,n1,state,running\n2,n2,provider-name,libvirt\n';
    expect(() => parseStatus(parseMachineReadable(text))).toThrow(/machine n2 has no state line/);
  });

  it('skips lines that are not machine-readable', () => {
    expect(parseMachineReadable('warning: something\n\n1,n1,state,running\n')).toEqual([
      { timestamp: 1, target: 'n1', type: 'state', data: ['running'] },
    ]);
  });

  it('a failed command carries the command line and Vagrant error class and message', () => {
    const argv = ['vagrant', 'up', 'n1', '--machine-readable'];
    let err: unknown;
    try {
      resultOf(argv, { code: 1, stdout: fixture('up-no-libvirtd.txt'), stderr: '', ms: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VagrantError);
    const v = err as VagrantError;
    expect(v.code).toBe('E_COMMAND');
    expect(v.argv).toEqual(argv);
    expect(v.errorClass).toBe('VagrantPlugins::ProviderLibvirt::Errors::FogLibvirtConnectionError');
    expect(v.vagrantMessage).toContain("Failed to connect socket to '/var/run/libvirt/libvirt-sock'");
    expect(v.message).toContain('vagrant up n1 --machine-readable failed (exit 1)');
  });

  it('a failure without an error-exit line falls back to stderr', () => {
    expect(() => resultOf(['vagrant', 'status'], { code: 127, stdout: '', stderr: 'vagrant: not found\n', ms: 1 })).toThrow(
      /vagrant status failed \(exit 127\)\n {2}vagrant: not found/,
    );
  });

  it('ssh-config of a machine not created: SSHNotReady with its message', () => {
    const f = failureOf(parseMachineReadable(fixture('ssh-config-not-ready.txt')));
    expect(f?.errorClass).toBe('Vagrant::Errors::SSHNotReady');
    expect(f?.message).toMatch(/^The provider for this Vagrant-managed machine is reporting that it\nis not yet ready for SSH/);
    expect(f?.message).toContain('Additionally, check');
  });
});

describe('vagrant ssh-config', () => {
  const text = fixture('ssh-config.txt');

  it('reads host, address, user, port and keys of the Host block (machine-readable line, plain text after it ignored)', () => {
    expect(parseSshConfig(text)).toEqual([
      {
        host: 'node1',
        hostName: '192.168.247.190',
        user: 'vagrant',
        port: 22,
        identityFiles: ['/run/datapath-lab/vg-quick/vagrant/home/insecure_private_key'],
      },
    ]);
  });

  it('plain ssh_config text with quoted values and two hosts', () => {
    const plain = 'Host a\n  HostName 10.0.0.1\n  Port 2222\n  IdentityFile "/k one"\n  IdentityFile /k2\nHost b\n  HostName 10.0.0.2\n';
    expect(parseSshConfig(plain)).toEqual([
      { host: 'a', hostName: '10.0.0.1', user: 'vagrant', port: 2222, identityFiles: ['/k one', '/k2'] },
      { host: 'b', hostName: '10.0.0.2', user: 'vagrant', port: 22, identityFiles: [] },
    ]);
  });

  it('a Host block without HostName is unreadable output', () => {
    expect(() => parseSshConfig('Host a\n  Port 22\n')).toThrow(LabError);
  });
});

describe('vagrant box recipe', () => {
  const rec = (sha: string): KernelRecord => ({
    name: '6.12',
    suite: 'bookworm-backports',
    packages: [{ name: 'linux-image-x', version: '1', sha256: sha, size: 1 }],
    version: '1',
    release: '6.12.1',
    paths: { vmlinuz: 'vmlinuz', config: 'config', modulesDir: 'lib/modules/6.12.1' },
    fetchedAt: '2026-11-30T00:00:00Z',
  });

  it('the cache key follows the kernel packages and the mirror, not the fetch time', () => {
    const a = boxKey(rec('aa'), 'http://deb.debian.org/debian');
    expect(boxKey({ ...rec('aa'), fetchedAt: '2027-01-01T00:00:00Z' }, 'http://deb.debian.org/debian')).toBe(a);
    expect(boxKey(rec('bb'), 'http://deb.debian.org/debian')).not.toBe(a);
    expect(boxKey(rec('aa'), 'http://mirror.example/debian')).not.toBe(a);
  });

  it("the mirror is the system's for bookworm, from deb822 or one-line sources", () => {
    const deb822 = {
      path: '/etc/apt/sources.list.d/debian.sources',
      text: 'Types: deb\nURIs: http://m1/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://m2/debian\nSuites: bookworm bookworm-updates\n',
    };
    expect(systemMirror([deb822])).toBe('http://m2/debian');
    expect(systemMirror([{ path: '/etc/apt/sources.list', text: '# c\ndeb [arch=amd64] http://m3/debian bookworm main\n' }])).toBe(
      'http://m3/debian',
    );
    expect(systemMirror([{ path: '/etc/apt/sources.list', text: 'deb http://m3/debian trixie main\n' }])).toBe(
      'http://deb.debian.org/debian',
    );
  });

  it('box metadata is a versioned catalog with the box file and its checksum', () => {
    expect(boxCatalog('dpl/6.12', '1.0.5', '/c/dpl.box', 'ff', 'd')).toEqual({
      name: 'dpl/6.12',
      description: 'd',
      versions: [{ version: '1.0.5', providers: [{ name: 'libvirt', url: 'file:///c/dpl.box', checksum_type: 'sha256', checksum: 'ff' }] }],
    });
  });
});
