import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetnsExec, runArgv } from '../../src/exec/exec.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { serviceAttempts, startServers, type Servers } from '../../src/measure/services.js';
import { BPF_OBJ_DIR } from '../../src/paths.js';
import { cli, residue, topo } from './helpers.js';

const LAB = 'svc-live';
/** A lab with no service at up: `lab svc add` has to load socket-LB itself. */
const TOPO = `name: ${LAB}
families: [ipv4, ipv6]
datapath:
  kubeProxy: bpf
nodes:
  - name: node1
    pods: [{ name: client }, { name: web1 }, { name: web2 }]
`;

const cgroup2 = readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[2] === 'cgroup2')?.[1];
const probe = (addr: string, attempts = 12, lab = LAB) =>
  serviceAttempts(new NetnsExec(`dpl-${lab}.node1.client`), BPF_OBJ_DIR, {
    op: 'tcp',
    addr,
    port: 80,
    attempts,
    timeoutMs: 1000,
    cgroup: lab === LAB ? join(cgroup2!, 'dpl', `${LAB}.node1`, 'client') : undefined,
  });
const reached = (as: { reply: string }[]) => [...new Set(as.map((a) => a.reply).filter(Boolean))].sort();
const list = async (lab = LAB) => JSON.parse((await cli(['svc', 'list', lab, '--json'])).stdout) as { name: string; backends: unknown[] }[];
const servicesMap = async () =>
  (await runArgv(['bpftool', '-j', 'map', 'dump', 'pinned', `/sys/fs/bpf/dpl/${LAB}/node1/kpr/maps/services`])).stdout;

describe('lab svc: services changed on a running lab (socket-LB)', () => {
  let servers: Servers | undefined;
  afterAll(async () => {
    await servers?.stop();
    await cli(['down', LAB, '-q']);
  });

  it('adds a service live; both backends answer through socket-LB, in both families', async () => {
    const up = await cli(['up', topo(TOPO), '-q']);
    expect(up.code, up.stderr).toBe(0);
    servers = await startServers(
      ['web1', 'web2'].map((p) => ({ exec: new NetnsExec(`dpl-${LAB}.node1.${p}`), name: p, ports: ['8080/tcp'] })),
      BPF_OBJ_DIR,
      Journal.open(LAB)!,
    );
    const add = ['svc', 'add', LAB, '--name', 'api', '--cluster-ip', '10.96.7.1', '--cluster-ip6', 'fd00:96::7:1'];
    const r = await cli([...add, '--port', '80/TCP:8080', '--backend', 'web1,web2', '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect((await list()).map((s) => s.name)).toEqual(['api']);
    for (const vip of ['10.96.7.1', 'fd00:96::7:1']) {
      const as = await probe(vip, 24);
      expect(
        as.filter((a) => a.errno),
        JSON.stringify(as),
      ).toEqual([]);
      expect(reached(as), vip).toEqual(['web1', 'web2']);
    }
  });

  it('bad commands exit 2 and change nothing: unknown lab, unknown pod, duplicate frontend, ClusterIP in a lab prefix', async () => {
    const before = await servicesMap();
    const bad = [
      ['svc', 'add', 'svc-nolab', '--name', 'x', '--cluster-ip', '10.96.7.9', '--port', '80'],
      ['svc', 'add', LAB, '--name', 'x', '--cluster-ip', '10.96.7.9', '--port', '80', '--backend', 'nope'],
      ['svc', 'add', LAB, '--name', 'x', '--cluster-ip', '10.96.7.1', '--port', '80'],
      ['svc', 'add', LAB, '--name', 'x', '--cluster-ip', '10.244.1.200', '--port', '80'],
      ['svc', 'backend', 'del', LAB, 'api', 'client'],
      ['svc', 'del', LAB, 'nope'],
    ];
    // One after another: two changes of one lab at once are refused (the svc lock).
    const out = [];
    for (const argv of bad) out.push(await cli([...argv, '-q']));
    expect(out.map((r) => r.code)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(out[1].stderr).toContain("unknown pod 'nope'");
    expect(out[2].stderr).toContain('already a frontend');
    expect(out[3].stderr).toContain('outside every lab prefix');
    expect(await servicesMap()).toBe(before);
    expect((await list()).map((s) => s.name)).toEqual(['api']);
  });

  it('a removed backend gets no new connection; a deleted service fails at connect at once', async () => {
    const rm = await cli(['svc', 'backend', 'del', LAB, 'api', 'web2', '-q']);
    expect(rm.code, rm.stderr).toBe(0);
    const after = await probe('10.96.7.1', 24);
    expect(
      after.filter((a) => a.errno),
      JSON.stringify(after),
    ).toEqual([]);
    expect(reached(after)).toEqual(['web1']);
    expect((await list())[0].backends).toHaveLength(1);
    const del = await cli(['svc', 'del', LAB, 'api', '-q']);
    expect(del.code, del.stderr).toBe(0);
    expect(await list()).toEqual([]);
    // Untranslated, the ClusterIP is an address no route knows: the node answers ICMP net unreachable
    // (later attempts may time out instead: the node's ICMP rate limit, icmpv4_xrlim_allow in net/ipv4/icmp.c).
    const gone = await probe('10.96.7.1', 2);
    expect(gone).toHaveLength(2);
    expect(
      gone.every((a) => a.errno && !a.reply),
      JSON.stringify(gone),
    ).toBe(true);
    expect([gone[0].errno, gone[0].us < 50_000], JSON.stringify(gone)).toEqual(['ENETUNREACH', true]);
    // No entry of the deleted service is left (the maps are as before any service).
    expect(JSON.parse(await servicesMap())).toEqual([]);
  });

  it('down removes everything svc add created (socket-LB pins, cgroups)', async () => {
    await servers?.stop();
    servers = undefined;
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
  });
});

describe("lab svc with kube-proxy's iptables rules: a full resync per change", () => {
  const IPT = 'svc-live-i';
  let servers: Servers | undefined;
  const nat = async () =>
    (await new NetnsExec(`dpl-${IPT}.node1`).run(['iptables-save', '-t', 'nat'])).stdout
      .split('\n')
      .filter((l) => l.includes('DNAT') || l.includes('cluster IP'));
  afterAll(async () => {
    await servers?.stop();
    await cli(['down', IPT, '-q']);
  });

  it("adds a service through the rules, deletes it again, and leaves the file's service alone", async () => {
    const text = TOPO.replace(`name: ${LAB}`, `name: ${IPT}`).replace('  kubeProxy: bpf', '  kubeProxy: iptables\n  hostRouting: legacy');
    const withWeb = `${text}services:\n  - { name: web, clusterIP: 10.96.0.10, ports: [{ port: 80, targetPort: 8080 }], backends: [web1] }\n`;
    const up = await cli(['up', topo(withWeb), '-q']);
    expect(up.code, up.stderr).toBe(0);
    servers = await startServers(
      ['web1', 'web2'].map((p) => ({ exec: new NetnsExec(`dpl-${IPT}.node1.${p}`), name: p, ports: ['8080/tcp'] })),
      BPF_OBJ_DIR,
      Journal.open(IPT)!,
    );
    const add = await cli([
      'svc',
      'add',
      IPT,
      '--name',
      'api',
      '--cluster-ip',
      '10.96.7.1',
      '--port',
      '80:8080',
      '--backend',
      'web2',
      '-q',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const as = await probe('10.96.7.1', 6, IPT);
    expect(
      as.filter((a) => a.errno),
      JSON.stringify(as),
    ).toEqual([]);
    expect(reached(as)).toEqual(['web2']);
    expect((await nat()).filter((l) => l.includes('10.244.1.4:8080') && l.includes('DNAT'))).toHaveLength(1);
    const del = await cli(['svc', 'del', IPT, 'api', '-q']);
    expect(del.code, del.stderr).toBe(0);
    const left = await nat();
    expect(left.filter((l) => l.includes('api'))).toEqual([]);
    expect(left.filter((l) => l.includes('default/web:80'))).toHaveLength(2);
    expect((await list(IPT)).map((s) => s.name)).toEqual(['web']);
    expect(reached(await probe('10.96.0.10', 3, IPT))).toEqual(['web1']);
  });

  it('down leaves nothing', async () => {
    await servers?.stop();
    servers = undefined;
    const down = await cli(['down', IPT, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(IPT)).toEqual([]);
  });
});
