import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LIBVIRT_DAEMONS, runningPid } from '../../src/backends/vagrant/daemons.js';
import { parseIptablesSave } from '../../src/backends/vagrant/host-state.js';
import { CHECK_IDS } from '../../src/topology/ids.js';
import { cli, residue, topo } from '../kernel/helpers.js';

/**
 * The vagrant backend end to end (long suite: a box build takes minutes the first time and
 * `vagrant up` under TCG tens of seconds; ./lab selftest --long). Run under the machine's VM lock.
 */
const sh = (argv: string[]) => {
  try {
    return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
};

/** What libvirt and the firewall hold of a lab (libvirt's objects are named after the lab: dpl-<lab>...). */
function libvirtResidue(lab: string): string[] {
  const names = (args: string[]) =>
    sh(['virsh', '-q', '-c', 'qemu:///system', ...args, '--name'])
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  if (!LIBVIRT_DAEMONS.every((d) => runningPid(d.pidfile))) return [];
  return [
    ...names(['list', '--all'])
      .filter((d) => d.startsWith(`dpl-${lab}`))
      .map((d) => `domain ${d}`),
    ...names(['net-list', '--all'])
      .filter((n) => n.startsWith(`dpl-${lab}`))
      .map((n) => `network ${n}`),
  ];
}

/** The host's state libvirt changes: its daemons, chains, ip_forward. */
const hostState = () => ({
  daemons: LIBVIRT_DAEMONS.filter((d) => runningPid(d.pidfile)).map((d) => d.name),
  chains: parseIptablesSave(sh(['iptables-save'])).chains,
  chains6: parseIptablesSave(sh(['ip6tables-save'])).chains,
  ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
  pools: sh(['sh', '-c', 'ls /etc/libvirt/storage/*.xml 2>/dev/null']).trim(),
});

const quickstart = (name: string) =>
  readFileSync(new URL('../../topologies/vagrant-quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${name}`);

describe('vagrant backend (vagrant-libvirt)', () => {
  beforeAll(async () => {
    const r = await cli(['kernels', 'box', '6.12']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('runs the quickstart checks on a Vagrant machine, then leaves nothing: no domain, network, chain, daemon', async () => {
    const before = hostState();
    const dir = mkdtempSync(join(tmpdir(), 'dpl-vg-report-'));
    const r = await cli(['run', topo(quickstart('vg-run')), '--report-dir', dir]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/vagrant up: 1 machine\(s\)/);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(rep.backend).toBe('vagrant');
    const status = Object.fromEntries(rep.checks.map((c: { id: string; status: string }) => [c.id, c.status]));
    for (const id of ['tso-probe', 'connectivity', 'netkit', 'backpressure', 'bigtcp']) expect(status[id], id).toBe('pass');
    expect(Object.keys(status).sort()).toEqual([...CHECK_IDS].sort());
    expect(await residue('vg-run')).toEqual([]);
    expect(libvirtResidue('vg-run')).toEqual([]);
    expect(hostState()).toEqual(before);
  });

  it('SIGINT during vagrant up: the machine and what libvirt added are torn down', async () => {
    const before = hostState();
    const r = await cli(['up', topo(quickstart('vg-int'))], {
      onStderr: (all, child) => {
        if (/vagrant up: /.test(all) && !child.killed) child.kill('SIGINT');
      },
    });
    expect(r.code).not.toBe(0);
    expect(await residue('vg-int')).toEqual([]);
    expect(libvirtResidue('vg-int')).toEqual([]);
    expect(hostState()).toEqual(before);
  });

  it('lab up, lab check, lab down in three processes: check re-attaches over vagrant ssh-config, down removes everything', async () => {
    const before = hostState();
    const up = await cli(['up', topo(quickstart('v2-three'))]);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'dpl-vg-report-'));
    const check = await cli(['check', 'v2-three', '--report-dir', dir]);
    const down = await cli(['down', 'v2-three']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(rep.backend).toBe('vagrant');
    const status = Object.fromEntries(rep.checks.map((c: { id: string; status: string }) => [c.id, c.status]));
    for (const id of ['tso-probe', 'connectivity', 'netkit', 'backpressure', 'bigtcp']) expect(status[id], id).toBe('pass');
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expect(await residue('v2-three')).toEqual([]);
    expect(libvirtResidue('v2-three')).toEqual([]);
    expect(hostState()).toEqual(before);
  });

  it('kill -9 of lab up during provisioning over ssh: lab down from another process still removes everything (journal)', async () => {
    const before = hostState();
    const r = await cli(['up', topo(quickstart('v2-kill'))], {
      onStderr: (all, child) => {
        // Past `vagrant up` and ssh-config (provisioning over ssh): machine, libvirt's objects, daemons, ssh master all there.
        if (/preparing \d+ target\(s\) over ssh/.test(all) && !child.killed) child.kill('SIGKILL');
      },
    });
    expect(r.signal ?? r.code).toBe('SIGKILL');
    const down = await cli(['down', 'v2-kill']);
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expect(await residue('v2-kill')).toEqual([]);
    expect(libvirtResidue('v2-kill')).toEqual([]);
    expect(hostState()).toEqual(before);
  });
});
