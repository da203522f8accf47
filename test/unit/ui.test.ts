import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HtmlValidate } from 'html-validate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, createActor, createMachine, setup, toPromise } from 'xstate';
import { Journal } from '../../src/lifecycle/journal.js';
import { writeLabState } from '../../src/lifecycle/labstate.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import { appendState, eventsFile, flatValue, type MachineState, stateRecorder } from '../../src/ui/inspect.js';
import { pageAssets } from '../../src/report/assets.js';
import { dashboardHtml } from '../../src/ui/page.js';
import { startUi, tokenOk, type UiServer } from '../../src/ui/server.js';

/** GET a path of the server; the status and body. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    })
      .on('error', fail)
      .end();
  });
}

/** Read server-sent events from /events until `enough` says so (or the deadline passes). */
function events(port: number, token: string, enough: (evs: { event: string; data: string }[]) => boolean, ms = 10_000) {
  return new Promise<{ event: string; data: string }[]>((done, fail) => {
    const evs: { event: string; data: string }[] = [];
    const req = request({ host: '127.0.0.1', port, path: `/events?token=${token}` }, (res) => {
      let buf = '';
      res.on('data', (d) => {
        buf += d;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          evs.push({ event, data: /^data: (.*)$/m.exec(block)?.[1] ?? '' });
        }
        if (enough(evs)) {
          clearTimeout(timer);
          req.destroy();
          done(evs);
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      fail(new Error(`not enough events within ${ms} ms: ${JSON.stringify(evs).slice(0, 500)}`));
    }, ms);
    req.on('error', () => {});
    req.end();
  });
}

const states = (evs: { event: string; data: string }[]) =>
  evs.filter((e) => e.event === 'state').map((e) => JSON.parse(e.data) as MachineState);

describe('machine states from xstate inspection', () => {
  it('records each machine state change once, holding those seen before the lab has a name', async () => {
    const lines: [string, MachineState, boolean][] = [];
    const child = createMachine({ id: 'node', initial: 'wiring', states: { wiring: { after: { 1: 'ready' } }, ready: { type: 'final' } } });
    const lab = setup({ actors: { child }, types: { context: {} as { lab?: { name: string } } } }).createMachine({
      id: 'lab',
      context: {},
      initial: 'validating',
      states: {
        validating: { after: { 1: { target: 'deploying', actions: assign({ lab: { name: 'rep-u1' } }) } } },
        deploying: { invoke: { id: 'node:n1', src: 'child', onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const actor = createActor(lab, {
      inspect: stateRecorder(
        'run',
        (l, s, first) => lines.push([l, s, first]),
        () => false,
      ),
    });
    actor.start();
    await toPromise(actor);
    expect(lines.map(([l, s]) => `${l} ${s.actor} ${s.value} ${s.status}`)).toEqual([
      'rep-u1 lab validating active',
      // xstate reports a child's snapshot before its parent's.
      'rep-u1 node:n1 wiring active',
      'rep-u1 lab deploying active',
      'rep-u1 lab done done',
      'rep-u1 node:n1 ready done',
    ]);
    // A new run starts the lab's file afresh; only its first line truncates.
    expect(lines.map(([, , first]) => first)).toEqual([true, false, false, false, false]);
    expect(flatValue({ deploying: { nodes: 'waiting' } })).toBe('deploying.nodes.waiting');
    // An up or run of a lab that is already up (refused) records nothing; a check of it records as usual.
    const refused: string[] = [];
    for (const mode of ['up', 'run', 'check'] as const) {
      const again = createActor(lab, {
        inspect: stateRecorder(
          mode,
          (_l, st) => refused.push(`${mode} ${st.actor} ${st.value}`),
          () => true,
        ),
      });
      again.start();
      await toPromise(again);
    }
    expect(refused).toEqual(lines.map(([, st]) => `check ${st.actor} ${st.value}`));
  });
});

describe('lab ui server', () => {
  let ui: UiServer;
  const prev = process.env.DPL_STATE_DIR;
  const root = mkdtempSync(join(tmpdir(), 'rep-ui-state-'));
  const line = (value: string, status = 'active'): MachineState => ({ t: Date.now(), lab: 'rep-u2', actor: 'lab', value, status, pid: 1 });

  beforeAll(async () => {
    process.env.DPL_STATE_DIR = root;
    // A lab as `lab up` leaves it in the state dir: a journal and its state file with the resolved lab.
    const text = readFileSync(new URL('../../topologies/quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, 'name: rep-u2');
    const loaded = parseTopology(text, 'quickstart.yaml');
    const lab = loaded.ok ? resolve(loaded.value) : undefined;
    if (!lab?.ok) throw new Error('quickstart did not resolve');
    Journal.create('rep-u2');
    writeLabState({
      name: 'rep-u2',
      file: 'quickstart.yaml',
      backend: 'local',
      pid: process.pid,
      createdAt: new Date().toISOString(),
      phase: 'up',
      lab: lab.value,
      decisions: [],
      bpfDir: '/nonexistent',
      objDir: '/nonexistent',
    });
    appendState('rep-u2', line('validating'), true);
    appendState('rep-u2', line('probing'), false);
    ui = await startUi();
  });
  afterAll(async () => {
    await ui?.close();
    if (prev === undefined) delete process.env.DPL_STATE_DIR;
    else process.env.DPL_STATE_DIR = prev;
  });

  it('answers 403 to a request without its token, or with another, on every path', async () => {
    for (const path of ['/', '/api/labs', '/events', '/nothing', '/?token=', `/?token=${ui.token}x`, `/?token=${ui.token.slice(1)}`])
      expect((await get(ui.port, path)).status, path).toBe(403);
    expect(tokenOk(null, ui.token)).toBe(false);
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=/);
    expect((await get(ui.port, `/?token=${ui.token}`)).status).toBe(200);
    expect((await get(ui.port, `/nothing?token=${ui.token}`)).status).toBe(404);
  });
  it('lists the labs of the state dir with their topology graph', async () => {
    const r = await get(ui.port, `/api/labs?token=${ui.token}`);
    const labs = JSON.parse(r.body) as { name: string; present: boolean; phase: string; nodes: string[]; svg?: string }[];
    expect(labs.map((l) => [l.name, l.present, l.phase, l.nodes])).toEqual([['rep-u2', true, 'up', ['node1']]]);
    expect(labs[0].svg).toContain('pod client');
  });
  it('streams the states recorded so far, then each new one, none twice', async () => {
    const first = await events(ui.port, ui.token, (evs) => states(evs).length >= 2);
    expect(first[0].event).toBe('labs');
    expect(states(first).map((s) => s.value)).toEqual(['validating', 'probing']);
    const live = events(ui.port, ui.token, (evs) => states(evs).some((s) => s.value === 'done'));
    // Appended after the listener connected: it must arrive on the stream.
    setTimeout(() => {
      appendState('rep-u2', line('provisioning'), false);
      appendFileSync(eventsFile('rep-u2'), `${JSON.stringify(line('done', 'done'))}\n`);
    }, 300);
    expect(states(await live).map((s) => s.value)).toEqual(['validating', 'probing', 'provisioning', 'done']);
  });
});

describe('dashboard page', () => {
  it('validates (html-validate, recommended rules)', async () => {
    const res = await new HtmlValidate({ extends: ['html-validate:recommended'] }).validateString(dashboardHtml(await pageAssets()));
    expect(res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`))).toEqual([]);
  });
});
