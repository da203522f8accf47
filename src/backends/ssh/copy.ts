import { BPF_OBJ_DIR } from '../../paths.js';
import { runArgv, type Exec } from '../../exec/exec.js';

/**
 * Copy the lab's built BPF objects and helpers (nsconf, nkctl, svcprobe: static) to a
 * target: a gzip'd tar, base64 on the command's stdin (Exec input is text), unpacked there.
 */
export async function copyObjects(root: Exec, dir: string, signal?: AbortSignal): Promise<void> {
  const tar = await runArgv(['sh', '-c', 'tar -czf - -C "$1" . | base64 -w0', 'sh', BPF_OBJ_DIR], { signal });
  await root.run(['sh', '-c', 'mkdir -p "$1" && base64 -d | tar -xzf - -C "$1"', 'sh', dir], { input: tar.stdout, signal });
}
