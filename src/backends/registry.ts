import { LabError } from '../errors.js';
import type { BACKENDS as BACKEND_IDS } from '../topology/ids.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local/local.js';
import { QemuBackend } from './qemu/qemu.js';
import { SimBackend } from './sim/sim.js';
import { SshBackend } from './ssh/ssh.js';
import { VagrantBackend } from './vagrant/vagrant.js';

/** Every backend the lab knows, registered explicitly (the ids are also in src/topology/ids.ts for the schema). */
const BACKENDS: Record<(typeof BACKEND_IDS)[number], () => Backend> = {
  local: () => new LocalBackend(),
  qemu: () => new QemuBackend(),
  sim: () => new SimBackend(),
  ssh: () => new SshBackend(),
  vagrant: () => new VagrantBackend(),
};

export function backendNames(): string[] {
  return Object.keys(BACKENDS);
}

export function createBackend(kind: string): Backend {
  const make = BACKENDS[kind as keyof typeof BACKENDS];
  if (!make) throw new LabError('E_USAGE', `unknown backend '${kind}'; known: ${backendNames().join(', ')}`);
  return make();
}
