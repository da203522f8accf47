import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: the nearest folder above this module with a package.json (works from src/ and dist/src/). */
export const REPO_ROOT = (() => {
  let d = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(d, 'package.json')) && d !== '/') d = resolve(d, '..');
  return d;
})();

/** The BPF objects bpf/build.sh writes. */
export const BPF_OBJ_DIR = join(REPO_ROOT, 'build', 'bpf');
