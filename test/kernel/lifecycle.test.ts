import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import { runArgv } from '../../src/exec/exec.js';
import { labMachine } from '../../src/lifecycle/lab-machine.js';
import { nodeMachine, type NodeInput } from '../../src/lifecycle/node-machine.js';
import { cli, quickstart, residue, topo, whenFlowRuns } from './helpers.js';

/** Resolves when the child's stderr shows `marker`, then runs `act` on it once. */
function when(marker: string, act: (child: { kill: (s: NodeJS.Signals) => void; pid?: number }) => void) {
  let done = false;
  return (stderr: string, child: { kill: (s: NodeJS.Signals) => void; pid?: number }) => {
    if (!done && stderr.includes(marker)) {
      done = true;
      act(child);
    }
  };
}

describe('teardown on failure, interrupt and crash', () => {
  it('SIGINT during a check tears everything down (exit 130), the iperf3 processes included', async () => {
    const r = await cli(['run', topo(quickstart('kt-int')), '--only', 'backpressure', '--report-dir', '/tmp/dpl-kt-int'], {
      onStderr: when('with bpf host routing', (c) => whenFlowRuns('kt-int', () => c.kill('SIGINT'))()),
    });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('SIGINT: stopping');
    expect(await residue('kt-int')).toEqual([]);
  });

  it('SIGTERM while namespaces are being wired tears down too', async () => {
    const r = await cli(['up', topo(quickstart('kt-term'))], { onStderr: when('wiring', (c) => c.kill('SIGTERM')) });
    expect(r.code).toBe(130);
    expect(await residue('kt-term')).toEqual([]);
  });

  it('kill -9 mid-check leaves a journal; lab down removes exactly what it names', async () => {
    let journalAtKill = '';
    const r = await cli(['run', topo(quickstart('kt-kill')), '--only', 'backpressure', '--report-dir', '/tmp/dpl-kt-kill'], {
      onStderr: when('with bpf host routing', (c) =>
        whenFlowRuns('kt-kill', () => {
          journalAtKill = readFileSync('/run/datapath-lab/kt-kill/journal.jsonl', 'utf8');
          c.kill('SIGKILL');
        })(),
      ),
    });
    expect(r.signal).toBe('SIGKILL');
    // The crash left the lab: namespaces, pins, and the iperf3 server it had started.
    expect(journalAtKill).toContain('"kind":"process"');
    expect((await residue('kt-kill')).length).toBeGreaterThan(3);
    const down = await cli(['down', 'kt-kill']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue('kt-kill')).toEqual([]);
  });

  it('a failure after provisioning tears down exactly what was created', async () => {
    // The real node machines wire their nodes; deploying the datapath then fails.
    const node = nodeMachine.provide({
      actors: { deploy: fromPromise<void, NodeInput>(async () => Promise.reject(new Error('deploy exploded'))) },
    });
    const machine = labMachine.provide({ actors: { node } });
    const out = await toPromise(
      createActor(machine, { input: { mode: 'run', file: topo(quickstart('kt-fail')), progress: () => {} } }).start(),
    );
    expect(String(out.error)).toContain('deploy exploded');
    expect(out.teardown?.removed).toBe(5); // the bpf pin dir and four namespaces
    expect(await residue('kt-fail')).toEqual([]);
  });

  it('two labs run side by side; taking one down leaves the other intact', async () => {
    const [a, b] = await Promise.all([cli(['up', topo(quickstart('kt-a')), '-q']), cli(['up', topo(quickstart('kt-b')), '-q'])]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    expect((await cli(['down', 'kt-a', '-q'])).code).toBe(0);
    expect(await residue('kt-a')).toEqual([]);
    const ns = (await runArgv(['ip', 'netns', 'list'])).stdout;
    expect(ns.match(/dpl-kt-b\./g)).toHaveLength(4);
    const check = await cli(['check', 'kt-b', '--only', 'tso-probe', '--report-dir', '/tmp/dpl-kt-b', '-q']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect((await cli(['down', 'kt-b', '-q'])).code).toBe(0);
    expect(await residue('kt-b')).toEqual([]);
  });
});
