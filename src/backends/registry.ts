import type { Backend } from './backend.js';
import { LocalBackend } from './local/local.js';
import { QemuBackend } from './qemu/qemu.js';

/** Every backend the lab knows, registered explicitly. */
const BACKENDS: Record<string, () => Backend> = {
  local: () => new LocalBackend(),
  qemu: () => new QemuBackend(),
};

export function backendNames(): string[] {
  return Object.keys(BACKENDS);
}

export function createBackend(kind: string): Backend {
  const make = BACKENDS[kind];
  if (!make) throw new Error(`unknown backend '${kind}'; known: ${backendNames().join(', ')}`);
  return make();
}
