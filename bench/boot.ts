/**
 * The boot benchmark: how far the qemu backend's boot-to-first-command is from a bare QEMU boot.
 *
 *   floor        qemu-system-x86_64 with the flags of src/backends/qemu/vm.ts qemuArgv, minus
 *                `-daemonize -pidfile` (the virtio-serial agent port and its socket chardev are
 *                kept, so the guest sees the same hardware; nobody connects to it), booting the
 *                same kernel and the lab's own initramfs with only /init replaced: mount proc and
 *                devtmpfs, `uname -r > /dev/console`, `busybox poweroff -f`. Wall time from spawn
 *                to QEMU's exit.
 *   lab node     bootVm (vm.ts) until the agent answers, then GuestExec.run(['uname','-r']);
 *                time from bootVm's call to that result. Then stopVm.
 *   lab up x2    `node dist/src/cli/main.js up FILE -q` (backend qemu, kernel, two nodes with one
 *                veth pod each, no links), then `down`; wall clock of the `up` CLI process.
 *
 * Then (unless --no-profile) variants that say where the lab's extra time goes: the lab's /init
 * without the agent, module loading as one `modprobe -a`, uncompressed modules, a busybox-only
 * initramfs, an uncompressed cpio, the agent awaited with a 50 ms guest-sync retry instead of 1 s,
 * and a timestamped `lab up` (progress lines).
 *
 * Usage (root, after `npx tsc -p tsconfig.json`):
 *   node dist/bench/boot.js [--repeat 5] [--kernel 6.12] [--up-repeat 3] [--no-profile]
 * DPL_ACCEL=kvm|tcg picks the accelerator (default tcg: this machine's KVM cannot boot a guest).
 * After every run no QEMU of this benchmark may be left, nor its lab state; otherwise exit 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestExec } from '../src/backends/qemu/guest-exec.js';
import { buildInitramfs, INIT } from '../src/backends/qemu/initramfs.js';
import { Qga } from '../src/backends/qemu/qga.js';
import { bootVm, qemuArgv, runningPid, stopVm, type Accel, type VmSpec } from '../src/backends/qemu/vm.js';
import { HostExec, runArgv } from '../src/exec/exec.js';
import { cachedKernel, cacheRoot, type CachedKernel } from '../src/kernels/cache.js';
import { BPF_OBJ_DIR } from '../src/paths.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const STATE_DIR = process.env.DPL_STATE_DIR ?? '/run/datapath-lab';
const LAB = 'benchboot';
const ACCEL: Accel = process.env.DPL_ACCEL === 'kvm' ? 'kvm' : 'tcg';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (s: number) => s.toFixed(3);
const log = (m: string) => process.stderr.write(`${m}\n`);

// ---------------------------------------------------------------- cleanup bookkeeping

let TMP = '';
const liveChildren = new Set<ChildProcess>();
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
      if (cmd.startsWith('qemu-system') && state !== 'Z' && !(TMP && cmd.includes(TMP)) && !cmd.includes(`${LAB}.`)) return void disturbed++;
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
  for (let i = 0; i < 40 && left.length; i++) (await sleep(50), (left = leftovers()));
  if (left.length) {
    process.stderr.write(`\nFAIL: after ${after} the machine still holds:\n  ${left.join('\n  ')}\n`);
    process.exitCode = 1;
    throw new Error('leftovers');
  }
}

async function cleanupAll(): Promise<void> {
  for (const c of liveChildren) c.kill('SIGKILL');
  for (const d of liveVmDirs) await stopVm(d).catch(() => {});
  if (existsSync(join(STATE_DIR, LAB))) await run(['node', CLI, 'down', LAB, '-q']);
  if (TMP) rmSync(TMP, { recursive: true, force: true });
}

// ---------------------------------------------------------------- processes

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  s: number;
  /** stderr lines stamped with seconds since spawn. */
  stamped: string[];
}

function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done) => {
    const t0 = performance.now();
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    liveChildren.add(c);
    let stdout = '';
    let stderr = '';
    const stamped: string[] = [];
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const t = (performance.now() - t0) / 1000;
      for (const l of d.split('\n')) if (l.trim()) stamped.push(`${t.toFixed(2).padStart(6)} s  ${l}`);
    });
    const fin = (code: number | null) => (liveChildren.delete(c), done({ code, stdout, stderr, s: (performance.now() - t0) / 1000, stamped }));
    c.on('error', (e) => ((stderr += String(e)), fin(127)));
    c.on('close', (code) => fin(code));
  });
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return r;
}

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

// ---------------------------------------------------------------- initramfs variants

const FLOOR_HEAD = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
`;
/** The one command, then power off (sysrq as a fallback). */
const FLOOR_TAIL = `echo "dpl-floor: $(uname -r)" > /dev/console
/bin/busybox poweroff -f
echo o > /proc/sysrq-trigger
`;

/** The lab's /init up to (not including) the agent's start: pseudo filesystems, modules, lo, port lookup. */
const LAB_PRE_AGENT = INIT.slice(0, INIT.indexOf('/usr/sbin/qemu-ga'));
const MODLOOP = 'for m in $(cat /etc/dpl-modules); do /usr/sbin/modprobe -q "$m"; done';
if (!LAB_PRE_AGENT.includes(MODLOOP)) throw new Error('initramfs.ts INIT changed: update bench/boot.ts MODLOOP');
const MODPROBE_A = '/usr/sbin/modprobe -q -a $(cat /etc/dpl-modules)';

async function pack(root: string, out: string, gzip = true): Promise<string> {
  await runArgv(['sh', '-c', `cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet ${gzip ? '| gzip -1 ' : ''}> "$2"`, 'sh', root, out]);
  return out;
}

interface Images {
  lab: string;
  floor: string;
  /** The lab's /init minus the agent: its mounts and module loop, then the one command. */
  floorLabInit: string;
  floorModprobeA: string;
  floorModprobeAUnxz: string;
  floorBusybox: string;
  floorUncompressed: string;
  /** The lab's image with /init loading modules in one `modprobe -a`. */
  labModprobeA: string;
}

async function images(k: CachedKernel, profile: boolean): Promise<Images> {
  const lab = await buildInitramfs(new HostExec(), { release: k.release, modulesDir: k.modulesDir, bpfDir: BPF_OBJ_DIR, cacheDir: join(cacheRoot(), 'initramfs') }, log);
  const root = join(TMP, 'root');
  mkdirSync(root);
  await runArgv(['sh', '-c', 'cd "$1" && zcat "$2" | cpio -idm --quiet', 'sh', root, lab]);
  const withInit = async (name: string, init: string, gzip = true) => {
    writeFileSync(join(root, 'init'), init, { mode: 0o755 });
    return pack(root, join(TMP, name), gzip);
  };
  const floor = await withInit('floor.cpio.gz', FLOOR_HEAD + FLOOR_TAIL);
  if (!profile) return { lab, floor } as Images;
  const labInitFloor = LAB_PRE_AGENT + FLOOR_TAIL;
  const floorLabInit = await withInit('floor-labinit.cpio.gz', labInitFloor);
  const floorModprobeA = await withInit('floor-modprobe-a.cpio.gz', labInitFloor.replace(MODLOOP, MODPROBE_A));
  const floorUncompressed = await withInit('floor.cpio', FLOOR_HEAD + FLOOR_TAIL, false);
  const labModprobeA = await withInit('lab-modprobe-a.cpio.gz', INIT.replace(MODLOOP, MODPROBE_A));
  // The same modules, decompressed (.ko), depmod'ed again.
  await runArgv(['sh', '-c', 'find "$1/lib/modules" -name "*.ko.xz" -exec xz -d {} +', 'sh', root]);
  await runArgv(['depmod', '-b', root, k.release]);
  const floorModprobeAUnxz = await withInit('floor-modprobe-a-unxz.cpio.gz', labInitFloor.replace(MODLOOP, MODPROBE_A));
  // busybox only: what the floor costs without the lab's 30 MB of tools, libraries and modules.
  const bb = join(TMP, 'root-bb');
  for (const d of ['bin', 'proc', 'dev', 'sys']) mkdirSync(join(bb, d), { recursive: true });
  await runArgv(['cp', join(root, 'bin', 'busybox'), join(bb, 'bin', 'busybox')]);
  for (const a of ['sh', 'mount', 'echo', 'uname']) symlinkSync('busybox', join(bb, 'bin', a));
  writeFileSync(join(bb, 'init'), FLOOR_HEAD + FLOOR_TAIL, { mode: 0o755 });
  const floorBusybox = await pack(bb, join(TMP, 'floor-busybox.cpio.gz'));
  rmSync(bb, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
  return { lab, floor, floorLabInit, floorModprobeA, floorModprobeAUnxz, floorBusybox, floorUncompressed, labModprobeA };
}

// ---------------------------------------------------------------- measurements

let seq = 0;
const newDir = () => {
  const d = join(TMP, `vm${++seq}`);
  mkdirSync(d);
  return d;
};
const specOf = (k: CachedKernel, initramfs: string, dir: string, name = `${LAB}.n${seq}`): VmSpec => ({ name, vmlinuz: k.vmlinuz, initramfs, dir, accel: ACCEL });

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
  const r = await new Promise<Run>((done) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    liveChildren.add(c);
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const kill = setTimeout(() => c.kill('SIGKILL'), 90_000);
    c.on('close', (code) => (clearTimeout(kill), liveChildren.delete(c), done({ code, stdout: '', stderr, s: (performance.now() - t0) / 1000, stamped: [] })));
  });
  w.stop();
  const out = existsSync(console) ? readFileSync(console, 'utf8') : '';
  const m = /dpl-floor: (\S+)/.exec(out);
  if (r.code !== 0 || m?.[1] !== k.release) throw new Error(`floor boot failed (exit ${r.code}): ${r.stderr}\nconsole:\n${out.slice(-2000)}`);
  const lineS = w.at() ?? r.s;
  rmSync(dir, { recursive: true, force: true });
  return { s: r.s, lineS };
}

interface LabRun {
  /** bootVm call to uname's result. */
  s: number;
  /** QEMU daemonized (pidfile written). */
  daemonS?: number;
  /** The lab's /init printed its dpl-init line (modules loaded, agent about to start). */
  initLineS?: number;
  /** bootVm returned: the agent answered guest-sync. */
  agentS: number;
  /** The uname guest-exec alone. */
  execMs: number;
  /** Four more uname runs through GuestExec, and through a 1 ms status poll (raw QGA). */
  execMoreMs: number[];
  rawMs: number[];
}

/**
 * Wait for the agent the way bootVm does, but resend guest-sync every `retryMs` on one
 * connection (a copy of the idea of qga.ts `open`, with a short retry): the agent's real
 * readiness, within retryMs. Then the lab's Qga.open hands over (one round trip).
 */
async function awaitAgentFast(sock: string, retryMs: number, deadlineMs = 90_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve, reject) => {
      const s = connect(sock);
      const tokens = new Set<number>();
      let buf = '';
      let timer: NodeJS.Timeout | undefined;
      const end = (v: boolean) => (clearInterval(timer), s.destroy(), resolve(v));
      s.once('error', () => end(false));
      s.on('data', (d: Buffer) => {
        buf += Buffer.from(d.filter((b) => b !== 0xff)).toString('utf8');
        for (const line of buf.split('\n').slice(0, -1)) {
          try {
            if (tokens.has(JSON.parse(line).return)) return end(true);
          } catch {
            /* partial */
          }
        }
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
      });
      s.once('connect', () => {
        s.write(Buffer.from([0xff]));
        const send = () => {
          if (performance.now() - t0 > deadlineMs) return (clearInterval(timer), s.destroy(), reject(new Error('agent never answered')));
          const t = Math.floor(Math.random() * 2 ** 31);
          tokens.add(t);
          s.write(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id: t } }) + '\n');
        };
        send();
        timer = setInterval(send, retryMs);
      });
    });
    if (ok) return;
    await sleep(retryMs);
  }
}

/** One uname through raw QGA with a 1 ms status poll: the agent's own cost without GuestExec's backoff. */
async function rawUname(qga: Qga): Promise<number> {
  const t0 = performance.now();
  const { pid } = (await qga.send('guest-exec', { path: 'uname', arg: ['-r'], 'capture-output': true })) as { pid: number };
  for (;;) {
    const s = (await qga.send('guest-exec-status', { pid })) as { exited: boolean };
    if (s.exited) return performance.now() - t0;
    await sleep(1);
  }
}

async function labOnce(k: CachedKernel, initramfs: string, opts: { fastRetryMs?: number; extraExecs?: boolean } = {}): Promise<LabRun> {
  const dir = newDir();
  liveVmDirs.add(dir);
  const spec = specOf(k, initramfs, dir);
  const t0 = performance.now();
  const wInit = watchFile(join(dir, 'console.log'), 'dpl-init:', t0);
  const wPid = watchFile(join(dir, 'qemu.pid'), '', t0);
  try {
    let qga: Qga;
    if (opts.fastRetryMs) {
      // bootVm's first step (spawn QEMU daemonized), then a short-retry wait, then the lab's Qga.
      await runArgv(qemuArgv(spec), { timeoutMs: 60_000 });
      await awaitAgentFast(join(dir, 'qga.sock'), opts.fastRetryMs);
      qga = new Qga(join(dir, 'qga.sock'));
      await qga.open(5_000);
    } else {
      qga = (await bootVm(spec)).qga;
    }
    const agentS = (performance.now() - t0) / 1000;
    const g = new GuestExec(qga, 'bench');
    const r = await g.run(['uname', '-r']);
    const s = (performance.now() - t0) / 1000;
    if (r.stdout.trim() !== k.release) throw new Error(`uname -r in the guest said ${JSON.stringify(r.stdout)}`);
    const execMoreMs: number[] = [];
    const rawMs: number[] = [];
    if (opts.extraExecs) {
      for (let i = 0; i < 4; i++) execMoreMs.push((await g.run(['uname', '-r'])).ms);
      for (let i = 0; i < 4; i++) rawMs.push(await rawUname(qga));
    }
    g.close();
    return { s, agentS, daemonS: wPid.at(), initLineS: wInit.at(), execMs: r.ms, execMoreMs, rawMs };
  } finally {
    wInit.stop();
    wPid.stop();
    if (!(await stopVm(dir))) throw new Error(`stopVm ${dir} did not stop QEMU`);
    liveVmDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
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

async function upOnce(file: string, quiet = true): Promise<Run> {
  const env = { ...process.env, DPL_ACCEL: ACCEL };
  const up = await run(['node', CLI, 'up', file, ...(quiet ? ['-q'] : [])], env);
  const down = await run(['node', CLI, 'down', LAB, '-q'], env);
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
    process.stderr.write('usage: node dist/bench/boot.js [--repeat 5] [--kernel 6.12] [--up-repeat 3] [--no-profile]\n');
    process.exit(2);
  }
  return { repeat, upRepeat, kernel, profile: !a.includes('--no-profile') };
}

interface Row {
  what: string;
  xs: number[];
  /** x / floor of the same round. */
  pairs?: number[];
}

async function main() {
  const { repeat, upRepeat, kernel, profile } = args();
  if (process.getuid?.() !== 0) throw new Error('run as root: the lab brings VMs up');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing (npx tsc -p tsconfig.json)`);
  const k = cachedKernel(kernel);
  if (!k) throw new Error(`kernel ${kernel} is not cached (node dist/src/cli/main.js kernels fetch ${kernel})`);
  TMP = mkdtempSync(join(tmpdir(), 'dpl-bench-boot-'));
  await assertClean('nothing (before the benchmark)');
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => void cleanupAll().finally(() => process.exit(130)));

  log(`accelerator ${ACCEL.toUpperCase()}, kernel ${k.release}; building images in ${TMP}`);
  const img = await images(k, profile);
  const size = (p: string) => `${(statSync(p).size / 2 ** 20).toFixed(1)} MiB`;
  log(`lab initramfs ${img.lab} (${size(img.lab)}); floor ${size(img.floor)}`);

  const rows: Row[] = [];
  const prof: Row[] = [];
  const cols: Record<string, number[]> = {};
  const push = (m: Record<string, number[]>, key: string, v: number | undefined) => v !== undefined && (m[key] ??= []).push(v);

  // Round-robin: every round runs each variant once, so that a disturbance (another session's
  // VM sharing the cores) hits all of them alike; ratios are also taken per round (paired).
  const floor: FloorRun[] = [];
  const lab: LabRun[] = [];
  type Step = { what: string; profile: boolean; fn: () => Promise<number> };
  const steps: Step[] = [
    { what: 'floor: bare qemu, 1 command, poweroff', profile: false, fn: async () => (floor.push(await floorOnce(k, img.floor)), floor.at(-1)!.s) },
    { what: 'lab node: bootVm + GuestExec uname -r', profile: false, fn: async () => (lab.push(await labOnce(k, img.lab, { extraExecs: true })), lab.at(-1)!.s) },
  ];
  if (profile)
    steps.push(
      { what: 'floor, busybox-only initramfs', profile: true, fn: async () => (await floorOnce(k, img.floorBusybox)).s },
      { what: 'floor, uncompressed cpio', profile: true, fn: async () => (await floorOnce(k, img.floorUncompressed)).s },
      { what: 'floor + lab /init pre-agent (mounts, modprobe loop)', profile: true, fn: async () => (await floorOnce(k, img.floorLabInit)).s },
      { what: 'floor + lab /init, one modprobe -a', profile: true, fn: async () => (await floorOnce(k, img.floorModprobeA)).s },
      { what: 'floor + lab /init, modprobe -a, .ko not .ko.xz', profile: true, fn: async () => (await floorOnce(k, img.floorModprobeAUnxz)).s },
      { what: 'lab node, guest-sync retry 50 ms (not 1 s)', profile: true, fn: async () => (await labOnce(k, img.lab, { fastRetryMs: 50 })).s },
      { what: 'lab node, /init with one modprobe -a', profile: true, fn: async () => (await labOnce(k, img.labModprobeA)).s },
    );
  const xs = steps.map(() => [] as number[]);
  const pairs = steps.map(() => [] as number[]);
  let calmRounds = 0;
  for (let r = 0; r < repeat; r++) {
    const before = disturbed;
    const got: number[] = [];
    for (const st of steps) {
      got.push(await st.fn());
      await assertClean(`${st.what} run ${r + 1}`);
    }
    if (disturbed === before) calmRounds++;
    got.forEach((x, i) => (xs[i].push(x), pairs[i].push(x / got[0])));
    const l = lab.at(-1)!;
    log(`round ${r + 1}/${repeat}${disturbed === before ? '' : ' (another QEMU was running)'}: ${got.map(f).join(' ')}  | lab node: daemonized ${f(l.daemonS ?? NaN)}, dpl-init line ${f(l.initLineS ?? NaN)}, agent ${f(l.agentS)}, uname ${l.execMs.toFixed(0)} ms`);
  }
  steps.forEach((st, i) => (st.profile ? prof : rows).push({ what: st.what, xs: xs[i], pairs: pairs[i] }));
  for (const l of lab) {
    push(cols, 'daemon', l.daemonS);
    push(cols, 'initline', l.initLineS);
    push(cols, 'agent', l.agentS);
    push(cols, 'exec', l.execMs);
    for (const x of l.execMoreMs) push(cols, 'execMore', x);
    for (const x of l.rawMs) push(cols, 'raw', x);
  }

  const file = join(TMP, `${LAB}.yaml`);
  writeFileSync(file, topology(kernel));
  const up: number[] = [];
  const upPairs: number[] = [];
  const par: number[] = [];
  const parPairs: number[] = [];
  for (let r = 0; r < upRepeat; r++) {
    const fl = (await floorOnce(k, img.floor)).s;
    await assertClean(`floor (up round) run ${r + 1}`);
    up.push((await upOnce(file)).s);
    await assertClean(`lab up/down run ${r + 1}`);
    // Context for the two-VM row: two floors at once on this machine's cores.
    const t0 = performance.now();
    await Promise.all([floorOnce(k, img.floor), floorOnce(k, img.floor)]);
    par.push((performance.now() - t0) / 1000);
    await assertClean(`parallel floor run ${r + 1}`);
    upPairs.push(up.at(-1)! / fl);
    parPairs.push(par.at(-1)! / fl);
    log(`up round ${r + 1}/${upRepeat}: floor ${f(fl)}  lab up x2 ${f(up.at(-1)!)}  floor x2 parallel ${f(par.at(-1)!)}`);
  }
  rows.push({ what: 'lab up, two VMs (CLI wall clock, -q)', xs: up, pairs: upPairs });
  rows.push({ what: 'floor x2 in parallel (context for lab up)', xs: par, pairs: parPairs });
  const cli: number[] = [];
  for (let r = 0; r < 3; r++) cli.push(must(await run(['node', CLI, '--help']), 'lab --help').s);
  rows.push({ what: 'lab CLI fixed cost (main.js --help)', xs: cli });

  let upStamped: string[] = [];
  let dmesg = '';
  if (profile) {
    // The guest's own clock for the floor's phases (untimed run: dmesg costs console time).
    {
      const root = join(TMP, 'root-dmesg');
      mkdirSync(root);
      await runArgv(['sh', '-c', 'cd "$1" && zcat "$2" | cpio -idm --quiet', 'sh', root, img.lab]);
      writeFileSync(join(root, 'init'), FLOOR_HEAD + 'dmesg > /dev/console\ncat /proc/uptime > /dev/console\n' + FLOOR_TAIL, { mode: 0o755 });
      const im = await pack(root, join(TMP, 'floor-dmesg.cpio.gz'));
      rmSync(root, { recursive: true, force: true });
      const d2 = newDir();
      const argv = qemuArgv(specOf(k, im, d2));
      argv.splice(argv.indexOf('-daemonize'), 3);
      await runArgv(argv, { timeoutMs: 90_000, nothrow: true });
      const out = readFileSync(join(d2, 'console.log'), 'utf8');
      dmesg = out
        .split('\n')
        .filter((l) => /Unpacking initramfs|Freeing initrd|Run \/init|Freeing unused kernel|clocksource: Switched|virtio|^\d+\.\d+ \d+\.\d+|dpl-floor/.test(l))
        .slice(0, 20)
        .join('\n');
      rmSync(d2, { recursive: true, force: true });
      rmSync(im, { force: true });
      await assertClean('dmesg run');
    }
    upStamped = (await upOnce(file, false)).stamped;
    await assertClean('timestamped lab up');
  }

  const base = median(floor.map((x) => x.s));
  const table = (title: string, rs: Row[]) => {
    const head = ['what', 'median s', 'min', 'max', 'n', 'ratio to floor', 'paired ratio'];
    const body = rs.map((r) => [
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
    process.stdout.write(`\n${title}\n${line(head)}\n${line(w.map((x) => '-'.repeat(x)))}\n${body.map(line).join('\n')}\n`);
  };
  table(`boot benchmark, ${ACCEL.toUpperCase()}, kernel ${k.release}: seconds; floor = ${f(base)} s; aim: lab node within 1.30x of the floor`, rows);
  const m = (key: string) => (cols[key]?.length ? median(cols[key]) : NaN);
  process.stdout.write(
    `\nlab node phases (median, s since bootVm was called): QEMU daemonized ${f(m('daemon'))}; /init's dpl-init line (modules loaded) ${f(m('initline'))}; ` +
      `agent answered (bootVm returned) ${f(m('agent'))}; + uname ${m('exec').toFixed(0)} ms\n` +
      `floor: command's line on the console at ${f(median(floor.map((x) => x.lineS)))} s, QEMU exited at ${f(base)} s\n` +
      `GuestExec uname -r (warm): median ${m('execMore').toFixed(1)} ms; raw guest-exec + 1 ms status poll: ${m('raw').toFixed(1)} ms\n` +
      `initramfs: lab ${size(img.lab)} gzip; floor ${size(img.floor)}${profile ? `; busybox-only ${size(img.floorBusybox)}; uncompressed ${size(img.floorUncompressed)}` : ''}\n`,
  );
  process.stdout.write(`'paired ratio' = median over rounds of (x / the floor run of the same round); ${calmRounds} of ${repeat} single-VM rounds had no other QEMU running\n`);
  if (disturbed) process.stdout.write(`note: another QEMU (not this benchmark's) was running at ${disturbed} of ${samples} checkpoints: those timings shared the cores with it\n`);
  if (profile) {
    table('profile variants (same ratio base: the floor above)', prof);
    process.stdout.write(`\nfloor guest's dmesg (its own clock, s since kernel start):\n${dmesg}\n`);
    process.stdout.write(`\ntimestamped lab up (two VMs, progress lines):\n${upStamped.join('\n')}\n`);
  }
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
