import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../../errors.js';
import { runArgv } from '../../exec/exec.js';
import { stateRoot } from '../../lifecycle/journal.js';
import type { RemoteTarget } from '../../lifecycle/remote.js';
import type { LabNode } from '../../topology/model.js';
import { exitMasterArgv, failureText, masterArgv, sshFailure } from './args.js';

/** Where a lab keeps its files on a target (tmpfs, like the state dir here). */
export const remoteLabDir = (lab: string) => `/run/datapath-lab/${lab}`;

/** ControlMaster sockets of every ssh lab on this machine (beside the labs' state dirs, like .events). */
export const controlDir = () => join(stateRoot(), '.ssh');

/** A node's target as the journal keeps it. */
export function remoteTarget(lab: string, node: LabNode, sudo?: boolean): RemoteTarget {
  const s = node.ssh!;
  return {
    node: node.name,
    host: s.host,
    user: s.user,
    port: s.port,
    identityFile: s.identityFile,
    jump: s.jump,
    knownHosts: s.knownHosts,
    control: join(controlDir(), `${lab}.${node.name}.sock`),
    ...(sudo ? { sudo } : {}),
  };
}

/** Open the multiplexed connection (one handshake for the lab's whole life); a refusal names the target. True when it opened one. */
export async function openMaster(t: RemoteTarget, signal?: AbortSignal): Promise<boolean> {
  mkdirSync(controlDir(), { recursive: true });
  if (
    existsSync(t.control) &&
    (await runArgv(['ssh', '-o', `ControlPath=${t.control}`, '-O', 'check', t.host], { nothrow: true })).code === 0
  )
    return false;
  const r = await runArgv(masterArgv(t), { nothrow: true, signal, timeoutMs: 60_000 });
  if (r.code === 0) return true;
  const { message, hint } = failureText(sshFailure(r.stderr), t, r.stderr);
  throw new LabError('E_REQUIREMENT', message, hint);
}

export async function closeMaster(t: RemoteTarget): Promise<void> {
  if (existsSync(t.control)) await runArgv(exitMasterArgv(t), { nothrow: true, timeoutMs: 10_000 });
}
