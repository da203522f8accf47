import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { LabError } from '../errors.js';
import { type Background, spawnArgv } from '../exec/exec.js';
import { REPO_ROOT } from '../paths.js';

/** What the dashboard may ask for: the three lab verbs a person runs in a terminal. */
export const ACTION_VERBS = ['up', 'check', 'down'] as const;
export type ActionVerb = (typeof ACTION_VERBS)[number];

/** The lab CLI the dashboard runs (the bundle `npm run build` writes): the page does what the terminal does. */
export const CLI_BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** A topology file name in the topologies folder (no path: nothing outside it is offered or taken). */
const TOPOLOGY_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$/;
/** The shape of a lab name (the schema's: a letter, then a-z, 0-9, '-'; at most 12); the CLI judges the rest. */
const LAB_NAME = /^[a-z][a-z0-9-]{0,11}$/;
/** A check id's shape; whether it exists is the CLI's to say (its --only refusal is shown as it prints it). */
const CHECK_ID = /^[a-z][a-z0-9-]{0,40}$/;

/** The body of POST /api/actions. */
export const ActionBody = z
  .object({
    verb: z.enum(ACTION_VERBS),
    topology: z.string().regex(TOPOLOGY_FILE, 'a file name from the topologies list').optional(),
    lab: z.string().regex(LAB_NAME, 'a lab name (a letter, then a-z, 0-9, -)').optional(),
    only: z.array(z.string().regex(CHECK_ID, 'a check id')).max(40).optional(),
  })
  .strict();

/** A topology the page offers. */
export interface TopologyEntry {
  /** File name in the topologies folder. */
  file: string;
  /** The lab name it declares (undefined when the file does not parse: the CLI will say why). */
  name?: string;
  /** Its backend (local when not set). */
  backend?: string;
}

/** The topology files of a folder, with the name and backend each declares. */
export function listTopologies(dir: string): TopologyEntry[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => TOPOLOGY_FILE.test(f))
    .sort()
    .map((file) => {
      try {
        const doc = parse(readFileSync(join(dir, file), 'utf8')) as { name?: unknown; backend?: unknown } | null;
        return {
          file,
          name: typeof doc?.name === 'string' ? doc.name : undefined,
          backend: typeof doc?.backend === 'string' ? doc.backend : 'local',
        };
      } catch {
        return { file };
      }
    });
}

/** An action, checked and turned into the CLI's arguments. */
export interface ActionPlan {
  verb: ActionVerb;
  /** The lab it acts on (for `up`, the name the topology declares, when it parses). */
  lab?: string;
  /** For `up`: the topology file name. */
  topology?: string;
  /** The CLI's arguments after its path. */
  args: string[];
}

/**
 * Check a request and plan the CLI run. Refuses (E_USAGE) what is not an action of the
 * page's: an unknown verb, a topology not in the list, a lab name of the wrong shape, and
 * a second action on a lab while one runs. What the CLI itself refuses (a lab that exists,
 * an unknown lab or check) it refuses when run, and the page shows its message.
 */
export function planAction(
  raw: unknown,
  env: { topologies: readonly TopologyEntry[]; topologiesDir: string; reportsDir: string; busy: ReadonlySet<string> },
): ActionPlan {
  const parsed = ActionBody.safeParse(raw);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new LabError(
      'E_USAGE',
      `not an action: ${msg}`,
      'send {"verb": "up", "topology": FILE} or {"verb": "check" | "down", "lab": NAME}',
    );
  }
  const a = parsed.data;
  let plan: ActionPlan;
  if (a.verb === 'up') {
    if (!a.topology || a.lab || a.only) throw new LabError('E_USAGE', 'up takes a topology (and nothing else)');
    const t = env.topologies.find((x) => x.file === a.topology);
    if (!t)
      throw new LabError(
        'E_USAGE',
        `no topology ${a.topology} in ${env.topologiesDir}`,
        `one of: ${env.topologies.map((x) => x.file).join(', ')}`,
      );
    plan = { verb: 'up', lab: t.name, topology: t.file, args: ['up', join(env.topologiesDir, t.file)] };
  } else {
    if (!a.lab || a.topology) throw new LabError('E_USAGE', `${a.verb} takes a lab name (and no topology)`);
    if (a.verb === 'down' && a.only) throw new LabError('E_USAGE', 'down takes no checks');
    plan =
      a.verb === 'check'
        ? {
            verb: 'check',
            lab: a.lab,
            args: ['check', a.lab, '--report-dir', join(env.reportsDir, a.lab), ...(a.only?.length ? ['--only', a.only.join(',')] : [])],
          }
        : { verb: 'down', lab: a.lab, args: ['down', a.lab] };
  }
  if (plan.lab && env.busy.has(plan.lab))
    throw new LabError('E_USAGE', `lab ${plan.lab} has an action running from this dashboard`, 'wait for it to end');
  return plan;
}

/** A check's verdict as the page shows it after `check`. */
export interface ActionVerdict {
  id: string;
  status: string;
  reason: string;
}

/** An action the dashboard ran or runs, as the page sees it. */
export interface ActionRecord {
  id: number;
  verb: ActionVerb;
  lab?: string;
  topology?: string;
  /** The command as a person would type it. */
  command: string;
  /** ms since the epoch. */
  startedAt: number;
  endedAt?: number;
  /** The CLI's exit code (2: it refused; see its output), null when killed by a signal. */
  code?: number | null;
  /** For `check`: the verdicts of the report it wrote. */
  verdicts?: ActionVerdict[];
}

/** Output kept per action for a page that connects later (the rest is in the terminal-equivalent stream). */
const OUTPUT_KEPT = 256 * 1024;
/** How long close() waits for running actions to wind down after SIGTERM (a lab tears itself down on it). */
const CLOSE_WAIT_MS = 60_000;

/** The actions of one dashboard: each a child `lab` process through src/exec, its output streamed. */
export class Actions {
  readonly records: ActionRecord[] = [];
  readonly output = new Map<number, string>();
  private readonly running = new Map<number, Background>();
  private next = 1;

  constructor(
    private readonly emit: (event: 'action' | 'output', data: unknown) => void,
    private readonly reportsDir: string,
    private readonly cli = CLI_BUNDLE,
  ) {}

  /** Labs with an action running. */
  busy(): Set<string> {
    return new Set(this.records.filter((r) => r.endedAt === undefined && r.lab).map((r) => r.lab!));
  }

  start(plan: ActionPlan): ActionRecord {
    const rec: ActionRecord = {
      id: this.next++,
      verb: plan.verb,
      lab: plan.lab,
      topology: plan.topology,
      command: `lab ${plan.args.join(' ')}`,
      startedAt: Date.now(),
    };
    this.records.push(rec);
    this.output.set(rec.id, '');
    const out = (chunk: string) => {
      const kept = this.output.get(rec.id)!;
      if (kept.length < OUTPUT_KEPT) this.output.set(rec.id, kept + chunk);
      this.emit('output', { id: rec.id, chunk });
    };
    // FORCE_COLOR=0 / NO_COLOR: plain text for the page.
    const bg = spawnArgv([process.execPath, this.cli, ...plan.args], {
      onStdout: out,
      onStderr: out,
      // DPL_REPORTS_DIR: what the CLI writes to its default report folder (a failed `up`'s failure report) lands beside the rest.
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', DPL_REPORTS_DIR: this.reportsDir },
      cwd: dirname(this.reportsDir),
    });
    this.running.set(rec.id, bg);
    this.emit('action', rec);
    void bg.done.then((r) => {
      this.running.delete(rec.id);
      rec.code = r.code;
      rec.endedAt = Date.now();
      if (rec.verb === 'check' && rec.lab) rec.verdicts = verdictsSince(join(this.reportsDir, rec.lab, 'report.json'), rec.startedAt);
      this.emit('action', rec);
    });
    return rec;
  }

  /** Every running action gets SIGTERM (a lab tears down what it made) and is waited for. */
  async close(): Promise<void> {
    const all = [...this.running.values()];
    for (const bg of all) bg.kill('SIGTERM');
    await Promise.race([Promise.all(all.map((b) => b.done)), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
  }
}

/** The verdicts of a report.json written since `since` (an older one is an earlier run's, not this action's). */
export function verdictsSince(file: string, since: number): ActionVerdict[] | undefined {
  try {
    if (statSync(file).mtimeMs < since) return undefined;
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { checks?: { id: string; status: string; reason?: string }[] };
    return doc.checks?.map((c) => ({ id: c.id, status: c.status, reason: c.reason ?? '' }));
  } catch {
    return undefined;
  }
}
