import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BootError } from '../../src/errors.js';
import { bootVm, runningPid } from '../../src/backends/qemu/vm.js';
import { cachedKernel } from '../../src/kernels/cache.js';
import { cli, residue, topo } from '../kernel/helpers.js';
import { CHECK_IDS } from '../../src/topology/ids.js';
import { qemus as vmQemus } from './vm-lab.js';

/** Live QEMU processes of the tests' labs. */
const qemus = () => vmQemus('vt-');
const vmTopology = (name: string) =>
  readFileSync(new URL('../../topologies/vm-quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${name}`);

describe('qemu backend (TCG where KVM is not usable)', () => {
  beforeAll(async () => {
    const r = await cli(['kernels', 'fetch', '6.12']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('runs the quickstart checks unchanged inside a VM and leaves no VM behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-vm-report-'));
    const r = await cli(['run', topo(vmTopology('vt-run')), '--report-dir', dir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/guest agent answered [\d.]+ s after QEMU started/);
    expect(r.stderr).toMatch(/accelerator (KVM|TCG)|no usable \/dev\/kvm: VMs run under TCG/);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(rep.backend).toBe('qemu');
    expect(rep.kernel.release).toMatch(/^6\.12\./);
    const tp = rep.checks.find((c: { id: string }) => c.id === 'netkit-throughput');
    // Under TCG a throughput ratio is not judged: skip with the ratios measured, never a pass.
    const tcg = tp.metrics.timing === 'emulated';
    expect(Object.fromEntries(rep.checks.map((c: { id: string; status: string }) => [c.id, c.status]))).toEqual({
      // The checks of features this topology does not use (services, egressBandwidth) skip.
      ...Object.fromEntries(CHECK_IDS.map((id) => [id, 'skip'])),
      'tso-probe': 'pass',
      connectivity: 'pass',
      netkit: 'pass',
      backpressure: 'pass',
      bigtcp: 'pass',
      'netkit-throughput': tcg ? 'skip' : 'pass',
    });
    expect(tp.metrics.mbps.netkit).toBeGreaterThan(0);
    expect(tp.metrics.ratioToHost.netkit).toBeGreaterThan(0);
    expect(tp.reason).toMatch(tcg ? /not judged on emulated CPUs.*x the node/ : /x the node/);
    // The bottleneck was put back as the topology had it; backpressure queued at it in both modes.
    const bp = rep.checks.find((c: { id: string }) => c.id === 'backpressure').metrics;
    for (const mode of ['bpf', 'legacy']) expect(bp[mode].samplesWithBacklog, mode).toBeGreaterThanOrEqual(3);
    // The uplink is a virtio-net pair: TSO probing clamps BIG TCP to its 65536.
    const devices = rep.checks.find((c: { id: string }) => c.id === 'tso-probe').metrics.devices;
    const uplink = devices.find((d: { dev: string; netns: string }) => d.dev === 'uplink');
    expect(uplink).toMatchObject({ tso_max_size: 65536, expected: 65536, gso_max_size: 65536, ok: true });
    expect(devices.find((d: { dev: string }) => d.dev === 'lxc-client')).toMatchObject({ expected: 196608, gso_max_size: 196608 });
    expect(qemus()).toBe('');
    expect(await residue('vt-run')).toEqual([]);
  });

  it('up leaves the VM running; check reattaches through the agent from another process; down stops it', async () => {
    const up = await cli(['up', topo(vmTopology('vt-up')), '-q']);
    expect(up.code, up.stderr).toBe(0);
    expect(qemus()).toContain('vt-up');
    const check = await cli(['check', 'vt-up', '--only', 'tso-probe', '--report-dir', mkdtempSync(join(tmpdir(), 'dpl-vm-report-')), '-q']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const down = await cli(['down', 'vt-up']);
    expect(down.code, down.stderr).toBe(0);
    expect(qemus()).toBe('');
    expect(await residue('vt-up')).toEqual([]);
  });

  it('SIGINT while a VM lab runs its checks stops the VM and leaves nothing (exit 130)', async () => {
    let sent = false;
    const r = await cli(
      ['run', topo(vmTopology('vt-int')), '--only', 'backpressure', '--report-dir', mkdtempSync(join(tmpdir(), 'dpl-vm-report-'))],
      {
        onStderr: (s, child) => {
          if (!sent && s.includes('with bpf host routing')) {
            sent = true;
            child.kill('SIGINT'); // the check is under way: its progress line says so
          }
        },
      },
    );
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('stopping 1 VM(s)');
    expect(qemus()).toBe('');
    expect(await residue('vt-int')).toEqual([]);
  });

  it('a guest that panics is a result with the console tail, not a hang', async () => {
    const k = cachedKernel('6.12')!;
    const work = mkdtempSync(join(tmpdir(), 'dpl-vm-panic-'));
    mkdirSync(join(work, 'root'));
    // An initramfs without /init: the kernel panics ("No working init found").
    execFileSync('sh', ['-c', `cd ${work}/root && find . | cpio -o -H newc --quiet | gzip > ${work}/empty.cpio.gz`]);
    const dir = join(work, 'vm');
    mkdirSync(dir);
    const t0 = performance.now();
    const err = await bootVm({
      name: 'panic',
      vmlinuz: k.vmlinuz,
      initramfs: join(work, 'empty.cpio.gz'),
      dir,
      accel: 'tcg',
      bootTimeoutMs: 60_000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(BootError);
    expect((err as BootError).reason).toMatch(/panic|exited/);
    expect((err as BootError).consoleTail).toMatch(/Kernel panic/);
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(runningPid(dir)).toBeUndefined();
  });
});

describe('kernel matrix', () => {
  beforeAll(async () => {
    for (const k of ['6.1', '7.3']) expect((await cli(['kernels', 'fetch', k])).code).toBe(0);
  });

  it('runs once per kernel; 6.1 falls back (veth, tc instead of tcx, IPv6-only BIG TCP) and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-matrix-'));
    const r = await cli([
      'run',
      topo(vmTopology('vt-matrix')),
      '--kernel',
      '6.1,7.3',
      '--only',
      'tso-probe,netkit,backpressure',
      '--report-dir',
      dir,
      '-q',
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8'));
    const [k61, k73] = m.kernels;
    expect(k61.release).toMatch(/^6\.1\./);
    const status = (row: { features: { feature: string; status: string; detail: string }[] }, f: string) =>
      row.features.find((d) => d.feature === f)!;
    expect(status(k61, 'pod-device')).toMatchObject({ status: 'fallback', detail: expect.stringContaining('older than 6.7') });
    expect(status(k61, 'host-routing')).toMatchObject({ status: 'fallback', detail: expect.stringContaining('tc clsact') });
    expect(status(k61, 'bigtcp')).toMatchObject({ status: 'fallback', detail: expect.stringContaining('IPv6 only') });
    expect(status(k73, 'pod-device')).toMatchObject({ status: 'applied', detail: 'netkit (L3 mode)' });
    const statuses = (row: { checks: { id: string; status: string }[] }) => Object.fromEntries(row.checks.map((c) => [c.id, c.status]));
    expect(statuses(k61)).toEqual({ 'tso-probe': 'pass', netkit: 'skip', backpressure: 'pass' });
    expect(k61.checks.find((c: { id: string }) => c.id === 'netkit').reason).toContain('older than 6.7');
    expect(statuses(k73)).toEqual({ 'tso-probe': 'pass', netkit: 'pass', backpressure: 'pass' });
    expect(readFileSync(join(dir, '6.1', 'report.json'), 'utf8')).toContain('"backend": "qemu"');
    expect(r.stdout).toContain('kernel matrix');
    expect(qemus()).toBe('');
  });
});

describe('two VMs joined by a link', () => {
  it('pods on different VMs reach each other over IPv4 and IPv6 through the BPF path', async () => {
    const { attach } = await import('../../src/lifecycle/steps.js');
    const { bulkFlow } = await import('../../src/measure/flow.js');
    const text = readFileSync(new URL('../../topologies/vm-two-node.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, 'name: vt-two');
    const up = await cli(['up', topo(text), '-q']);
    expect(up.code, up.stderr).toBe(0);
    try {
      const { ctx } = await attach('vt-two', new AbortController().signal, () => {});
      for (const addr of ['10.244.2.2', 'fd00:244:2::2']) {
        const f = await bulkFlow({
          from: ctx.backend.exec('dpl-vt-two.node1.web'),
          to: ctx.backend.exec('dpl-vt-two.node2.cache'),
          addr,
          seconds: 1,
          journal: ctx.journal,
        });
        expect(f.bitsPerSecond, addr).toBeGreaterThan(1e6);
      }
      // Forwarded by the programs on both nodes, not by their IP stacks.
      for (const node of ['node1', 'node2']) {
        const n = await ctx.backend.exec(`dpl-vt-two.${node}`).run(['nstat', '-az', 'IpForwDatagrams', 'Ip6OutForwDatagrams']);
        const fwd = [...n.stdout.matchAll(/^Ip\w+\s+(\d+)/gm)].map((m) => Number(m[1]));
        expect(fwd, `${node}: ${n.stdout}`).toHaveLength(2);
        expect(Math.max(...fwd), `${node}: ${n.stdout}`).toBeLessThan(50);
      }
      (ctx.backend as { close?: () => void }).close?.();
    } finally {
      expect((await cli(['down', 'vt-two', '-q'])).code).toBe(0);
    }
    expect(qemus()).toBe('');
    expect(await residue('vt-two')).toEqual([]);
  });
});
