import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT, LabError, exitCodeFor } from '../errors.js';
import type { CheckId } from '../topology/ids.js';
import { parseOnly } from './options.js';
import { defaultReportDir } from '../report/where.js';

interface FidelityOptions {
  only?: CheckId[];
  reportDir?: string;
  json?: boolean;
  quiet?: boolean;
  seed?: number;
}

const show = (v: number | undefined) => (v === undefined ? '-' : String(v));

/**
 * `lab fidelity FILE`: the checks on the kernel (the topology's backend, local or qemu) and
 * in the simulator, verdicts and key metrics side by side. Exit 1 when a verdict differs
 * (a finding: the kernel departed from the model, or the model is wrong), else as the kernel run.
 */
export async function fidelityCommand(file: string, opts: FidelityOptions): Promise<number> {
  const { drive } = await import('./drive.js');
  const { validate } = await import('../lifecycle/steps.js');
  const { printError } = await import('./output.js');
  const { runSimulated } = await import('../backends/sim/run.js');
  const { compare } = await import('../sim/fidelity.js');
  const { table } = await import('../report/table.js');
  const { MODEL_VERSION } = await import('../sim/version.js');
  const { writeFile, mkdir } = await import('node:fs/promises');
  let lab: Awaited<ReturnType<typeof validate>>;
  try {
    lab = await validate(file);
    if (lab.backend === 'sim')
      throw new LabError('E_USAGE', `${file} uses backend: sim; fidelity compares a kernel backend with the simulator`);
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
  const base = opts.reportDir ?? join(defaultReportDir(lab.name), 'fidelity');
  const kernelRun = await drive({ mode: 'run', file, only: opts.only, reportDir: join(base, 'kernel') }, { quiet: opts.quiet, json: true });
  const err = kernelRun.out.error;
  // A kernel that lacks what the lab needs (a declined feature: no sch_fq here) brings nothing up: each of its
  // checks is a skip saying why, and the model's predictions still stand beside them.
  const unmet = err instanceof LabError && err.code === 'E_REQUIREMENT' ? err.message.replace(/\n/g, '; ') : undefined;
  if (err && !unmet) {
    printError(err);
    return kernelRun.code;
  }
  const sim = await runSimulated(lab, { only: opts.only, reportDir: join(base, 'sim'), seed: opts.seed });
  const kernelResults = unmet
    ? sim.results.map((r) => ({
        ...r,
        status: 'skip' as const,
        reason: `the ${lab.backend} lab did not come up: ${unmet}`,
        metrics: {},
        evidence: [],
      }))
    : (kernelRun.out.results ?? []);
  const f = compare(kernelResults, sim.results);
  const out = { lab: lab.name, backend: lab.backend, model: MODEL_VERSION, seed: opts.seed ?? 1, ...f };
  await mkdir(base, { recursive: true });
  await writeFile(join(base, 'fidelity.json'), `${JSON.stringify(out, null, 2)}\n`);
  // The kernel's report.html again, with the prediction beside each measurement.
  const { fidelitySection, writeReportHtml } = await import('../sim/report-html.js');
  const kernelDir = join(base, 'kernel');
  if (!unmet) await writeReportHtml(join(kernelDir, 'report.json'), join(kernelDir, 'report.html'), [fidelitySection(f, MODEL_VERSION)]);
  if (opts.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else {
    const v = table(
      ['CHECK', 'KERNEL', 'SIM', 'AGREE', 'SKIPPED'],
      f.verdicts.map((x) => [x.check, x.kernel ?? '-', x.sim ?? '-', x.agree ? 'yes' : x.skipped ? 'not compared' : 'NO', x.skipped ?? '']),
    );
    const m = table(
      ['CHECK', 'METRIC', 'KERNEL', 'SIM', 'REL.ERR'],
      f.metrics.map((x) => [
        x.check,
        x.metric,
        show(x.kernel),
        show(x.sim),
        x.relErr === undefined ? '-' : `${(x.relErr * 100).toFixed(1)}%`,
      ]),
    );
    process.stdout.write(
      `\nfidelity: ${lab.backend} kernel vs ${MODEL_VERSION}\n${v}\n\n${m}\n\nfidelity: ${join(base, 'fidelity.json')}\n` +
        (unmet ? '' : `          ${join(kernelDir, 'report.html')} (section Fidelity)\n`),
    );
  }
  // A side that skipped compared nothing: said in the table, not counted as a disagreement.
  if (f.verdicts.some((x) => !x.agree && !x.skipped)) return EXIT.checkFailed;
  return kernelRun.code;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('fidelity')
    .description('run the checks on the kernel and in the simulator; verdicts and metrics side by side with the relative error')
    .argument('<file>', 'topology file (YAML) of a local or qemu lab')
    .option('--only <ids>', 'only these checks (comma separated)', parseOnly)
    .option('--report-dir <dir>', 'where the kernel and sim reports and fidelity.json go (default: reports/<lab>/fidelity)')
    .option('--seed <n>', "the simulator's RNG seed", (v) => Number.parseInt(v, 10))
    .option('--json', 'print the comparison as JSON')
    .option('-q, --quiet', 'no progress lines')
    .action(async (file, opts) => exit(await fidelityCommand(file, opts)));
}
