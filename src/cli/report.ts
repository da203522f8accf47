import type { Command } from 'commander';
import { parseKernelList } from './options.js';
import { defaultReportDir } from '../report/where.js';

/** `lab report merge DIR...`: the shards' matrix.json as one matrix (JSON, JUnit, HTML) in `out`. */
export async function mergeCommand(dirs: string[], opts: { output?: string }): Promise<number> {
  const { existsSync } = await import('node:fs');
  const { readFile, writeFile } = await import('node:fs/promises');
  const { basename, join, resolve } = await import('node:path');
  const { LabError, exitCodeFor } = await import('../errors.js');
  const { printError } = await import('./output.js');
  const { MatrixFile, matrixJunit, mergeMatrices } = await import('../report/shard.js');
  const { matrixTable, writeMatrix } = await import('../report/matrix.js');
  try {
    const shards = [];
    for (const dir of dirs) {
      const path = join(dir, 'matrix.json');
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        throw new LabError('E_USAGE', `${path}: no matrix.json (not the report dir of lab run --kernel ... --shard I/N)`);
      }
      const parsed = MatrixFile.safeParse(JSON.parse(text));
      if (!parsed.success) throw new LabError('E_USAGE', `${path}: not a matrix.json: ${parsed.error.issues[0]?.message}`);
      // A shard's reports moved with it (a CI artifact): find each kernel's report beside its matrix.json.
      const kernels = parsed.data.kernels.map((r) => {
        const moved = join(dir, basename(r.reportDir));
        return existsSync(r.reportDir) || !existsSync(moved) ? r : { ...r, reportDir: resolve(moved) };
      });
      shards.push({ dir, file: { ...parsed.data, kernels } });
    }
    const rows = mergeMatrices(shards);
    const out = resolve(opts.output ?? defaultReportDir('matrix'));
    const file = await writeMatrix(out, rows);
    await writeFile(join(out, 'junit.xml'), matrixJunit(rows));
    process.stdout.write(
      `kernel matrix (${dirs.length} shards)\n${matrixTable(rows)}\n\nmatrix: ${file}\n        ${join(out, 'matrix.html')}\n        ${join(out, 'junit.xml')}\n`,
    );
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
}

/** `lab report plan`: what share I of N of a kernels x topologies matrix runs, for a CI job to run and fetch no more. */
export async function planCommand(opts: { topology: string[]; kernel: string[]; shard: string; kernels?: boolean; json?: boolean }) {
  const { exitCodeFor } = await import('../errors.js');
  const { printError } = await import('./output.js');
  const { parseShard, planKernels, planShare } = await import('../report/shard-split.js');
  try {
    const plan = planShare(opts.topology, opts.kernel, parseShard(opts.shard));
    if (opts.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    else if (opts.kernels) process.stdout.write(`${planKernels(plan).join(' ')}\n`);
    else for (const p of plan) process.stdout.write(`${p.topology} ${p.kernels.join(',')}\n`);
    return 0;
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
}

export function register(program: Command, exit: (code: number) => void): void {
  const report = program.command('report').description('work with reports');
  report
    .command('merge')
    .description('join the shards of lab run --kernel ... --shard I/N into one matrix: matrix.json, matrix.html, junit.xml')
    .argument('<dirs...>', "each shard's report dir (where its matrix.json is)")
    .option('-o, --output <dir>', 'where the merged matrix goes (default: reports/matrix)')
    .action(async (dirs: string[], opts) => exit(await mergeCommand(dirs, opts)));
  report
    .command('plan')
    .description(
      'share I of N of a kernels x topologies matrix: a line per topology with its kernels in the share ' +
        '(run each with lab run TOPOLOGY --kernel KERNELS), or --kernels: every kernel the share boots (to fetch)',
    )
    .requiredOption('--topology <file>', 'a topology of the matrix (repeat for each)', (v: string, a: string[] = []) => [...a, v])
    .requiredOption('--kernel <names>', 'the kernels of the matrix (comma separated)', parseKernelList)
    .requiredOption('--shard <i/n>', 'the share: I of N')
    .option('--kernels', 'print only the kernels the share boots, space separated')
    .option('--json', 'the plan as JSON')
    .action(async (opts) => exit(await planCommand(opts)));
}
