import type { Exec } from '../exec/exec.js';

/**
 * TCP connection attempts from a namespace: the kernel's answer to a SYN, typed.
 * iperf3 is the client because it is on every target (the qemu guests copy it) and
 * takes a connect timeout; it reports the connect's errno as strerror text.
 */

export type ConnectOutcome = 'connected' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface ConnectResult {
  outcome: ConnectOutcome;
  /** The errno of a failed connect (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...). */
  errno?: string;
  /** Duration of the attempt in the namespace (iperf3's start included), in 10 ms steps. */
  ms: number;
  /** The client's last line of output, for evidence. */
  detail: string;
}

export interface ConnectSpec {
  addr: string;
  port: number;
  /** Give up on the handshake after this long (a dropped SYN is sent again after 1 s: 2-3 s covers one retry). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Long enough for TCP's first SYN retransmission (TCP_TIMEOUT_INIT, 1 s) and a slow reply on a loaded machine. */
export const CONNECT_TIMEOUT_MS = 2500;

/** strerror text (glibc) of the errnos a connect can end with, and what each means here. */
const ERRNOS: Record<string, { errno: string; outcome: ConnectOutcome }> = {
  'Connection refused': { errno: 'ECONNREFUSED', outcome: 'refused' },
  'Connection timed out': { errno: 'ETIMEDOUT', outcome: 'timeout' },
  'No route to host': { errno: 'EHOSTUNREACH', outcome: 'unreachable' },
  'Network is unreachable': { errno: 'ENETUNREACH', outcome: 'unreachable' },
  'Network is down': { errno: 'ENETDOWN', outcome: 'unreachable' },
  // A prohibit route, or an ICMP "administratively prohibited" (icmp_err_convert in net/ipv4/icmp.c).
  'Permission denied': { errno: 'EACCES', outcome: 'unreachable' },
  'Operation not permitted': { errno: 'EPERM', outcome: 'unreachable' },
  // A blackhole route: ip_route_output_key_hash_rcu returns -EINVAL for RTN_BLACKHOLE (net/ipv4/route.c).
  'Invalid argument': { errno: 'EINVAL', outcome: 'unreachable' },
};

/** iperf3 errors that come only after the handshake completed (something listens there). */
const AFTER_CONNECT = /control socket has closed|unable to send cookie|unable to receive|server is busy|unable to send control message/i;

/** The outcome from iperf3's exit code and output (kept apart so each case is tested). */
export function parseConnect(code: number | null, output: string): Omit<ConnectResult, 'ms'> {
  const detail = output.trim().split('\n').filter(Boolean).pop() ?? '';
  if (code === 0) return { outcome: 'connected', detail };
  // iperf3 3.12: "unable to connect to server: X"; later: "unable to connect to server - server may have exited: X".
  const m = /unable to connect to server(?: - [^:]*)?: (.+?)\s*$/.exec(detail);
  if (m) {
    const known = ERRNOS[m[1]];
    return known ? { ...known, detail } : { outcome: 'error', detail };
  }
  if (AFTER_CONNECT.test(detail)) return { outcome: 'connected', detail };
  return { outcome: 'error', detail: detail || `exit ${code}` };
}

/** Margin over the connect timeouts before the script itself is killed (a hung client is an 'error'). */
const KILL_MARGIN_MS = 5000;
/** Attempts one script runs at once (it waits for each group before the next). */
export const CONNECT_PARALLEL = 8;

/**
 * Connects to every address from one namespace in one shell run: a guest pays its
 * agent's round trips once per source, not per attempt. $1 port, $2 timeout (ms),
 * $3 attempts at once, then the addresses; a line `INDEX EXIT START END LAST-LINE` per
 * attempt (one printf each: a pipe write under PIPE_BUF is not interleaved), with its
 * start and end from /proc/uptime (10 ms steps, read by the shell itself: no date(1)
 * process, and busybox's has no %N). Absolute iperf3 path: a guest's busybox sh prefers its applets.
 */
const SCRIPT = `port=$1; t=$2; par=$3; shift 3; i=0; nl='
'
one() { read -r s _ < /proc/uptime; out=$(/usr/bin/iperf3 -c "$2" -p "$port" -t 1 --connect-timeout "$t" 2>&1); rc=$?
  read -r e _ < /proc/uptime; printf '%s %s %s %s %s\\n' "$1" "$rc" "$s" "$e" "\${out##*"$nl"}"; }
for a in "$@"; do one "$i" "$a" & i=$((i + 1)); [ $((i % par)) -eq 0 ] && wait; done; wait`;

/** Results by index from the script's lines; an attempt without a line is an 'error'. */
export function parseConnectLines(stdout: string, n: number): ConnectResult[] {
  const out: ConnectResult[] = Array.from({ length: n }, () => ({
    outcome: 'error' as const,
    ms: 0,
    detail: 'no result from the connect script',
  }));
  for (const m of stdout.matchAll(/^(\d+) (\d+) ([\d.]+) ([\d.]+) ?(.*)$/gm)) {
    const i = Number(m[1]);
    if (i < n) out[i] = { ...parseConnect(Number(m[2]), m[5]), ms: Math.round((Number(m[4]) - Number(m[3])) * 1000) };
  }
  return out;
}

/** Connect from `from` (a namespace's Exec) to each address on one port, CONNECT_PARALLEL at a time. */
export async function tcpConnectAll(from: Exec, addrs: readonly string[], spec: Omit<ConnectSpec, 'addr'>): Promise<ConnectResult[]> {
  if (!addrs.length) return [];
  const timeout = spec.timeoutMs ?? CONNECT_TIMEOUT_MS;
  const rounds = Math.ceil(addrs.length / CONNECT_PARALLEL);
  const argv = ['sh', '-c', SCRIPT, 'connect', String(spec.port), String(timeout), String(CONNECT_PARALLEL), ...addrs];
  const r = await from.run(argv, { nothrow: true, timeoutMs: rounds * (timeout + KILL_MARGIN_MS), signal: spec.signal });
  const results = parseConnectLines(r.stdout, addrs.length);
  if (r.code !== 0) {
    const why = `connect script exited ${r.code ?? 'killed'} after ${Math.round(r.ms)} ms: ${r.stderr.trim().slice(0, 200)}`;
    return results.map((x) => (x.detail === 'no result from the connect script' ? { ...x, detail: why } : x));
  }
  return results;
}

/** Connect from `from` (a namespace's Exec) to addr:port once. */
export async function tcpConnect(from: Exec, spec: ConnectSpec): Promise<ConnectResult> {
  const [r] = await tcpConnectAll(from, [spec.addr], spec);
  return r;
}
