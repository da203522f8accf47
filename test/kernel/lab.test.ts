import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { DATAPATH_COUNTERS } from '../../src/measure/datapath-counters.js';
import { cli, quickstart, residue, topo } from './helpers.js';

const LAB = 'kt-up';

describe('lab up / status / check / down on this kernel', () => {
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
  });

  it('up creates the namespaces, attaches host routing, fills the endpoints map and sets BIG TCP sizes', async () => {
    const r = await cli(['up', topo(quickstart(LAB)), '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`lab ${LAB} is up`);
    const ns = (await runArgv(['ip', 'netns', 'list'])).stdout;
    for (const n of ['node1', 'node1.client', 'node1.server', 'remote']) expect(ns).toContain(`dpl-${LAB}.${n}`);
    const nodeNs = `/run/netns/dpl-${LAB}.node1`;
    const net = JSON.parse((await runArgv(['nsenter', `--net=${nodeNs}`, 'bpftool', '-j', 'net', 'show'])).stdout);
    const tcx = net
      .flatMap((e: { tc: { devname: string; kind: string; name: string }[] }) => e.tc)
      .map((t: { devname: string; kind: string; name: string }) => `${t.devname} ${t.kind} ${t.name}`);
    expect(tcx.sort()).toEqual(['lxc-client tcx/ingress from_pod', 'lxc-server tcx/ingress from_pod', 'uplink tcx/ingress from_netdev']);
    const eps = JSON.parse(
      (await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', `/sys/fs/bpf/dpl/${LAB}/node1/maps/endpoints`])).stdout,
    );
    expect(eps).toHaveLength(4); // two pods x two families
    const link = JSON.parse((await runArgv(['ip', '-n', `dpl-${LAB}.node1.client`, '-d', '-j', 'link', 'show', 'dev', 'eth0'])).stdout)[0];
    expect([link.gso_max_size, link.gro_max_size, link.gso_ipv4_max_size, link.gro_ipv4_max_size]).toEqual([
      196608, 196608, 196608, 196608,
    ]);
    const tbf = JSON.parse((await runArgv(['tc', '-n', `dpl-${LAB}.node1`, '-j', 'qdisc', 'show', 'dev', 'uplink'])).stdout);
    expect(tbf[0].kind).toBe('tbf');
  });

  it('status shows the lab up with its pods and datapath decisions', async () => {
    const r = await cli(['status', LAB, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.phase).toBe('up');
    expect(s.journal.namespacesPresent).toBe(4);
    expect(s.nodes[0].pods.map((p: { ipv4: string }) => p.ipv4)).toEqual(['10.244.1.2', '10.244.1.3']);
    expect(s.datapath.find((d: { feature: string }) => d.feature === 'host-routing').status).toBe('applied');
    // The node's datapath counters, read from its pinned map: every counter of the map ABI, none dropped yet.
    expect(Object.keys(s.counters.node1).sort()).toEqual([...DATAPATH_COUNTERS].sort());
    expect(s.counters.node1).toMatchObject({ dropSpoof: 0, dropCsum: 0, dropInvalid: 0 });
  });

  it('a second lab with the same name is refused with exit 2 and changes nothing', async () => {
    const r = await cli(['up', topo(quickstart(LAB)), '-q']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`a lab named '${LAB}' is already up`);
    expect((await cli(['status', LAB, '--json'])).stdout).toContain('"phase": "up"');
  });

  it('check --only tso-probe passes and writes report.json and junit.xml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-report-'));
    const r = await cli(['check', LAB, '--only', 'tso-probe', '--report-dir', dir, '-q']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(rep).toMatchObject({ lab: LAB, backend: 'local', summary: { pass: 1, fail: 0 } });
    expect(rep.kernel.release).toBeTruthy();
    const devs = rep.checks[0].metrics.devices;
    expect(devs.length).toBe(6);
    expect(devs.every((d: { tso_max_size: number; gso_max_size: number }) => d.gso_max_size === Math.min(196608, d.tso_max_size))).toBe(
      true,
    );
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toContain('<testcase classname="datapath-lab.kt-up" name="tso-probe"');
  });

  it('tso-probe fails when a device no longer has the size the lab chose', async () => {
    await runArgv(['ip', '-n', `dpl-${LAB}.node1.server`, 'link', 'set', 'dev', 'eth0', 'gso_max_size', '65536']);
    const r = await cli(['check', LAB, '--only', 'tso-probe', '--report-dir', mkdtempSync(join(tmpdir(), 'dpl-report-')), '-q']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL.*dpl-kt-up\.node1\.server\/eth0/s);
  });

  it('down removes exactly the lab and leaves nothing behind', async () => {
    const r = await cli(['down', LAB]);
    expect(r.code, r.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
    // A second down is a no-op (issue 15: a down can always be run again).
    const again = await cli(['down', LAB]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/not up: nothing to remove/);
  });
});
