import type { Command } from 'commander';
import { EXIT } from '../errors.js';
import { reportsRoot } from '../report/where.js';

/** `lab claims [PATH...]`: the seed's claims judged from report.json files (default: everything under reports/). */
export async function claimsCommand(paths: string[], opts: { json?: boolean }): Promise<number> {
  const { loadReports } = await import('../report/load.js');
  const { evaluateClaims } = await import('../report/claims.js');
  const { claimsTable } = await import('../report/claims-view.js');
  const { printError } = await import('./output.js');
  const { exitCodeFor } = await import('../errors.js');
  const defaulted = !paths.length;
  let loaded: ReturnType<typeof loadReports>;
  try {
    const { existsSync } = await import('node:fs');
    // No reports/ yet is not an error: every claim then says how to measure it.
    loaded = defaulted && !existsSync(reportsRoot()) ? { reports: [], unreadable: [] } : loadReports(defaulted ? [reportsRoot()] : paths);
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
  for (const u of loaded.unreadable) process.stderr.write(`skipped ${u}\n`);
  const results = evaluateClaims(loaded.reports);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ reports: loaded.reports.map((r) => r.path), claims: results }, null, 2)}\n`);
    return EXIT.ok;
  }
  const from = loaded.reports.length
    ? `from ${loaded.reports.length} report${loaded.reports.length > 1 ? 's' : ''} (the newest run of each check)`
    : `no report found${defaulted ? ' under reports/ (run ./lab demo first)' : ''}`;
  process.stdout.write(`${claimsTable(results)}\n\n${from}\n`);
  return EXIT.ok;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('claims')
    .description("the seed's claims, each with what the lab measured, where (backend, kernel, accelerator) and the verdict")
    .argument(
      '[reports...]',
      'report.json files or directories to read (default: every report under reports/, the newest run of each check)',
    )
    .option('--json', 'machine-readable output')
    .action(async (paths, opts) => exit(await claimsCommand(paths, opts)));
}
