import type { Command } from 'commander';
import { parseOnly, parseRepeat } from './options.js';

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('check')
    .description('run checks on a lab that is up; writes reports; the lab stays up')
    .argument('<name>', 'lab name (see lab status)')
    .option('--only <ids>', 'run only these checks (comma separated)', parseOnly)
    .option('--repeat <n>', 'run the checks n times: per check counts, pass rate and metric spread', parseRepeat)
    .option('--report-dir <dir>', 'where report.json and junit.xml go (default: reports/<lab>)')
    .option('-q, --quiet', 'no progress lines')
    .action(async (name, opts) => {
      const { drive } = await import('./drive.js');
      exit((await drive({ mode: 'check', name, only: opts.only, repeat: opts.repeat, reportDir: opts.reportDir }, opts)).code);
    });
}
