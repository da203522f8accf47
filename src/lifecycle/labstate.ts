import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Decision } from '../datapath/feature.js';
import type { Lab } from '../topology/model.js';
import { labDir } from './journal.js';

export type LabPhase = 'provisioning' | 'up' | 'checking' | 'tearing-down' | 'failed';

/** What `lab status` and `lab check` in a later process need to know about a running lab. */
export interface LabState {
  name: string;
  file: string;
  backend: string;
  /** pid of the process that brought it up. */
  pid: number;
  createdAt: string;
  phase: LabPhase;
  lab: Lab;
  decisions: Decision[];
  bpfDir: string;
  objDir: string;
  /** Links `lab link ... down` took down (by name, node:node or node:peer). */
  linksDown?: string[];
  /** Nodes `lab node ... kill` killed and no restart brought back. */
  nodesKilled?: string[];
}

const stateFile = (lab: string) => join(labDir(lab), 'lab.json');

export function writeLabState(s: LabState): void {
  writeFileSync(stateFile(s.name), JSON.stringify(s, null, 2));
}

export function readLabState(lab: string): LabState | undefined {
  const f = stateFile(lab);
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function setPhase(lab: string, phase: LabPhase): void {
  const s = readLabState(lab);
  try {
    if (s) writeLabState({ ...s, phase });
  } catch (e) {
    // A teardown beside this process (another `lab down`) removed the lab's dir meanwhile.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
