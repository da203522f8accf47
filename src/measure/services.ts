import { join } from 'node:path';
import { z } from 'zod';
import { MeasureError } from '../errors.js';
import type { Background, Exec } from '../exec/exec.js';
import { processStartTime } from '../exec/process.js';
import { sleep } from '../sleep.js';
import { HOST_OWNER, type Journal, type JournalEntry } from '../lifecycle/journal.js';

/**
 * Service measurements with bpf/user/svcprobe (static C, on every target): attempts
 * from a pod (its namespace and, with socket-LB, its cgroup) to a ClusterIP, each timed
 * around the syscall in the pod, with errno, the peer the application sees and the
 * backend that answered; and servers in the backend pods that answer with their name.
 */

export type ProbeOp = 'tcp' | 'udp' | 'udpc';

/** One attempt as svcprobe reports it. */
export const SvcAttempt = z.object({
  i: z.number(),
  op: z.enum(['tcp', 'udp', 'udpc', 'hold']),
  /** errno name of the failed step, '' when it succeeded. */
  errno: z.string(),
  /** The step that failed (connect, sendto, getpeername, reply), or done. */
  stage: z.string(),
  /** Time of connect() (TCP), sendto() or connect()+send() (UDP), in microseconds. */
  us: z.number(),
  /** The peer the application sees: getpeername (tcp, udpc) or recvfrom's source (udp). */
  peer: z.string(),
  peerPort: z.number(),
  /** The name of the backend that answered. */
  reply: z.string(),
  /** The source the server's socket saw, as its answer says ('' without an answer; absent where no server says: sim). */
  seen: z.string().optional(),
  seenPort: z.number().optional(),
  /** The port the attempt's socket had (getsockname; 0 before it had one). */
  localPort: z.number().optional(),
});
export type SvcAttempt = z.infer<typeof SvcAttempt>;

export interface ProbeSpec {
  op: ProbeOp;
  addr: string;
  port: number;
  attempts: number;
  /** Per attempt: the wait for a connect to complete and for the reply. */
  timeoutMs: number;
  /** The pod's cgroup (socket-LB), when it has one. */
  cgroup?: string;
  /** Each socket bound to a device (SO_BINDTODEVICE) and/or to src:sport+i (a 5-tuple sent again); absent: none. */
  bind?: { dev?: string; src?: string; sport?: number };
  signal?: AbortSignal;
}

/** Parse svcprobe's lines; a line that is not an attempt is an error (the tool and the lab disagree). */
export function parseAttempts(stdout: string): SvcAttempt[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      let json: unknown;
      try {
        json = JSON.parse(l);
      } catch {
        json = undefined;
      }
      const r = SvcAttempt.safeParse(json);
      if (!r.success) throw new MeasureError(`svcprobe printed an unexpected line: ${l.slice(0, 200)}`);
      return r.data;
    });
}

/** Attempts from one pod to addr:port, in one svcprobe process. */
export async function serviceAttempts(from: Exec, objDir: string, spec: ProbeSpec): Promise<SvcAttempt[]> {
  const b = spec.bind;
  const argv = [
    join(objDir, 'svcprobe'),
    ...[spec.op, spec.addr, spec.port, spec.attempts, spec.timeoutMs].map(String),
    ...(b ? [b.dev ?? '-', b.src ?? '-', String(b.sport ?? 0)] : []),
  ];
  const r = await from.run(argv, {
    cgroup: spec.cgroup,
    nothrow: true,
    signal: spec.signal,
    timeoutMs: spec.attempts * spec.timeoutMs * 2 + 5000,
  });
  if (r.code !== 0) throw new MeasureError(`svcprobe ${spec.op} on ${from.where} exited ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
  return parseAttempts(r.stdout);
}

/** A held connection (svcprobe hold): its exchanges so far, and stop, which asks for one last one and returns them all. */
export interface HeldConnection {
  /** The established connection is in the client's namespace (ss), or the hold ended. */
  ready: Promise<void>;
  stop(): Promise<SvcAttempt[]>;
}

/**
 * Connect from a pod to addr:port until the backend named `want` answers, then keep that
 * connection exchanging a message every intervalMs until stop() (SIGTERM: svcprobe makes
 * one last exchange, stage final) or maxMs. `backend` is where the kernel sends it (socket-LB
 * rewrote the address at connect), so `ss` in the pod shows when the connection is held.
 */
export function holdConnection(
  from: Exec,
  objDir: string,
  spec: {
    addr: string;
    port: number;
    want: string;
    backend: { addr: string; port: number };
    intervalMs: number;
    maxMs: number;
    cgroup?: string;
    journal: Journal;
    signal?: AbortSignal;
  },
): HeldConnection {
  const argv = [join(objDir, 'svcprobe'), 'hold', spec.addr, String(spec.port), spec.want, String(spec.intervalMs), String(spec.maxMs)];
  let out = '';
  const bg = from.start(argv, { cgroup: spec.cgroup, signal: spec.signal, onStdout: (c) => (out += c) });
  const entry = from.hostPids
    ? spec.journal.record(HOST_OWNER, [
        { kind: 'process', pid: bg.pid, startTime: processStartTime(bg.pid), argv: ['svcprobe', 'hold'] },
      ])[0]
    : undefined;
  let ended = false;
  const done = bg.done.then((r) => {
    ended = true;
    if (entry) spec.journal.gone([entry.seq]);
    return r;
  });
  const peer = spec.backend.addr.includes(':')
    ? `[${spec.backend.addr}]:${spec.backend.port}`
    : `${spec.backend.addr}:${spec.backend.port}`;
  const ready = (async () => {
    const deadline = performance.now() + 15_000;
    for (let delay = 20; !ended; delay = Math.min(delay * 2, 200)) {
      // ss -Htn state established columns: Recv-Q Send-Q Local:Port Peer:Port
      const r = await from.run(['ss', '-Htn', 'state', 'established'], { nothrow: true, signal: spec.signal });
      if (r.stdout.split('\n').some((l) => l.trim().split(/\s+/)[3] === peer)) return;
      if (performance.now() > deadline) throw new MeasureError(`svcprobe hold in ${from.where}: no connection to ${peer} after 15 s`);
      await sleep(delay);
    }
  })();
  ready.catch(() => undefined); // awaited by the caller; a hold stopped before it is ready must not leave an unhandled rejection
  return {
    ready,
    async stop() {
      if (!ended) bg.kill('SIGTERM');
      const r = await done;
      return parseAttempts(out || r.stdout);
    },
  };
}

/** A client source one server saw (svcprobe serve prints one per connection or datagram). */
export const ServerSeen = z.object({ seen: z.string(), port: z.number(), proto: z.enum(['tcp', 'udp']) });
export type ServerSeen = z.infer<typeof ServerSeen>;

/** Servers answering with their pod's name; stop() ends them and marks them gone in the journal. */
export interface Servers {
  stop(): Promise<void>;
  /** By server name, the sources each saw so far (a guest's only once stopped: its output comes at the end). */
  seen(): Record<string, ServerSeen[]>;
}

/** The seen lines of a server's output (other lines, such as ready, are not). */
export function parseSeen(stdout: string): ServerSeen[] {
  return stdout.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    const r = ServerSeen.safeParse(JSON.parse(l));
    return r.success ? [r.data] : [];
  });
}

/** One server per backend pod, on its TCP and UDP ports (e.g. ['8080/tcp', '5353/udp']); resolves once all listen. */
export async function startServers(
  pods: { exec: Exec; name: string; ports: string[] }[],
  objDir: string,
  journal: Journal,
  signal?: AbortSignal,
): Promise<Servers> {
  const running: { bg: Background; entry?: JournalEntry }[] = [];
  const outs = new Map<string, string>();
  const stop = async () => {
    for (const s of running) s.bg.kill('SIGTERM');
    for (const s of running) {
      await s.bg.done;
      if (s.entry) journal.gone([s.entry.seq]);
    }
  };
  try {
    await Promise.all(
      pods.map(async (p) => {
        let ready!: () => void;
        const listening = new Promise<void>((res) => (ready = res));
        let out = '';
        const bg = p.exec.start([join(objDir, 'svcprobe'), 'serve', p.name, ...p.ports], {
          signal,
          onStdout: (c) => {
            out += c;
            outs.set(p.name, out);
            if (out.includes('ready')) ready();
          },
        });
        const argv = ['svcprobe', 'serve', p.name];
        const entry = p.exec.hostPids
          ? journal.record(HOST_OWNER, [{ kind: 'process', pid: bg.pid, startTime: processStartTime(bg.pid), argv }])[0]
          : undefined;
        running.push({ bg, entry });
        const ended = bg.done.then((r) => {
          throw new MeasureError(`svcprobe serve in ${p.exec.where} exited ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
        });
        // A guest's process output arrives only when it ends (GuestExec.start): there, its sockets tell.
        await Promise.race([p.exec.hostPids ? listening : listeningOn(p.exec, p.ports, signal), ended]);
      }),
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const seen = () => Object.fromEntries([...outs].map(([name, out]) => [name, parseSeen(out)]));
  return { stop, seen };
}

/** Resolves once every port ('8080/tcp', '5353/udp') has a listening socket in the exec's namespace (ss). */
async function listeningOn(exec: Exec, ports: string[], signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    const r = await exec.run(['ss', '-Hlntu'], { nothrow: true, signal });
    const local = r.stdout.split('\n').map((l) => l.trim().split(/\s+/));
    // ss -Hlntu columns: Netid State Recv-Q Send-Q Local:Port Peer:Port
    const up = (p: string) => {
      const [port, proto] = p.split('/');
      return local.some((f) => f[0] === proto && f[4]?.endsWith(`:${port}`));
    };
    if (ports.every(up)) return;
    if (performance.now() > deadline)
      throw new MeasureError(`svcprobe serve in ${exec.where}: ${ports.filter((p) => !up(p)).join(', ')} not listening after 30 s`);
    await sleep(delay);
  }
}
