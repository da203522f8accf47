import type { Exec, ExecResult } from '../exec/exec.js';
import { sleep } from '../sleep.js';
import { HOST_OWNER, type Journal, type JournalEntry } from '../lifecycle/journal.js';
import { MeasureError } from '../errors.js';
import { processStartTime } from '../exec/process.js';
import { type Cdf, cdfOf, parseFullLog } from './cdf.js';

/** Request/response latency over one TCP connection: round trips in microseconds. */
export interface RrResult {
  /** Round trips measured (sockperf's valid-duration observations). */
  observations: number;
  /** Mean round trip, µs. */
  meanUs: number;
  /** Percentiles of the round trip, µs (50, 90, 99, 99.9, as sockperf prints them). */
  percentilesUs: Record<string, number>;
  /** Largest and smallest round trip, µs. */
  maxUs: number;
  minUs: number;
  /** sockperf's summary lines, as evidence. */
  evidence: string[];
  /** With `fullLog`: the CDF of every round trip (sockperf --full-log), for the report's plot. */
  cdf?: Cdf;
}

/** A request/response measurement: `from` pings `addr` (served in `to`) with small messages. */
export interface RrSpec {
  from: Exec;
  to: Exec;
  addr: string;
  seconds: number;
  /** Message size in bytes (sockperf's minimum and default: 14). */
  size?: number;
  port?: number;
  journal: Journal;
  signal?: AbortSignal;
  /** Keep every round trip (sockperf --full-log, read back from where the client ran) as a CDF. */
  fullLog?: boolean;
}

/** A full log's file where the client runs (its /tmp: a namespace shares the host's, a guest has its own). */
let fullLogs = 0;
const fullLogPath = () => `/tmp/dpl-sockperf-${process.pid}-${++fullLogs}.csv`;

/** sockperf's default port. */
export const SOCKPERF_PORT = 11111;

/**
 * sockperf ping-pong output (with --full-rtt): the summary, percentiles, max and min.
 * Undefined when the output has no summary (the client never measured).
 */
export function parseSockperf(text: string): Omit<RrResult, 'evidence'> | undefined {
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const mean = /Summary: (?:Latency|Round trip) is ([\d.]+) usec/.exec(plain);
  const obs = /Total (\d+) observations/.exec(plain);
  if (!mean || !obs) return undefined;
  const percentilesUs: Record<string, number> = {};
  for (const m of plain.matchAll(/---> percentile ([\d.]+) =\s*([\d.]+)/g)) percentilesUs[String(Number(m[1]))] = Number(m[2]);
  const max = /---> <MAX> observation =\s*([\d.]+)/.exec(plain);
  const min = /---> <MIN> observation =\s*([\d.]+)/.exec(plain);
  return {
    observations: Number(obs[1]),
    meanUs: Number(mean[1]),
    percentilesUs,
    maxUs: Number(max?.[1] ?? NaN),
    minUs: Number(min?.[1] ?? NaN),
  };
}

/** Round trips of small TCP messages (sockperf ping-pong --full-rtt); the server is journaled when it is this machine's. */
export async function requestResponse(spec: RrSpec): Promise<RrResult> {
  const port = String(spec.port ?? SOCKPERF_PORT);
  const addrArgs = ['--tcp', '-i', spec.addr, '-p', port];
  const server = spec.to.start(['sockperf', 'server', ...addrArgs], { signal: spec.signal });
  const entry: JournalEntry | undefined = spec.to.hostPids
    ? spec.journal.record(HOST_OWNER, [
        { kind: 'process', pid: server.pid, startTime: processStartTime(server.pid), argv: ['sockperf', 'server'] },
      ])[0]
    : undefined;
  try {
    // The server binds within milliseconds; the client retries its connect (-w none), so no wait is needed beyond that.
    let r: ExecResult | undefined;
    const log = spec.fullLog ? fullLogPath() : undefined;
    for (let i = 0; i < 50; i++) {
      r = await spec.from.run(
        [
          'sockperf',
          'ping-pong',
          ...addrArgs,
          '-t',
          String(spec.seconds),
          '--full-rtt',
          '-m',
          String(spec.size ?? 14),
          ...(log ? ['--full-log', log] : []),
        ],
        { nothrow: true, signal: spec.signal },
      );
      if (r.code === 0 || spec.signal?.aborted || !/connect|refused/i.test(r.stdout + r.stderr)) break;
      await sleep(20, spec.signal);
    }
    const text = `${r!.stdout}\n${r!.stderr}`;
    const parsed = parseSockperf(text);
    if (r!.code !== 0 || !parsed)
      throw new MeasureError(
        `sockperf ping-pong to ${spec.addr} on ${spec.from.where} measured nothing (exit ${r!.code}): ${text.trim().slice(-300)}`,
      );
    const evidence = text
      .split('\n')
      .filter((l) => /Summary|percentile 99\.000|percentile 50\.000|observations/.test(l))
      .map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim());
    const cdf = log ? await readFullLog(spec, log) : undefined;
    return { ...parsed, evidence, ...(cdf ? { cdf } : {}) };
  } finally {
    server.kill('SIGTERM');
    await server.done;
    if (entry) spec.journal.gone([entry.seq]);
  }
}

/** The full log's round trips as a CDF (undefined when it could not be read: the percentiles still stand); the file is removed. */
async function readFullLog(spec: RrSpec, path: string): Promise<Cdf | undefined> {
  const r = await spec.from.run(['cat', path], { nothrow: true, signal: spec.signal });
  await spec.from.run(['rm', '-f', path], { nothrow: true, signal: spec.signal });
  return r.code === 0 ? cdfOf(parseFullLog(r.stdout)) : undefined;
}
