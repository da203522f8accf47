import { parseJson, startedPid, type Exec } from '../exec/exec.js';
import { HOST_OWNER, type Journal, type JournalEntry } from '../lifecycle/journal.js';
import { processStartTime } from '../exec/process.js';
import { MeasureError } from '../errors.js';
import { sleep } from '../sleep.js';
import { startSampler, type FlowSample, type SampleRecord, type SamplerSpec } from './sampler.js';

export { parseSsWmem, parseTcBacklog, type FlowSample } from './sampler.js';

/** A bulk flow's outcome: what it carried and, when sampled, the node's records. */
export interface FlowResult {
  /** Receiver's goodput (iperf3 sum_received, else sum_sent), bits per second. */
  bitsPerSecond: number;
  /** The sender's TCP retransmissions (iperf3 sum_sent). */
  retransmits?: number;
  /** The sampler's records in node time; empty when the flow was not sampled. */
  samples: FlowSample[];
  /** Raw outputs kept as evidence: the last ss and tc samples and iperf3's summary. */
  evidence: string[];
}

/** A bulk TCP flow from one namespace to another. */
export interface FlowSpec {
  /** Where the client (sender) runs. */
  from: Exec;
  /** The cgroup the client runs in (a pod's, for socket-LB). */
  fromCgroup?: string;
  /** Where the server (receiver) runs. */
  to: Exec;
  /** Server address as the client dials it. */
  addr: string;
  /** Duration of the flow. */
  seconds: number;
  /** Server port (default iperf3's). */
  port?: number;
  /** Parallel TCP streams (iperf3 -P; default 1); the goodput is their sum. */
  streams?: number;
  /**
   * Sample the sender's socket and the bottleneck's qdisc every intervalMs as one process
   * on the node for the whole flow (startSampler): both readings back to back, timestamped there.
   */
  sample?: Omit<SamplerSpec, 'port'>;
  /** Each sample as the node delivers it (live on this machine, all at the end from a guest). */
  onSample?: (s: FlowSample) => void;
  journal: Journal;
  signal?: AbortSignal;
}

/** iperf3's default port. */
export const IPERF_PORT = 5201;

/** One record of a sampled flow, for listeners beyond the flow's own caller (lab ui's live plots). */
export interface FlowSampleEvent {
  /** The lab whose journal the flow runs under. */
  lab: string;
  /** The flow, unique in this process. */
  flow: number;
  /** Where the sender runs. */
  from: string;
  sample: FlowSample;
}

const sampleListeners = new Set<(e: FlowSampleEvent) => void>();
let flows = 0;

/** Hear every record of every sampled flow in this process; returns the unsubscribe. */
export function onFlowSample(listener: (e: FlowSampleEvent) => void): () => void {
  sampleListeners.add(listener);
  return () => sampleListeners.delete(listener);
}

/** Median of a series; 0 for none (callers count their samples before reading it). */
export function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const streamArgs = (n = 1) => (n > 1 ? ['-P', String(n)] : []);

async function waitListening(exec: Exec, port: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < 100 && !signal?.aborted; i++) {
    const r = await exec.run(['ss', '-ltnH', 'sport', '=', `:${port}`], { nothrow: true, signal });
    if (r.stdout.trim()) return;
    await sleep(20, signal);
  }
  throw new MeasureError(`iperf3 server on ${exec.where} never listened on port ${port}`);
}

/**
 * A bulk TCP flow with iperf3, sampled while it runs. The server is a one-off
 * (`-1`) with an idle timeout, so even a lab killed with -9 leaves no server behind
 * for long; host processes (server, client, sampler) are in the journal for teardown.
 */
export async function bulkFlow(spec: FlowSpec): Promise<FlowResult> {
  const port = spec.port ?? IPERF_PORT;
  const server = spec.to.start(['iperf3', '-s', '-1', '-p', String(port), '--idle-timeout', String(spec.seconds + 20)], {
    signal: spec.signal,
  });
  // Host processes go in the journal; a guest's end with its VM.
  const own = (exec: Exec, pid: number, argv: string[]): JournalEntry | undefined =>
    exec.hostPids ? spec.journal.record(HOST_OWNER, [{ kind: 'process', pid, startTime: processStartTime(pid), argv }])[0] : undefined;
  const srvEntry = own(spec.to, server.pid, ['iperf3', '-s']);
  try {
    await waitListening(spec.to, port, spec.signal);
    const evidence: string[] = [];
    const samples: FlowSample[] = [];
    // An unreachable server must fail in seconds, not after TCP's two minutes of SYN retries.
    const client = spec.from.start(
      [
        'iperf3',
        '-c',
        spec.addr,
        '-p',
        String(port),
        '-t',
        String(spec.seconds),
        '-J',
        '--connect-timeout',
        '3000',
        ...streamArgs(spec.streams),
      ],
      { signal: spec.signal, cgroup: spec.fromCgroup },
    );
    const cliEntry = own(spec.from, client.pid, ['iperf3', '-c']);
    let sampler: ReturnType<typeof startSampler> | undefined;
    let smpEntry: JournalEntry | undefined;
    if (spec.sample) {
      // The sampler watches the client's pid: it runs exactly as long as the flow.
      const pid = await startedPid(client);
      const flow = ++flows;
      const onRecord = (rec: SampleRecord) => {
        samples.push(rec.sample);
        spec.onSample?.(rec.sample);
        for (const l of sampleListeners) l({ lab: spec.journal.lab, flow, from: spec.from.where, sample: rec.sample });
      };
      sampler = startSampler({ ...spec.sample, port }, pid, spec.seconds + 10, onRecord, spec.signal);
      smpEntry = own(spec.sample.root, sampler.proc.pid, ['sh', 'dpl-sampler']);
    }
    const r = await client.done;
    if (cliEntry) spec.journal.gone([cliEntry.seq]);
    if (sampler) {
      // The loop ends within one interval of the client; a stuck reading must not hold the flow.
      const late = setTimeout(() => sampler!.stop(), 5_000 + (spec.sample?.intervalMs ?? 100));
      const records = await sampler.done.finally(() => clearTimeout(late));
      if (smpEntry) spec.journal.gone([smpEntry.seq]);
      const last = records.at(-1);
      if (last)
        evidence.push(`ss -tmi (last sample):\n${last.ss}`, `tc -s -j qdisc show dev ${spec.sample!.dev} (last sample):\n${last.tc}`);
      else evidence.push(`the sampler on ${spec.sample!.root.where} produced no record`);
    }
    if (r.code !== 0)
      throw new MeasureError(`iperf3 client on ${spec.from.where} failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(0, 400)}`);
    const j = parseJson<{
      end?: { sum_sent?: { bits_per_second?: number; retransmits?: number }; sum_received?: { bits_per_second?: number } };
    }>(r, 'iperf3 -J');
    const bps = j?.end?.sum_received?.bits_per_second ?? j?.end?.sum_sent?.bits_per_second ?? 0;
    evidence.push(
      `iperf3 -c ${spec.addr} -t ${spec.seconds}: ${(bps / 1e6).toFixed(1)} Mbit/s, retransmits ${j?.end?.sum_sent?.retransmits ?? '?'}`,
    );
    return { bitsPerSecond: bps, retransmits: j?.end?.sum_sent?.retransmits, samples, evidence };
  } finally {
    server.kill('SIGTERM');
    await server.done;
    if (srvEntry) spec.journal.gone([srvEntry.seq]);
  }
}
