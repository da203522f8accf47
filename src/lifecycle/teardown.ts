import { join } from 'node:path';
import { createBackend } from '../backends/registry.js';
import type { Backend } from '../backends/backend.js';
import { fileLock } from './lock.js';
import { Journal, type JournalEntry, stateRoot } from './journal.js';

export interface TeardownResult {
  removed: number;
  /** Objects that could not be removed, with why; the journal keeps them for the next `lab down`. */
  left: string[];
}

/** Consecutive entries with the same owning backend, in the order given. */
export function ownerRuns(entries: JournalEntry[]): JournalEntry[][] {
  const runs: JournalEntry[][] = [];
  for (const e of entries) {
    const last = runs.at(-1);
    if (last && last[0].owner.backend === e.owner.backend) last.push(e);
    else runs.push([e]);
  }
  return runs;
}

/**
 * Replay a lab's journal strictly in reverse and hand each entry to the backend that
 * created it; remove nothing else. Safe to run again after a partial failure or a
 * `kill -9` at any point: what is gone is marked gone as it goes.
 */
export async function teardownLab(
  lab: string,
  progress: (m: string) => void = () => {},
  backends: (kind: string) => Backend = createBackend,
): Promise<TeardownResult> {
  if (!Journal.open(lab)) return { removed: 0, left: [] };
  const unlock = await teardownLock(lab);
  try {
    // Another teardown may have finished while this one waited: then there is nothing left.
    const journal = Journal.open(lab);
    return journal ? await replay(journal, progress, backends) : { removed: 0, left: [] };
  } finally {
    unlock();
  }
}

/**
 * One teardown of a lab at a time (two `lab down` at once, or one beside the lab's own
 * teardown): two replaying one journal race on its 'gone' lines and on removing the state
 * dir (one's append recreates the journal the other just removed). The second waits.
 * The lock sits beside the lab's dir, not in it, since the teardown removes that dir; a
 * lock whose holder is dead (a `kill -9` mid-teardown) is taken over by one waiter (lock.ts).
 */
const teardownLock = (lab: string) => fileLock(join(stateRoot(), `.${lab}.teardown.lock`));

async function replay(journal: Journal, progress: (m: string) => void, backends: (kind: string) => Backend): Promise<TeardownResult> {
  const owners = new Map<string, Backend>();
  const left: string[] = [];
  let removed = 0;
  for (const run of ownerRuns(journal.live().reverse())) {
    const kind = run[0].owner.backend;
    if (!owners.has(kind)) owners.set(kind, backends(kind));
    const r = await owners.get(kind)!.destroy(run, progress);
    journal.gone(r.gone);
    removed += r.gone.length;
    left.push(...r.left);
  }
  if (left.length === 0) journal.close();
  return { removed, left };
}
