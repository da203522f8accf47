import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostSnapshot } from '../backends/vagrant/host-state.js';
import type { RemoteItem, RemoteTarget } from './remote.js';

/** Every kind of object the lab creates, as recorded in the journal before it is created. */
export type JournalObject =
  | { kind: 'netns'; name: string }
  | { kind: 'pin'; path: string }
  | { kind: 'process'; pid: number; startTime: string; argv: string[] }
  | { kind: 'dir'; path: string }
  /** A cgroup v2 directory (rmdir, after its processes are gone). */
  | { kind: 'cgroup'; path: string }
  /** A QEMU VM: its directory holds the pidfile, agent socket and console log. */
  | { kind: 'vm'; name: string; dir: string }
  /** Original sizes of a device the lab did not create, put back on teardown. */
  | { kind: 'link-sizes'; netns?: string; dev: string; values: Record<string, number> }
  /** A qdisc the lab put on a device in one of its namespaces (it goes with the namespace, or is deleted first). */
  | { kind: 'qdisc'; netns: string; dev: string; handle: string; qdisc: string }
  /** An object or changed setting on an ssh target (src/lifecycle/remote.ts). */
  | { kind: 'remote'; target: RemoteTarget; item: RemoteItem }
  /** A Vagrant project (backend vagrant): its machines, and the libvirt/firewall state before `vagrant up`, put back after destroy. */
  | { kind: 'vagrant'; dir: string; home: string; provider: string; machines: string[]; before: HostSnapshot };

export type JournalKind = JournalObject['kind'];

/** Who created an object and removes it at teardown: a backend, and the node it lives on. */
export interface Owner {
  /** Backend kind (src/backends/registry.ts) whose destroy() removes the object. */
  backend: string;
  /** Node the object belongs to; absent for lab-wide objects. */
  node?: string;
}

/**
 * Processes and files on this machine, whatever the lab's backend (a flow's iperf3
 * started through a namespace here): the local backend removes them.
 */
export const HOST_OWNER: Owner = { backend: 'local' };

export interface JournalEntry {
  seq: number;
  obj: JournalObject;
  owner: Owner;
}

type Line = { seq: number; op: 'create'; obj: JournalObject; owner: Owner } | { seq: number; op: 'gone' };

/** Where labs keep their journals and metadata; tmpfs, like the namespaces it describes. */
export function stateRoot(): string {
  return process.env.DPL_STATE_DIR ?? '/run/datapath-lab';
}

export function labDir(lab: string): string {
  return join(stateRoot(), lab);
}

/** Names of labs that have a journal on this machine. */
export function knownLabs(): string[] {
  if (!existsSync(stateRoot())) return [];
  return readdirSync(stateRoot())
    .filter((d) => existsSync(join(stateRoot(), d, 'journal.jsonl')))
    .sort();
}

/**
 * A write-ahead journal of one lab's objects: a JSON line is appended before each
 * object is created, and a 'gone' line after it is removed. Appends reach the page
 * cache synchronously, so a `kill -9` of the lab loses nothing; a machine crash
 * loses the namespaces and bpffs pins along with the journal (both live in RAM).
 */
export class Journal {
  private seq = 0;
  readonly file: string;

  private constructor(readonly lab: string) {
    this.file = join(labDir(lab), 'journal.jsonl');
  }

  /** Start a new journal; fails if the lab already has one. */
  static create(lab: string): Journal {
    const j = new Journal(lab);
    mkdirSync(labDir(lab), { recursive: true });
    writeFileSync(j.file, '', { flag: 'wx' });
    return j;
  }

  /** Open an existing journal, or undefined when the lab has none. */
  static open(lab: string): Journal | undefined {
    const j = new Journal(lab);
    if (!existsSync(j.file)) return undefined;
    j.seq = Math.max(0, ...j.lines().map((l) => l.seq));
    return j;
  }

  private lines(): Line[] {
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Line];
        } catch {
          return []; // a line torn by a crash mid-write names nothing that was created
        }
      });
  }

  /** Record objects about to be created, with their owner; returns their entries. */
  record(owner: Owner, objs: JournalObject[]): JournalEntry[] {
    const entries = objs.map((obj) => ({ seq: ++this.seq, obj, owner }));
    if (entries.length) appendFileSync(this.file, entries.map((e) => JSON.stringify({ ...e, op: 'create' }) + '\n').join(''));
    return entries;
  }

  /** Mark entries as removed (or never created). */
  gone(seqs: number[]): void {
    // Another `lab down` of the same lab may have finished first and removed the journal.
    if (seqs.length && existsSync(this.file))
      appendFileSync(this.file, seqs.map((seq) => JSON.stringify({ seq, op: 'gone' }) + '\n').join(''));
  }

  /** Objects recorded and not yet gone, in creation order. */
  live(): JournalEntry[] {
    const live = new Map<number, JournalEntry>();
    for (const l of this.lines()) {
      if (l.op === 'create') live.set(l.seq, { seq: l.seq, obj: l.obj, owner: l.owner });
      else live.delete(l.seq);
    }
    return [...live.values()];
  }

  /**
   * Remove the journal and the lab's state directory (after everything is gone). The
   * journal goes last: a `kill -9` halfway leaves a lab `lab down` still knows, and closes.
   */
  close(): void {
    const dir = labDir(this.lab);
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) if (join(dir, f) !== this.file) rmSync(join(dir, f), { recursive: true, force: true });
    rmSync(this.file, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
