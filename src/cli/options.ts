import { InvalidArgumentError } from 'commander';
import { CHECK_IDS, type CheckId } from '../topology/ids.js';

/** --only ID,ID: known check ids, or a usage error (exit 2) that lists them. */
export function parseOnly(value: string): CheckId[] {
  const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.filter((id) => !(CHECK_IDS as readonly string[]).includes(id));
  if (bad.length || !ids.length) throw new InvalidArgumentError(`unknown check ${bad.join(', ') || '(none given)'}; checks are: ${CHECK_IDS.join(', ')}`);
  return ids as CheckId[];
}
