import type { Command } from 'commander';
import { parseOnly } from './options.js';

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('check')
    .description('run checks on a lab that is up; writes reports; the lab stays up')
    .argument('<name>', 'lab name (see lab status)')
    .option('--only <ids>', 'run only these checks (comma separated)', parseOnly)
    .option('--report-dir <dir>', 'where report.json and junit.xml go (default: reports/<lab>)')
    .option('-q, --quiet', 'no progress lines')
    .action(async (name, opts) =>
      exit((await (await import('./drive.js')).drive({ mode: 'check', name, only: opts.only, reportDir: opts.reportDir }, opts)).code),
    );
}
