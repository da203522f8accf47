import type { Command } from 'commander';
import { changeRunningLab } from './live.js';
import { guarded } from './output.js';

/**
 * `lab bw set`: validate against the lab state (nothing touched when bad), write the pod's
 * entry into its node's EDT maps and read it back, then keep the new rate in lab.json.
 */
async function setRate(name: string, podArg: string, rate: string, quiet?: boolean): Promise<string> {
  const { planRateChange, applyRateChange, labWithRate, describeChange } = await import('../datapath/bwm/live.js');
  const t0 = performance.now();
  const { plan: change, result: entry } = await changeRunningLab(name, 'lab bw set', quiet, {
    plan: (state) => planRateChange(state.lab, state.decisions, podArg, rate),
    apply: (ctx, c) => applyRateChange(ctx, c),
    record: (now, c) => ({ ...now, lab: labWithRate(now.lab, c) }),
  });
  const kernel = entry ? `edt_rates[${entry.id}] = ${entry.bytesPerSec} B/s` : `no edt_rates entry for id ${change.id}`;
  return `lab ${name}: ${describeChange(change)} (${kernel}; ${(performance.now() - t0).toFixed(0)} ms)`;
}

export function register(program: Command, exit: (code: number) => void): void {
  const run = guarded(exit);
  const bw = program.command('bw').description("a running lab's pod egress rates (the bandwidth manager's EDT maps)");
  bw.command('set')
    .description("set a pod's egress rate live, like a changed kubernetes.io/egress-bandwidth annotation; 0 or none removes the limit")
    .argument('<lab>', 'lab name')
    .argument('<pod>', 'pod (node/pod when the name is on several nodes)')
    .argument('<rate>', 'a Kubernetes quantity in bit/s (50M, 1.5Gi, 5e7), or 0 / none for no limit')
    .option('-q, --quiet', 'no progress lines')
    .action((lab: string, pod: string, rate: string, o: { quiet?: boolean }) =>
      run(async () => {
        process.stdout.write(`${await setRate(lab, pod, rate, o.quiet)}\n`);
      })(),
    );
}
