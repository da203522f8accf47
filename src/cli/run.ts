import { dirname, join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { EXIT, LabError, exitCodeFor } from '../errors.js';
import { checkKernelNames, parseKernelList, parseOnly, parseRepeat } from './options.js';
import type { CheckId } from '../topology/ids.js';
import type { MatrixRow } from '../report/matrix.js';
import { parseShard, type Shard } from '../report/shard-split.js';
import { defaultReportDir } from '../report/where.js';

interface RunOptions {
  only?: CheckId[];
  repeat?: number;
  reportDir?: string;
  quiet?: boolean;
  kernel?: string[];
  /** 'sim': the simulator answers the checks (no root, nothing created). */
  backend?: string;
  seed?: number;
  /** Run only this share of the kernels x topologies matrix. */
  shard?: Shard;
}

/** Worst first: a failed lab outranks bad input, which outranks a failed check. */
const SEVERITY = [EXIT.labFailed, EXIT.interrupted, EXIT.badInput, EXIT.checkFailed, EXIT.ok];

/** `lab run FILE`: up, check, report and down in one go; once per kernel for a matrix. */
export async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const { drive } = await import('./drive.js'); // loaded on use: keeps --help and status fast
  const { validate } = await import('../lifecycle/steps.js');
  const { printError } = await import('./output.js');
  let kernels = opts.kernel;
  let labName: string;
  try {
    if (kernels) await checkKernelNames(kernels);
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
  let lab: Awaited<ReturnType<typeof validate>>;
  try {
    lab = await validate(file, kernels?.[0]);
    kernels ??= lab.kernels && lab.kernels.length > 1 ? lab.kernels : undefined;
    labName = lab.name;
  } catch (e) {
    // A topology that does not validate still gets its reports, saying so (CI reads junit.xml).
    const { labNameOf, writeFailureReports } = await import('../report/failure.js');
    const name = await labNameOf(file).catch(() => 'lab');
    const paths = await writeFailureReports({ file, name, step: 'validate', error: e, dir: opts.reportDir }).catch(() => undefined);
    printError(e);
    if (paths) process.stdout.write(`\nreports: ${paths.json}\n         ${paths.junit}\n`);
    return exitCodeFor(e);
  }
  try {
    if (opts.backend && opts.backend !== 'sim')
      throw new LabError('E_USAGE', `--backend takes sim; for ${opts.backend} set backend: ${opts.backend} in the topology`);
    if (opts.backend === 'sim' || lab.backend === 'sim') {
      const { simCommand } = await import('./sim.js');
      return await simCommand(lab, opts);
    }
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
  if (opts.shard && !kernels) {
    printError(new LabError('E_USAGE', '--shard splits a kernel matrix', 'give --kernel 6.1,6.12,7.3 or a kernels: list (qemu)'));
    return EXIT.badInput;
  }
  if (!kernels) return (await drive({ mode: 'run', file, only: opts.only, repeat: opts.repeat, reportDir: opts.reportDir }, opts)).code;
  if (opts.shard) {
    const { shardCells } = await import('../report/shard-split.js');
    kernels = shardCells(
      kernels.map((kernel) => ({ topology: file, kernel })),
      opts.shard,
    ).map((c) => c.kernel);
    process.stderr.write(`shard ${opts.shard.index}/${opts.shard.count}: kernels ${kernels.join(', ') || '(none)'}\n`);
  }

  const { matrixTable, writeMatrix } = await import('../report/matrix.js');
  const base = opts.reportDir ?? defaultReportDir(labName);
  const rows: MatrixRow[] = [];
  for (const kernel of kernels) {
    process.stderr.write(`\n=== kernel ${kernel} ===\n`);
    const reportDir = join(base, kernel);
    const { code, out } = await drive({ mode: 'run', file, kernel, only: opts.only, repeat: opts.repeat, reportDir }, opts);
    rows.push({
      kernel,
      release: out.probed?.facts.release,
      code,
      error: out.error ? String((out.error as Error).message ?? out.error).split('\n')[0] : undefined,
      features: out.probed?.decisions ?? [],
      checks: (out.results ?? []).map(({ id, status, reason }) => ({ id, status, reason })),
      reportDir,
    });
    if (code === EXIT.interrupted) break;
  }
  const matrixFile = await writeMatrix(base, rows, opts.shard);
  process.stdout.write(
    `\nkernel matrix\n${matrixTable(rows)}\n\nmatrix: ${matrixFile}\n        ${join(dirname(matrixFile), 'matrix.html')}\n`,
  );
  return SEVERITY.find((s) => rows.some((r) => r.code === s)) ?? EXIT.ok;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('run')
    .description('bring a lab up, run its checks, write reports, and tear it down (qemu: once per kernel with --kernel or a kernels: list)')
    .argument('<file>', 'topology file (YAML), e.g. topologies/quickstart.yaml')
    .option('--only <ids>', 'run only these checks (comma separated: backpressure,tso-probe,bigtcp)', parseOnly)
    .option(
      '--repeat <n>',
      'run the checks n times on the one lab: per check pass/fail/error/skip counts, pass rate, metric spread',
      parseRepeat,
    )
    .option(
      '--report-dir <dir>',
      'where report.json and junit.xml go (default: reports/<lab>; a matrix puts each kernel in <dir>/<kernel>)',
    )
    .option(
      '--kernel <names>',
      'qemu: run once per kernel (comma separated names from vms/kernels.yaml, e.g. 6.1,6.12,7.3) and write matrix.json',
      parseKernelList,
    )
    .option('--shard <i/n>', 'with a kernel matrix: run share I of N (a deterministic split; lab report merge joins the shards)', (v) => {
      try {
        return parseShard(v);
      } catch (e) {
        throw new InvalidArgumentError((e as Error).message);
      }
    })
    .option('--backend <kind>', 'sim: run the checks in the simulator instead (no root, nothing created on the machine)')
    .option('--seed <n>', 'sim: the RNG seed (the same seed gives the same report)', (v) => Number.parseInt(v, 10))
    .option('-q, --quiet', 'no progress lines')
    .action(async (file, opts) => exit(await runCommand(file, opts)));
}
