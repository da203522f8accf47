import type { Background, Exec } from '../exec/exec.js';

/** One sample of a bulk flow: the sender's sk_wmem_alloc and the bottleneck's backlog, read back to back. */
export interface FlowSample {
  /** Milliseconds since the sampler's first record, on the node's clock (/proc/uptime, 10 ms resolution). */
  t: number;
  /** Sum of skmem t (sk_wmem_alloc) over the sender's sockets to the server port; undefined when ss showed none. */
  wmem?: number;
  /** Bytes queued in the bottleneck qdisc (tc -s -j qdisc: backlog). */
  backlog?: number;
  /** Sum of notsent (written by the application, not yet sent: tcp_notsent) over the same sockets; ss omits 0. */
  notsent?: number;
}

/** What to sample: a socket in one namespace and a qdisc in another, on one node. */
export interface SamplerSpec {
  /** The node's root context: the sampler runs there as one process for the whole flow. */
  root: Exec;
  /** Network namespace of the sending socket. */
  sender: string;
  /** The server port the sender's sockets connect to (ss filter dport). */
  port: number;
  /** Network namespace of the bottleneck qdisc. */
  qdiscNetns: string;
  /** Device of the bottleneck qdisc. */
  dev: string;
  /** Cadence in milliseconds (default 100). */
  intervalMs?: number;
}

const REC = '--dpl-sample--';
const TC = '--dpl-tc--';
const END = '--dpl-end--';

/**
 * The node-side loop: one record per interval until process $5 ends (or $7 records).
 * `sleep` runs beside the readings and is waited for after them, so the cadence is
 * max(interval, one reading), whatever a remote round trip costs. The timestamp is the
 * node's (/proc/uptime, read by the shell itself). ss -N and tc -n enter the namespaces
 * themselves: two processes per record, not four (each costs tens of ms in a TCG guest).
 * Absolute paths: a guest's busybox sh runs its own applets (tc) before PATH; these are
 * Debian's, which guests copy.
 * $1 sender netns, $2 port, $3 qdisc netns, $4 device, $5 pid, $6 interval (s), $7 max records.
 */
export const SAMPLER_SCRIPT = [
  'n=0',
  'while [ "$n" -lt "$7" ] && kill -0 "$5" 2>/dev/null; do',
  '  sleep "$6" & s=$!',
  '  read up _ < /proc/uptime',
  `  echo "${REC} $up"`,
  '  /usr/bin/ss -N "$1" -tmiHn state established dport = :"$2"',
  `  echo "${TC}"`,
  '  /usr/sbin/tc -n "$3" -s -j qdisc show dev "$4"',
  `  echo; echo "${END}"`,
  '  n=$((n+1))',
  '  wait "$s"',
  'done',
].join('\n');

/** One parsed record, with the raw readings kept for evidence. */
export interface SampleRecord {
  sample: FlowSample;
  /** Node clock (seconds since boot) of the record. */
  uptime: number;
  ss: string;
  tc: string;
}

/**
 * skmem:(r0,rb131072,t0,tb46080,...) of every socket in ss -tmi output: the t fields
 * summed. Undefined when ss listed no socket with skmem (a socket ss cannot see is
 * not a socket that owns nothing).
 */
export function parseSsWmem(text: string): number | undefined {
  let sum: number | undefined;
  for (const m of text.matchAll(/skmem:\([^)]*\bt(\d+)/g)) sum = (sum ?? 0) + Number(m[1]);
  return sum;
}

/** notsent:N of every socket in ss -tmi output, summed; 0 where ss listed a socket without it, undefined without a socket. */
export function parseSsNotsent(text: string): number | undefined {
  if (!/skmem:\(/.test(text)) return undefined;
  let sum = 0;
  for (const m of text.matchAll(/\bnotsent:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

/** backlog bytes of the root qdisc in `tc -s -j qdisc show dev X`. */
export function parseTcBacklog(json: unknown): number | undefined {
  if (!Array.isArray(json)) return undefined;
  const root = json.find((q) => q && typeof q === 'object' && (q as { root?: boolean }).root) as { backlog?: number } | undefined;
  return root?.backlog;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** Splits the sampler's stdout, fed in chunks as they arrive, into records. */
export class SampleParser {
  private buf = '';
  private t0?: number;

  /** Records completed by this chunk. */
  push(chunk: string): SampleRecord[] {
    this.buf += chunk;
    const out: SampleRecord[] = [];
    for (let end = this.buf.indexOf(`${END}\n`); end >= 0; end = this.buf.indexOf(`${END}\n`)) {
      const rec = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + END.length + 1);
      const start = rec.indexOf(REC);
      if (start < 0) continue;
      const body = rec.slice(start + REC.length);
      const nl = body.indexOf('\n');
      const uptime = Number(body.slice(0, nl).trim());
      const [ss, tc = ''] = body.slice(nl + 1).split(`${TC}\n`);
      if (!Number.isFinite(uptime)) continue;
      this.t0 ??= uptime;
      const sample = {
        t: Math.round((uptime - this.t0) * 1000),
        wmem: parseSsWmem(ss),
        backlog: parseTcBacklog(safeJson(tc.trim())),
        notsent: parseSsNotsent(ss),
      };
      out.push({ sample, uptime, ss: ss.trim(), tc: tc.trim() });
    }
    return out;
  }
}

/** A running sampler. */
export interface Sampler {
  /** The node process (journaled by the caller when it is this machine's). */
  proc: Background;
  /** Resolves once the loop ended (the watched process ended, or it was stopped), with every record. */
  done: Promise<SampleRecord[]>;
  /** End it now. */
  stop(): void;
}

/**
 * Sample `spec` every interval, as ONE process on the node, for as long as process
 * `whilePid` (in the node's pid namespace: the flow's client) runs, at most
 * `maxSeconds`. Records go to `onSample` as the backend delivers them: as they are
 * taken on this machine, at the end from a guest (its agent cannot stream).
 */
export function startSampler(
  spec: SamplerSpec,
  whilePid: number,
  maxSeconds: number,
  onSample?: (r: SampleRecord) => void,
  signal?: AbortSignal,
): Sampler {
  const every = spec.intervalMs ?? 100;
  const parser = new SampleParser();
  const records: SampleRecord[] = [];
  const max = Math.ceil((maxSeconds * 1000) / every);
  const argv = [
    'sh',
    '-c',
    SAMPLER_SCRIPT,
    'dpl-sampler',
    spec.sender,
    String(spec.port),
    spec.qdiscNetns,
    spec.dev,
    String(whilePid),
    (every / 1000).toFixed(3),
    String(max),
  ];
  const proc = spec.root.start(argv, {
    signal,
    onStdout: (chunk) => {
      for (const r of parser.push(chunk)) {
        records.push(r);
        onSample?.(r);
      }
    },
  });
  return { proc, done: proc.done.then(() => records), stop: () => proc.kill('SIGTERM') };
}
