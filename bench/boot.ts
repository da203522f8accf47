/**
 * The boot benchmark: how far the qemu backend's boot-to-first-command is from a bare QEMU boot.
 *
 *   floor        qemu-system-x86_64 with the flags of src/backends/qemu/vm.ts qemuArgv, minus
 *                `-daemonize -pidfile` (the virtio-serial agent port and its socket chardev are
 *                kept, so the guest sees the same hardware; nobody connects to it), booting the
 *                same kernel and the lab's own initramfs with only /init replaced: mount proc and
 *                devtmpfs, `uname -r > /dev/console`, `busybox poweroff -f`. Wall time from spawn
 *                to QEMU's exit.
 *   lab node     what the lab waits for before it creates anything on a node: bootVm (vm.ts) until
 *                the agent answers, then /run/dpl-ready awaited as src/backends/qemu/qemu.ts
 *                waitReady does (`cat /run/dpl-ready` through GuestExec, every 50 ms; the guest's
 *                /init writes it once its modules are loaded), then GuestExec.run(['uname','-r']);
 *                time from bootVm's call to that result. Then stopVm. A second row reports the
 *                agent's first answer alone (bootVm's Vm.bootMs).
 *   lab up x2    `node dist/cli/main.js up FILE -q` (backend qemu, kernel, two nodes with one
 *                veth pod each, no links), then `down`; wall clock of the `up` CLI process.
 *   CLI cost     `node dist/cli/main.js --help`: the CLI's fixed start-up cost.
 *
 * Floor and lab node run round-robin and every row also gets a paired ratio (x / the floor run of
 * the same round), so a disturbance (another session's VM sharing the cores) hits both alike.
 *
 * Usage (root, after `npx tsc -p tsconfig.json`):
 *   node dist/bench/boot.js [--repeat 5] [--kernel 6.12] [--up-repeat 3]
 * DPL_ACCEL=kvm|tcg picks the accelerator (default tcg: this machine's KVM cannot boot a guest).
 * After every run no QEMU of this benchmark may be left, nor its lab state; otherwise exit 1.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestExec } from '../src/backends/qemu/guest-exec.js';
import { buildInitramfs } from '../src/backends/qemu/initramfs.js';
import { bootVm, qemuArgv, stopVm, type Accel, type VmSpec } from '../src/backends/qemu/vm.js';
import { HostExec, runArgv } from '../src/exec/exec.js';
import { cachedKernel, cacheRoot, type CachedKernel } from '../src/kernels/cache.js';
import { BPF_OBJ_DIR } from '../src/paths.js';
import { killAll, median, must, run, sleep, type Run } from './common.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'cli', 'main.js');
const STATE_DIR = process.env.DPL_STATE_DIR ?? '/run/datapath-lab';
const LAB = 'benchboot';
const ACCEL: Accel = process.env.DPL_ACCEL === 'kvm' ? 'kvm' : 'tcg';

const f = (s: number) => s.toFixed(3);
const log = (m: string) => process.stderr.write(`${m}\n`);

// ---------------------------------------------------------------- cleanup bookkeeping

let TMP = '';
const liveVmDirs = new Set<string>();

/** QEMUs of this benchmark that still run (zombies excluded: this sandbox's init reaps lazily). */
function ourQemus(): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (!cmd.includes('qemu-system')) continue;
      const state = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state === 'Z') continue;
      if ((TMP && cmd.includes(TMP)) || cmd.includes(`${LAB}.`) || cmd.includes(join(STATE_DIR, LAB))) out.push(`qemu pid ${p}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Other QEMUs on this machine (another lab, another session): they share the cores. */
let disturbed = 0;
let samples = 0;
function sampleOthers(): void {
  samples++;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.startsWith('qemu-system') && state !== 'Z' && !(TMP && cmd.includes(TMP)) && !cmd.includes(`${LAB}.`))
        return void disturbed++;
    } catch {
      /* gone */
    }
  }
}

function leftovers(): string[] {
  const left = ourQemus();
  if (existsSync(join(STATE_DIR, LAB))) left.push(`lab state ${join(STATE_DIR, LAB)}`);
  return left;
}

async function assertClean(after: string): Promise<void> {
  sampleOthers();
  // A QEMU that stopVm saw go may still be tearing down for a moment: give it 2 s.
  let left = leftovers();
  for (let i = 0; i < 40 && left.length; i++) {
    await sleep(50);
    left = leftovers();
  }
  if (left.length) {
    process.stderr.write(`\nFAIL: after ${after} the machine still holds:\n  ${left.join('\n  ')}\n`);
    process.exitCode = 1;
    throw new Error('leftovers');
  }
}

async function cleanupAll(): Promise<void> {
  killAll();
  for (const d of liveVmDirs) await stopVm(d).catch(() => {});
  if (existsSync(join(STATE_DIR, LAB))) await run(['node', CLI, 'down', LAB, '-q']);
  if (TMP) rmSync(TMP, { recursive: true, force: true });
}

// ---------------------------------------------------------------- processes

/** Host time (s since t0) at which `needle` first appears in a file, polled every 10 ms until `stop`. */
function watchFile(file: string, needle: string, t0: number): { at: () => number | undefined; stop: () => void } {
  let at: number | undefined;
  const timer = setInterval(() => {
    if (at !== undefined) return;
    try {
      if (readFileSync(file, 'utf8').includes(needle)) at = (performance.now() - t0) / 1000;
    } catch {
      /* not there yet */
    }
  }, 10);
  return { at: () => at, stop: () => clearInterval(timer) };
}

// ---------------------------------------------------------------- images

/** The floor's /init: the one command, then power off (sysrq as a fallback). */
const FLOOR_INIT = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
echo "dpl-floor: $(uname -r)" > /dev/console
/bin/busybox poweroff -f
echo o > /proc/sysrq-trigger
`;

interface Images {
  /** The lab's own initramfs (buildInitramfs, cached). */
  lab: string;
  /** The same image with /init replaced by FLOOR_INIT. */
  floor: string;
}

async function images(k: CachedKernel): Promise<Images> {
  const lab = await buildInitramfs(
    new HostExec(),
    { release: k.release, modulesDir: k.modulesDir, bpfDir: BPF_OBJ_DIR, cacheDir: join(cacheRoot(), 'initramfs') },
    log,
  );
  const root = join(TMP, 'root');
  mkdirSync(root);
  await runArgv(['sh', '-c', 'cd "$1" && zcat "$2" | cpio -idm --quiet', 'sh', root, lab]);
  writeFileSync(join(root, 'init'), FLOOR_INIT, { mode: 0o755 });
  const floor = join(TMP, 'floor.cpio.gz');
  await runArgv(['sh', '-c', 'cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$2"', 'sh', root, floor]);
  rmSync(root, { recursive: true, force: true });
  return { lab, floor };
}

// ---------------------------------------------------------------- measurements

let seq = 0;
const newDir = () => {
  const d = join(TMP, `vm${++seq}`);
  mkdirSync(d);
  return d;
};
const specOf = (k: CachedKernel, initramfs: string, dir: string, name = `${LAB}.n${seq}`): VmSpec => ({
  name,
  vmlinuz: k.vmlinuz,
  initramfs,
  dir,
  accel: ACCEL,
});

interface FloorRun {
  s: number;
  /** When the command's output reached the console. */
  lineS: number;
}

/** A bare QEMU boot: vm.ts's flags without -daemonize/-pidfile; spawn to exit. */
async function floorOnce(k: CachedKernel, initramfs: string): Promise<FloorRun> {
  const dir = newDir();
  const argv = qemuArgv(specOf(k, initramfs, dir));
  const i = argv.indexOf('-daemonize');
  argv.splice(i, 3); // -daemonize -pidfile FILE
  const console = join(dir, 'console.log');
  const t0 = performance.now();
  const w = watchFile(console, 'dpl-floor:', t0);
  const r = await run(argv, { timeoutMs: 90_000 });
  w.stop();
  const out = existsSync(console) ? readFileSync(console, 'utf8') : '';
  const m = /dpl-floor: (\S+)/.exec(out);
  if (r.code !== 0 || m?.[1] !== k.release)
    throw new Error(`floor boot failed (exit ${r.code}): ${r.stderr}\nconsole:\n${out.slice(-2000)}`);
  const lineS = w.at() ?? r.s;
  rmSync(dir, { recursive: true, force: true });
  return { s: r.s, lineS };
}

interface LabRun {
  /** bootVm call to uname's result (agent answered, /run/dpl-ready seen, uname ran). */
  s: number;
  /** Vm.bootMs / 1000: QEMU's start to the agent's first answer (bootVm returned). */
  agentS: number;
  /** The lab's /init printed its dpl-init line (virtio modules loaded, agent about to start). */
  initLineS?: number;
  /** /run/dpl-ready seen (s since bootVm was called). */
  readyS: number;
  /** cat /run/dpl-ready attempts until it answered. */
  readyPolls: number;
  /** The uname guest-exec alone. */
  execMs: number;
}

/** A copy of src/backends/qemu/qemu.ts waitReady: `cat /run/dpl-ready` every 50 ms, 300 tries. Returns the attempts. */
async function waitReady(guest: GuestExec): Promise<number> {
  for (let i = 0; i < 300; i++) {
    if ((await guest.run(['cat', '/run/dpl-ready'], { nothrow: true })).code === 0) return i + 1;
    await sleep(50);
  }
  throw new Error(`guest ${guest.where} never finished loading its modules (/run/dpl-ready)`);
}

async function labOnce(k: CachedKernel, initramfs: string): Promise<LabRun> {
  const dir = newDir();
  liveVmDirs.add(dir);
  const spec = specOf(k, initramfs, dir);
  const t0 = performance.now();
  const wInit = watchFile(join(dir, 'console.log'), 'dpl-init:', t0);
  try {
    const vm = await bootVm(spec);
    const g = new GuestExec(vm.qga, 'bench');
    try {
      const readyPolls = await waitReady(g);
      const readyS = (performance.now() - t0) / 1000;
      const r = await g.run(['uname', '-r']);
      const s = (performance.now() - t0) / 1000;
      if (r.stdout.trim() !== k.release) throw new Error(`uname -r in the guest said ${JSON.stringify(r.stdout)}`);
      return { s, agentS: vm.bootMs / 1000, initLineS: wInit.at(), readyS, readyPolls, execMs: r.ms };
    } finally {
      g.close();
    }
  } finally {
    wInit.stop();
    const stopped = await stopVm(dir);
    liveVmDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    if (!stopped) process.stderr.write(`stopVm ${dir} did not stop QEMU\n`);
  }
}

function topology(kernel: string): string {
  return `name: ${LAB}
backend: qemu
kernel: "${kernel}"
families: [ipv4, ipv6]
datapath:
  hostRouting: bpf
  bigTcp: true
  podDevice: veth
checks: []
nodes:
  - name: node1
    pods:
      - name: p1
  - name: node2
    pods:
      - name: p2
`;
}

async function upOnce(file: string): Promise<Run> {
  const env = { ...process.env, DPL_ACCEL: ACCEL };
  const up = await run(['node', CLI, 'up', file, '-q'], { env });
  const down = await run(['node', CLI, 'down', LAB, '-q'], { env });
  must(up, `lab up ${file}`);
  must(down, `lab down ${LAB}`);
  return up;
}

// ---------------------------------------------------------------- main

function args() {
  const a = process.argv.slice(2);
  const get = (k: string, d: string) => {
    const i = a.indexOf(k);
    return i >= 0 && a[i + 1] ? a[i + 1] : d;
  };
  const repeat = Number(get('--repeat', '5'));
  const upRepeat = Number(get('--up-repeat', '3'));
  const kernel = get('--kernel', '6.12');
  if (!(repeat >= 1) || !(upRepeat >= 1)) {
    process.stderr.write('usage: node dist/bench/boot.js [--repeat 5] [--kernel 6.12] [--up-repeat 3]\n');
    process.exit(2);
  }
  return { repeat, upRepeat, kernel };
}

interface Row {
  what: string;
  xs: number[];
  /** x / floor of the same round. */
  pairs?: number[];
}

async function main() {
  const { repeat, upRepeat, kernel } = args();
  if (process.getuid?.() !== 0) throw new Error('run as root: the lab brings VMs up');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing (npx tsc -p tsconfig.json)`);
  const k = cachedKernel(kernel);
  if (!k) throw new Error(`kernel ${kernel} is not cached (node dist/cli/main.js kernels fetch ${kernel})`);
  TMP = mkdtempSync(join(tmpdir(), 'dpl-bench-boot-'));
  await assertClean('nothing (before the benchmark)');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanupAll().finally(() => process.exit(130)));

  log(`accelerator ${ACCEL.toUpperCase()}, kernel ${k.release}; building images in ${TMP}`);
  const img = await images(k);
  const size = (p: string) => `${(statSync(p).size / 2 ** 20).toFixed(1)} MiB`;
  log(`lab initramfs ${img.lab} (${size(img.lab)}); floor ${size(img.floor)}`);

  // Round-robin: every round runs the floor and a lab node, so that a disturbance (another
  // session's VM sharing the cores) hits both alike; ratios are also taken per round (paired).
  const floor: FloorRun[] = [];
  const lab: LabRun[] = [];
  let calmRounds = 0;
  for (let r = 0; r < repeat; r++) {
    const before = disturbed;
    floor.push(await floorOnce(k, img.floor));
    await assertClean(`floor run ${r + 1}`);
    lab.push(await labOnce(k, img.lab));
    await assertClean(`lab node run ${r + 1}`);
    if (disturbed === before) calmRounds++;
    const fl = floor.at(-1)!;
    const l = lab.at(-1)!;
    log(
      `round ${r + 1}/${repeat}${disturbed === before ? '' : ' (another QEMU was running)'}: floor ${f(fl.s)}  lab node ${f(l.s)}` +
        ` | dpl-init line ${f(l.initLineS ?? NaN)}, agent ${f(l.agentS)}, ready ${f(l.readyS)} (${l.readyPolls} polls), uname ${l.execMs.toFixed(0)} ms`,
    );
  }
  const paired = (xs: number[]) => xs.map((x, i) => x / floor[i].s);
  const rows: Row[] = [
    { what: 'floor: bare qemu, 1 command, poweroff', xs: floor.map((x) => x.s), pairs: paired(floor.map((x) => x.s)) },
    { what: 'lab node: agent first answer (vm.bootMs)', xs: lab.map((x) => x.agentS), pairs: paired(lab.map((x) => x.agentS)) },
    { what: 'lab node: bootVm + dpl-ready + uname -r', xs: lab.map((x) => x.s), pairs: paired(lab.map((x) => x.s)) },
  ];

  const file = join(TMP, `${LAB}.yaml`);
  writeFileSync(file, topology(kernel));
  const up: number[] = [];
  const upPairs: number[] = [];
  for (let r = 0; r < upRepeat; r++) {
    const fl = (await floorOnce(k, img.floor)).s;
    await assertClean(`floor (up round) run ${r + 1}`);
    up.push((await upOnce(file)).s);
    await assertClean(`lab up/down run ${r + 1}`);
    upPairs.push(up.at(-1)! / fl);
    log(`up round ${r + 1}/${upRepeat}: floor ${f(fl)}  lab up x2 ${f(up.at(-1)!)}`);
  }
  rows.push({ what: 'lab up, two VMs (CLI wall clock, -q)', xs: up, pairs: upPairs });
  const cli: number[] = [];
  for (let r = 0; r < 3; r++) cli.push(must(await run(['node', CLI, '--help']), 'lab --help').s);
  rows.push({ what: 'lab CLI fixed cost (main.js --help)', xs: cli });

  const base = median(floor.map((x) => x.s));
  const head = ['what', 'median s', 'min', 'max', 'n', 'ratio to floor', 'paired ratio'];
  const body = rows.map((r) => [
    r.what,
    f(median(r.xs)),
    f(Math.min(...r.xs)),
    f(Math.max(...r.xs)),
    String(r.xs.length),
    `${(median(r.xs) / base).toFixed(2)}x`,
    r.pairs ? `${median(r.pairs).toFixed(2)}x` : '-',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  process.stdout.write(
    `\nboot benchmark, ${ACCEL.toUpperCase()}, kernel ${k.release}: seconds; floor = ${f(base)} s; aim: lab node within 1.30x of the floor\n` +
      `${line(head)}\n${line(w.map((x) => '-'.repeat(x)))}\n${body.map(line).join('\n')}\n`,
  );
  const m = (xs: (number | undefined)[]) => {
    const d = xs.filter((x): x is number => x !== undefined);
    return d.length ? median(d) : NaN;
  };
  process.stdout.write(
    `\nlab node phases (median, s since bootVm was called): /init's dpl-init line (virtio modules loaded) ${f(m(lab.map((x) => x.initLineS)))}; ` +
      `agent answered (bootVm returned) ${f(m(lab.map((x) => x.agentS)))}; /run/dpl-ready seen ${f(m(lab.map((x) => x.readyS)))} ` +
      `(${m(lab.map((x) => x.readyPolls))} polls); + uname ${m(lab.map((x) => x.execMs)).toFixed(0)} ms\n` +
      `floor: command's line on the console at ${f(median(floor.map((x) => x.lineS)))} s, QEMU exited at ${f(base)} s\n` +
      `initramfs: lab ${size(img.lab)} gzip; floor ${size(img.floor)}\n`,
  );
  process.stdout.write(
    `'paired ratio' = median over rounds of (x / the floor run of the same round); ${calmRounds} of ${repeat} floor/lab-node rounds had no other QEMU running\n`,
  );
  if (disturbed)
    process.stdout.write(
      `note: another QEMU (not this benchmark's) was running at ${disturbed} of ${samples} checkpoints: those timings shared the cores with it\n`,
    );
}

main()
  .catch((e) => {
    process.stderr.write(`boot benchmark failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    const left = leftovers();
    if (left.length) {
      process.stderr.write(`left behind: ${left.join(', ')}\n`);
      process.exitCode = 1;
    }
  });
