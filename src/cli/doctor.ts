import type { Command } from 'commander';
import { table } from '../report/table.js';

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('doctor')
    .description(
      'show the kernel and tool facts of this machine and, for every datapath feature and check, whether it can run here and if not why; and what each backend has here (qemu: QEMU, accelerator, cached kernels)',
    )
    .option('--json', 'machine-readable output')
    .option('--target <host>', 'an ssh target instead: [user@]host[:port], or a test target (left, right)')
    .option('-i, --identity <file>', 'with --target: the private key')
    .option('--known-hosts <file>', 'with --target: a known_hosts file of its own')
    .action(async (opts: { json?: boolean; target?: string; identity?: string; knownHosts?: string }) => {
      if (opts.target) return exit(await (await import('./doctor-target.js')).doctorTarget(opts.target, opts));
      const r = await (await import('./doctor-report.js')).doctorHere();
      if (opts.json) {
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return exit(0);
      }
      const out = [
        `kernel ${r.kernel.release} (${r.kernel.arch}), config from ${r.kernel.config}, BTF ${r.kernel.btf ? 'yes' : 'no'}, bpffs ${r.kernel.bpffs ? 'mounted' : 'NOT mounted'}, root ${r.kernel.root ? 'yes' : 'no'}`,
        `tools: ${Object.entries(r.tools)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
        '',
        table(
          ['FEATURE', 'HERE', 'WITH DEFAULT PROFILE / WHY NOT'],
          r.features.map((f) => [f.id, f.supported ? 'yes' : 'no', f.supported ? f.withDefaults : `${f.reason} (${f.withDefaults})`]),
        ),
        '',
        table(
          ['CHECK', 'HERE', 'WHY NOT / WHAT IT PROVES'],
          r.checks.map((c) => [c.id, c.supported ? 'yes' : 'no', c.supported ? c.proves : c.reason!]),
        ),
        '',
        ...r.backends.flatMap((b) => [
          `${b.backend} backend: ${Object.entries(b.facts)
            .map(([k, v]) => `${k} ${v}`)
            .join('; ')}`,
          ...(b.tables ?? []).flatMap((t) => [table(t.header, t.rows)]),
        ]),
      ];
      if ([...r.features, ...r.checks].some((x) => !x.supported))
        out.push('', 'What this kernel lacks can run in a VM with a kernel that has it: backend: qemu (topologies/vm-quickstart.yaml).');
      process.stdout.write(out.join('\n') + '\n');
      exit(0);
    });
}
