import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runArgv } from '../../src/exec/exec.js';
import { labOfProcess, processStartTime } from '../../src/exec/process.js';
import { CLI, residue, type CliResult } from './helpers.js';

/**
 * The reliability tests' harness: the CLI under its own state root (so `lab down --all`
 * and the labs list see these tests' labs only), a signal at a chosen moment, a seeded
 * generator, and the full residue of a lab on this machine.
 */

/** The built CLI with its state root `state`; `killAt` sends a signal that many ms after the start. */
export function labCli(
  state: string,
  args: string[],
  opts: { killAt?: { ms: number; signal: NodeJS.Signals }; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult & { ms: number; killed: boolean }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, DPL_STATE_DIR: state },
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let exited = false;
    const timer = opts.killAt
      ? setTimeout(() => {
          if (exited) return;
          killed = true;
          child.kill(opts.killAt!.signal);
        }, opts.killAt.ms)
      : undefined;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', () => (exited = true));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, killed });
    });
  });
}

/** mulberry32: a small seeded generator, so a failing trial replays from its printed seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Live processes tagged with the lab (DPL_LAB, src/exec/process.ts): every command it started, not only iperf3. */
export function taggedProcesses(lab: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (labOfProcess(pid) !== lab || processStartTime(pid) === '') continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    out.push(`process ${pid} ${cmd}`);
  }
  return out;
}

/** Cgroup v2 directories of the lab's nodes (src/datapath/kpr/kpr.ts: <cgroup2>/dpl/<lab>.<node>). */
function labCgroups(lab: string): string[] {
  const root = '/sys/fs/cgroup/dpl';
  return existsSync(root)
    ? readdirSync(root)
        .filter((d) => d.startsWith(`${lab}.`))
        .map((d) => `cgroup ${join(root, d)}`)
    : [];
}

/** The root namespace's links and qdiscs, as lines to compare before and after. */
export async function rootNetSnapshot(): Promise<{ links: Set<string>; qdiscs: Set<string> }> {
  const links = JSON.parse((await runArgv(['ip', '-j', 'link', 'show'])).stdout) as { ifname: string }[];
  const qdiscs = JSON.parse((await runArgv(['tc', '-j', 'qdisc', 'show'])).stdout) as { dev: string; kind: string; handle: string }[];
  return {
    links: new Set(links.map((l) => l.ifname)),
    qdiscs: new Set(qdiscs.map((q) => `${q.dev} ${q.kind} ${q.handle}`)),
  };
}

/**
 * Everything of `lab` left on this machine: namespaces, pin dir, iperf3 (helpers.ts
 * residue), its state dir under `state`, cgroups, any process it tagged, and links or
 * qdiscs in the root namespace that were not there at `baseline`: links named like one of
 * the lab's devices (`devs`), qdiscs on devices that were there (the lab creates nothing
 * in the root namespace; another test's new device is not counted).
 */
export async function fullResidue(
  lab: string,
  state: string,
  baseline: { links: Set<string>; qdiscs: Set<string> },
  devs: readonly string[],
): Promise<string[]> {
  const out = (await residue(lab)).filter((o) => !o.startsWith('process ') && !o.startsWith('state dir '));
  if (existsSync(join(state, lab))) out.push(`state dir ${join(state, lab)}`);
  out.push(...labCgroups(lab), ...taggedProcesses(lab));
  const now = await rootNetSnapshot();
  for (const l of now.links) if (!baseline.links.has(l) && devs.includes(l)) out.push(`root link ${l}`);
  for (const q of now.qdiscs) if (!baseline.qdiscs.has(q) && baseline.links.has(q.split(' ')[0])) out.push(`root qdisc ${q}`);
  return out;
}
