import type { Exec } from '../exec/exec.js';

/**
 * One TCP connection attempt from a namespace: the kernel's answer to a SYN, typed.
 * iperf3 is the client because it is on every target (the qemu guests copy it) and
 * takes a connect timeout; it reports the connect's errno as strerror text.
 */

export type ConnectOutcome = 'connected' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface ConnectResult {
  outcome: ConnectOutcome;
  /** The errno of a failed connect (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...). */
  errno?: string;
  /** Wall time of the attempt as the lab saw it (process start included; a guest's agent round trips too). */
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

/** Margin over the connect timeout before the client itself is killed (a hung client is an 'error'). */
const KILL_MARGIN_MS = 5000;

/** Connect from `from` (a namespace's Exec) to addr:port once. */
export async function tcpConnect(from: Exec, spec: ConnectSpec): Promise<ConnectResult> {
  const timeout = spec.timeoutMs ?? CONNECT_TIMEOUT_MS;
  // -t 1: should the handshake complete (a listener), the test ends in a second.
  const argv = ['iperf3', '-c', spec.addr, '-p', String(spec.port), '-t', '1', '--connect-timeout', String(timeout)];
  const r = await from.run(argv, { nothrow: true, timeoutMs: timeout + KILL_MARGIN_MS, signal: spec.signal });
  if (r.code === null) return { outcome: 'error', ms: Math.round(r.ms), detail: `iperf3 killed after ${Math.round(r.ms)} ms` };
  return { ...parseConnect(r.code, `${r.stdout}\n${r.stderr}`), ms: Math.round(r.ms) };
}
