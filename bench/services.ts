/**
 * The services benchmark: socket-LB against kube-proxy's iptables rules on this kernel.
 *
 *   connect   TCP connect() time in the client pod (svcprobe: CLOCK_MONOTONIC around the
 *             call, one process for all attempts) to a ClusterIP with one backend on the
 *             same node, and straight to that backend: median and p99.
 *   sendto    the same for one UDP datagram on an unconnected socket (the sendmsg hook runs
 *             per datagram): socket-LB's per-packet cost.
 *   install   N services of 4 backends each written into a node: socket-LB's maps
 *             (one `bpftool batch`) vs kube-proxy's rules (one `iptables-restore`); then
 *             one service's backends changed (socket-LB: its revision flip; iptables:
 *             kube-proxy's full resync, the whole ruleset restored again).
 *
 * Usage (root, after `npx tsc -p tsconfig.json` and `bpf/build.sh`):
 *   node dist/bench/services.js [--connects 2000] [--services 10000] [--iptables-services 1000]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeProxyRules } from '../src/datapath/kpr/iptables.js';
import { backendEntry, frontendLines } from '../src/datapath/kpr/maps.js';
import type { Frontend, PlanBackend, ServicePlan } from '../src/datapath/kpr/plan.js';
import { NetnsExec } from '../src/exec/exec.js';
import { Journal } from '../src/lifecycle/journal.js';
import { serviceAttempts, startServers } from '../src/measure/services.js';
import { BPF_OBJ_DIR } from '../src/paths.js';
import { median, must, run } from './common.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const CONNECTS = arg('connects', 2000);
const SERVICES = arg('services', 10000);
/** kube-proxy's rules for 10k services (170k rules) take iptables-nft minutes here: a smaller default. */
const IPT_SERVICES = arg('iptables-services', 1000);

const topology = (name: string, mode: 'bpf' | 'iptables') => `name: ${name}
datapath: { kubeProxy: ${mode}, hostRouting: ${mode === 'bpf' ? 'bpf' : 'legacy'} }
nodes:
  - name: node1
    pods: [{ name: client }, { name: web1 }, { name: web2 }, { name: web3 }, { name: web4 }]
services:
  - name: one
    clusterIP: 10.96.0.20
    ports: [{ port: 80, targetPort: 8080 }, { port: 53, protocol: UDP, targetPort: 5353 }]
    backends: [web1]
`;

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];

/** N synthetic services of 4 backends (the lab's 4 web pods), ClusterIPs 10.97.0.0/16 upwards. */
function bigPlan(n: number): ServicePlan {
  const backends: PlanBackend[] = [2, 3, 4, 5].map((h, i) => ({
    id: i + 1,
    node: 'node1',
    pod: `web${i + 1}`,
    addr: `10.244.1.${h + 1}`,
    port: 8080,
    family: 'ipv4',
  }));
  const frontends: Frontend[] = Array.from({ length: n }, (_, i) => ({
    svcId: 100 + i,
    service: `s${i}`,
    family: 'ipv4',
    vip: `10.${97 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    port: 80,
    protocol: 'TCP',
    targetPort: 8080,
    affinitySeconds: 0,
    backends: backends.map((b) => ({ id: b.id, weight: 1 })),
  }));
  return { frontends, backends };
}

async function connects(lab: string, cgroup: string | undefined) {
  const journal = Journal.open(lab)!;
  const servers = await startServers(
    [{ exec: new NetnsExec(`dpl-${lab}.node1.web1`), name: 'web1', ports: ['8080/tcp', '5353/udp'] }],
    BPF_OBJ_DIR,
    journal,
  );
  try {
    const client = new NetnsExec(`dpl-${lab}.node1.client`);
    const spec = { op: 'tcp' as const, port: 0, attempts: CONNECTS, timeoutMs: 1000, cgroup };
    const out: Record<string, number[]> = {};
    // Interleaved in rounds, so a burst of load on the shared machine hits both alike.
    for (let round = 0; round < 4; round++)
      for (const [what, op, addr, port] of [
        ['connect ClusterIP', 'tcp', '10.96.0.20', 80],
        ['connect backend direct', 'tcp', '10.244.1.3', 8080],
        ['UDP sendto ClusterIP', 'udp', '10.96.0.20', 53],
        ['UDP sendto backend direct', 'udp', '10.244.1.3', 5353],
      ] as const) {
        const as = await serviceAttempts(client, BPF_OBJ_DIR, { ...spec, op, addr, port, attempts: CONNECTS / 4 });
        const failed = as.filter((a) => a.errno);
        if (failed.length) throw new Error(`${what}: ${failed.length} connects failed: ${JSON.stringify(failed[0])}`);
        out[what] = [...(out[what] ?? []), ...as.map((a) => a.us)];
      }
    return out;
  } finally {
    await servers.stop();
  }
}

/** The benchmark's files (topologies, batch and rules inputs), removed at the end. */
const TMP = mkdtempSync(join(tmpdir(), 'dpl-svc-bench-'));

async function main() {
  const rows: string[][] = [];
  const report = (r: string[]) => {
    rows.push(r);
    console.error(r.join('  '));
  };
  for (const mode of ['bpf', 'iptables'] as const) {
    const lab = mode === 'bpf' ? 'kpr-bnb' : 'kpr-bni';
    const file = join(TMP, `${lab}.yaml`);
    writeFileSync(file, topology(lab, mode));
    must(await run(['node', CLI, 'up', file, '-q']), `lab up ${lab}`);
    try {
      const cg = mode === 'bpf' ? `/sys/fs/cgroup/unified/dpl/${lab}.node1/client` : undefined;
      const c = await connects(lab, cg);
      for (const [what, us] of Object.entries(c)) report([mode, what, String(median(us)), String(p99(us)), String(us.length)]);
      const ns = `/run/netns/dpl-${lab}.node1`;
      const plan = bigPlan(mode === 'bpf' ? SERVICES : IPT_SERVICES);
      const count = plan.frontends.length;
      if (mode === 'bpf') {
        const pins = `/sys/fs/bpf/dpl/${lab}/node1/kpr/maps`;
        const maps = { services: `${pins}/services` };
        const lines = [
          ...plan.backends.map((b) => {
            const e = backendEntry({ ...b, id: b.id + 1000 });
            return `map update pinned ${pins}/backends key hex ${e.key} value hex ${e.value}`;
          }),
          ...plan.frontends.flatMap((f) => frontendLines(maps, { ...f, backends: f.backends.map((b) => ({ ...b, id: b.id + 1000 })) }, 1)),
        ];
        writeFileSync(join(TMP, 'install.batch'), lines.join('\n') + '\n');
        const install = must(await run(['bpftool', 'batch', 'file', join(TMP, 'install.batch')]), 'bpftool batch');
        const f = plan.frontends[count >> 1];
        const change = frontendLines(maps, { ...f, backends: [{ id: 1001, weight: 1 }] }, 2, { rev: 1, slots: 4 });
        writeFileSync(join(TMP, 'change.batch'), change.join('\n') + '\n');
        const one = must(await run(['bpftool', 'batch', 'file', join(TMP, 'change.batch')]), 'bpftool batch (one)');
        report([mode, `install ${count} services x 4 backends (${lines.length} map updates)`, `${install.s.toFixed(3)} s`, '', '1']);
        report([mode, 'change one service (revision flip)', `${one.s.toFixed(3)} s`, '', '1']);
      } else {
        const rules = kubeProxyRules(plan, 'ipv4');
        writeFileSync(join(TMP, 'rules'), rules);
        const restore = ['nsenter', `--net=${ns}`, 'sh', '-c', `exec iptables-restore -w --noflush < ${join(TMP, 'rules')}`];
        const install = must(await run(restore), 'iptables-restore');
        // kube-proxy's full sync: the whole ruleset restored again after one change.
        const again = must(await run(restore), 'iptables-restore (resync)');
        const n = rules.split('\n').filter((l) => l.startsWith('-A')).length;
        report([mode, `install ${count} services x 4 backends (${n} rules)`, `${install.s.toFixed(3)} s`, '', '1']);
        report([mode, 'change one service (full resync)', `${again.s.toFixed(3)} s`, '', '1']);
      }
    } finally {
      must(await run(['node', CLI, 'down', lab, '-q']), `lab down ${lab}`);
    }
  }
  const head = ['mode', 'what', 'median (us) / time', 'p99 (us)', 'n'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
}

main()
  .catch((e) => {
    console.error(String(e));
    process.exitCode = 1;
  })
  .finally(() => rmSync(TMP, { recursive: true, force: true }));
