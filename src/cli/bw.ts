import type { Command } from 'commander';
import { exitCodeFor, LabError } from '../errors.js';
import { knownLabs } from '../lifecycle/journal.js';
import { readLabState, writeLabState, type LabState } from '../lifecycle/labstate.js';
import { printError, progressLogger } from './output.js';
import { lock } from './svc.js';

/** The lab's state, if it is up; else a usage error naming the labs there are. */
function upState(name: string): LabState {
  const s = readLabState(name);
  if (!s) throw new LabError('E_LAB_UNKNOWN', `no lab named '${name}' is up`, `labs here: ${knownLabs().join(', ') || 'none'}`);
  if (s.phase !== 'up') throw new LabError('E_LAB_UNKNOWN', `lab '${name}' is ${s.phase}, not up`);
  return s;
}

/**
 * `lab bw set`: validate against the lab state (nothing touched when bad), write the pod's
 * entry into its node's EDT maps and read it back, then keep the new rate in lab.json.
 */
async function setRate(name: string, podArg: string, rate: string, quiet?: boolean): Promise<string> {
  const { planRateChange, applyRateChange, labWithRate, describeChange } = await import('../datapath/bwm/live.js');
  const first = upState(name);
  planRateChange(first.lab, first.decisions, podArg, rate);
  const unlock = lock(name, 'lab bw set');
  try {
    const state = upState(name);
    const change = planRateChange(state.lab, state.decisions, podArg, rate);
    const { attach } = await import('../lifecycle/steps.js');
    const t0 = performance.now();
    const { ctx } = await attach(name, new AbortController().signal, progressLogger(quiet));
    try {
      const entry = await applyRateChange(ctx, change);
      writeLabState({ ...state, lab: labWithRate(state.lab, change) });
      const kernel = entry ? `edt_rates[${entry.id}] = ${entry.bytesPerSec} B/s` : `no edt_rates entry for id ${change.id}`;
      return `lab ${name}: ${describeChange(change)} (${kernel}; ${(performance.now() - t0).toFixed(0)} ms)`;
    } finally {
      ctx.backend.close?.();
    }
  } finally {
    unlock();
  }
}

export function register(program: Command, exit: (code: number) => void): void {
  const bw = program.command('bw').description("a running lab's pod egress rates (the bandwidth manager's EDT maps)");
  bw.command('set')
    .description("set a pod's egress rate live, like a changed kubernetes.io/egress-bandwidth annotation; 0 or none removes the limit")
    .argument('<lab>', 'lab name')
    .argument('<pod>', 'pod (node/pod when the name is on several nodes)')
    .argument('<rate>', 'a Kubernetes quantity in bit/s (50M, 1.5Gi, 5e7), or 0 / none for no limit')
    .option('-q, --quiet', 'no progress lines')
    .action(async (lab: string, pod: string, rate: string, o: { quiet?: boolean }) => {
      try {
        process.stdout.write(`${await setRate(lab, pod, rate, o.quiet)}\n`);
      } catch (e) {
        printError(e);
        exit(exitCodeFor(e));
      }
    });
}
