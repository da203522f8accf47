import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/errors.js';
import { kernelStatus, supportsOf, type KernelRecord } from '../../src/kernels/cache.js';
import { CATALOGUE_FILE, findKernel, parseCatalogue, type KernelEntry } from '../../src/kernels/catalogue.js';
import { aptOptions, parseAptRecords, privateSources } from '../../src/kernels/fetch.js';

const good = `kernels:
  - name: "6.12"
    suite: bookworm-backports
    packages: [linux-image-6.12.95+deb12-cloud-amd64-unsigned]
    description: reference
`;
const errors = (text: string) => {
  const r = parseCatalogue(text, 'kernels.yaml');
  if (r.ok) throw new Error('expected errors');
  return r.errors;
};

describe('kernel catalogue', () => {
  it('the shipped vms/kernels.yaml is valid and has 6.1, 6.12 and a 7.x from the Debian suites', () => {
    const r = parseCatalogue(readFileSync(CATALOGUE_FILE, 'utf8'), CATALOGUE_FILE);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const by = Object.fromEntries(r.kernels.map((k) => [k.name, k]));
    expect(by['6.1'].suite).toBe('bookworm');
    expect(by['6.12'].suite).toBe('bookworm-backports');
    const seven = r.kernels.find((k) => k.name.startsWith('7.'))!;
    expect(seven.suite).toBe('trixie-backports');
    for (const k of r.kernels) {
      expect(k.packages.length).toBeGreaterThan(0);
      expect(k.packages.every((p) => p.includes('cloud-amd64'))).toBe(true);
    }
  });

  it('fills defaults', () => {
    const r = parseCatalogue(good, 'k.yaml');
    expect(r.ok && r.kernels[0]).toMatchObject({ name: '6.12', mirror: 'http://deb.debian.org/debian' });
  });

  it('reports an unknown field at its own line with the field path', () => {
    const [e] = errors(good.replace('    description: reference', '    description: reference\n    colour: blue'));
    expect(e).toMatchObject({ file: 'kernels.yaml', line: 6, path: 'kernels[0].colour' });
    expect(e.message).toMatch(/unknown field 'colour'/);
  });

  it('reports a missing field at its entry, and a wrong type at its value', () => {
    const [missing] = errors(good.replace(/ {4}packages: .*\n/, ''));
    expect(missing).toMatchObject({ line: 2, path: 'kernels[0].packages' });
    expect(missing.message).toMatch(/missing required field/);
    const [wrong] = errors(good.replace('packages: [linux-image-6.12.95+deb12-cloud-amd64-unsigned]', 'packages: 3'));
    expect(wrong).toMatchObject({ line: 4, path: 'kernels[0].packages' });
  });

  it('refuses sid and duplicate names', () => {
    expect(errors(good.replace('bookworm-backports', 'sid'))[0].message).toMatch(/expired/);
    const dup = errors(good + good.replace('kernels:\n', ''));
    expect(dup[0]).toMatchObject({ line: 6, path: 'kernels[1].name' });
  });

  it('reports malformed YAML with its line', () => {
    const [e] = errors('kernels:\n  - name: [unclosed\n');
    expect(e.line).toBeGreaterThanOrEqual(2);
    expect(e.message).toMatch(/^YAML:/);
  });

  it('an unknown kernel name is a usage error that lists the known ones', () => {
    const r = parseCatalogue(good, 'k.yaml');
    const kernels = r.ok ? r.kernels : [];
    expect(() => findKernel(kernels, '9.9')).toThrow(LabError);
    try {
      findKernel(kernels, '9.9');
    } catch (e) {
      expect((e as LabError).code).toBe('E_USAGE');
      expect((e as LabError).hint).toMatch(/6\.12/);
    }
  });
});

describe('kernel supports, from its config', () => {
  it('6.1-like config: fq only', () => {
    const cfg = '# CONFIG_NETKIT is not set\nCONFIG_NET_SCH_FQ=m\nCONFIG_NET_CLS_ACT=y\n';
    expect(supportsOf(cfg, '6.1.0-50-cloud-amd64')).toEqual({ netkit: false, bigTcpIpv4: false, tcx: false, fq: true });
  });
  it('6.12-like config: everything', () => {
    const cfg = 'CONFIG_NETKIT=y\nCONFIG_NET_XGRESS=y\nCONFIG_NET_SCH_FQ=m\n';
    expect(supportsOf(cfg, '6.12.95+deb12-cloud-amd64')).toEqual({ netkit: true, bigTcpIpv4: true, tcx: true, fq: true });
  });
  it('IPv4 BIG TCP follows the version (6.3), not the config', () => {
    expect(supportsOf('', '6.2.0').bigTcpIpv4).toBe(false);
    expect(supportsOf('', '6.3.0').bigTcpIpv4).toBe(true);
    expect(supportsOf('', '7.0.1').bigTcpIpv4).toBe(true);
  });

  it('list shows "not cached" (supports null) until kernel.json, vmlinuz and config are there', () => {
    const root = mkdtempSync(join(tmpdir(), 'dpl-kcache-'));
    const entry: KernelEntry = { name: '6.12', suite: 'bookworm-backports', packages: ['p'], description: '', mirror: 'http://x' };
    expect(kernelStatus(entry, root)).toMatchObject({ cached: false, supports: null });
    const dir = join(root, 'kernels', '6.12');
    mkdirSync(join(dir, 'lib/modules/6.12.1'), { recursive: true });
    writeFileSync(join(dir, 'vmlinuz'), '');
    writeFileSync(join(dir, 'config'), 'CONFIG_NETKIT=y\n');
    const rec: KernelRecord = {
      name: '6.12',
      suite: 'bookworm-backports',
      packages: [],
      version: '6.12.1-1',
      release: '6.12.1',
      fetchedAt: 'now',
      paths: { vmlinuz: 'vmlinuz', config: 'config', modulesDir: 'lib/modules/6.12.1' },
    };
    writeFileSync(join(dir, 'kernel.json'), JSON.stringify(rec));
    expect(kernelStatus(entry, root)).toMatchObject({
      cached: true,
      release: '6.12.1',
      supports: { netkit: true, tcx: false, fq: false, bigTcpIpv4: true },
    });
    rmSync(root, { recursive: true, force: true });
  });
});

describe('private apt config', () => {
  it('never touches the system sources, trusts only the Debian archive keyring', () => {
    const o = aptOptions('/c/apt/trixie-backports').join(' ');
    expect(o).toContain('Dir::Etc::SourceList=/c/apt/trixie-backports/private.sources');
    expect(o).toContain('Dir::Etc::SourceParts=/nonexistent');
    expect(o).toContain('Dir::State=/c/apt/trixie-backports/state');
    expect(o).toContain('Dir::Cache=/c/apt/trixie-backports/cache');
    expect(o).toContain('Dir::State::status=/var/lib/dpkg/status');
    const src = privateSources({
      name: '7.3',
      suite: 'trixie-backports',
      packages: ['p'],
      description: '',
      mirror: 'http://deb.debian.org/debian',
    });
    expect(src).toContain('Suites: trixie-backports');
    expect(src).toContain('Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg');
  });

  it('parses apt-cache show records, one per version', () => {
    const text = 'Package: a\nVersion: 1\nDescription: x\n continued\nSHA256: aa\n\nPackage: a\nVersion: 2\nSHA256: bb\n';
    expect(parseAptRecords(text).map((r) => [r.Version, r.SHA256])).toEqual([
      ['1', 'aa'],
      ['2', 'bb'],
    ]);
  });
});
