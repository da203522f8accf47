/**
 * The pods benchmark: bring up and tear down N pods four ways and compare.
 *
 *   lab       `lab up FILE -q` / `lab down NAME -q` (node dist/cli/main.js), timed from
 *             outside: the wall clock of each CLI process, Node start-up included.
 *   floor     bench/baseline.sh N floor: the kernel-only floor, the namespaces and sized
 *             veth pairs in one `ip -batch`, nothing configured in them.
 *   tools     bench/baseline.sh N: the same kernel operations as the lab with the fewest
 *             iproute2/tc/bpftool processes plain tools allow (one `ip -batch` per pod).
 *             Both time themselves (`date +%s.%N` around the work only).
 *   mininet   bench/mininet_pods.py N: N hosts on one LinuxBridge, no controller (sizes up
 *             to --mininet-max only: a thousand Mininet hosts take minutes).
 * `--grid NODESxPODS` adds lab-only rows of several nodes (each with its own pods).
 *
 * Usage (root, after `npm run build` and `bpf/build.sh`):
 *   node dist/bench/pods.js [--sizes 10,100,1000] [--grid 10x100] [--repeat 3] [--settle-ms 1500] [--mininet-max 250]
 * Each cell is the median of --repeat runs. After every run the machine must hold
 * nothing of it; otherwise the benchmark stops with exit 1.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, must, run, sleep, type Run } from './common.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'cli', 'main.js');
const BASELINE = join(REPO, 'bench', 'baseline.sh');
const MININET = join(REPO, 'bench', 'mininet_pods.py');
/** Debian's python: the mininet package installs into /usr/lib/python3/dist-packages only. */
const PYTHON = '/usr/bin/python3';
const STATE_DIR = process.env.DPL_STATE_DIR ?? '/run/datapath-lab';

/** Everything a run could leave behind; empty means the machine holds nothing of it. */
async function leftovers(): Promise<string[]> {
  const left: string[] = [];
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  left.push(
    ...ls('/run/netns')
      .filter((n) => n.startsWith('bench-') || n.startsWith('dpl-bench'))
      .map((n) => `netns ${n}`),
  );
  // Only this benchmark's pins: other labs (a test suite running meanwhile) may own the rest of dpl/.
  left.push(
    ...ls('/sys/fs/bpf/dpl')
      .filter((n) => n.startsWith('bench'))
      .map((n) => `/sys/fs/bpf/dpl/${n}`),
  );
  left.push(
    ...ls('/sys/fs/bpf')
      .filter((n) => n.startsWith('bench-'))
      .map((n) => `/sys/fs/bpf/${n}`),
  );
  left.push(
    ...ls(STATE_DIR)
      .filter((n) => n.startsWith('bench'))
      .map((n) => `lab state ${STATE_DIR}/${n}`),
  );
  left.push(
    ...ls('/dev/shm')
      .filter((n) => n.startsWith('bench-baseline.'))
      .map((n) => `/dev/shm/${n}`),
  );
  // Mininet's bridge and its root-namespace veth ends (bench/mininet_pods.py names them bns1*).
  const links = await run(['ip', '-o', 'link', 'show']);
  for (const l of links.stdout.split('\n')) {
    const name = l.split(':')[1]?.trim().split('@')[0];
    if (name && (name === 'bns1' || name.startsWith('bns1-'))) left.push(`link ${name}`);
  }
  const procs = await run(['pgrep', '-f', '^mnexec .*bh[0-9]']);
  if (procs.stdout.trim()) left.push(`mnexec pids ${procs.stdout.trim().split('\n').join(',')}`);
  return left;
}

async function assertClean(after: string): Promise<void> {
  const left = await leftovers();
  if (left.length) {
    process.stderr.write(`\nFAIL: after ${after} the machine still holds:\n  ${left.join('\n  ')}\n`);
    process.exit(1);
  }
}

/** N pods on each of `nodes` nodes; the first node has the uplink to the remote peer. */
function topology(name: string, n: number, nodes = 1): string {
  const pods = Array.from({ length: n }, (_, i) => `      - name: p${i + 1}`).join('\n');
  // More pods than a /24 holds: a /22 per node (10.244.0.0/22, 10.244.4.0/22, ...).
  const cidr = (k: number) => (n > 250 ? `\n    podCidr: 10.244.${k * 4}.0/22` : '');
  const node = (k: number) =>
    `  - name: node${k + 1}${cidr(k)}${k === 0 ? '\n    uplink:\n      peer: remote\n      rate: 200mbit' : ''}\n    pods:\n${pods}`;
  return `name: ${name}
families: [ipv4, ipv6]
datapath:
  hostRouting: bpf
  bigTcp: true
  podDevice: auto
checks: []
nodes:
${Array.from({ length: nodes }, (_, k) => node(k)).join('\n')}
`;
}

interface Times {
  up: number;
  down: number;
}

async function labRun(dir: string, n: number, nodes = 1): Promise<Times> {
  const name = `bench${nodes > 1 ? `${nodes}x` : ''}${n}`;
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, topology(name, n, nodes));
  const up = await run(['node', CLI, 'up', file, '-q']);
  if (up.code !== 0) {
    await run(['node', CLI, 'down', name, '-q']);
    must(up, `lab up ${file}`);
  }
  const down = must(await run(['node', CLI, 'down', name, '-q']), `lab down ${name}`);
  return { up: up.s, down: down.s };
}

function parseTimes(r: Run, tag: string): Times {
  const m = new RegExp(`^${tag} n=\\d+ up_s=([\\d.]+) down_s=([\\d.]+)$`, 'm').exec(r.stdout);
  if (!m) throw new Error(`no ${tag} line in:\n${r.stdout}${r.stderr}`);
  return { up: Number(m[1]), down: Number(m[2]) };
}

async function baselineRun(n: number): Promise<Times> {
  return parseTimes(must(await run(['bash', BASELINE, String(n)]), `bench/baseline.sh ${n}`), 'BASELINE');
}

async function floorRun(n: number): Promise<Times> {
  return parseTimes(must(await run(['bash', BASELINE, String(n), 'floor']), `bench/baseline.sh ${n} floor`), 'FLOOR');
}

async function mininetRun(n: number): Promise<Times> {
  const r = await run([PYTHON, MININET, String(n)]);
  if (r.code === 3) throw new Error(`mininet left objects behind (removed by name):\n${r.stderr}`);
  return parseTimes(must(r, `bench/mininet_pods.py ${n}`), 'MININET');
}

async function mininetInstalled(): Promise<boolean> {
  const r = await run([PYTHON, '-c', 'import mininet.nodelib, shutil, sys; sys.exit(0 if shutil.which("brctl") else 1)']);
  return r.code === 0;
}

function args() {
  const a = process.argv.slice(2);
  const get = (k: string, d: string) => {
    const i = a.indexOf(k);
    return i >= 0 && a[i + 1] ? a[i + 1] : d;
  };
  const sizes = get('--sizes', '10,100,1000').split(',').map(Number);
  const grid = get('--grid', '')
    .split(',')
    .filter(Boolean)
    .map((g) => g.split('x').map(Number) as [number, number]);
  const repeat = Number(get('--repeat', '3'));
  const settle = Number(get('--settle-ms', '1500'));
  const mininetMax = Number(get('--mininet-max', '250'));
  const bad =
    sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 1000) ||
    grid.some(([k, n]) => !(k! >= 1 && k! <= 20 && n! >= 1 && n! <= 250)) ||
    !(repeat >= 1);
  if (bad) {
    process.stderr.write(
      'usage: node dist/bench/pods.js [--sizes 10,100,1000] [--grid 10x100] [--repeat 3] [--settle-ms 1500] [--mininet-max 250]\n' +
        '  sizes 1..1000 pods on one node; grid NODESxPODS with 1..20 nodes of 1..250 pods\n',
    );
    process.exit(2);
  }
  return { sizes, grid, repeat, settle, mininetMax };
}

const f = (s: number) => s.toFixed(3);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i]!)).join('  ');
  return `${line(head)}\n${line(w.map((x) => '-'.repeat(x)))}\n${body.map(line).join('\n')}\n`;
}

interface Row {
  label: string;
  pods: number;
  lab: Times;
  floor?: Times;
  tools?: Times;
  mn?: Times;
}

async function main() {
  const { sizes, grid, repeat, settle, mininetMax } = args();
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates namespaces and loads BPF programs');
  for (const p of [CLI, BASELINE, join(REPO, 'build', 'bpf', 'host_routing.o')])
    if (!existsSync(p)) throw new Error(`${p} is missing (npm run build; bpf/build.sh)`);
  await assertClean('nothing (before the benchmark)');
  const others = existsSync(STATE_DIR) ? readdirSync(STATE_DIR) : [];
  if (others.length) process.stderr.write(`note: other labs are up (${others.join(', ')}): timings may be disturbed\n`);
  const mn = await mininetInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'dpl-bench-'));
  // Fixed cost of the lab's CLI: Node start-up and module loading, no kernel work.
  // Sampled once per run, between the others, so that it sees the same machine load.
  const starts: number[] = [];
  const cliStartOnce = async () => void starts.push(must(await run(['node', CLI, '--help']), 'lab --help').s);
  const med = (ts: Times[]): Times | undefined =>
    ts.length ? { up: median(ts.map((t) => t.up)), down: median(ts.map((t) => t.down)) } : undefined;
  const rows: Row[] = [];
  const cells = [...sizes.map((n) => ({ nodes: 1, n })), ...grid.map(([nodes, n]) => ({ nodes: nodes!, n: n! }))];
  try {
    for (const { nodes, n } of cells) {
      const runs: Record<'lab' | 'floor' | 'tools' | 'mininet', Times[]> = { lab: [], floor: [], tools: [], mininet: [] };
      const single = nodes === 1;
      for (let r = 0; r < repeat; r++) {
        // Namespaces are freed by the kernel after `netns del` returns (cleanup_net):
        // let that finish before the next run so that no run pays for the one before.
        type Step = [keyof typeof runs, () => Promise<Times>];
        const steps: Step[] = [['lab', () => labRun(dir, n, nodes)]];
        if (single) steps.push(['floor', () => floorRun(n)], ['tools', () => baselineRun(n)]);
        if (single && mn && n <= mininetMax) steps.push(['mininet', () => mininetRun(n)]);
        await cliStartOnce();
        for (const [what, step] of steps) {
          runs[what].push(await step());
          await assertClean(`${what} ${nodes}x${n} run ${r + 1}`);
          await sleep(settle);
        }
        const last = steps.map(([w]) => `${w} ${f(runs[w].at(-1)!.up)}/${f(runs[w].at(-1)!.down)}`).join('  ');
        process.stderr.write(`${nodes}x${n} run ${r + 1}/${repeat}: ${last} s (up/down)\n`);
      }
      rows.push({
        label: single ? String(n) : `${nodes}x${n}`,
        pods: nodes * n,
        lab: med(runs.lab)!,
        floor: med(runs.floor),
        tools: med(runs.tools),
        mn: med(runs.mininet),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const cli = median(starts);
  const opt = (t: Times | undefined, k: keyof Times) => (t ? f(t[k]) : '-');
  const rel = (a: number, t: Times | undefined, k: keyof Times) => (t ? ratio(a, t[k]) : '-');
  /** The columns both tables share for one direction; each table appends its own ratios. */
  const common = (r: Row, k: keyof Times) => [
    r.label,
    f(r.lab[k]),
    ((r.lab[k] * 1000) / r.pods).toFixed(2),
    opt(r.floor, k),
    opt(r.tools, k),
    opt(r.mn, k),
    rel(r.lab[k], r.floor, k),
  ];
  const up = table(
    ['pods', 'lab up', 'ms/pod', 'floor', 'tools', 'mininet', 'lab/floor', '(lab-cli)/floor', 'lab/tools', 'lab/mininet'],
    rows.map((r) => [
      ...common(r, 'up'),
      rel(Math.max(0, r.lab.up - cli), r.floor, 'up'),
      rel(r.lab.up, r.tools, 'up'),
      rel(r.lab.up, r.mn, 'up'),
    ]),
  );
  const down = table(
    ['pods', 'lab down', 'ms/pod', 'floor', 'tools', 'mininet', 'lab/floor', 'lab/mininet'],
    rows.map((r) => [...common(r, 'down'), rel(r.lab.down, r.mn, 'down')]),
  );
  process.stdout.write(
    `\npods benchmark: seconds, median of ${repeat}; lab = CLI wall clock (Node start-up included); ` +
      `floor = namespaces + sized veth pairs in one ip -batch; tools = bench/baseline.sh (iproute2 batch mode, one process per pod)\n` +
      `${mn ? '' : 'mininet: not installed (apt-get install mininet bridge-utils)\n'}\nup\n${up}\ndown\n${down}` +
      `lab CLI fixed cost (node dist/cli/main.js --help): ${f(cli)} s per command; (lab-cli)/floor subtracts it\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`pods benchmark failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
