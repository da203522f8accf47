import type { Command } from 'commander';

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('up')
    .description('bring a lab up and leave it running (then: lab check NAME, lab down NAME)')
    .argument('<file>', 'topology file (YAML)')
    .option('-q, --quiet', 'no progress lines')
    .action(async (file, opts) => {
      const { drive } = await import('./drive.js');
      const { code, out } = await drive({ mode: 'up', file }, opts);
      if (code === 0 && out.lab) {
        const l = out.lab;
        // A peer behind several nodes has an entry per node and one namespace.
        const ns = l.nodes.reduce((a, n) => a + 1 + n.pods.length, 0) + new Set(l.peers.map((p) => p.netns)).size;
        process.stdout.write(
          `lab ${l.name} is up: ${l.nodes.length} nodes, ${ns} namespaces (dpl-${l.name}.*)\n  lab status ${l.name}\n  lab check ${l.name}\n  lab down ${l.name}\n`,
        );
      }
      exit(code);
    });
}
