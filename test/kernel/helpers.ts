import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runArgv } from '../../src/exec/exec.js';
import { labOfProcess } from '../../src/exec/process.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI (./lab builds dist before selftest). */
export function cli(
  args: string[],
  opts: { onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, child);
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A topology file in a temp dir. */
export function topo(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dpl-test-'));
  const f = join(dir, 'lab.yaml');
  writeFileSync(f, text);
  return f;
}

/** Everything a lab could leave on this machine; empty when it left nothing. */
export async function residue(lab: string): Promise<string[]> {
  const out: string[] = [];
  const ns = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`dpl-${lab}.`)) : [];
  out.push(...ns.map((n) => `netns ${n}`));
  if (existsSync(`/sys/fs/bpf/dpl/${lab}`)) out.push(`pin dir /sys/fs/bpf/dpl/${lab}`);
  if (existsSync(`/run/datapath-lab/${lab}`)) out.push(`state dir /run/datapath-lab/${lab}`);
  // Live iperf3 processes of this lab (tagged DPL_LAB=<lab>; other labs may run beside it).
  // Zombies are dead already: a killed lab's children are reparented to an init that
  // reaps them when it does (this sandbox's, lazily).
  const procs = await runArgv(['pgrep', '-a', 'iperf3'], { nothrow: true });
  const mine = procs.stdout.split('\n').filter((l) => l && !l.includes('<defunct>') && labOfProcess(Number(l.split(' ')[0])) === lab);
  out.push(...mine.map((l) => `process ${l}`));
  return out;
}

export const quickstart = (name: string, extra = '') => `name: ${name}
families: [ipv4, ipv6]
nodes:
  - name: node1
    pods:
      - name: client
      - name: server
    uplink:
      peer: remote
      rate: 200mbit
${extra}`;

/** Live processes named `name` that carry this lab's tag. */
export async function labProcesses(lab: string, name = 'iperf3'): Promise<string[]> {
  const procs = await runArgv(['pgrep', '-a', name], { nothrow: true });
  return procs.stdout.split('\n').filter((l) => l && !l.includes('<defunct>') && labOfProcess(Number(l.split(' ')[0])) === lab);
}

/** Poll `cond` every 50 ms until it holds; false when `timeoutMs` passed first. No fixed sleeps in tests. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Once the lab's iperf3 client runs (a flow is under way), act on the child. */
export function whenFlowRuns(lab: string, act: () => void): () => void {
  let started = false;
  return () => {
    if (started) return;
    started = true;
    void until(async () => (await labProcesses(lab)).some((l) => / -c /.test(l))).then(act);
  };
}
