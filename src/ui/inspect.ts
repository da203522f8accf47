import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InspectionEvent } from 'xstate';
import { knownLabs, stateRoot } from '../lifecycle/journal.js';
import type { FlowSampleEvent } from '../measure/flow.js';

/** One state of one machine of a lab, as the dashboard streams it. */
export interface MachineState {
  /** When the machine entered it (ms since the epoch, this machine's clock). */
  t: number;
  lab: string;
  /** 'lab' for the lab machine, 'node:NAME' for a node machine. */
  actor: string;
  /** The state, nested states joined with '.'. */
  value: string;
  /** xstate's snapshot status: active, done, error or stopped. */
  status: string;
  /** The CLI process that runs the machine. */
  pid: number;
}

/**
 * Where machine states are kept: beside the labs' directories, not in them, so a lab's
 * last states outlive its teardown (which removes its directory). knownLabs() ignores it.
 */
export const eventsDir = () => join(stateRoot(), '.events');
export const eventsFile = (lab: string) => join(eventsDir(), `${lab}.jsonl`);

/** A state value as one string: 'checking', or 'deploying.waiting' for nested states. */
export function flatValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object')
    return Object.entries(v)
      .map(([k, x]) => `${k}.${flatValue(x)}`)
      .join(',');
  return String(v);
}

type Snap = { value?: unknown; status?: string; context?: Record<string, unknown> };

/** The lab a snapshot belongs to: the lab machine knows it once validated, a node machine from its context. */
function labOf(s: Snap): string | undefined {
  const c = s.context as { lab?: { name?: string }; input?: { name?: string }; ctx?: { lab?: { name?: string } } } | undefined;
  return c?.lab?.name ?? c?.ctx?.lab?.name ?? c?.input?.name;
}

/**
 * An xstate inspect callback that appends every machine's state changes to the lab's
 * events file (fresh for `run` and `up`, appended for `check`). States seen before the
 * lab's name is known (validation) are held and written with the first that knows it. An up or
 * run of a lab that already has a journal records nothing (it will be refused, and must not
 * start the running lab's states afresh).
 * Writing never fails the lab: the dashboard is a spectator.
 */
export function stateRecorder(
  mode: 'run' | 'up' | 'check',
  write: (lab: string, line: MachineState, first: boolean) => void = appendState,
  taken: (lab: string) => boolean = (l) => knownLabs().includes(l),
) {
  const last = new Map<string, string>();
  const held: Omit<MachineState, 'lab'>[] = [];
  let lab: string | undefined;
  let first = true;
  let refused = false;
  return (ev: InspectionEvent): void => {
    if (ev.type !== '@xstate.snapshot' || refused) return;
    const snap = ev.snapshot as Snap;
    if (snap.value === undefined) return; // promise actors: their machine's state says it
    const actor = ev.actorRef.sessionId === ev.rootId ? 'lab' : String((ev.actorRef as { id?: string }).id ?? ev.actorRef.sessionId);
    const value = flatValue(snap.value);
    const status = snap.status ?? 'active';
    const key = `${value}|${status}`;
    if (last.get(actor) === key) return;
    last.set(actor, key);
    held.push({ t: Date.now(), actor, value, status, pid: process.pid });
    if (!lab) {
      lab = labOf(snap);
      // An up or run of a lab that is already up is refused (ensureFree): its states are not that lab's story.
      if (lab && mode !== 'check' && taken(lab)) {
        refused = true;
        held.length = 0;
        return;
      }
    }
    if (!lab) return;
    for (const h of held.splice(0)) {
      try {
        write(lab, { ...h, lab }, first && mode !== 'check');
      } catch {
        /* a state dir we cannot write: the lab goes on without a dashboard */
      }
      first = false;
    }
  };
}

/** One record of a sampled flow as the events file keeps it (lab ui plots them live). */
export interface SampleLine {
  kind: 'sample';
  /** When it was written (ms since the epoch). */
  t: number;
  lab: string;
  /** The flow: CLI pid and flow number, unique on the machine. */
  flow: string;
  /** Where the sender runs. */
  from: string;
  /** ms since the flow's first record, on the node's clock. */
  st: number;
  /** The sender's sk_wmem_alloc, null when ss did not show the socket. */
  wmem: number | null;
  /** The bottleneck qdisc's backlog, bytes. */
  backlog: number | null;
}

/** A flow's record as a line of its lab's events file (appended; never fails the lab). */
export function recordSample(e: FlowSampleEvent): void {
  const line: SampleLine = {
    kind: 'sample',
    t: Date.now(),
    lab: e.lab,
    flow: `${process.pid}.${e.flow}`,
    from: e.from,
    st: e.sample.t,
    wmem: e.sample.wmem ?? null,
    backlog: e.sample.backlog ?? null,
  };
  try {
    mkdirSync(eventsDir(), { recursive: true });
    appendFileSync(eventsFile(e.lab), `${JSON.stringify(line)}\n`);
  } catch {
    /* a state dir we cannot write: the flow goes on without a live plot */
  }
}

/** Append one state to the lab's events file (truncating it first for a new run). */
export function appendState(lab: string, line: MachineState, fresh: boolean): void {
  mkdirSync(eventsDir(), { recursive: true });
  (fresh ? writeFileSync : appendFileSync)(eventsFile(lab), `${JSON.stringify(line)}\n`);
}
