import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RemoteTarget } from '../../lifecycle/remote.js';
import type { Lab, LabNode } from '../../topology/model.js';
import { controlDir } from '../ssh/connection.js';
import type { SshConfig } from './machine-readable.js';

/**
 * known_hosts of a vagrant lab: the box's own host key (recorded when the box was built) for
 * any address, so the OpenSSH client checks the machine's key strictly and nothing is accepted
 * blindly (Vagrant's own ssh-config turns checking off: StrictHostKeyChecking no).
 */
export function writeKnownHosts(dir: string, hostKey: string): string {
  const file = join(dir, 'known_hosts');
  writeFileSync(file, `* ${hostKey}\n`);
  return file;
}

/** The ssh backend's target for a Vagrant machine, from what `vagrant ssh-config` printed (user vagrant, sudo -n to root). */
export function machineTarget(lab: string, node: string, c: SshConfig, knownHosts: string): RemoteTarget {
  return {
    node,
    host: c.hostName,
    user: c.user,
    port: c.port,
    ...(c.identityFiles[0] ? { identityFile: c.identityFiles[0] } : {}),
    knownHosts,
    control: join(controlDir(), `${lab}.${node}.sock`),
    sudo: true,
  };
}

/** The guest's name for the first link NIC: eth0 is Vagrant's management NIC (the box boots with net.ifnames=0). */
export const LINK_NIC = 'eth1';

/** A node's ssh settings (lab.json's `node.ssh`) from its machine target: the same at `lab up` and at re-attach. */
export function nodeSsh(lab: Lab, node: string, t: RemoteTarget): NonNullable<LabNode['ssh']> {
  return {
    host: t.host,
    user: t.user,
    port: t.port,
    identityFile: t.identityFile,
    knownHosts: t.knownHosts,
    allowHostChanges: true,
    ...(lab.links.some((l) => l.a === node || l.b === node) ? { nic: LINK_NIC } : {}),
  };
}
