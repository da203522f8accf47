import { join } from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT } from '../paths.js';
import { DEMO_IDS, type DemoId } from '../report/demos.js';
import { runCommand } from './run.js';
import { defaultReportDir } from '../report/where.js';

export const QUICKSTART = join(REPO_ROOT, 'topologies', 'quickstart.yaml');

interface DemoOptions {
  reportDir?: string;
  /** Lab name instead of the topology's (tests run demos under their own names). */
  name?: string;
  quiet?: boolean;
  /** Open the page in the desktop's browser (xdg-open) when there is one. */
  open?: boolean;
}

/** `lab demo X`: one check with its control on a small topology, then demo.html beside the report. */
export async function demoCommand(id: string, opts: DemoOptions): Promise<number> {
  const { mkdir, readFile, writeFile } = await import('node:fs/promises');
  const { EXIT, LabError, exitCodeFor } = await import('../errors.js');
  const { printError } = await import('./output.js');
  const { DEMOS, vmNotice } = await import('../report/demos.js');
  const demo = DEMOS[id as DemoId];
  let file = join(REPO_ROOT, 'topologies', demo?.topology ?? '');
  const reportDir = opts.reportDir ?? defaultReportDir(`demo-${id}`);
  try {
    if (!demo)
      throw new LabError('E_USAGE', `no demo '${id}'`, `lab demo takes one of: ${DEMO_IDS.join(', ')} (or nothing: the quickstart)`);
    if (demo.vmKernel) {
      const { cachedKernel } = await import('../kernels/cache.js');
      if (!cachedKernel(demo.vmKernel))
        throw new LabError(
          'E_REQUIREMENT',
          `lab demo ${id} boots a VM with kernel ${demo.vmKernel}, which is not in the cache`,
          `lab kernels fetch ${demo.vmKernel}`,
        );
      process.stderr.write(`${vmNotice(demo)}\n`);
    }
    if (opts.name) {
      // The same topology under another lab name, kept beside the report it produced.
      await mkdir(reportDir, { recursive: true });
      const text = await readFile(file, 'utf8');
      file = join(reportDir, 'topology.yaml');
      await writeFile(file, text.replace(/^name: .*$/m, `name: ${opts.name}`));
    }
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
  const code = await runCommand(file, { only: [demo.check], reportDir, quiet: opts.quiet });
  if (code !== EXIT.ok && code !== EXIT.checkFailed) return code;
  try {
    const { ReportDoc } = await import('../report/doc.js');
    const { pageAssets } = await import('../report/assets.js');
    const { demoHtml } = await import('../report/demo-page.js');
    const doc = ReportDoc.parse(JSON.parse(await readFile(join(reportDir, 'report.json'), 'utf8')));
    const page = join(reportDir, 'demo.html');
    await writeFile(page, demoHtml(demo, doc, await pageAssets()));
    process.stdout.write(`\ndemo:    ${page}\n`);
    if (opts.open) process.stdout.write(`${await (await import('./open-page.js')).openPage(page)}\n`);
    return code;
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('demo')
    .description(
      `without an argument, run the quickstart lab (lab run topologies/quickstart.yaml); with one (${DEMO_IDS.join(' | ')}), ` +
        'run that check with its control on a small topology and write demo.html explaining its plot',
    )
    .argument('[demo]', `a teaching demo: ${DEMO_IDS.join(', ')}`)
    .option('--report-dir <dir>', 'where report.json, junit.xml (and demo.html) go (default: reports/quickstart, reports/demo-<demo>)')
    .option('--name <lab>', 'a demo: run its lab under this name instead of the topology’s')
    .option('-q, --quiet', 'no progress lines')
    .option('--open', "open the page (demo.html, or the quickstart's report.html) in the browser when there is a display (xdg-open)")
    .action(async (id: string | undefined, opts) => {
      if (!id && opts.name) {
        const { LabError, exitCodeFor } = await import('../errors.js');
        const e = new LabError('E_USAGE', '--name goes with a teaching demo', 'lab demo bigtcp --name x');
        (await import('./output.js')).printError(e);
        return exit(exitCodeFor(e));
      }
      if (id) return exit(await demoCommand(id, opts));
      const t0 = Date.now();
      const code = await runCommand(QUICKSTART, opts);
      const html = join(opts.reportDir ?? defaultReportDir('quickstart'), 'report.html');
      const { statSync } = await import('node:fs');
      // Only this run's page: an older one left there is not what just ran.
      if (opts.open && (statSync(html, { throwIfNoEntry: false })?.mtimeMs ?? 0) >= t0)
        process.stdout.write(`${await (await import('./open-page.js')).openPage(html)}\n`);
      exit(code);
    });
}
