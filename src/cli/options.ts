import { InvalidArgumentError } from 'commander';
import { CHECK_IDS, type CheckId } from '../topology/ids.js';

/** --only ID,ID: known check ids, or a usage error (exit 2) that lists them. */
export function parseOnly(value: string): CheckId[] {
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = ids.filter((id) => !(CHECK_IDS as readonly string[]).includes(id));
  if (bad.length || !ids.length)
    throw new InvalidArgumentError(`unknown check ${bad.join(', ') || '(none given)'}; checks are: ${CHECK_IDS.join(', ')}`);
  return ids as CheckId[];
}

/** --kernel NAME,NAME: a list without blanks or repeats (a repeat would overwrite its own report dir). */
export function parseKernelList(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (!names.length) throw new InvalidArgumentError('no kernel named; give catalogue names like 6.1,6.12 (lab kernels list)');
  if (twice.length) throw new InvalidArgumentError(`kernel ${twice[0]} is named twice`);
  return names;
}

/** Every --kernel name is in the catalogue, or a usage error (exit 2) listing the catalogue's names. */
export async function checkKernelNames(names: readonly string[]): Promise<void> {
  const { loadCatalogue } = await import('../kernels/catalogue.js'); // loaded on use: keeps --help fast
  const { LabError } = await import('../errors.js');
  const known = loadCatalogue().map((k) => k.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length)
    throw new LabError(
      'E_USAGE',
      `--kernel: no kernel ${unknown.map((n) => `'${n}'`).join(', ')} in the catalogue (vms/kernels.yaml); kernels are: ${known.join(', ')}`,
      'lab kernels list shows them and which are cached',
    );
}

/** Most runs --repeat takes: a flake rate over more runs is for a loop in a script, not one lab run. */
export const MAX_REPEAT = 1000;

/** --repeat N: a whole number of runs, 1..MAX_REPEAT. */
export function parseRepeat(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_REPEAT)
    throw new InvalidArgumentError(`--repeat takes a whole number of runs from 1 to ${MAX_REPEAT}, got '${value}'`);
  return n;
}
