import { EXIT } from '../errors.js';
import type { Lab } from '../topology/model.js';
import type { CheckId } from '../topology/ids.js';
import { progressLogger } from './output.js';

/** `lab run FILE --backend sim`: the checks in the simulator; exit codes as a kernel run. */
export async function simCommand(
  lab: Lab,
  opts: { only?: CheckId[]; reportDir?: string; quiet?: boolean; seed?: number },
): Promise<number> {
  const { runSimulated } = await import('../backends/sim/run.js');
  const { checksTable } = await import('../report/table.js');
  const { MODEL_VERSION } = await import('../sim/version.js');
  const progress = progressLogger(opts.quiet);
  progress(`simulating ${lab.name} (${MODEL_VERSION}, seed ${opts.seed ?? 1}): nothing is created on this machine`);
  const run = await runSimulated(lab, { only: opts.only, reportDir: opts.reportDir, seed: opts.seed, progress }).finally(progress.end);
  process.stdout.write(`\nsimulated (${MODEL_VERSION}); TIME is virtual\n${checksTable(run.results)}\n`);
  process.stdout.write(
    `\nreports: ${run.reportDir}/report.json\n         ${run.reportDir}/junit.xml\n         ${run.reportDir}/report.html\n`,
  );
  return run.results.some((r) => r.status === 'fail' || r.status === 'error') ? EXIT.checkFailed : EXIT.ok;
}
