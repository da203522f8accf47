import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise, waitFor } from 'xstate';
import { LabError } from '../../src/errors.js';
import { labMachine, type LabInput } from '../../src/lifecycle/lab-machine.js';
import { nodeMachine } from '../../src/lifecycle/node-machine.js';

const fakeLab = { name: 'm', file: 'm.yaml', backend: 'local', families: ['ipv4'], nodes: [], peers: [], links: [], checks: [] };
const pass = { id: 'tso-probe', title: 't', status: 'pass', reason: 'ok', metrics: {}, evidence: [], ms: 1 };

/** The lab machine with every side effect replaced by a recorder. */
function harness(over: Record<string, (calls: string[]) => unknown> = {}) {
  const calls: string[] = [];
  const step = (name: string, value: unknown) =>
    fromPromise(async () => {
      calls.push(name);
      return over[name] ? over[name](calls) : value;
    });
  const machine = labMachine.provide({
    actors: {
      validate: step('validate', fakeLab),
      probe: step('probe', { decisions: [] }),
      provision: step('provision', { lab: fakeLab }),
      nodes: step('nodes', undefined),
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
  it('run: validate → probe → provision → nodes → check → report → teardown', async () => {
    const { machine, calls } = harness();
    const out = await toPromise(createActor(machine, { input: input('run') }).start());
    expect(calls).toEqual(['validate', 'probe', 'provision', 'nodes', 'check', 'report', 'teardown']);
    expect(out.error).toBeUndefined();
    expect(out.results).toEqual([pass]);
  });

  it('a failure while deploying goes through teardown and ends failed', async () => {
    const { machine, calls } = harness({ nodes: () => Promise.reject(new Error('wire failed')) });
    const actor = createActor(machine, { input: input('run') }).start();
    const out = await toPromise(actor);
    expect(calls).toEqual(['validate', 'probe', 'provision', 'nodes', 'teardown']);
    expect(String(out.error)).toContain('wire failed');
    expect(actor.getSnapshot().value).toBe('failed');
  });

  it('a bad topology fails before anything exists: no teardown', async () => {
    const { machine, calls } = harness({ validate: () => Promise.reject(new LabError('E_TOPOLOGY', 'bad')) });
    const out = await toPromise(createActor(machine, { input: input('run') }).start());
    expect(calls).toEqual(['validate']);
    expect((out.error as LabError).code).toBe('E_TOPOLOGY');
  });

  it('INTERRUPT during checks aborts them and tears down', async () => {
    let aborted = false;
    const { machine, calls } = harness();
    const m = machine.provide({
      actors: {
        check: fromPromise(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('aborted')))))),
      } as never,
    });
    const actor = createActor(m, { input: input('run') }).start();
    await waitFor(actor, (s) => s.matches('checking'));
    actor.send({ type: 'INTERRUPT' });
    const out = await toPromise(actor);
    expect(aborted).toBe(true);
    expect(calls.at(-1)).toBe('teardown');
    expect((out.error as LabError).code).toBe('E_INTERRUPTED');
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
    expect(calls).toEqual(['validate', 'probe', 'provision', 'nodes', 'markUp']);
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
        wire: fromPromise(async () => (calls.push('wire'), Promise.reject(new Error('no such device')))),
        deploy: fromPromise(async () => void calls.push('deploy')),
      },
    });
    const ctx = { progress: () => {} } as never;
    const out = await toPromise(createActor(m, { input: { ctx, node: { name: 'n', pods: [] } as never, decisions: [] } }).start());
    expect(calls).toEqual(['wire']);
    expect(String(out.error)).toContain('no such device');
  });
});
