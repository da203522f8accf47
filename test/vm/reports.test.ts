import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { drive } from '../../src/cli/drive.js';
import { withSignal, type LabContext } from '../../src/lifecycle/context.js';
import { labMachine } from '../../src/lifecycle/lab-machine.js';
import { runChecks } from '../../src/lifecycle/steps.js';
import { cachedKernel, readRecord } from '../../src/kernels/cache.js';
import type { CheckId } from '../../src/topology/ids.js';
import { cli, residue, topo } from '../kernel/helpers.js';

const k = cachedKernel('6.12');

describe.skipIf(!k)('a VM that does not boot still gets its reports', () => {
  it('a kernel that really panics at boot: report.json and junit.xml name the boot step, the console tail shows the panic', async () => {
    const work = mkdtempSync(join(tmpdir(), 'dpl-rpt-boot-'));
    // rdinit=/nonexistent: the kernel finds no init in the initramfs, falls back to mounting a root
    // device there is none of, and panics (prepare_namespace, init/do_mounts.c); panic=-1 and -no-reboot end QEMU.
    const file = topo(
      `name: rpt-boot\nbackend: qemu\nkernel:\n  vmlinuz: ${k!.vmlinuz}\n  modules: ${k!.modulesDir}\n  config: ${k!.config}\n` +
        '  cmdline: rdinit=/nonexistent\nnodes:\n  - name: node1\n    pods:\n      - name: client\n',
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
    expect(json.failure.message).toMatch(/VM rpt-boot\.node1 did not boot \(panic\)/);
    expect(json.failure.consoleTails[0]).toMatchObject({ node: 'node1' });
    expect(json.failure.consoleTails[0].tail).toMatch(/Kernel panic - not syncing: VFS: Unable to mount root fs/);
    expect(json.kernel.identity).toMatchObject({ source: 'custom', vmlinuzSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
    expect(xml).toContain('name="boot"');
    expect(xml).toContain('type="E_BOOT"');
    expect(xml).toContain('Kernel panic - not syncing');
    expect(await residue('rpt-boot')).toEqual([]);
  });
});

const vmTopology = (name: string) =>
  readFileSync(new URL('../../topologies/vm-quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${name}`);

describe.skipIf(!k)('a check that fails in a VM', () => {
  it('leaves a snapshot taken in the guest (its dmesg, the changed device) and the report names the kernel exactly', async () => {
    // The seam: the server's GSO size is shrunk in the guest, through the backend, before the checks run.
    const check = fromPromise<unknown, { ctx: LabContext; only?: CheckId[]; snapshotDir: string }>(async ({ input, signal }) => {
      const server = input.ctx.lab.nodes[0].pods.find((p) => p.name === 'server')!;
      await input.ctx.backend.exec(server.netns).run(['ip', 'link', 'set', 'dev', 'eth0', 'gso_max_size', '65536'], { signal });
      return runChecks(withSignal(input.ctx, signal), input.only, input.snapshotDir);
    });
    const dir = mkdtempSync(join(tmpdir(), 'dpl-rpt-vmsnap-'));
    const { code, out } = await drive(
      { mode: 'run', file: topo(vmTopology('rpt-vsnap')), only: ['tso-probe'], reportDir: dir },
      { quiet: true },
      labMachine.provide({ actors: { check } as never }),
    );
    expect(code, String(out.error)).toBe(1);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const snap = join(dir, 'snapshots', 'tso-probe', 'node1');
    expect(rep.checks[0].snapshot.dir).toBe(join(dir, 'snapshots', 'tso-probe'));
    const links = JSON.parse(readFileSync(join(snap, 'pod-server', 'ip-link.json'), 'utf8'));
    expect(links.find((l: { ifname: string }) => l.ifname === 'eth0').gso_max_size).toBe(65536);
    // The guest's own kernel log: its boot is in it.
    expect(readFileSync(join(snap, 'dmesg.txt'), 'utf8')).toMatch(/\S/);
    expect(readdirSync(join(snap, 'maps')).length).toBeGreaterThan(0);
    const rec = readRecord('6.12')!;
    expect(rep.kernel.identity).toMatchObject({
      source: 'catalogue',
      name: '6.12',
      release: rec.release,
      debianVersion: rec.version,
      packages: rec.packages.map(({ name, version, sha256 }) => ({ name, version, sha256 })),
    });
    expect(rep.kernel.identity.vmlinuzSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await residue('rpt-vsnap')).toEqual([]);
  });
});
