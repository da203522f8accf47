import { parseTcpMmap, type TcpMmapResult } from '../backends/ssh/tcp-mmap.js';
import { LabError, MeasureError } from '../errors.js';
import { startedPid, type Background, type Exec } from '../exec/exec.js';
import { sleep } from '../sleep.js';

/** tcp_mmap's own default port (tcp_mmap.c, cfg_port). */
export const TCP_MMAP_PORT = 8787;

/** x86's page size: TCP_ZEROCOPY_RECEIVE maps whole pages of payload (tcp_mmap.c's header comment). */
const PAGE = 4096;
/** TCP header with the timestamp option: 20 + 12 bytes (tcp_mmap.c: "-M $((4096+12))"). */
const TCP_TS_HDR = 32;
const TS_OPT = 12;

/**
 * The TCP_MAXSEG (tcp_mmap -M) that makes every segment carry whole pages at this MTU, or
 * undefined when a page does not fit (MTU 1500). tcp_mmap.c: "Each incoming frame must be a
 * multiple of PAGE_SIZE bytes of TCP payload"; the seed's MTU 8264 is 2 pages + IPv6 (40) + TCP
 * with timestamps (32); over IPv4 (20) the same MTU needs the clamp to get 8192, not 8212.
 */
export function pageMss(mtu: number, family: 4 | 6): number | undefined {
  const pages = Math.floor((mtu - (family === 4 ? 20 : 40) - TCP_TS_HDR) / PAGE);
  return pages >= 1 ? pages * PAGE + TS_OPT : undefined;
}

/** One tcp_mmap run: a receiver (`-s`) and a sender (`-H`), each pinned where its core is known. */
export interface TcpMmapSpec {
  /** Where the sender runs. */
  from: Exec;
  /** Where the receiver runs. */
  to: Exec;
  /** tcp_mmap's path as the sender's and the receiver's hosts see it. */
  fromBin: string;
  toBin: string;
  /** The receiver's address as the sender dials it. */
  addr: string;
  family: 4 | 6;
  /** How long the sender sends (it stops earlier at tcp_mmap's FILE_SZ, 32 GiB). */
  seconds: number;
  port?: number;
  /** taskset -a -c CORE for each side (the seed's pinning); undefined: not pinned. */
  fromCore?: number;
  toCore?: number;
  /** TCP_MAXSEG on both ends (tcp_mmap -M), pageMss of the path's MTU. */
  mss?: number;
  /** Journal a started process on its host; returns what marks it gone. */
  track?: (end: 'from' | 'to', pid: number) => () => void;
  signal?: AbortSignal;
}

/** What one run measured: the receiver's report (undefined when it printed none) and the raw lines. */
export interface TcpMmapFlow {
  result?: TcpMmapResult;
  receiver: string[];
  sender: string[];
  evidence: string[];
}

const pin = (core: number | undefined, argv: string[]) => (core === undefined ? argv : ['taskset', '-a', '-c', String(core), ...argv]);

/** Poll `ready` every 50 ms until it holds or the deadline passes. */
async function until(ready: () => boolean | Promise<boolean>, ms: number, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end && !signal?.aborted) {
    if (await ready()) return true;
    await sleep(50, signal);
  }
  return ready();
}

/**
 * tcp_mmap between two namespaces: the receiver with mmap() receive (-z: TCP_ZEROCOPY_RECEIVE),
 * the sender with MSG_ZEROCOPY (-z); the sender is stopped after `seconds`, its close ends the
 * connection and the receiver prints its report (tcp_mmap.c, child_thread). Both processes are
 * killed in a finally (also on abort) and tracked while they run.
 */
export async function tcpMmapFlow(spec: TcpMmapSpec): Promise<TcpMmapFlow> {
  const port = spec.port ?? TCP_MMAP_PORT;
  const common = [`-${spec.family}`, '-p', String(port), '-z', ...(spec.mss ? ['-M', String(spec.mss)] : [])];
  const receiver = pin(spec.toCore, [spec.toBin, ...common, '-s']);
  const sender = pin(spec.fromCore, [spec.fromBin, ...common, '-H', spec.addr]);
  let out = '';
  type Started = { bg: Background; ended: boolean; untrack?: () => void };
  const started: Started[] = [];
  const start = async (end: 'from' | 'to', exec: Exec, argv: string[], onStdout?: (d: string) => void) => {
    const bg = exec.start(argv, { signal: spec.signal, onStdout });
    const one: Started = { bg, ended: false };
    void bg.done.then(() => (one.ended = true));
    started.push(one);
    const pid = await startedPid(bg);
    if (pid > 0) one.untrack = spec.track?.(end, pid);
    return bg;
  };
  // On abort the local end (an ssh client) is gone but the remote process may not be: it is killed by pid
  // all the same, and stays in the journal for teardown.
  const stop = async (one: Started) => {
    const aborted = !!spec.signal?.aborted;
    if (!one.ended || aborted) one.bg.kill('SIGKILL');
    await one.bg.done;
    if (!aborted) one.untrack?.();
    one.untrack = undefined;
  };
  try {
    const rx = await start('to', spec.to, receiver, (d) => (out += d));
    let rxEnded = false;
    void rx.done.then(() => (rxEnded = true));
    const listening = await until(
      async () =>
        rxEnded || !!(await spec.to.run(['ss', '-ltnH', 'sport', '=', `:${port}`], { nothrow: true, signal: spec.signal })).stdout.trim(),
      15_000,
      spec.signal,
    );
    if (spec.signal?.aborted) throw new LabError('E_INTERRUPTED', `tcp_mmap on ${spec.to.where} interrupted`);
    if (rxEnded || !listening) {
      const r = rxEnded ? await rx.done : undefined;
      throw new MeasureError(
        `tcp_mmap -s on ${spec.to.where} never listened on port ${port}${r ? `: ${(r.stderr || r.stdout).slice(0, 300)}` : ''}`,
      );
    }
    const tx = await start('from', spec.from, sender);
    let txEnded = false;
    void tx.done.then(() => (txEnded = true));
    // The measurement window: the sender runs `seconds` (or ends at FILE_SZ first).
    await until(() => txEnded, spec.seconds * 1000, spec.signal);
    if (!txEnded) tx.kill('SIGKILL');
    const t = await tx.done;
    if (spec.signal?.aborted) throw new LabError('E_INTERRUPTED', `tcp_mmap on ${spec.from.where} interrupted`);
    // The receiver drains what is queued, then reports when it reads the end of the stream.
    await until(() => /usec per MB/.test(out), 20_000, spec.signal);
    const evidence = [`receiver: ${receiver.join(' ')}`, `sender: ${sender.join(' ')}`, ...out.trim().split('\n').slice(-3)];
    if (t.code !== 0 && !/usec per MB/.test(out)) evidence.push(`sender exited ${t.code}: ${(t.stderr || t.stdout).trim().slice(0, 300)}`);
    return { result: parseTcpMmap(out), receiver, sender, evidence };
  } finally {
    await Promise.all(started.map(stop));
  }
}
