import { join } from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT } from '../paths.js';
import { runCommand } from './run.js';

export const QUICKSTART = join(REPO_ROOT, 'topologies', 'quickstart.yaml');

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('demo')
    .description(`run the quickstart lab (lab run topologies/quickstart.yaml): one node, two pods, a peer behind a 200mbit bottleneck`)
    .option('--report-dir <dir>', 'where report.json and junit.xml go (default: reports/quickstart)')
    .action(async (opts) => exit(await runCommand(QUICKSTART, opts)));
}
