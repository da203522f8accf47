import type { Command } from 'commander';
import { parseOnly } from './options.js';
import type { CheckId } from '../topology/ids.js';

/** `lab run FILE`: up, check, report and down in one go. */
export async function runCommand(file: string, opts: { only?: CheckId[]; reportDir?: string; quiet?: boolean }): Promise<number> {
  const { drive } = await import('./drive.js'); // loaded on use: keeps --help and status fast
  const { code } = await drive({ mode: 'run', file, only: opts.only, reportDir: opts.reportDir }, opts);
  return code;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('run')
    .description('bring a lab up, run its checks, write reports, and tear it down')
    .argument('<file>', 'topology file (YAML), e.g. topologies/quickstart.yaml')
    .option('--only <ids>', 'run only these checks (comma separated: backpressure,tso-probe,bigtcp)', parseOnly)
    .option('--report-dir <dir>', 'where report.json and junit.xml go (default: reports/<lab>)')
    .option('-q, --quiet', 'no progress lines')
    .action(async (file, opts) => exit(await runCommand(file, opts)));
}
