import { assign, fromPromise, setup } from 'xstate';
import type { LabNode } from '../topology/model.js';
import { inStep } from '../exec/failpoint.js';
import { withSignal, type LabContext } from './context.js';
import { deployNode, wireNode } from './steps.js';

export interface NodeInput {
  ctx: LabContext;
  node: LabNode;
}

export interface NodeOutput {
  node: string;
  error?: unknown;
  /** The step that failed, with the error. */
  step?: 'wire' | 'deploy';
}

/**
 * One node's life after its namespaces exist: wire (addresses, routes, bottleneck) →
 * deploy (the datapath features). A child of the lab machine; stopping it (an
 * interrupt, another node's failure) aborts the running step's own signal.
 */
export const nodeMachine = setup({
  types: {
    input: {} as NodeInput,
    context: {} as NodeInput & { error?: unknown; step?: 'wire' | 'deploy' },
    output: {} as NodeOutput,
  },
  actors: {
    wire: fromPromise<void, NodeInput>(({ input, signal }) => inStep('wire', () => wireNode(withSignal(input.ctx, signal), input.node))),
    deploy: fromPromise<void, NodeInput>(({ input, signal }) =>
      inStep('deploy', () => deployNode(withSignal(input.ctx, signal), input.node)),
    ),
  },
  actions: {
    recordError: assign({ error: ({ event }) => (event as { error?: unknown }).error }),
  },
}).createMachine({
  id: 'node',
  context: ({ input }) => ({ ...input }),
  initial: 'wiring',
  states: {
    wiring: {
      entry: ({ context }) => context.ctx.progress(`node ${context.node.name}: wiring ${context.node.pods.length} pods`),
      invoke: {
        src: 'wire',
        input: ({ context }) => context,
        onDone: 'deploying',
        onError: { target: 'failed', actions: ['recordError', assign({ step: 'wire' as const })] },
      },
    },
    deploying: {
      entry: ({ context }) => context.ctx.progress(`node ${context.node.name}: deploying the datapath`),
      invoke: {
        src: 'deploy',
        input: ({ context }) => context,
        onDone: 'ready',
        onError: { target: 'failed', actions: ['recordError', assign({ step: 'deploy' as const })] },
      },
    },
    ready: { type: 'final', entry: ({ context }) => context.ctx.progress(`node ${context.node.name}: ready`) },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ node: context.node.name, error: context.error, step: context.step }),
});
