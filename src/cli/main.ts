import { Command, CommanderError } from 'commander';
import { EXIT } from '../errors.js';
import * as check from './check.js';
import * as demo from './demo.js';
import * as doctor from './doctor.js';
import * as down from './down.js';
import * as fidelity from './fidelity.js';
import * as kernels from './kernels.js';
import * as run from './run.js';
import * as schema from './schema.js';
import * as status from './status.js';
import * as up from './up.js';
import * as claims from './claims.js';
import * as ui from './ui.js';
import * as report from './report.js';
import * as svc from './svc.js';
import * as bw from './bw.js';
import * as impair from './impair.js';
import * as targets from './targets.js';

const HELP_AFTER = `
Exit codes: 0 all checks passed or skipped, 1 a check failed or could not establish its condition
(error), 2 bad input or unmet requirement (nothing changed on the machine), 3 the lab itself failed
(and was torn down).

Examples:
  lab demo                            the quickstart lab, start to finish
  lab run topologies/two-node.yaml --only tso-probe,bigtcp
  lab up topologies/quickstart.yaml && lab check quickstart && lab down quickstart
  lab doctor                          what this machine's kernel can do
  ./lab selftest                      the project's whole test suite (vitest)`;

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const exit = (c: number) => {
    code = c;
  };
  const program = new Command('lab')
    .description('datapath-lab: network topologies on a real kernel, a Cilium-style eBPF datapath, and checks the kernel verifies')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', HELP_AFTER)
    .exitOverride();
  for (const verb of [up, status, check, down, run, demo, doctor, kernels, schema, claims, ui, fidelity, report, svc, bw, impair, targets])
    verb.register(program, exit);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    throw e;
  }
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(EXIT.labFailed);
  },
);
