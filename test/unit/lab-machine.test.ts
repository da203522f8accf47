import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise, waitFor } from 'xstate';
import { LabError } from '../../src/errors.js';
import { labMachine, type LabInput } from '../../src/lifecycle/lab-machine.js';
import { drive } from '../../src/cli/drive.js';
import { nodeMachine, type NodeInput } from '../../src/lifecycle/node-machine.js';

const fakeLab = {
  name: 'm',
  file: 'm.yaml',
  backend: 'local',
  families: ['ipv4'],
  nodes: [
    { name: 'n1', pods: [] },
    { name: 'n2', pods: [] },
  ],
  peers: [],
  links: [],
  checks: [],
};
type NodeIn = { node: { name: string } };

// drive() records machine states under the state dir (the dashboard follows them): a private one here.
const savedStateDir = process.env.DPL_STATE_DIR;
let stateDir = '';
beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'dpl-unit-state-'));
  process.env.DPL_STATE_DIR = stateDir;
});
afterAll(() => {
  if (savedStateDir === undefined) delete process.env.DPL_STATE_DIR;
  else process.env.DPL_STATE_DIR = savedStateDir;
  rmSync(stateDir, { recursive: true, force: true });
});
const pass = { id: 'tso-probe', title: 't', status: 'pass', reason: 'ok', metrics: {}, evidence: [], ms: 1 };

/** The lab machine with every side effect replaced by a recorder. */
function harness(over: Record<string, (calls: string[], input: NodeIn, signal: AbortSignal) => unknown> = {}) {
  const calls: string[] = [];
  const step = (name: string, value: unknown) =>
    fromPromise(async ({ input, signal }: { input: NodeIn; signal: AbortSignal }) => {
      calls.push(name);
      return over[name] ? over[name](calls, input, signal) : value;
    });
  const machine = labMachine.provide({
    actors: {
      validate: step('validate', fakeLab),
      probe: step('probe', { decisions: [] }),
      provision: step('provision', { lab: fakeLab }),
      // Node machines are children: each ends with its output (node name, error).
      node: fromPromise(async ({ input, signal }: { input: NodeIn; signal: AbortSignal }) => {
        calls.push(`node ${input.node.name}`);
        if (over.node) return over.node(calls, input, signal);
        return { node: input.node.name };
      }),
      check: step('check', [pass]),
      report: step('report', { dir: '/r', json: '/r/report.json', junit: '/r/junit.xml' }),
      attach: step('attach', { ctx: { lab: fakeLab } }),
      teardown: step('teardown', { removed: 3, left: [] }),
      markUp: step('markUp', undefined),
    } as never,
  });
  return { machine, calls };
}
const input = (mode: LabInput['mode']): LabInput => ({ mode, file: 'm.yaml', name: 'm', progress: () => {} });

describe('lab machine', () => {
  it('run: validate → probe → provision → a child per node → check → report → teardown', async () => {
    const { machine, calls } = harness();
    const out = await toPromise(createActor(machine, { input: input('run') }).start());
    expect(calls).toEqual(['validate', 'probe', 'provision', 'node n1', 'node n2', 'check', 'report', 'teardown']);
    expect(out.error).toBeUndefined();
    expect(out.results).toEqual([pass]);
  });

  it('a node that fails stops the other nodes (their own signal aborts), then teardown', async () => {
    let otherAborted = false;
    const { machine, calls } = harness({
      node: (_c, { node }, signal) =>
        node.name === 'n1'
          ? { node: 'n1', error: new Error('wire failed') }
          : new Promise((resolve) =>
              signal.addEventListener('abort', () => {
                otherAborted = true;
                resolve({ node: 'n2' });
              }),
            ),
    });
    const actor = createActor(machine, { input: input('run') }).start();
    const out = await toPromise(actor);
    expect(calls).toEqual(['validate', 'probe', 'provision', 'node n1', 'node n2', 'teardown']);
    expect(otherAborted).toBe(true);
    expect(String(out.error)).toContain('wire failed');
    expect(actor.getSnapshot().value).toBe('failed');
  });

  it('a bad topology fails before anything exists: no teardown', async () => {
    const { machine, calls } = harness({ validate: () => Promise.reject(new LabError('E_TOPOLOGY', 'bad')) });
    const out = await toPromise(createActor(machine, { input: input('run') }).start());
    expect(calls).toEqual(['validate']);
    expect((out.error as LabError).code).toBe('E_TOPOLOGY');
  });

  it('SIGINT to the process (drive, as the CLI runs it) aborts the running check through its own signal and tears down', async () => {
    let aborted = false;
    let started!: () => void;
    const checking = new Promise<void>((r) => (started = r));
    const { machine, calls } = harness({
      check: (_c, _i, signal) =>
        new Promise((_, reject) => {
          started();
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
    });
    const listeners = process.listenerCount('SIGINT');
    const running = drive({ mode: 'run', file: 'm.yaml' }, { quiet: true }, machine);
    await checking;
    process.kill(process.pid, 'SIGINT');
    const { code, out } = await running;
    expect(aborted).toBe(true);
    expect(calls.at(-1)).toBe('teardown');
    expect((out.error as LabError).code).toBe('E_INTERRUPTED');
    expect(code).toBe(130);
    expect(process.listenerCount('SIGINT')).toBe(listeners);
  });

  it('a second INTERRUPT during teardown does not stop it', async () => {
    let release!: () => void;
    const { machine } = harness({ teardown: () => new Promise((r) => (release = () => r({ removed: 1, left: [] }))) });
    const actor = createActor(machine, { input: input('run') }).start();
    await waitFor(actor, (s) => s.matches('tearingDown'));
    actor.send({ type: 'INTERRUPT' });
    expect(actor.getSnapshot().matches('tearingDown')).toBe(true);
    release();
    const out = await toPromise(actor);
    expect(out.teardown).toEqual({ removed: 1, left: [] });
  });

  it('up: stops after deploy, marks the lab up, no checks, no teardown', async () => {
    const { machine, calls } = harness();
    await toPromise(createActor(machine, { input: input('up') }).start());
    expect(calls).toEqual(['validate', 'probe', 'provision', 'node n1', 'node n2', 'markUp']);
  });

  it('check: attaches to a running lab, checks and reports, leaves it up', async () => {
    const { machine, calls } = harness({ check: () => Promise.reject(new Error('boom')) });
    const out = await toPromise(createActor(machine, { input: input('check') }).start());
    expect(calls).toEqual(['attach', 'check']);
    expect(String(out.error)).toContain('boom');
  });
});

describe('node machine', () => {
  it('wire failure ends the node failed without deploying', async () => {
    const calls: string[] = [];
    const m = nodeMachine.provide({
      actors: {
        wire: fromPromise<void, NodeInput>(async () => {
          calls.push('wire');
          throw new Error('no such device');
        }),
        deploy: fromPromise<void, NodeInput>(async () => void calls.push('deploy')),
      },
    });
    const ctx = { progress: () => {} } as never;
    const out = await toPromise(createActor(m, { input: { ctx, node: { name: 'n', pods: [] } as never } }).start());
    expect(calls).toEqual(['wire']);
    expect(String(out.error)).toContain('no such device');
  });
});
