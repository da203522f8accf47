import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { and, assign, enqueueActions, fromPromise, setup } from 'xstate';
import { LabError } from '../errors.js';
import type { CheckResult } from '../checks/check.js';
import type { Lab } from '../topology/model.js';
import type { CheckId } from '../topology/schema.js';
import { writeReports, type ReportPaths } from '../report/files.js';
import { labNameOf, writeFailureReports, type FailureInput, type LabStep } from '../report/failure.js';
import { inStep } from '../exec/failpoint.js';
import { quiet, withSignal, type LabContext } from './context.js';
import { nodeMachine, type NodeOutput } from './node-machine.js';
import { setPhase } from './labstate.js';
import { attach, probe, provision, runChecks, validate, type Probed } from './steps.js';
import { teardownLab, type TeardownResult } from './teardown.js';
import { defaultReportDir } from '../report/where.js';

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
  /** Run the checks this many times on the one lab (flake rates); 1 when not given. */
  repeat?: number;
  reportDir?: string;
  progress: (msg: string) => void;
}

export interface LabOutput {
  lab?: Lab;
  probed?: Probed;
  /** Every check result, of every run with --repeat. */
  results?: CheckResult[];
  /** The results of each run, in order (one run without --repeat). */
  runs?: CheckResult[][];
  reports?: ReportPaths;
  teardown?: TeardownResult;
  error?: unknown;
  /** The step that failed (with error), else the last one entered. */
  step?: LabStep;
  /** The node whose wire or deploy step failed first. */
  failedNode?: string;
}

interface Ctx extends LabOutput {
  input: LabInput;
  ctx?: LabContext;
  /** Node machines (children) still wiring or deploying. */
  pendingNodes: string[];
}

/** In `lab check` the lab is not ours to remove: end failed; otherwise tear it down. Both report the failure first. */
const endOrTearDown = <A extends 'recordError' | 'interrupt'>(actions: A) =>
  [
    { guard: 'isCheckMode', target: 'failing', actions },
    { target: 'reportingFailure', actions },
  ] as const;

const at = (step: LabStep) => ({ type: 'at', params: { step } }) as const;

const errorOf = ({ event }: { event: unknown }) => (event as { error?: unknown }).error;
const childId = (node: string) => `node:${node}`;
/** Where a run's snapshots go: <report dir>/snapshots, one folder per run with --repeat. */
const snapshotsOf = (context: Ctx) => resolve(context.input.reportDir ?? defaultReportDir(context.lab!.name), 'snapshots');
const snapshotDirOf = (context: Ctx): string =>
  (context.input.repeat ?? 1) > 1 ? join(snapshotsOf(context), `run-${(context.runs?.length ?? 0) + 1}`) : snapshotsOf(context);

/** What the failure report knows: the further the lab got, the more. */
const failureInput = ({ context }: { context: Ctx }): Omit<FailureInput, 'name'> & { name?: string } => ({
  file: context.input.file,
  name: context.lab?.name ?? context.input.name,
  lab: context.lab,
  probed: context.ctx ?? context.probed,
  step: context.step ?? 'validate',
  node: context.failedNode,
  error: context.error,
  results: context.results ?? context.runs?.flat(),
  dir: context.input.reportDir,
});
const nodeOutput = ({ event }: { event: unknown }) => (event as { output?: NodeOutput }).output;

/**
 * A lab's life: validate → probe → provision → deploy (node machines: wire → deploy)
 * → check (N times with --repeat) → report → tear down. Every failure after provisioning
 * starts, and every INTERRUPT, goes through teardown; `up` stops before checks and leaves
 * the lab up. Every failure first writes reports naming the step (failing, reportingFailure).
 */
export const labMachine = setup({
  types: { input: {} as LabInput, context: {} as Ctx, events: {} as { type: 'INTERRUPT' }, output: {} as LabOutput },
  actors: {
    validate: fromPromise<Lab, { file: string; kernel?: string }>(({ input }) => validate(input.file, input.kernel)),
    probe: fromPromise<Probed, { lab: Lab }>(({ input, signal }) => inStep('probe', () => probe(input.lab, signal))),
    provision: fromPromise<LabContext, { lab: Lab; probed: Probed; progress: (m: string) => void }>(({ input, signal }) =>
      inStep('provision', () => provision(input.lab, input.probed, quiet(signal), input.progress)),
    ),
    node: nodeMachine,
    check: fromPromise<CheckResult[], { ctx: LabContext; only?: CheckId[]; snapshots: string; snapshotDir: string; first: boolean }>(
      async ({ input, signal }) => {
        // Snapshots of an earlier run into the same report dir would read as this run's.
        if (input.first) await rm(input.snapshots, { recursive: true, force: true });
        return inStep('check', () => runChecks(withSignal(input.ctx, signal), input.only, input.snapshotDir));
      },
    ),
    report: fromPromise<ReportPaths, { ctx: LabContext; results: CheckResult[]; runs?: CheckResult[][]; dir?: string }>(({ input }) =>
      inStep('report', () => writeReports(input.ctx, input.results, input.dir, input.runs)),
    ),
    attach: fromPromise<{ ctx: LabContext }, { name: string; progress: (m: string) => void }>(({ input, signal }) =>
      inStep('attach', () => attach(input.name, signal, input.progress)),
    ),
    teardown: fromPromise<TeardownResult, { name: string; progress: (m: string) => void }>(({ input }) =>
      teardownLab(input.name, input.progress),
    ),
    markUp: fromPromise<void, { name: string }>(async ({ input }) => setPhase(input.name, 'up')),
    // A report of where the lab failed; a report that cannot be written must not hide the failure itself.
    failureReport: fromPromise<ReportPaths | undefined, Omit<FailureInput, 'name'> & { name?: string }>(async ({ input }) => {
      const name = input.name ?? (input.file ? await labNameOf(input.file).catch(() => 'lab') : 'lab');
      return writeFailureReports({ ...input, name }).catch(() => undefined);
    }),
  },
  actions: {
    recordError: assign({ error: errorOf }),
    at: assign((_, params: { step: LabStep }) => ({ step: params.step })),
    recordFailureReport: assign({ reports: ({ context, event }) => (event as { output?: ReportPaths }).output ?? context.reports }),
    // Leaving the state stops its invoked actor, which aborts that actor's signal and so
    // kills the commands it is running: no machine-wide controller is needed.
    interrupt: assign(({ context }) => ({ error: context.error ?? new LabError('E_INTERRUPTED', 'interrupted') })),
    spawnNodes: enqueueActions(({ context, enqueue }) => {
      for (const node of context.ctx!.lab.nodes) enqueue.spawnChild('node', { id: childId(node.name), input: { ctx: context.ctx!, node } });
    }),
    stopNodes: enqueueActions(({ context, enqueue }) => {
      for (const node of context.pendingNodes) enqueue.stopChild(childId(node));
    }),
    nodeDone: assign(({ context, event }) => {
      const out = nodeOutput({ event });
      const first = context.error === undefined && out?.error !== undefined;
      return {
        pendingNodes: context.pendingNodes.filter((n) => n !== out?.node),
        error: context.error ?? out?.error,
        ...(first ? { step: out?.step ?? context.step, failedNode: out?.node } : {}),
      };
    }),
  },
  guards: {
    isCheckMode: ({ context }) => context.input.mode === 'check',
    moreRuns: ({ context }) => (context.runs?.length ?? 0) + 1 < (context.input.repeat ?? 1),
    isUpMode: ({ context }) => context.input.mode === 'up',
    allNodesDone: ({ context }) => context.pendingNodes.length === 0,
    hasError: ({ context }) => context.error !== undefined,
    isNameTaken: ({ event }) => {
      const error = (event as { error?: unknown }).error;
      return error instanceof LabError && error.code === 'E_LAB_EXISTS';
    },
  },
}).createMachine({
  id: 'lab',
  context: ({ input }) => ({ input, pendingNodes: [] }),
  initial: 'start',
  states: {
    start: { always: [{ guard: 'isCheckMode', target: 'attaching' }, { target: 'validating' }] },
    validating: {
      entry: [at('validate'), ({ context }) => context.input.progress(`validate ${context.input.file}`)],
      invoke: {
        src: 'validate',
        input: ({ context }) => ({ file: context.input.file!, kernel: context.input.kernel }),
        onDone: { target: 'probing', actions: assign({ lab: ({ event }) => event.output }) },
        onError: { target: 'failing', actions: 'recordError' },
      },
      on: { INTERRUPT: { target: 'failing', actions: 'interrupt' } },
    },
    probing: {
      entry: [at('probe'), ({ context }) => context.input.progress(`probe the ${context.lab!.backend} backend`)],
      invoke: {
        src: 'probe',
        input: ({ context }) => ({ lab: context.lab! }),
        onDone: { target: 'provisioning', actions: assign({ probed: ({ event }) => event.output }) },
        onError: { target: 'failing', actions: 'recordError' },
      },
      on: { INTERRUPT: { target: 'failing', actions: 'interrupt' } },
    },
    provisioning: {
      entry: at('provision'),
      invoke: {
        src: 'provision',
        input: ({ context }) => ({ lab: context.lab!, probed: context.probed!, progress: context.input.progress }),
        onDone: {
          target: 'deploying',
          actions: assign({ ctx: ({ event }) => event.output, pendingNodes: ({ event }) => event.output.lab.nodes.map((n) => n.name) }),
        },
        // A name taken by another lab: nothing of ours exists, and its objects are not ours to remove.
        onError: [
          { guard: 'isNameTaken', target: 'failing', actions: 'recordError' },
          { target: 'reportingFailure', actions: 'recordError' },
        ],
      },
      on: { INTERRUPT: { target: 'reportingFailure', actions: 'interrupt' } },
    },
    // One node machine per node, spawned as children; the first failure stops the others.
    deploying: {
      entry: [at('deploy'), 'spawnNodes'],
      exit: 'stopNodes',
      always: [
        { guard: 'hasError', target: 'reportingFailure' },
        { guard: and(['allNodesDone', 'isUpMode']), target: 'markingUp' },
        { guard: 'allNodesDone', target: 'checking' },
      ],
      on: {
        'xstate.done.actor.*': { actions: 'nodeDone' },
        'xstate.error.actor.*': { actions: 'recordError' },
        INTERRUPT: { target: 'reportingFailure', actions: 'interrupt' },
      },
    },
    markingUp: {
      entry: at('mark-up'),
      invoke: {
        src: 'markUp',
        input: ({ context }) => ({ name: context.lab!.name }),
        onDone: 'done',
        onError: { target: 'reportingFailure', actions: 'recordError' },
      },
    },
    attaching: {
      entry: at('attach'),
      invoke: {
        src: 'attach',
        input: ({ context }) => ({ name: context.input.name!, progress: context.input.progress }),
        onDone: { target: 'checking', actions: assign({ ctx: ({ event }) => event.output.ctx, lab: ({ event }) => event.output.ctx.lab }) },
        onError: { target: 'failing', actions: 'recordError' },
      },
      on: { INTERRUPT: { target: 'failing', actions: 'interrupt' } },
    },
    // With --repeat N the state is entered N times on the one lab; each run's results are kept.
    checking: {
      entry: [
        at('check'),
        ({ context }) =>
          (context.input.repeat ?? 1) > 1 && context.input.progress(`run ${(context.runs?.length ?? 0) + 1} of ${context.input.repeat}`),
      ],
      invoke: {
        src: 'check',
        input: ({ context }) => ({
          ctx: context.ctx!,
          only: context.input.only,
          snapshots: snapshotsOf(context),
          snapshotDir: snapshotDirOf(context),
          first: !context.runs?.length,
        }),
        onDone: [
          {
            guard: 'moreRuns',
            target: 'checking',
            reenter: true,
            actions: assign({ runs: ({ context, event }) => [...(context.runs ?? []), event.output] }),
          },
          {
            target: 'reporting',
            actions: assign(({ context, event }) => {
              const runs = [...(context.runs ?? []), event.output];
              return { runs, results: runs.flat() };
            }),
          },
        ],
        onError: endOrTearDown('recordError'),
      },
      on: {
        INTERRUPT: endOrTearDown('interrupt'),
      },
    },
    reporting: {
      entry: at('report'),
      invoke: {
        src: 'report',
        input: ({ context }) => ({ ctx: context.ctx!, results: context.results!, runs: context.runs, dir: context.input.reportDir }),
        onDone: [
          { guard: 'isCheckMode', target: 'done', actions: assign({ reports: ({ event }) => event.output }) },
          { target: 'tearingDown', actions: assign({ reports: ({ event }) => event.output }) },
        ],
        onError: endOrTearDown('recordError'),
      },
      on: {
        INTERRUPT: endOrTearDown('interrupt'),
      },
    },
    // Reports of where the lab failed, written before teardown removes what they show (a VM's console log).
    reportingFailure: {
      invoke: {
        src: 'failureReport',
        input: failureInput,
        onDone: { target: 'tearingDown', actions: 'recordFailureReport' },
        onError: 'tearingDown',
      },
    },
    failing: {
      invoke: {
        src: 'failureReport',
        input: failureInput,
        onDone: { target: 'failed', actions: 'recordFailureReport' },
        onError: 'failed',
      },
    },
    tearingDown: {
      entry: ({ context }) => context.input.progress(`tear down lab ${context.lab!.name}`),
      // A second interrupt must not stop the teardown half way: it is ignored here.
      invoke: {
        src: 'teardown',
        input: ({ context }) => ({ name: context.lab!.name, progress: context.input.progress }),
        onDone: [
          { guard: ({ context }) => !!context.error, target: 'failed', actions: assign({ teardown: ({ event }) => event.output }) },
          { target: 'done', actions: assign({ teardown: ({ event }) => event.output }) },
        ],
        onError: {
          target: 'failed',
          actions: assign({ error: ({ context, event }) => context.error ?? (event as { error?: unknown }).error }),
        },
      },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({
    lab: context.lab,
    probed: context.probed,
    results: context.results,
    runs: context.runs,
    reports: context.reports,
    teardown: context.teardown,
    error: context.error,
    step: context.step,
    failedNode: context.failedNode,
  }),
});
