import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('schema')
    .description('print (or write) the JSON Schema of topology files, for editors (yaml-language-server)')
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .action(async (opts: { out?: string }) => {
      const { jsonSchema } = await import('../topology/schema.js');
      const text = JSON.stringify(jsonSchema(), null, 2) + '\n';
      if (opts.out) writeFileSync(opts.out, text);
      else process.stdout.write(text);
      exit(0);
    });
}
