import { linkSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { processStartTime } from '../exec/process.js';
import { sleep } from '../sleep.js';

/** A lock holder: this process's pid and start time (a reused pid is not the holder), and a token for this one lock. */
const holderOf = () => `${process.pid} ${processStartTime(process.pid)} ${Math.random().toString(36).slice(2)}`;

/** True when the holder written in a lock file is gone. */
const dead = (holder: string) => {
  const [pid, start] = holder.split(' ');
  return processStartTime(Number(pid)) !== start;
};

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** True when link(2) made `to` (it fails with EEXIST when `to` exists: the atomic step of this lock). */
function linked(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
}

/**
 * Replace `path`, whose holder `gone` is dead, by `mine`: true when this process did. Of the
 * processes that found the same dead holder, only the one whose link(2) made the marker
 * `<path>.<gone>` replaces it (rename(2) over it), so two takers never both hold; a taker
 * that died holding a marker is itself taken over the same way.
 */
function takeOver(path: string, gone: string, mine: string): boolean {
  const marker = `${path}.${gone.split(' ').slice(0, 2).join('-')}`;
  if (!linked(mine, marker)) {
    const m = read(marker);
    if (m === undefined || !dead(m) || !takeOver(marker, m, mine)) return false;
  }
  // A taker before this one may have replaced the dead holder already (and released since).
  if (read(path) !== gone) {
    if (read(marker) === read(mine)) rmSync(marker, { force: true });
    return false;
  }
  const tmp = `${mine}.put`;
  linkSync(mine, tmp);
  renameSync(tmp, path);
  return true;
}

/**
 * An exclusive lock file that dies with its holder: the holder's pid and start time are
 * written in full before the lock exists (a temporary file, then link(2)), and a lock
 * whose holder is dead (a `kill -9`) is taken over by exactly one waiter (takeOver).
 * Resolves with the release.
 */
export async function fileLock(file: string): Promise<() => void> {
  const me = holderOf();
  const mine = join(dirname(file), `.${basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(mine, me);
  try {
    for (;;) {
      if (linked(mine, file)) break;
      const holder = read(file);
      if (holder === undefined) continue; // released meanwhile
      if (dead(holder) && takeOver(file, holder, mine)) break;
      await sleep(50);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  return () => {
    if (read(file) === me) rmSync(file, { force: true });
    // The markers of dead holders this lock replaced: no one can take a live holder's lock over.
    for (const f of readdirSync(dirname(file)))
      if (f.startsWith(`${basename(file)}.`) && /\.\d+-\d*$/.test(f)) rmSync(join(dirname(file), f), { force: true });
  };
}
