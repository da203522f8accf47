import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Exec } from '../exec/exec.js';
import { processStartTime } from '../exec/process.js';
import type { JournalEntry } from '../lifecycle/journal.js';
import { sleep } from '../sleep.js';
import type { DestroyResult } from './backend.js';

/** SIGTERM, then SIGKILL after a second; only the process we started (a reused pid has another start time). */
export async function stopProcess(pid: number, startTime: string): Promise<boolean> {
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
 * Remove a cgroup v2 directory the lab created: its processes (the lab's own, by
 * construction) are killed through cgroup.kill (5.14+) and waited for, then rmdir; the
 * shared parent goes when the last lab leaves it. undefined when gone, else why not.
 */
export async function removeCgroup(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  const procs = () => readFileSync(join(path, 'cgroup.procs'), 'utf8').trim();
  try {
    if (procs() && existsSync(join(path, 'cgroup.kill'))) writeFileSync(join(path, 'cgroup.kill'), '1');
    for (let i = 0; i < 40 && procs(); i++) await sleep(25);
    rmdirSync(path);
  } catch (err) {
    return String(err);
  }
  const parent = dirname(path);
  try {
    // Interface files are all a cgroup without children lists; another lab may be creating one meanwhile.
    if (basename(parent) === CGROUP_ROOT_NAME && readdirSync(parent).every((f) => !statSync(join(parent, f)).isDirectory()))
      rmdirSync(parent);
  } catch {
    /* still in use */
  }
  return undefined;
}

/** The directory under the cgroup v2 mount that holds every lab's cgroups. */
export const CGROUP_ROOT_NAME = 'dpl';

/**
 * Remove objects on this machine, in the order given (reverse creation order), and
 * nothing else: processes, namespaces (a run of them in one `ip -batch`), bpffs pins,
 * directories, and device sizes put back. Shared by the backends whose objects live here.
 */
export async function destroyHostObjects(entries: JournalEntry[], host: Exec, progress: (m: string) => void): Promise<DestroyResult> {
  const gone: number[] = [];
  const left: string[] = [];
  for (let i = 0; i < entries.length; ) {
    const e = entries[i];
    const o = e.obj;
    if (o.kind === 'netns') {
      let j = i;
      while (j < entries.length && entries[j].obj.kind === 'netns') j++;
      const run = entries.slice(i, j) as (JournalEntry & { obj: { kind: 'netns'; name: string } })[];
      const present = run.filter((x) => existsSync(`/run/netns/${x.obj.name}`));
      if (present.length) {
        progress(`deleting ${present.length} namespaces`);
        await host.run(['ip', '-force', '-batch', '-'], {
          input: present.map((x) => `netns del ${x.obj.name}`).join('\n') + '\n',
          nothrow: true,
        });
      }
      for (const x of run) existsSync(`/run/netns/${x.obj.name}`) ? left.push(`netns ${x.obj.name}`) : gone.push(x.seq);
      i = j;
      continue;
    }
    if (o.kind === 'process')
      (await stopProcess(o.pid, o.startTime)) ? gone.push(e.seq) : left.push(`process ${o.pid} (${o.argv.join(' ')})`);
    else if (o.kind === 'link-sizes') {
      const argv = [
        'ip',
        ...(o.netns ? ['-n', o.netns] : []),
        'link',
        'set',
        'dev',
        o.dev,
        ...Object.entries(o.values).flatMap(([k, n]) => [k, String(n)]),
      ];
      const r = await host.run(argv, { nothrow: true });
      r.code === 0 ? gone.push(e.seq) : left.push(`sizes of ${o.dev}: ${r.stderr.trim()}`);
    } else if (o.kind === 'pin' || o.kind === 'dir') {
      try {
        rmSync(o.path, { recursive: true, force: true });
        gone.push(e.seq);
        // The shared parent (/sys/fs/bpf/dpl) goes when the last lab leaves it.
        const parent = dirname(o.path);
        if (o.kind === 'pin' && existsSync(parent) && readdirSync(parent).length === 0) rmdirSync(parent);
      } catch (err) {
        left.push(`${o.path}: ${String(err)}`);
      }
    } else if (o.kind === 'qdisc') {
      // In a guest, or a namespace already deleted: it went with its namespace.
      if (existsSync(`/run/netns/${o.netns}`))
        await host.run(['tc', '-n', o.netns, 'qdisc', 'del', 'dev', o.dev, 'handle', o.handle], { nothrow: true });
      gone.push(e.seq);
    } else if (o.kind === 'cgroup') {
      const why = await removeCgroup(o.path);
      why ? left.push(`cgroup ${o.path}: ${why}`) : gone.push(e.seq);
    } else left.push(`${o.kind}: not an object of this machine's (${JSON.stringify(o)})`);
    i++;
  }
  return { gone, left };
}
