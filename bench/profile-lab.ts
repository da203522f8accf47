/**
 * Where `lab up` / `lab down` spend their time: runs the lab's own steps in-process
 * (the same functions the lab machine invokes, in the same order) and times each.
 *
 * Usage (root): node dist/bench/profile-lab.js [N=100]
 * Lab name benchp; everything is torn down at the end (also on failure).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostExec } from '../src/exec/exec.js';
import { probe, provision, validate } from '../src/lifecycle/steps.js';
import { teardownLab } from '../src/lifecycle/teardown.js';
import { setPhase } from '../src/lifecycle/labstate.js';
import { readLinks } from '../src/measure/links.js';
import { deployHostRouting } from '../src/datapath/host-routing/host-routing.js';
import { nodeNamespaces, setSizes } from '../src/datapath/bigtcp/bigtcp.js';
import { podDevicePlan } from '../src/datapath/devices/devices.js';
import { nodeBatch, peerBatch, podBatch, tbfBatch } from '../src/backends/local/wiring.js';
import { pool, PARALLEL } from '../src/exec/pool.js';

const n = Number(process.argv[2] ?? 100);
const name = 'benchp';
const t = { last: performance.now() };
const rows: [string, number][] = [];
const lap = (what: string) => {
  const now = performance.now();
  rows.push([what, now - t.last]);
  t.last = now;
};

const pods = Array.from({ length: n }, (_, i) => `      - name: p${i + 1}`).join('\n');
const dir = mkdtempSync(join(tmpdir(), 'dpl-prof-'));
const file = join(dir, 'lab.yaml');
writeFileSync(file, `name: ${name}\nfamilies: [ipv4, ipv6]\ndatapath: {hostRouting: bpf, bigTcp: true, podDevice: auto}\nchecks: []\nnodes:\n  - name: node1\n    uplink: {peer: remote, rate: 200mbit}\n    pods:\n${pods}\n`);

const signal = new AbortController().signal;
try {
  lap('(start)');
  const lab = await validate(file);
  lap('validate (load + resolve YAML)');
  const probed = await probe(lab, signal);
  lap('probe (kernel facts: 8 tool versions, config.gz, modules)');
  const ctx = await provision(lab, probed, signal, () => {});
  lap(`provision (1 ip -batch: ${lab.nodes[0].pods.length + 2} netns + ${n + 1} veth pairs)`);
  const node = lab.nodes[0];
  const { kind } = podDevicePlan(ctx.facts, node.datapath, node.name);
  const exec = ctx.backend.exec(node.netns);
  await exec.run(['ip', '-batch', '-'], { input: nodeBatch(lab, node, kind), signal });
  lap('wire: node ip -batch');
  await Promise.all([
    exec.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { signal }),
    exec.run(['tc', '-batch', '-'], { input: tbfBatch(lab, node)!, signal }),
    ctx.backend.exec(lab.peers[0].netns).run(['ip', '-batch', '-'], { input: peerBatch(lab, node), signal }),
  ]);
  lap('wire: sysctl + tc + peer (parallel)');
  await pool(node.pods, PARALLEL, async (pod) => void (await ctx.backend.exec(pod.netns).run(['ip', '-batch', '-'], { input: podBatch(node, pod, kind), signal })));
  lap(`wire: ${n} pod ip -batch (${PARALLEL} at a time)`);
  const links = await readLinks(exec, undefined, signal);
  lap('deploy: readLinks(node) (ip -d -j link show + zod)');
  const batch = ctx.backend.host.run.bind(ctx.backend.host);
  // deployHostRouting = loadall + one bpftool batch; time the two apart by wrapping host/exec runs.
  const marks: [string, number][] = [];
  const wrap = <T extends { run: typeof batch }>(e: T) => {
    const orig = e.run.bind(e);
    e.run = async (argv, o) => {
      const t0 = performance.now();
      const r = await orig(argv, o);
      marks.push([argv.filter((a) => !a.startsWith('/')).slice(0, 4).join(' '), performance.now() - t0]);
      return r;
    };
    return e;
  };
  wrap(ctx.backend.host);
  const nodeExec = wrap(ctx.backend.exec(node.netns));
  const backend = { ...ctx.backend, host: ctx.backend.host, exec: (ns: string) => (ns === node.netns ? nodeExec : ctx.backend.exec(ns)) };
  await deployHostRouting({ ...ctx, backend }, node, links, true);
  lap('deploy: host routing (loadall + bpftool batch)');
  for (const [what, ms] of marks) rows.push([`    of which: ${what}`, -ms]);
  await setSizes(ctx.backend, ctx.facts, nodeNamespaces(ctx, node), true, signal);
  lap(`deploy: BIG TCP setSizes (${n + 2} namespaces x (ip -d -j read + ip -batch), all at once)`);
  setPhase(name, 'up');
  lap('(up done)');
  await teardownLab(name, new HostExec());
  lap('down: teardownLab (journal replay, ip -force -batch netns del, rm pins)');
} finally {
  await teardownLab(name, new HostExec()).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}

let up = 0;
for (const [what, ms] of rows) {
  if (what === '(start)' || what === '(up done)') continue;
  if (ms >= 0 && !what.startsWith('down')) up += ms;
  process.stdout.write(`${(Math.abs(ms) / 1000).toFixed(3).padStart(8)} s  ${what}\n`);
}
process.stdout.write(`${(up / 1000).toFixed(3).padStart(8)} s  total up (in-process, no Node start-up)\n`);
