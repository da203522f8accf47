import type { Command } from 'commander';
import { HostExec } from '../exec/exec.js';
import { probeLocal, type KernelFacts } from '../kernel/facts.js';
import { FEATURES } from '../datapath/registry.js';
import { CHECKS } from '../checks/registry.js';
import { DEFAULT_DATAPATH } from '../topology/schema.js';
import { table } from '../report/table.js';

/** What this machine supports: kernel and tool facts, every feature and every check with its reason. */
export function doctorReport(facts: KernelFacts) {
  return {
    kernel: { release: facts.release, arch: facts.arch, config: facts.configSource ?? 'unreadable', btf: facts.btf, bpffs: facts.bpffs, root: facts.root },
    tools: Object.fromEntries(Object.entries(facts.tools).map(([k, v]) => [k, v.path ? (v.version?.join('.') ?? 'present') : 'missing'])),
    features: FEATURES.map((f) => {
      const v = f.requires(facts);
      const d = f.decide(facts, { ...DEFAULT_DATAPATH, podDevice: 'auto' }, '-');
      return { id: f.id, title: f.title, supported: v.ok, reason: v.ok ? undefined : v.reason, withDefaults: `${d.status}: ${d.detail}` };
    }),
    checks: CHECKS.map((c) => {
      const v = c.requires({ facts });
      return { id: c.id, title: c.title, supported: v.ok, reason: v.ok ? undefined : v.reason, proves: c.proves };
    }),
  };
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('doctor')
    .description('show the kernel and tool facts of this machine and, for every datapath feature and check, whether it can run here and if not why')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const r = doctorReport(await probeLocal(new HostExec()));
      if (opts.json) return (process.stdout.write(JSON.stringify(r, null, 2) + '\n'), exit(0));
      const out = [
        `kernel ${r.kernel.release} (${r.kernel.arch}), config from ${r.kernel.config}, BTF ${r.kernel.btf ? 'yes' : 'no'}, bpffs ${r.kernel.bpffs ? 'mounted' : 'NOT mounted'}, root ${r.kernel.root ? 'yes' : 'no'}`,
        `tools: ${Object.entries(r.tools).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        '',
        table(['FEATURE', 'HERE', 'WITH DEFAULT PROFILE / WHY NOT'], r.features.map((f) => [f.id, f.supported ? 'yes' : 'no', f.supported ? f.withDefaults : `${f.reason} (${f.withDefaults})`])),
        '',
        table(['CHECK', 'HERE', 'WHY NOT / WHAT IT PROVES'], r.checks.map((c) => [c.id, c.supported ? 'yes' : 'no', c.supported ? c.proves : c.reason!])),
      ];
      process.stdout.write(out.join('\n') + '\n');
      exit(0);
    });
}
