import { setMaxListeners } from 'node:events';
import { assign, createActor, fromPromise, setup, toPromise } from 'xstate';
import { LabError } from '../errors.js';
import type { LabContext } from '../backends/backend.js';
import type { CheckResult } from '../checks/check.js';
import type { Lab } from '../topology/model.js';
import type { CheckId } from '../topology/schema.js';
import { HostExec } from '../exec/exec.js';
import { writeReports, type ReportPaths } from '../report/files.js';
import { nodeMachine } from './node-machine.js';
import { setPhase } from './labstate.js';
import { attach, probe, provision, runChecks, validate, type Probed } from './steps.js';
import { teardownLab, type TeardownResult } from './teardown.js';

export type LabMode = 'run' | 'up' | 'check';

export interface LabInput {
  mode: LabMode;
  /** Topology file (run, up). */
  file?: string;
  /** Lab name (check). */
  name?: string;
  /** qemu: boot this catalogue kernel instead of the topology's. */
  kernel?: string;
  only?: CheckId[];
  reportDir?: string;
  progress: (msg: string) => void;
}

export interface LabOutput {
  lab?: Lab;
  probed?: Probed;
  results?: CheckResult[];
  reports?: ReportPaths;
  teardown?: TeardownResult;
  error?: unknown;
}

interface Ctx extends LabOutput {
  input: LabInput;
  /** Aborted on INTERRUPT: every running command of the lab is killed. */
  abort: AbortController;
  ctx?: LabContext;
}

const errorOf = ({ event }: { event: unknown }) => (event as { error?: unknown }).error;

/** Bring every node up in parallel, each through its own node machine. */
async function runNodes({ ctx, probed, signal }: { ctx: LabContext; probed: Probed; signal: AbortSignal }): Promise<void> {
  const actors = ctx.lab.nodes.map((node) => createActor(nodeMachine, { input: { ctx, node, decisions: probed.decisions } }));
  const stop = () => actors.forEach((a) => a.stop());
  signal.addEventListener('abort', stop, { once: true });
  try {
    const outs = await Promise.all(actors.map((a) => (a.start(), toPromise(a))));
    const failed = outs.find((o) => o.error);
    if (failed) throw failed.error;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * A lab's life: validate → probe → provision → deploy (node machines: wire → deploy)
 * → check → report → tear down. Every failure after provisioning starts, and every
 * INTERRUPT, goes through teardown; `up` stops before checks and leaves the lab up.
 */
export const labMachine = setup({
  types: { input: {} as LabInput, context: {} as Ctx, events: {} as { type: 'INTERRUPT' }, output: {} as LabOutput },
  actors: {
    validate: fromPromise<Lab, { file: string; kernel?: string }>(({ input }) => validate(input.file, input.kernel)),
    probe: fromPromise<Probed, { lab: Lab; signal: AbortSignal }>(({ input }) => probe(input.lab, input.signal)),
    provision: fromPromise<LabContext, { lab: Lab; probed: Probed; signal: AbortSignal; progress: (m: string) => void }>(({ input }) =>
      provision(input.lab, input.probed, input.signal, input.progress),
    ),
    nodes: fromPromise<void, { ctx: LabContext; probed: Probed; signal: AbortSignal }>(({ input }) => runNodes(input)),
    check: fromPromise<CheckResult[], { ctx: LabContext; only?: CheckId[] }>(({ input }) => runChecks(input.ctx, input.only)),
    report: fromPromise<ReportPaths, { ctx: LabContext; results: CheckResult[]; dir?: string; probed?: Probed }>(({ input }) => writeReports(input.ctx, input.results, input.dir)),
    attach: fromPromise<{ ctx: LabContext }, { name: string; signal: AbortSignal; progress: (m: string) => void }>(({ input }) => attach(input.name, input.signal, input.progress)),
    teardown: fromPromise<TeardownResult, { name: string; progress: (m: string) => void }>(({ input }) => teardownLab(input.name, new HostExec(), input.progress)),
    markUp: fromPromise<void, { name: string }>(async ({ input }) => setPhase(input.name, 'up')),
  },
  actions: {
    recordError: assign({ error: errorOf }),
    interrupt: assign(({ context }) => {
      context.abort.abort();
      return { error: context.error ?? new LabError('E_INTERRUPTED', 'interrupted') };
    }),
  },
  guards: {
    isCheckMode: ({ context }) => context.input.mode === 'check',
    isUpMode: ({ context }) => context.input.mode === 'up',
    isNameTaken: ({ event }) => {
      const error = (event as { error?: unknown }).error;
      return error instanceof LabError && error.code === 'E_LAB_EXISTS';
    },
  },
}).createMachine({
  id: 'lab',
  context: ({ input }) => {
    const abort = new AbortController();
    // Every running command listens on this signal; hundreds at once are expected.
    setMaxListeners(0, abort.signal);
    return { input, abort };
  },
  initial: 'start',
  states: {
    start: { always: [{ guard: 'isCheckMode', target: 'attaching' }, { target: 'validating' }] },
    validating: {
      entry: ({ context }) => context.input.progress(`validate ${context.input.file}`),
      invoke: { src: 'validate', input: ({ context }) => ({ file: context.input.file!, kernel: context.input.kernel }), onDone: { target: 'probing', actions: assign({ lab: ({ event }) => event.output }) }, onError: { target: 'failed', actions: 'recordError' } },
      on: { INTERRUPT: { target: 'failed', actions: 'interrupt' } },
    },
    probing: {
      entry: ({ context }) => context.input.progress(`probe the ${context.lab!.backend} backend`),
      invoke: { src: 'probe', input: ({ context }) => ({ lab: context.lab!, signal: context.abort.signal }), onDone: { target: 'provisioning', actions: assign({ probed: ({ event }) => event.output }) }, onError: { target: 'failed', actions: 'recordError' } },
      on: { INTERRUPT: { target: 'failed', actions: 'interrupt' } },
    },
    provisioning: {
      invoke: {
        src: 'provision',
        input: ({ context }) => ({ lab: context.lab!, probed: context.probed!, signal: context.abort.signal, progress: context.input.progress }),
        onDone: { target: 'deploying', actions: assign({ ctx: ({ event }) => event.output }) },
        // A name taken by another lab: nothing of ours exists, and its objects are not ours to remove.
        onError: [{ guard: 'isNameTaken', target: 'failed', actions: 'recordError' }, { target: 'tearingDown', actions: 'recordError' }],
      },
      on: { INTERRUPT: { target: 'tearingDown', actions: 'interrupt' } },
    },
    deploying: {
      invoke: {
        src: 'nodes',
        input: ({ context }) => ({ ctx: context.ctx!, probed: context.probed!, signal: context.abort.signal }),
        onDone: [{ guard: 'isUpMode', target: 'markingUp' }, { target: 'checking' }],
        onError: { target: 'tearingDown', actions: 'recordError' },
      },
      on: { INTERRUPT: { target: 'tearingDown', actions: 'interrupt' } },
    },
    markingUp: {
      invoke: { src: 'markUp', input: ({ context }) => ({ name: context.lab!.name }), onDone: 'done', onError: { target: 'tearingDown', actions: 'recordError' } },
    },
    attaching: {
      invoke: {
        src: 'attach',
        input: ({ context }) => ({ name: context.input.name!, signal: context.abort.signal, progress: context.input.progress }),
        onDone: { target: 'checking', actions: assign({ ctx: ({ event }) => event.output.ctx, lab: ({ event }) => event.output.ctx.lab }) },
        onError: { target: 'failed', actions: 'recordError' },
      },
      on: { INTERRUPT: { target: 'failed', actions: 'interrupt' } },
    },
    checking: {
      invoke: {
        src: 'check',
        input: ({ context }) => ({ ctx: context.ctx!, only: context.input.only }),
        onDone: { target: 'reporting', actions: assign({ results: ({ event }) => event.output }) },
        onError: [{ guard: 'isCheckMode', target: 'failed', actions: 'recordError' }, { target: 'tearingDown', actions: 'recordError' }],
      },
      on: { INTERRUPT: [{ guard: 'isCheckMode', target: 'failed', actions: 'interrupt' }, { target: 'tearingDown', actions: 'interrupt' }] },
    },
    reporting: {
      invoke: {
        src: 'report',
        input: ({ context }) => ({ ctx: context.ctx!, results: context.results!, dir: context.input.reportDir, probed: context.probed }),
        onDone: [{ guard: 'isCheckMode', target: 'done', actions: assign({ reports: ({ event }) => event.output }) }, { target: 'tearingDown', actions: assign({ reports: ({ event }) => event.output }) }],
        onError: [{ guard: 'isCheckMode', target: 'failed', actions: 'recordError' }, { target: 'tearingDown', actions: 'recordError' }],
      },
      on: { INTERRUPT: [{ guard: 'isCheckMode', target: 'failed', actions: 'interrupt' }, { target: 'tearingDown', actions: 'interrupt' }] },
    },
    tearingDown: {
      entry: ({ context }) => context.input.progress(`tear down lab ${context.lab!.name}`),
      // A second interrupt must not stop the teardown half way: it is ignored here.
      invoke: {
        src: 'teardown',
        input: ({ context }) => ({ name: context.lab!.name, progress: context.input.progress }),
        onDone: [{ guard: ({ context }) => !!context.error, target: 'failed', actions: assign({ teardown: ({ event }) => event.output }) }, { target: 'done', actions: assign({ teardown: ({ event }) => event.output }) }],
        onError: { target: 'failed', actions: assign({ error: ({ context, event }) => context.error ?? (event as { error?: unknown }).error }) },
      },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ lab: context.lab, probed: context.probed, results: context.results, reports: context.reports, teardown: context.teardown, error: context.error }),
});
