import { parseJson, type Exec } from '../exec/exec.js';
import { processStartTime } from '../exec/process.js';
import { MeasureError } from '../errors.js';
import { HOST_OWNER, type Journal, type JournalEntry } from '../lifecycle/journal.js';
import { sleep } from '../sleep.js';

/** A UDP flow at a fixed offered rate (iperf3 -u): what was sent and what arrived within the test. */
export interface UdpFlowResult {
  sentBps: number;
  receivedBps: number;
  sentPackets: number;
  lostPackets: number;
  evidence: string[];
}

export interface UdpFlowSpec {
  from: Exec;
  to: Exec;
  addr: string;
  seconds: number;
  /** Offered rate, bit/s (iperf3 -b). */
  bps: number;
  /** Datagram payload, bytes (iperf3 -l). */
  len?: number;
  port?: number;
  journal: Journal;
  signal?: AbortSignal;
}

/** iperf3's default port + 1, so a UDP flow never meets a TCP flow's server. */
export const UDP_PORT = 5202;

/** An iperf3 UDP flow; host processes are journaled like bulkFlow's, the server is one-off with an idle timeout. */
export async function udpFlow(spec: UdpFlowSpec): Promise<UdpFlowResult> {
  const port = String(spec.port ?? UDP_PORT);
  const server = spec.to.start(['iperf3', '-s', '-1', '-p', port, '--idle-timeout', String(spec.seconds + 20)], { signal: spec.signal });
  const own = (exec: Exec, pid: number, argv: string[]): JournalEntry | undefined =>
    exec.hostPids ? spec.journal.record(HOST_OWNER, [{ kind: 'process', pid, startTime: processStartTime(pid), argv }])[0] : undefined;
  const srvEntry = own(spec.to, server.pid, ['iperf3', '-s']);
  try {
    for (let i = 0; ; i++) {
      const r = await spec.to.run(['ss', '-ltnH', 'sport', '=', `:${port}`], { nothrow: true, signal: spec.signal });
      if (r.stdout.trim()) break;
      if (i >= 100 || spec.signal?.aborted) throw new MeasureError(`iperf3 server on ${spec.to.where} never listened on port ${port}`);
      await sleep(20, spec.signal);
    }
    const argv = ['iperf3', '-c', spec.addr, '-p', port, '-u', '-b', String(Math.round(spec.bps)), '-l', String(spec.len ?? 1400)];
    const r = await spec.from.run([...argv, '-t', String(spec.seconds), '-J', '--connect-timeout', '3000'], {
      nothrow: true,
      signal: spec.signal,
    });
    if (r.code !== 0)
      throw new MeasureError(`iperf3 -u on ${spec.from.where} failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(0, 400)}`);
    type Sum = { bits_per_second?: number; packets?: number; lost_packets?: number };
    const j = parseJson<{ end?: { sum_sent?: Sum; sum_received?: Sum } }>(r, 'iperf3 -u -J');
    const sent = j?.end?.sum_sent ?? {};
    const recv = j?.end?.sum_received ?? {};
    const res = {
      sentBps: sent.bits_per_second ?? 0,
      receivedBps: recv.bits_per_second ?? 0,
      sentPackets: sent.packets ?? 0,
      lostPackets: recv.lost_packets ?? 0,
    };
    const mbit = (x: number) => (x / 1e6).toFixed(3);
    return {
      ...res,
      evidence: [
        `${argv.join(' ')} -t ${spec.seconds}: sent ${mbit(res.sentBps)} Mbit/s (${res.sentPackets} datagrams), received ${mbit(res.receivedBps)} Mbit/s, ${res.lostPackets} lost`,
      ],
    };
  } finally {
    server.kill('SIGTERM');
    await server.done;
    if (srvEntry) spec.journal.gone([srvEntry.seq]);
  }
}
