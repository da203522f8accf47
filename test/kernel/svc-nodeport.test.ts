import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { NetnsExec, runArgv } from '../../src/exec/exec.js';
import { nodeLinks } from '../../src/backends/wiring.js';
import { currentHostRouting, setHostRouting } from '../../src/datapath/host-routing/host-routing.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { attach } from '../../src/lifecycle/steps.js';
import { tcxPrograms } from '../../src/measure/tcx.js';
import { serviceAttempts, startServers, type Servers } from '../../src/measure/services.js';
import { BPF_OBJ_DIR } from '../../src/paths.js';
import { cli, residue, topo } from './helpers.js';

const BPF = 'np-bpf';
const IPT = 'np-ipt';
/** topologies/nodeport.yaml under a test's own name, in a kubeProxy mode. */
const lab = (name: string, mode: 'bpf' | 'iptables') =>
  readFileSync(new URL('../../topologies/nodeport.yaml', import.meta.url), 'utf8')
    .replace(/^name: nodeport$/m, `name: ${name}`)
    .replace(/^ {2}kubeProxy: bpf$/m, mode === 'bpf' ? '  kubeProxy: bpf' : '  kubeProxy: iptables\n  hostRouting: legacy');

interface Report {
  checks: { id: string; status: string; reason: string; metrics: Record<string, unknown> }[];
}
const report = (dir: string) => JSON.parse(readFileSync(`${dir}/report.json`, 'utf8')) as Report;
const byId = (r: Report, id: string) => r.checks.find((c) => c.id === id);

describe('tc NodePort on two nodes (bpf), and kube-proxy NodePort rules (iptables) as the control', () => {
  let servers: Servers | undefined;
  afterAll(async () => {
    await servers?.stop();
    await cli(['down', BPF, '-q']);
    await cli(['down', IPT, '-q']);
  });

  it('bpf: svc-nodeport and kube-proxy-free pass; a backend removed with `lab svc` is gone from the NodePort too; without nodeport_in node1:nodePort refuses', async () => {
    const up = await cli(['up', topo(lab(BPF, 'bpf')), '-q']);
    expect(up.code, up.stderr).toBe(0);
    const dir = `/tmp/dpl-${BPF}`;
    const r = await cli(['check', BPF, '-q', '--only', 'svc-nodeport,kube-proxy-free', '--report-dir', dir]);
    const rep = report(dir);
    const np = byId(rep, 'svc-nodeport');
    expect(np?.status, np?.reason).toBe('pass');
    expect(byId(rep, 'kube-proxy-free')?.status, r.stdout + r.stderr).toBe('pass');
    const counts = np!.metrics.bpf as Record<string, { local: number; remote: number; ct: number }>;
    expect(Object.keys(counts).sort()).toEqual(['node1', 'node2']);
    for (const c of Object.values(counts)) expect(Math.min(c.local, c.remote, c.ct)).toBeGreaterThan(0);

    // The NodePort reads socket-LB's maps: a live change of the backends reaches it.
    const del = await cli(['svc', 'backend', 'del', BPF, 'web', 'web2', '-q']);
    expect(del.code, del.stderr).toBe(0);
    servers = await startServers(
      [{ exec: new NetnsExec(`dpl-${BPF}.node1.web1`), name: 'node1/web1', ports: ['8080/tcp'] }],
      BPF_OBJ_DIR,
      Journal.open(BPF)!,
    );
    const as = await serviceAttempts(new NetnsExec(`dpl-${BPF}.ext2`), BPF_OBJ_DIR, {
      op: 'tcp',
      addr: '10.255.2.1',
      port: 30080,
      attempts: 12,
      timeoutMs: 1000,
    });
    expect(as.map((a) => `${a.errno}${a.reply}@${a.peer}:${a.peerPort}`)).toEqual(Array(12).fill('node1/web1@10.255.2.1:30080'));
    await servers.stop();
    servers = undefined;

    // Without nodeport_in on node1's uplink nothing serves node1:nodePort: the kernel resets the connect.
    const prog = `/sys/fs/bpf/dpl/${BPF}/node1/kpr/np/prog/nodeport_in`;
    await runArgv(['nsenter', `--net=/run/netns/dpl-${BPF}.node1`, join(BPF_OBJ_DIR, 'nkctl'), 'detach', 'tcx-ingress', 'uplink', prog]);
    const off = await serviceAttempts(new NetnsExec(`dpl-${BPF}.ext1`), BPF_OBJ_DIR, {
      op: 'tcp',
      addr: '10.255.1.1',
      port: 30080,
      attempts: 4,
      timeoutMs: 1000,
    });
    expect(off.map((a) => a.errno)).toEqual(Array(4).fill('ECONNREFUSED'));
    await cli(['down', BPF, '-q']);
    expect(await residue(BPF)).toEqual([]);
  });

  it('iptables: the same check passes through netfilter (KUBE-NODEPORTS counted packets on both nodes)', async () => {
    const dir = `/tmp/dpl-${IPT}`;
    const r = await cli(['run', topo(lab(IPT, 'iptables')), '-q', '--only', 'svc-nodeport', '--report-dir', dir]);
    const np = byId(report(dir), 'svc-nodeport');
    expect(np?.status, `${np?.reason}\n${r.stderr}`).toBe('pass');
    const pk = np!.metrics.iptables as Record<string, number>;
    expect(Object.keys(pk).sort()).toEqual(['node1', 'node2']);
    for (const n of Object.values(pk)) expect(n).toBeGreaterThan(0);
    expect(await residue(IPT)).toEqual([]);
  });
});

const TC = 'np-tc';
/** topologies/vm-kpr.yaml on this machine: the services, NodePort and the bottleneck of svc-backpressure. */
const kprHere = readFileSync(new URL('../../topologies/vm-kpr.yaml', import.meta.url), 'utf8')
  .replace(/^(backend|kernel): .*\n/gm, '')
  .replace(/^name: vm-kpr$/m, `name: ${TC}`);

describe('tc NodePort on the clsact fallback (DPL_HOOK=tc), beside host routing switched to legacy and back', () => {
  it("the switch to legacy detaches only host routing's filters (by tc pref): NodePort's stay, svc-nodeport passes after it", async () => {
    const saved = process.env.DPL_HOOK;
    // Both the CLI children and this process (setHostRouting below picks its hook from it) take the fallback.
    process.env.DPL_HOOK = 'tc';
    const dir = `/tmp/dpl-${TC}`;
    try {
      const up = await cli(['up', topo(kprHere), '-q']);
      expect(up.code, up.stderr).toBe(0);
      // The switch svc-backpressure makes, made directly: a check that errors early cannot skip it.
      const { ctx } = await attach(TC, new AbortController().signal, () => {});
      try {
        for (const node of ctx.lab.nodes) {
          const exec = ctx.backend.exec(node.netns);
          const devs = [node.uplink!.nodeDev, ...nodeLinks(ctx.lab, node).map((l) => l.dev)];
          const ingress = async () =>
            Promise.all(
              devs.map(async (d) => (await tcxPrograms(exec, d)).filter((p) => p.kind === 'clsact/ingress').map((p) => `${d} ${p.name}`)),
            ).then((x) => x.flat());
          const before = await ingress();
          const nodePort = before.filter((n) => /nodeport_(in|rev)/.test(n));
          expect(nodePort, before.join('\n')).toHaveLength(devs.length);
          expect(
            before.filter((n) => n.includes('from_netdev')),
            before.join('\n'),
          ).toHaveLength(devs.length);
          await setHostRouting(ctx, node, 'legacy');
          expect(await currentHostRouting(ctx, node)).toBe('legacy');
          expect(await ingress(), node.name).toEqual(nodePort);
          await setHostRouting(ctx, node, 'bpf');
          expect(await currentHostRouting(ctx, node)).toBe('bpf');
        }
      } finally {
        ctx.backend.close?.();
      }
      const r = await cli(['check', TC, '-q', '--only', 'svc-nodeport', '--report-dir', dir]);
      const np = byId(report(dir), 'svc-nodeport');
      expect(np?.status, `${np?.reason}\n${r.stderr}`).toBe('pass');
    } finally {
      if (saved === undefined) delete process.env.DPL_HOOK;
      else process.env.DPL_HOOK = saved;
      await cli(['down', TC, '-q']);
    }
    expect(await residue(TC)).toEqual([]);
  });
});
