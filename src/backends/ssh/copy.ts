import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BPF_OBJ_DIR } from '../../paths.js';
import { runArgv, type Exec } from '../../exec/exec.js';

/** Where a prepared target keeps the lab's objects (the test guests' initramfs has them there). */
export const PREPARED_OBJ_DIR = '/opt/dpl/bpf';
/** The digest file beside prepared objects: what they were built from. */
export const DIGEST_FILE = '.dpl-digest';

/** A digest of the built objects (names and contents), to tell a prepared target's copy is current. */
export function objectsDigest(dir = BPF_OBJ_DIR): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (!statSync(p).isFile()) continue;
    h.update(`${f}\0`).update(readFileSync(p));
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Copy the lab's built BPF objects and helpers (nsconf, nkctl, svcprobe: static) to a target:
 * a gzip'd tar, base64 on the command's stdin (Exec input is text), unpacked there.
 */
export async function copyObjects(root: Exec, dir: string, signal?: AbortSignal): Promise<void> {
  const tar = await runArgv(['sh', '-c', 'tar -czf - -C "$1" . | base64 -w0', 'sh', BPF_OBJ_DIR], { signal });
  await root.run(['sh', '-c', 'mkdir -p "$1" && base64 -d | tar -xzf - -C "$1"', 'sh', dir], { input: tar.stdout, signal });
}
