import type { Command } from 'commander';
import { EXIT } from '../errors.js';
import { printError, progressLogger } from './output.js';

/** `lab targets up|down|status`: the ssh backend's test targets (two QEMU guests with dropbear). */
export function register(program: Command, exit: (code: number) => void): void {
  const cmd = program
    .command('targets')
    .description('the ssh backend test targets: two QEMU guests with an SSH server on 127.0.0.1:2221 and :2222, joined back to back');
  cmd
    .command('up')
    .description('boot both guests (kernel 6.12 from the catalogue) and wait until they answer over ssh')
    .option('-q, --quiet', 'no progress lines')
    .action(async (opts: { quiet?: boolean }) => {
      const t = await import('../backends/ssh/targets.js');
      const progress = progressLogger(opts.quiet);
      try {
        await t.targetsUp(progress);
        progress.end();
        process.stdout.write(
          `test targets up: ${t.TARGETS.map((x) => `${x.name} ssh root@127.0.0.1 -p ${x.port}`).join(', ')} (keys in ${t.targetKeyDir()})\n`,
        );
        exit(EXIT.ok);
      } catch (e) {
        progress.end();
        printError(e);
        exit(EXIT.labFailed);
      }
    });
  cmd
    .command('down')
    .description('stop both guests')
    .action(async () => {
      const t = await import('../backends/ssh/targets.js');
      await t.targetsDown((m) => process.stderr.write(`${m}\n`));
      exit(EXIT.ok);
    });
  cmd
    .command('tcp-mmap')
    .description(
      "build tcp_mmap statically from Debian's kernel source package (tools/testing/selftests/net/tcp_mmap.c) and print its path",
    )
    .action(async () => {
      const { buildTcpMmap } = await import('../backends/ssh/tcp-mmap.js');
      try {
        process.stdout.write(`${await buildTcpMmap((m) => process.stderr.write(`${m}\n`))}\n`);
        exit(EXIT.ok);
      } catch (e) {
        printError(e);
        exit(EXIT.badInput);
      }
    });
  cmd
    .command('status')
    .description('whether the guests run')
    .action(async () => {
      const t = await import('../backends/ssh/targets.js');
      for (const x of t.targetsRunning()) process.stdout.write(`${x.name}\t127.0.0.1:${x.port}\t${x.running ? 'running' : 'stopped'}\n`);
      exit(EXIT.ok);
    });
}
