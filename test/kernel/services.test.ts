import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetnsExec, runArgv } from '../../src/exec/exec.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { readNetfilter } from '../../src/measure/netfilter.js';
import { serviceAttempts, startServers } from '../../src/measure/services.js';
import { BPF_OBJ_DIR } from '../../src/paths.js';
import { cli, labProcesses, residue, topo, until } from './helpers.js';

const services = readFileSync(new URL('../../topologies/services.yaml', import.meta.url), 'utf8');
const SVC_CHECKS = 'svc-clusterip,svc-getpeername,svc-no-backend,kube-proxy-free,svc-affinity,svc-backend-removal';

/** Where cgroup v2 is mounted on this machine. */
const cgroup2 = readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[2] === 'cgroup2')?.[1];

/** The lab's cgroups left under the cgroup v2 mount. */
const cgroupsOf = (lab: string) => {
  const dir = join(cgroup2 ?? '/nonexistent', 'dpl');
  return existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith(`${lab}.`)) : [];
};

async function checkReport(lab: string) {
  const dir = mkdtempSync(join(tmpdir(), 'dpl-report-'));
  const r = await cli(['check', lab, '--only', SVC_CHECKS, '--report-dir', dir, '-q']);
  const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  return { r, byId: Object.fromEntries(rep.checks.map((c: { id: string }) => [c.id, c])) };
}

describe('services through socket-LB (kubeProxy bpf)', () => {
  const LAB = 'kpr-b';
  afterAll(() => cli(['down', LAB, '-q']));

  it('attaches the eight sock_addr programs at each node cgroup and a pod cgroup per pod', async () => {
    const up = await cli(['up', topo(services.replace('name: services', `name: ${LAB}`)), '-q']);
    expect(up.code, up.stderr).toBe(0);
    expect(cgroupsOf(LAB).sort()).toEqual([`${LAB}.node1`, `${LAB}.node2`]);
    const cg = join(cgroup2!, 'dpl', `${LAB}.node1`);
    expect(existsSync(join(cg, 'client')) && existsSync(join(cg, 'web1'))).toBe(true);
    const shown = await runArgv(['bpftool', 'cgroup', 'show', cg, '-j']);
    const progs = (JSON.parse(shown.stdout) as { attach_type: string; name: string }[]).map((p) => p.name).sort();
    expect(progs).toEqual([
      'sock4_connect',
      'sock4_getpeername',
      'sock4_recvmsg',
      'sock4_sendmsg',
      'sock6_connect',
      'sock6_getpeername',
      'sock6_recvmsg',
      'sock6_sendmsg',
    ]);
  });

  it('the service checks pass: every backend reached per family and protocol, ClusterIP as peer, EHOSTUNREACH at once', async () => {
    const { r, byId } = await checkReport(LAB);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(SVC_CHECKS.split(',').map((id) => byId[id].status)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass', 'pass']);
    const web = byId['svc-clusterip'].metrics.frontends.filter((f: { frontend: string }) => f.frontend.startsWith('web '));
    expect(web).toHaveLength(4);
    for (const f of web) expect(Object.keys(f.reached).sort(), f.frontend).toEqual(['node1/web1', 'node2/web2', 'node2/web3']);
    const sticky = byId['svc-clusterip'].metrics.frontends.filter((f: { frontend: string }) => f.frontend.startsWith('sticky '));
    for (const f of sticky) expect(Object.keys(f.reached), f.frontend).toHaveLength(1);
    expect(byId['svc-no-backend'].metrics.errnos).toEqual(['EHOSTUNREACH']);
    expect(byId['svc-no-backend'].metrics.maxUs).toBeLessThan(50_000);
    // The removal check changed web's backends twice: only the live revision's slots are left.
    const dump = await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', `/sys/fs/bpf/dpl/${LAB}/node1/kpr/maps/services`]);
    const keys = (JSON.parse(dump.stdout) as { formatted: { key: { port: number; slot: number; rev: number } } }[]).map(
      (e) => e.formatted.key,
    );
    const web80 = keys.filter((k) => k.port === 0x5000); // port 80 in network order, read as a little-endian u16
    const revs = new Set(web80.filter((k) => k.slot > 0).map((k) => k.rev));
    // web, sticky and empty (both families) listen on 80: 6 service entries; web and sticky 3 live slots per family, empty none.
    expect(web80.filter((k) => k.slot === 0)).toHaveLength(6);
    expect(web80.filter((k) => k.slot > 0)).toHaveLength(12);
    expect([...revs].sort(), JSON.stringify(web80)).toEqual([1, 3]);
  });

  it('the cgroup is what translates: the same pod outside its cgroup never reaches the ClusterIP', async () => {
    const journal = Journal.open(LAB)!;
    const servers = await startServers(
      ['node1.web1', 'node2.web2', 'node2.web3'].map((p) => ({ exec: new NetnsExec(`dpl-${LAB}.${p}`), name: p, ports: ['8080/tcp'] })),
      BPF_OBJ_DIR,
      journal,
    );
    try {
      const client = new NetnsExec(`dpl-${LAB}.node1.client`);
      const spec = { op: 'tcp' as const, addr: '10.96.0.10', port: 80, attempts: 3, timeoutMs: 500 };
      const inside = await serviceAttempts(client, BPF_OBJ_DIR, { ...spec, cgroup: join(cgroup2!, 'dpl', `${LAB}.node1`, 'client') });
      expect(
        inside.every((a) => !a.errno && a.reply),
        JSON.stringify(inside),
      ).toBe(true);
      const outside = await serviceAttempts(client, BPF_OBJ_DIR, spec);
      expect(outside).toHaveLength(3);
      expect(
        outside.every((a) => a.errno && !a.reply),
        JSON.stringify(outside),
      ).toBe(true);
    } finally {
      await servers.stop();
    }
  });

  it("svc-backpressure: socket-LB keeps the queue owned, kube-proxy's path loses it; its rules are gone afterwards", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-report-'));
    const r = await cli(['check', LAB, '--only', 'svc-backpressure', '--report-dir', dir, '-q']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const bp = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')).checks[0];
    expect(bp.status, bp.reason).toBe('pass');
    expect(bp.metrics.bpf.ownedMedian).toBeGreaterThanOrEqual(0.5);
    expect(bp.metrics.iptables.ownedMedian).toBeLessThanOrEqual(0.25);
    const node = await readNetfilter(new NetnsExec(`dpl-${LAB}.node1`));
    expect([...node.kubeChains, ...node.natRules]).toEqual([]);
  });

  it('down removes the cgroups, the pins, the servers and the namespaces', async () => {
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
    expect(cgroupsOf(LAB)).toEqual([]);
    expect(await labProcesses(LAB, 'svcprobe')).toEqual([]);
  });
});

describe("kube-proxy's iptables rules as the control (kubeProxy iptables)", () => {
  const LAB = 'kpr-i';
  afterAll(() => cli(['down', LAB, '-q']));

  it('services work through the rules, the netfilter reader finds them, and the socket-LB claims are not judged', async () => {
    const text = services
      .replace('name: services', `name: ${LAB}`)
      .replace('  kubeProxy: bpf', '  kubeProxy: iptables\n  hostRouting: legacy');
    const up = await cli(['up', topo(text), '-q']);
    expect(up.code, up.stderr).toBe(0);
    expect(cgroupsOf(LAB)).toEqual([]);
    const node = await readNetfilter(new NetnsExec(`dpl-${LAB}.node1`));
    expect(node.unreadable).toEqual([]);
    expect(node.kubeChains.filter((c) => c.includes('KUBE-SVC-')).length).toBeGreaterThan(0);
    expect(
      node.natRules.some((r) => r.endsWith('DNAT')),
      node.natRules.join('\n'),
    ).toBe(true);
    const pod = await readNetfilter(new NetnsExec(`dpl-${LAB}.node1.client`));
    expect([...pod.kubeChains, ...pod.natRules]).toEqual([]);
    const { r, byId } = await checkReport(LAB);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(SVC_CHECKS.split(',').map((id) => byId[id].status)).toEqual(['pass', 'pass', 'skip', 'skip', 'pass', 'skip']);
    expect(byId['svc-clusterip'].metrics.mode).toBe('iptables');
  });

  it('down leaves nothing', async () => {
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
  });
});

describe('teardown of pod cgroups that still hold processes', () => {
  const LAB = 'kpr-k';
  afterAll(() => cli(['down', LAB, '-q']));

  it('lab down kills what is left in a pod cgroup (cgroup.kill) and removes the cgroups', async () => {
    const up = await cli(['up', topo(services.replace('name: services', `name: ${LAB}`)), '-q']);
    expect(up.code, up.stderr).toBe(0);
    const cg = join(cgroup2!, 'dpl', `${LAB}.node1`, 'client');
    // A process in the pod that no journal entry names (as a killed check could leave).
    const bg = new NetnsExec(`dpl-${LAB}.node1.client`).start(['sleep', '300'], { cgroup: cg });
    expect(await until(() => readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim() !== ''), 'the process joined the cgroup').toBe(true);
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    const end = await bg.done;
    expect(end.code).toBeNull(); // killed by a signal
    expect(cgroupsOf(LAB)).toEqual([]);
    expect(await residue(LAB)).toEqual([]);
  });
});
