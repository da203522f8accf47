/**
 * The pods benchmark: bring up and tear down N pods three ways and compare.
 *
 *   lab       `lab up FILE -q` / `lab down NAME -q` (node dist/cli/main.js), timed from
 *             outside: the wall clock of each CLI process, Node start-up included.
 *   baseline  bench/baseline.sh N: the same kernel operations with plain tools (its own
 *             `date +%s.%N` stamps, around the work only).
 *   mininet   bench/mininet_pods.py N: N hosts on one LinuxBridge, no controller.
 *
 * Usage (root, after `npx tsc -p tsconfig.json` and `bpf/build.sh`):
 *   node dist/bench/pods.js [--sizes 10,50,100] [--repeat 3] [--settle-ms 1500]
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

function topology(name: string, n: number): string {
  const pods = Array.from({ length: n }, (_, i) => `      - name: p${i + 1}`).join('\n');
  return `name: ${name}
families: [ipv4, ipv6]
datapath:
  hostRouting: bpf
  bigTcp: true
  podDevice: auto
checks: []
nodes:
  - name: node1
    uplink:
      peer: remote
      rate: 200mbit
    pods:
${pods}
`;
}

interface Times {
  up: number;
  down: number;
}

async function labRun(dir: string, n: number): Promise<Times> {
  const name = `bench${n}`;
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, topology(name, n));
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
  const sizes = get('--sizes', '10,50,100').split(',').map(Number);
  const repeat = Number(get('--repeat', '3'));
  const settle = Number(get('--settle-ms', '1500'));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 250) || !(repeat >= 1)) {
    process.stderr.write('usage: node dist/bench/pods.js [--sizes 10,50,100] [--repeat 3] [--settle-ms 1500]\n');
    process.exit(2);
  }
  return { sizes, repeat, settle };
}

const f = (s: number) => s.toFixed(3);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

async function main() {
  const { sizes, repeat, settle } = args();
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates namespaces and loads BPF programs');
  for (const p of [CLI, BASELINE, join(REPO, 'build', 'bpf', 'host_routing.o')])
    if (!existsSync(p)) throw new Error(`${p} is missing (npx tsc -p tsconfig.json; bpf/build.sh)`);
  await assertClean('nothing (before the benchmark)');
  const others = existsSync(STATE_DIR) ? readdirSync(STATE_DIR) : [];
  if (others.length) process.stderr.write(`note: other labs are up (${others.join(', ')}): timings may be disturbed\n`);
  const mn = await mininetInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'dpl-bench-'));
  // Fixed cost of the lab's CLI: Node start-up and module loading, no kernel work.
  // Sampled once per run, between the others, so that it sees the same machine load.
  const starts: number[] = [];
  const cliStartOnce = async () => void starts.push(must(await run(['node', CLI, '--help']), 'lab --help').s);
  const rows: { n: number; lab: Times; base: Times; mn?: Times }[] = [];
  try {
    for (const n of sizes) {
      const lab: Times[] = [];
      const base: Times[] = [];
      const mnt: Times[] = [];
      for (let r = 0; r < repeat; r++) {
        // Namespaces are freed by the kernel after `netns del` returns (cleanup_net):
        // let that finish before the next run so that no run pays for the one before.
        const steps: [string, () => Promise<void>][] = [
          ['lab', async () => void lab.push(await labRun(dir, n))],
          ['baseline', async () => void base.push(await baselineRun(n))],
          ...(mn ? [['mininet', async () => void mnt.push(await mininetRun(n))] as [string, () => Promise<void>]] : []),
        ];
        await cliStartOnce();
        for (const [what, step] of steps) {
          await step();
          await assertClean(`${what} N=${n} run ${r + 1}`);
          await sleep(settle);
        }
        process.stderr.write(
          `N=${n} run ${r + 1}/${repeat}: lab ${f(lab.at(-1)!.up)}/${f(lab.at(-1)!.down)}  baseline ${f(base.at(-1)!.up)}/${f(base.at(-1)!.down)}${mn ? `  mininet ${f(mnt.at(-1)!.up)}/${f(mnt.at(-1)!.down)}` : ''} s (up/down)\n`,
        );
      }
      const med = (ts: Times[]): Times => ({ up: median(ts.map((t) => t.up)), down: median(ts.map((t) => t.down)) });
      rows.push({ n, lab: med(lab), base: med(base), mn: mn ? med(mnt) : undefined });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const cliStart = median(starts);
  const head = [
    'N',
    'lab up',
    'base up',
    'up ratio',
    'lab down',
    'base down',
    'down ratio',
    'mininet up',
    'mininet down',
    'lab/mn up',
    'lab/mn down',
    'up ratio -cli',
    'down ratio -cli',
  ];
  const body = rows.map(({ n, lab, base, mn: m }) => [
    String(n),
    f(lab.up),
    f(base.up),
    ratio(lab.up, base.up),
    f(lab.down),
    f(base.down),
    ratio(lab.down, base.down),
    m ? f(m.up) : 'not installed',
    m ? f(m.down) : 'not installed',
    m ? ratio(lab.up, m.up) : '-',
    m ? ratio(lab.down, m.down) : '-',
    // The same ratios without the CLI's fixed Node start-up cost (measured below).
    ratio(Math.max(0, lab.up - cliStart), base.up),
    ratio(Math.max(0, lab.down - cliStart), base.down),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i])).join('  ');
  process.stdout.write(
    `\npods benchmark: seconds, median of ${repeat}; lab = CLI wall clock (Node start-up included), baseline = bench/baseline.sh\n`,
  );
  process.stdout.write(`${line(head)}\n${line(w.map((x) => '-'.repeat(x)))}\n${body.map(line).join('\n')}\n`);
  process.stdout.write(
    `lab CLI fixed cost (node dist/cli/main.js --help): ${f(cliStart)} s per command; '-cli' columns subtract it from the lab\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`pods benchmark failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
