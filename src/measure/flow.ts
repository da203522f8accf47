import { parseJson, type Exec } from '../exec/exec.js';
import type { Journal } from '../lifecycle/journal.js';
import { processStartTime } from '../exec/process.js';

/** One sample of a bulk flow: the sender's sk_wmem_alloc and the bottleneck's backlog. */
export interface FlowSample {
  /** Milliseconds since the flow started. */
  t: number;
  /** Sum of skmem t (sk_wmem_alloc) over the sender's sockets to the server port; undefined when ss showed none. */
  wmem?: number;
  /** Bytes queued in the bottleneck qdisc (tc -s -j qdisc: backlog). */
  backlog?: number;
}

export interface FlowResult {
  bitsPerSecond: number;
  retransmits?: number;
  samples: FlowSample[];
  /** Raw outputs kept as evidence: the last ss and tc samples and iperf3's summary. */
  evidence: string[];
}

export interface FlowSpec {
  /** Where the client (sender) runs. */
  from: Exec;
  /** Where the server (receiver) runs. */
  to: Exec;
  /** Server address as the client dials it. */
  addr: string;
  seconds: number;
  port?: number;
  /**
   * Sample the sender's socket (in netns `sender`) and a qdisc (device `dev` in netns
   * `qdiscNetns`) every intervalMs, both in one shell run through `root`: the two
   * readings are taken back to back (in a guest, agent round trips apart would skew them).
   */
  sample?: { root: Exec; sender: string; qdiscNetns: string; dev: string; intervalMs?: number };
  journal: Journal;
  signal?: AbortSignal;
}

const SAMPLE_SPLIT = '\n--dpl-sample--\n';
/**
 * ss in the sender's namespace, then tc in the bottleneck's: $1 sender netns, $2 port,
 * $3 qdisc netns, $4 device. Absolute paths: a guest's busybox sh prefers its own
 * applets (nsenter, tc) to PATH (FACTS.md); these are Debian's, which guests copy.
 */
const SAMPLE_SCRIPT = `/usr/bin/nsenter --net=/run/netns/"$1" /usr/bin/ss -tmiHn state established dport = :"$2"; echo; echo --dpl-sample--; /usr/bin/nsenter --net=/run/netns/"$3" /usr/sbin/tc -s -j qdisc show dev "$4"`;

/** iperf3's default port. */
export const IPERF_PORT = 5201;

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

/** backlog bytes of the root qdisc in `tc -s -j qdisc show dev X`. */
export function parseTcBacklog(json: unknown): number | undefined {
  if (!Array.isArray(json)) return undefined;
  const root = json.find((q) => q && typeof q === 'object' && (q as { root?: boolean }).root) as { backlog?: number } | undefined;
  return root?.backlog;
}

export function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

async function waitListening(exec: Exec, port: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < 100 && !signal?.aborted; i++) {
    const r = await exec.run(['ss', '-ltnH', 'sport', '=', `:${port}`], { nothrow: true, signal });
    if (r.stdout.trim()) return;
    await sleep(20, signal);
  }
  throw new Error(`iperf3 server on ${exec.where} never listened on port ${port}`);
}

/**
 * A bulk TCP flow with iperf3, sampled while it runs. The server is a one-off
 * (`-1`) with an idle timeout, so even a lab killed with -9 leaves no server behind
 * for long; both processes are in the journal for teardown.
 */
export async function bulkFlow(spec: FlowSpec): Promise<FlowResult> {
  const port = spec.port ?? IPERF_PORT;
  const server = spec.to.start(['iperf3', '-s', '-1', '-p', String(port), '--idle-timeout', String(spec.seconds + 20)], { signal: spec.signal });
  // Host processes go in the journal; a guest's end with its VM.
  const own = (exec: Exec, pid: number, role: string) =>
    exec.hostPids ? spec.journal.record({ backend: 'local' }, [{ kind: 'process', pid, startTime: processStartTime(pid), argv: ['iperf3', role] }]) : [];
  const [srvEntry] = own(spec.to, server.pid, '-s');
  try {
    await waitListening(spec.to, port, spec.signal);
    const samples: FlowSample[] = [];
    const evidence: string[] = [];
    const t0 = performance.now();
    // An unreachable server must fail in seconds, not after TCP's two minutes of SYN retries.
    const client = spec.from.start(['iperf3', '-c', spec.addr, '-p', String(port), '-t', String(spec.seconds), '-J', '--connect-timeout', '3000'], { signal: spec.signal });
    const [cliEntry] = own(spec.from, client.pid, '-c');
    let running = true;
    const clientDone = client.done.finally(() => (running = false));
    const sampler = (async () => {
      if (!spec.sample) return;
      const every = spec.sample.intervalMs ?? 100;
      let lastSs = '', lastTc = '';
      while (running && !spec.signal?.aborted) {
        const tick = performance.now();
        const { root, sender, qdiscNetns, dev } = spec.sample;
        const r = await root.run(['sh', '-c', SAMPLE_SCRIPT, 'sample', sender, String(port), qdiscNetns, dev], { nothrow: true });
        if (!running) break; // a sample taken after the flow ended says nothing about it
        const [ss, tc = ''] = r.stdout.split(SAMPLE_SPLIT);
        samples.push({ t: Math.round(tick - t0), wmem: parseSsWmem(ss), backlog: parseTcBacklog(safeJson(tc)) });
        lastSs = ss;
        lastTc = tc;
        await sleep(Math.max(0, every - (performance.now() - tick)), spec.signal);
      }
      evidence.push(`ss -tmi (last sample):\n${lastSs.trim()}`);
      if (lastTc) evidence.push(`tc -s -j qdisc show dev ${spec.sample.dev} (last sample):\n${lastTc.trim()}`);
    })();
    const r = await clientDone;
    await sampler;
    if (cliEntry) spec.journal.gone([cliEntry.seq]);
    if (r.code !== 0) throw new Error(`iperf3 client on ${spec.from.where} failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(0, 400)}`);
    const j = parseJson<{ end?: { sum_sent?: { bits_per_second?: number; retransmits?: number }; sum_received?: { bits_per_second?: number } } }>(r, 'iperf3 -J');
    const bps = j?.end?.sum_received?.bits_per_second ?? j?.end?.sum_sent?.bits_per_second ?? 0;
    evidence.push(`iperf3 -c ${spec.addr} -t ${spec.seconds}: ${(bps / 1e6).toFixed(1)} Mbit/s, retransmits ${j?.end?.sum_sent?.retransmits ?? '?'}`);
    return { bitsPerSecond: bps, retransmits: j?.end?.sum_sent?.retransmits, samples, evidence };
  } finally {
    server.kill('SIGTERM');
    await server.done;
    if (srvEntry) spec.journal.gone([srvEntry.seq]);
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
