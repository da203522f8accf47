import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Exec } from '../exec/exec.js';
import { processStartTime } from '../exec/process.js';
import { stopVm } from '../backends/qemu/vm.js';
import { Journal, type JournalEntry } from './journal.js';

export interface TeardownResult {
  removed: number;
  /** Objects that could not be removed, with why; the journal keeps them for the next `lab down`. */
  left: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopProcess(pid: number, startTime: string): Promise<boolean> {
  // Only the process we started: a reused pid has a different start time.
  if (processStartTime(pid) !== startTime) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  for (let i = 0; i < 20; i++) {
    await sleep(50);
    if (processStartTime(pid) !== startTime) return true;
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  await sleep(50);
  return processStartTime(pid) !== startTime;
}

/**
 * Replay a lab's journal in reverse and remove what it names, and nothing else.
 * Safe to run again after a partial failure or a `kill -9` at any point.
 */
export async function teardownLab(lab: string, host: Exec, progress: (m: string) => void = () => {}): Promise<TeardownResult> {
  const journal = Journal.open(lab);
  if (!journal) return { removed: 0, left: [] };
  const live = journal.live().reverse();
  const left: string[] = [];
  const gone: number[] = [];
  const of = <K extends JournalEntry['obj']['kind']>(k: K) => live.filter((e): e is JournalEntry & { obj: Extract<JournalEntry['obj'], { kind: K }> } => e.obj.kind === k);

  for (const e of of('process')) (await stopProcess(e.obj.pid, e.obj.startTime)) ? gone.push(e.seq) : left.push(`process ${e.obj.pid}`);

  const vms = of('vm');
  if (vms.length) progress(`stopping ${vms.length} VM(s)`);
  for (const e of vms) (await stopVm(e.obj.dir)) ? gone.push(e.seq) : left.push(`VM ${e.obj.name} (${e.obj.dir})`);

  for (const e of of('link-sizes')) {
    const v = e.obj.values;
    const argv = ['ip', ...(e.obj.netns ? ['-n', e.obj.netns] : []), 'link', 'set', 'dev', e.obj.dev, ...Object.entries(v).flatMap(([k, n]) => [k, String(n)])];
    const r = await host.run(argv, { nothrow: true });
    r.code === 0 ? gone.push(e.seq) : left.push(`sizes of ${e.obj.dev}: ${r.stderr.trim()}`);
  }

  const netns = of('netns');
  const present = netns.filter((e) => existsSync(`/run/netns/${e.obj.name}`));
  if (present.length) {
    progress(`deleting ${present.length} namespaces`);
    await host.run(['ip', '-force', '-batch', '-'], { input: present.map((e) => `netns del ${e.obj.name}`).join('\n') + '\n', nothrow: true });
  }
  for (const e of netns) existsSync(`/run/netns/${e.obj.name}`) ? left.push(`netns ${e.obj.name}`) : gone.push(e.seq);

  for (const e of [...of('pin'), ...of('dir')]) {
    try {
      rmSync(e.obj.path, { recursive: true, force: true });
      gone.push(e.seq);
      // The shared parent (/sys/fs/bpf/dpl) goes when the last lab leaves it.
      const parent = dirname(e.obj.path);
      if (e.obj.kind === 'pin' && existsSync(parent) && readdirSync(parent).length === 0) rmdirSync(parent);
    } catch (err) {
      left.push(`${e.obj.path}: ${String(err)}`);
    }
  }

  journal.gone(gone);
  if (left.length === 0) journal.close();
  return { removed: gone.length, left };
}
