import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cachedKernel } from '../../src/kernels/cache.js';
import { cli, residue, topo } from '../kernel/helpers.js';

const k = cachedKernel('6.12');

describe.skipIf(!k)('a VM that does not boot still gets its reports', () => {
  it('QEMU refuses a kernel image that is no bzImage: report.json and junit.xml name the boot step and the reason', async () => {
    const work = mkdtempSync(join(tmpdir(), 'dpl-rpt-boot-'));
    const image = join(work, 'not-a-bzImage');
    writeFileSync(image, 'this is no kernel image\n'.repeat(100));
    const file = topo(
      `name: rpt-boot\nbackend: qemu\nkernel:\n  vmlinuz: ${image}\n  modules: ${k!.modulesDir}\n  config: ${k!.config}\nnodes:\n  - name: node1\n    pods:\n      - name: client\n`,
    );
    const dir = join(work, 'report');
    const r = await cli(['run', file, '--report-dir', dir, '-q']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toContain(`reports: ${join(dir, 'report.json')}`);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(json).toMatchObject({
      lab: 'rpt-boot',
      backend: 'qemu',
      outcome: 'failed',
      failure: { step: 'boot', node: 'node1', code: 'E_BOOT' },
    });
    expect(json.failure.message).toMatch(/VM .*did not boot/);
    expect(json.kernel.identity).toMatchObject({ source: 'custom', vmlinuzSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(xml).toContain('name="boot"');
    expect(xml).toContain('type="E_BOOT"');
    expect(await residue('rpt-boot')).toEqual([]);
  });
});
