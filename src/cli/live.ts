import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import type { LabContext } from '../lifecycle/context.js';
import { knownLabs, labDir } from '../lifecycle/journal.js';
import { readLabState, writeLabState, type LabState } from '../lifecycle/labstate.js';
import { progressLogger } from './output.js';

/** The lab's state, if it is up; else a usage error naming the labs there are. */
export function upState(name: string): LabState {
  const s = readLabState(name);
  if (!s) throw new LabError('E_LAB_UNKNOWN', `no lab named '${name}' is up`, `labs here: ${knownLabs().join(', ') || 'none'}`);
  if (s.phase !== 'up') throw new LabError('E_LAB_UNKNOWN', `lab '${name}' is ${s.phase}, not up`);
  return s;
}

/** Whether a pid is a live process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One live change of a lab at a time (`lab svc`, `lab bw set`, `lab impair`, ...): two at once
 * would each write a state missing the other's change. A lock left by a process that died is
 * taken over. `me` is this process (tests give another pid and liveness).
 */
export function changeLock(file: string, name: string, verb = 'lab svc', me = { pid: process.pid, alive }): () => void {
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(file, String(me.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries) throw e;
      const holder = Number(readFileSync(file, 'utf8'));
      if (me.alive(holder))
        throw new LabError('E_USAGE', `${verb} in pid ${holder} is changing lab ${name}`, 'run it again once that ends');
      rmSync(file, { force: true });
    }
  }
}

/** The lab's change lock: changeLock on its state directory's svc.lock (the name `lab svc` gave it first). */
const lock = (name: string, verb: string) => changeLock(join(labDir(name), 'svc.lock'), name, verb);

/** A change of a running lab, in the steps every live verb shares. */
export interface LiveChange<P, T> {
  /** Validate the change against the lab's state and plan it; throws a LabError on bad input. Pure. */
  plan: (state: LabState) => P;
  /** Make the planned change in the running lab. */
  apply: (ctx: LabContext, plan: P, state: LabState) => Promise<T>;
  /** The lab state with the change recorded, from the state as it is after `apply`; absent: lab.json unchanged. */
  record?: (now: LabState, plan: P, result: T) => LabState;
}

/**
 * Change a running lab: the change is planned against its state first, so bad input is refused
 * with nothing touched and no lock taken; then, under the lab's change lock, planned again
 * against the state as it is now (another change may have ended in between), applied through a
 * context attached to the lab, and recorded in lab.json before the lock is let go.
 */
export async function changeRunningLab<P, T>(
  name: string,
  verb: string,
  quiet: boolean | undefined,
  change: LiveChange<P, T>,
): Promise<{ plan: P; result: T }> {
  change.plan(upState(name));
  const unlock = lock(name, verb);
  try {
    const state = upState(name);
    const plan = change.plan(state);
    const { attach } = await import('../lifecycle/steps.js');
    const { ctx } = await attach(name, new AbortController().signal, progressLogger(quiet));
    let result: T;
    try {
      result = await change.apply(ctx, plan, state);
    } finally {
      ctx.backend.close?.();
    }
    if (change.record) writeLabState(change.record(readLabState(name) ?? state, plan, result));
    return { plan, result };
  } finally {
    unlock();
  }
}
