import { accessSync, constants } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Where a simulated lab keeps its journal while it runs (removed when it ends): never
 * /run/datapath-lab, which is root's and holds the kernel labs. DPL_SIM_STATE_DIR, else
 * $XDG_RUNTIME_DIR/datapath-lab-sim, else ~/.local/state/datapath-lab-sim when the home
 * is writable, else the temp dir (a user like nobody has no home).
 */
export function simStateRoot(): string {
  if (process.env.DPL_SIM_STATE_DIR) return process.env.DPL_SIM_STATE_DIR;
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'datapath-lab-sim');
  const home = homedir();
  try {
    accessSync(home, constants.W_OK);
    return join(process.env.XDG_STATE_HOME ?? join(home, '.local', 'state'), 'datapath-lab-sim');
  } catch {
    return join(tmpdir(), `datapath-lab-sim-${process.getuid?.() ?? 'user'}`);
  }
}
