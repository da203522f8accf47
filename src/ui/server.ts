import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { LabError } from '../errors.js';
import { knownLabs } from '../lifecycle/journal.js';
import { readLabState } from '../lifecycle/labstate.js';
import { pageAssets } from '../report/assets.js';
import { topologyLayout, topologySvg } from '../report/graph.js';
import { eventsDir, eventsFile, type MachineState, type SampleLine } from './inspect.js';
import { dashboardHtml } from './page.js';
import { Actions, CLI_BUNDLE, listTopologies, planAction } from './actions.js';
import { listReports, reportFile } from './reports.js';
import { REPO_ROOT } from '../paths.js';
import { reportsRoot } from '../report/where.js';

/** A lab as the dashboard lists it: from its state file (running) or only its recorded states (gone). */
export interface LabSummary {
  /** Lab name. */
  name: string;
  /** Whether the lab has a journal on this machine (it is up, or was left behind). */
  present: boolean;
  /** Its phase from the state file (provisioning, up, checking, tearing-down, failed). */
  phase?: string;
  /** local or qemu. */
  backend?: string;
  /** When it was brought up. */
  createdAt?: string;
  /** Its node names. */
  nodes: string[];
  /** The topology graph (SVG), when the state file holds the lab. */
  svg?: string;
}

/** How long a lab that is gone stays listed with its last recorded states. */
const GONE_LISTED_MS = 60 * 60 * 1000;

/** Every lab with a journal, and every lab whose machine states were recorded in the last hour. */
export function listLabs(now = Date.now()): LabSummary[] {
  const present = new Set(knownLabs());
  const recorded = existsSync(eventsDir())
    ? readdirSync(eventsDir())
        .filter((f) => f.endsWith('.jsonl'))
        .map((f) => f.slice(0, -'.jsonl'.length))
        .filter((lab) => present.has(lab) || now - mtime(eventsFile(lab)) < GONE_LISTED_MS)
    : [];
  return [...new Set([...present, ...recorded])].sort().map((name) => {
    const s = present.has(name) ? readLabState(name) : undefined;
    return {
      name,
      present: present.has(name),
      phase: s?.phase,
      backend: s?.backend,
      createdAt: s?.createdAt,
      nodes: s?.lab.nodes.map((n) => n.name) ?? [],
      svg: s ? topologySvg(topologyLayout(s.lab, s.decisions)) : undefined,
    };
  });
}

const mtime = (f: string) => {
  try {
    return statSync(f).mtimeMs;
  } catch {
    return 0;
  }
};

/** The token check: constant time, and a missing or differently sized token is simply wrong. */
export function tokenOk(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The SSE event name of a line: a machine's state, or a flow's sample. */
const kindOf = (l: MachineState | SampleLine) => ('kind' in l && l.kind === 'sample' ? 'sample' : 'state');

/** How often the events files are read for new states while a page listens, ms. */
const POLL_MS = 200;

/** Follows every lab's events file and calls back with each new complete line. */
class EventsTail {
  readonly offsets = new Map<string, number>();
  constructor(private readonly emit: (s: MachineState | SampleLine) => void) {}

  /** Emit the lines added since the last poll; with `until`, read no further than those offsets. */
  poll(until?: ReadonlyMap<string, number>): boolean {
    let changed = false;
    if (!existsSync(eventsDir())) return false;
    for (const f of readdirSync(eventsDir()).filter((x) => x.endsWith('.jsonl'))) {
      const lab = f.slice(0, -'.jsonl'.length);
      const file = eventsFile(lab);
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        continue;
      }
      if (until) size = Math.min(size, until.get(lab) ?? 0);
      let from = this.offsets.get(lab) ?? 0;
      // A new run truncates the file: read it again from the start.
      if (size < from) from = 0;
      if (size === from) continue;
      const text = readFileSync(file).subarray(from, size).toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      for (const line of text.slice(0, end).split('\n').filter(Boolean)) {
        try {
          this.emit(JSON.parse(line) as MachineState | SampleLine);
          changed = true;
        } catch {
          /* a torn line: the writer appends whole lines, so only a crash leaves one */
        }
      }
      this.offsets.set(lab, from + Buffer.byteLength(text.slice(0, end)));
    }
    return changed;
  }
}

export interface UiServer {
  /** The URL to open, with the token. */
  url: string;
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** The random token every request must carry. */
  token: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  // The token is in the URL: never send it on as a referrer; nothing may be loaded from elsewhere.
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  'X-Content-Type-Options': 'nosniff',
};

/** Where the dashboard finds what it offers and shows. */
export interface UiOptions {
  port?: number;
  token?: string;
  /** The topologies the page offers to bring up (default: the repository's topologies/). */
  topologiesDir?: string;
  /**
   * Where reports are listed from and `check` writes them (default: the CLI's default, ./reports or
   * $DPL_REPORTS_DIR). The CLI's actions get it as their DPL_REPORTS_DIR, so what they write by default lands here.
   */
  reportsDir?: string;
  /** The lab CLI the actions run (default: the built bundle, dist/cli/main.js). */
  cli?: string;
}

/** Largest action request body, bytes (an action is a verb and a name or two). */
const MAX_BODY = 4096;
/** How often the reports folder is read for new reports while a page listens, in polls. */
const REPORT_POLLS = 5;

/** The request's token: in the query, or (for report pages, whose relative links must keep it) the path /r/<token>/... */
function tokenOf(url: URL): string | null {
  if (url.pathname.startsWith('/r/')) return url.pathname.split('/')[2] ?? null;
  return url.searchParams.get('token');
}

/** The body of a POST as JSON; a LabError for anything else. */
async function jsonBody(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? ''))
    throw new LabError('E_USAGE', 'an action is a JSON body (Content-Type: application/json)');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new LabError('E_USAGE', `an action body is at most ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new LabError('E_USAGE', 'the action body is not JSON');
  }
}

/**
 * The dashboard on 127.0.0.1 only: every request needs ?token=<the random token>
 * (403 without it, whatever the path). GET / the page, /api/labs the labs, /events the
 * machines' states as server-sent events (everything recorded so far, then each new one),
 * /api/topologies and /api/reports what it offers and lists, /r/<token>/<dir>/<file> a report.
 * POST /api/actions runs the lab CLI (up, check, down) as a child and streams its output;
 * it needs the token and the page's own Origin (a page elsewhere cannot drive it).
 */
export async function startUi(opts: UiOptions = {}): Promise<UiServer> {
  const token = opts.token ?? randomBytes(18).toString('base64url');
  const topologiesDir = resolve(opts.topologiesDir ?? join(REPO_ROOT, 'topologies'));
  const reportsDir = resolve(opts.reportsDir ?? reportsRoot());
  const page = dashboardHtml(await pageAssets());
  const streams = new Set<ServerResponse>();
  let labsJson = '';
  let reportsJson = '';
  let polls = 0;
  const send = (res: ServerResponse, event: string, data: string) => res.write(`event: ${event}\ndata: ${data}\n\n`);
  const broadcast = (event: string, data: string) => {
    for (const s of streams) send(s, event, data);
  };
  const broadcastLabs = () => {
    const now = JSON.stringify(listLabs());
    if (now === labsJson) return;
    labsJson = now;
    broadcast('labs', now);
  };
  const broadcastReports = () => {
    const now = JSON.stringify(listReports(reportsDir));
    if (now === reportsJson) return;
    reportsJson = now;
    broadcast('reports', now);
  };
  const actions = new Actions(
    (event, data) => {
      broadcast(event, JSON.stringify(data));
      // An action's end changes the labs and maybe the reports: show it without waiting for a poll.
      if (event === 'action' && (data as { endedAt?: number }).endedAt !== undefined) {
        broadcastLabs();
        broadcastReports();
      }
    },
    reportsDir,
    opts.cli ?? CLI_BUNDLE,
  );
  const tail = new EventsTail((st) => {
    for (const s of streams) send(s, kindOf(st), JSON.stringify(st));
  });
  const timer = setInterval(() => {
    if (!streams.size) return;
    tail.poll();
    broadcastLabs();
    if (++polls % REPORT_POLLS === 0) broadcastReports();
  }, POLL_MS);

  let port = 0;
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'Content-Type': 'application/json', ...SECURITY_HEADERS }).end(JSON.stringify(body));

  const postAction = async (req: IncomingMessage, res: ServerResponse) => {
    // Same origin only: a page elsewhere that learnt the token still cannot post (browsers always send Origin on POST).
    const site = req.headers['sec-fetch-site'];
    if (req.headers.origin !== `http://127.0.0.1:${port}` || (site !== undefined && site !== 'same-origin')) {
      json(res, 403, { error: `403: actions come from the dashboard's own page (Origin ${req.headers.origin ?? 'missing'})` });
      return;
    }
    try {
      const plan = planAction(await jsonBody(req), {
        topologies: listTopologies(topologiesDir),
        topologiesDir,
        reportsDir,
        busy: actions.busy(),
      });
      json(res, 202, actions.start(plan));
    } catch (e) {
      if (!(e instanceof LabError)) throw e;
      json(res, 400, { error: e.message, hint: e.hint });
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!tokenOk(tokenOf(url), token)) {
      res
        .writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS })
        .end('403: this dashboard needs its token (the URL lab ui printed)\n');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/actions') {
      postAction(req, res).catch((e) => json(res, 500, { error: String(e) }));
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, SECURITY_HEADERS).end();
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', ...SECURITY_HEADERS }).end(page);
    } else if (url.pathname === '/api/labs') {
      json(res, 200, listLabs());
    } else if (url.pathname === '/api/topologies') {
      json(res, 200, listTopologies(topologiesDir));
    } else if (url.pathname === '/api/reports') {
      json(res, 200, listReports(reportsDir));
    } else if (url.pathname === '/api/actions') {
      json(res, 200, actions.records);
    } else if (url.pathname.startsWith('/r/')) {
      const f = reportFile(reportsDir, decodeURIComponent(url.pathname.split('/').slice(3).join('/')));
      if (!f) res.writeHead(404, { 'Content-Type': 'text/plain', ...SECURITY_HEADERS }).end('no such report\n');
      else res.writeHead(200, { 'Content-Type': f.type, ...SECURITY_HEADERS }).end(readFileSync(f.path));
    } else if (url.pathname === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive', ...SECURITY_HEADERS });
      // A new listener gets the story so far (every file up to where the shared tail is),
      // then each new line from the shared tail, so no state comes twice or goes missing.
      tail.poll();
      send(res, 'labs', JSON.stringify(listLabs()));
      send(res, 'topologies', JSON.stringify(listTopologies(topologiesDir)));
      send(res, 'reports', JSON.stringify(listReports(reportsDir)));
      for (const a of actions.records) {
        send(res, 'action', JSON.stringify(a));
        const kept = actions.output.get(a.id);
        if (kept) send(res, 'output', JSON.stringify({ id: a.id, chunk: kept }));
      }
      new EventsTail((st) => send(res, kindOf(st), JSON.stringify(st))).poll(tail.offsets);
      streams.add(res);
      req.on('close', () => streams.delete(res));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain', ...SECURITY_HEADERS }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      clearInterval(timer);
      await actions.close();
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
