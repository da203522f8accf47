import type { Command } from 'commander';

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
    const out = resolve(opts.output ?? join('reports', 'matrix'));
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

export function register(program: Command, exit: (code: number) => void): void {
  const report = program.command('report').description('work with reports');
  report
    .command('merge')
    .description('join the shards of lab run --kernel ... --shard I/N into one matrix: matrix.json, matrix.html, junit.xml')
    .argument('<dirs...>', "each shard's report dir (where its matrix.json is)")
    .option('-o, --output <dir>', 'where the merged matrix goes (default: reports/matrix)')
    .action(async (dirs: string[], opts) => exit(await mergeCommand(dirs, opts)));
}
