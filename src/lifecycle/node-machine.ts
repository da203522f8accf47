import { assign, fromPromise, setup } from 'xstate';
import type { LabContext } from '../backends/backend.js';
import type { Decision } from '../datapath/feature.js';
import type { LabNode } from '../topology/model.js';
import { deployNode, wireNode } from './steps.js';

export interface NodeInput {
  ctx: LabContext;
  node: LabNode;
  decisions: Decision[];
}

/** One node's life after its namespaces exist: wire (addresses, routes, bottleneck) → deploy (datapath). */
export const nodeMachine = setup({
  types: {
    input: {} as NodeInput,
    context: {} as NodeInput & { error?: unknown },
    output: {} as { node: string; error?: unknown },
  },
  actors: {
    wire: fromPromise<void, NodeInput>(({ input }) => wireNode(input.ctx, input.node)),
    deploy: fromPromise<void, NodeInput>(({ input }) => deployNode(input.ctx, input.node, input.decisions)),
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
      invoke: { src: 'wire', input: ({ context }) => context, onDone: 'deploying', onError: { target: 'failed', actions: 'recordError' } },
    },
    deploying: {
      entry: ({ context }) => context.ctx.progress(`node ${context.node.name}: deploying the datapath`),
      invoke: { src: 'deploy', input: ({ context }) => context, onDone: 'ready', onError: { target: 'failed', actions: 'recordError' } },
    },
    ready: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ node: context.node.name, error: context.error }),
});
