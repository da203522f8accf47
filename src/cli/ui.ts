import type { Command } from 'commander';
import { EXIT } from '../errors.js';

/** `lab ui`: the dashboard on 127.0.0.1 until interrupted. */
export async function uiCommand(opts: { port?: string; topologies?: string; reports?: string }): Promise<number> {
  const { startUi } = await import('../ui/server.js');
  const { printError } = await import('./output.js');
  const { exitCodeFor, LabError } = await import('../errors.js');
  const port = opts.port === undefined ? 0 : Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    printError(new LabError('E_USAGE', `--port ${opts.port}: not a port number (0-65535; 0 picks a free one)`));
    return EXIT.badInput;
  }
  let ui: Awaited<ReturnType<typeof startUi>>;
  try {
    ui = await startUi({ port, topologiesDir: opts.topologies, reportsDir: opts.reports });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const wrapped =
      err.code === 'EADDRINUSE'
        ? new LabError('E_USAGE', `port ${port} on 127.0.0.1 is taken`, 'pick another with --port, or leave it out')
        : e;
    printError(wrapped);
    return exitCodeFor(wrapped);
  }
  process.stdout.write(`dashboard: ${ui.url}\n(127.0.0.1 only; the token is needed; Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ui.close();
  return EXIT.ok;
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('ui')
    .description(
      "a dashboard on 127.0.0.1: the labs on this machine and their machines' live states, bring up / check / tear down from the page, " +
        'past reports; prints its URL with a random token',
    )
    .option('--port <n>', 'port to listen on (default: a free one)')
    .option('--topologies <dir>', 'the topologies the page offers to bring up (default: the repository’s topologies/)')
    .option('--reports <dir>', 'where reports are listed from and page checks write them (default: ./reports, as lab check)')
    .action(async (opts) => exit(await uiCommand(opts)));
}
