import { pool } from '../exec/pool.js';
import { needTool } from '../kernel/facts.js';
import { CONNECT_TIMEOUT_MS, tcpConnect, type ConnectOutcome } from '../measure/connect.js';
import { median } from '../measure/flow.js';
import type { Family } from '../topology/schema.js';
import type { Lab } from '../topology/model.js';
import { planRoutes } from '../topology/routes.js';
import type { Check } from './check.js';

/**
 * Nobody listens on this port, so a SYN that arrives is answered with a RST by the
 * destination's own kernel (tcp_v4_send_reset / tcp_v6_send_reset): every pod and
 * peer is its own network namespace, so a RST back at the source proves the round
 * trip as well as a handshake would, with no listener to start, journal and stop on
 * every destination. 'connected' (something listens after all) counts as reached too.
 */
export const PROBE_PORT = 5299;
/** Attempts in flight at once: a few seconds for a 3-node matrix even when some time out. */
const PARALLEL_ATTEMPTS = 8;

/** One cell of the matrix: a source pod, a destination, a family, and what the kernel answered. */
export interface Attempt {
  /** Source pod as node/pod. */
  from: string;
  /** Destination: node/pod, or a peer's name. */
  to: string;
  kind: 'pod' | 'peer';
  family: Family;
  addr: string;
  outcome: ConnectOutcome;
  errno?: string;
  ms: number;
}

interface Endpoint {
  label: string;
  kind: 'pod' | 'peer';
  v4?: string;
  v6?: string;
}

/** Every pod to every other pod and every peer, per family the lab has (Cilium's pod-to-pod and pod-to-world). */
export function plannedAttempts(lab: Lab): { from: string; netns: string; to: Endpoint; family: Family; addr: string }[] {
  const pods = lab.nodes.flatMap((n) => n.pods.map((p) => ({ label: `${n.name}/${p.name}`, kind: 'pod' as const, netns: p.netns, v4: p.ipv4, v6: p.ipv6 })));
  const peers: Endpoint[] = lab.nodes.flatMap((n) => (n.uplink ? [{ label: n.uplink.peer, kind: 'peer' as const, v4: n.uplink.peer4?.addr, v6: n.uplink.peer6?.addr }] : []));
  const out = [];
  for (const src of pods)
    for (const dst of [...pods.filter((p) => p !== src), ...peers])
      for (const family of lab.families) {
        const addr = family === 'ipv4' ? dst.v4 : dst.v6;
        if (addr && (family === 'ipv4' ? src.v4 : src.v6)) out.push({ from: src.label, netns: src.netns, to: dst, family, addr });
      }
  return out;
}

const reached = (o: ConnectOutcome) => o === 'connected' || o === 'refused';
const cell = (a: Attempt) => `${a.from} -> ${a.to} ${a.family}: ${a.outcome}${a.errno ? ` (${a.errno})` : ''}`;
/** Failing pairs named in a reason; the rest are counted (all are in the evidence). */
const NAMED = 12;

/** The verdict from the matrix alone (kept apart so its failing cases are tested). 'error': could not establish. */
export function judgeConnectivity(matrix: readonly Attempt[], families: readonly Family[], parts: string[][] = []): { status: 'pass' | 'fail' | 'error'; reason: string } {
  if (!matrix.length) return { status: 'error', reason: 'could not establish: no connection was attempted (no pod with a destination)' };
  const missing = families.filter((f) => !matrix.some((a) => a.family === f));
  const failed = matrix.filter((a) => !reached(a.outcome) && a.outcome !== 'error');
  const errors = matrix.filter((a) => a.outcome === 'error');
  const list = (xs: Attempt[]) => xs.slice(0, NAMED).map(cell).join('; ') + (xs.length > NAMED ? `; and ${xs.length - NAMED} more` : '');
  const split = parts.length > 1 ? ` (nodes in separate parts, no path of links between them: ${parts.map((p) => `[${p.join(', ')}]`).join(' ')})` : '';
  if (failed.length) {
    const also = errors.length ? `; ${errors.length} attempts could not run` : '';
    return { status: 'fail', reason: `${failed.length} of ${matrix.length} attempts did not reach: ${list(failed)}${split}${also}` };
  }
  if (errors.length) return { status: 'error', reason: `could not establish: ${errors.length} of ${matrix.length} attempts could not run: ${list(errors)}` };
  if (missing.length) return { status: 'error', reason: `could not establish: no attempt in ${missing.join(', ')}` };
  const per = families.map((f) => `${f} ${matrix.filter((a) => a.family === f).length}`).join(', ');
  const froms = new Set(matrix.map((a) => a.from)).size;
  const tos = new Set(matrix.map((a) => a.to)).size;
  return { status: 'pass', reason: `${froms} pods reached ${tos} destinations: all ${matrix.length} attempts (${per}), median ${median(matrix.map((a) => a.ms))} ms` };
}

export const connectivity: Check = {
  id: 'connectivity',
  title: 'Connectivity: every pod reaches every pod and every peer, per family',
  proves: 'from every pod a TCP SYN to every other pod and every remote peer, in each family, is answered by the destination itself (a RST from a closed port)',
  requires: ({ facts }) => needTool(facts, 'iperf3'),
  applies: (lab) => (plannedAttempts(lab).length ? { ok: true } : { ok: false, reason: 'needs a pod and another pod or a peer to reach' }),
  async run(ctx) {
    const planned = plannedAttempts(ctx.lab);
    ctx.progress(`connectivity: ${planned.length} TCP connects to port ${PROBE_PORT}, ${PARALLEL_ATTEMPTS} at a time`);
    const results: Awaited<ReturnType<typeof tcpConnect>>[] = [];
    await pool([...planned.keys()], PARALLEL_ATTEMPTS, async (i) => {
      const p = planned[i];
      results[i] = await tcpConnect(ctx.backend.exec(p.netns), { addr: p.addr, port: PROBE_PORT, timeoutMs: CONNECT_TIMEOUT_MS, signal: ctx.signal });
    });
    const matrix: Attempt[] = planned.map((p, i) => ({ from: p.from, to: p.to.label, kind: p.to.kind, family: p.family, addr: p.addr, outcome: results[i].outcome, errno: results[i].errno, ms: results[i].ms }));
    const evidence = matrix.map((a, i) => `${a.from} -> ${a.to} ${a.family} ${a.addr}:${PROBE_PORT}: ${a.outcome}${a.errno ? ` ${a.errno}` : ''} ${a.ms} ms: ${results[i].detail}`);
    const parts = planRoutes(ctx.lab).parts;
    const v = judgeConnectivity(matrix, ctx.lab.families, parts);
    const metrics = {
      port: PROBE_PORT,
      timeoutMs: CONNECT_TIMEOUT_MS,
      attempts: matrix.length,
      reached: matrix.filter((a) => reached(a.outcome)).length,
      byFamily: Object.fromEntries(ctx.lab.families.map((f) => [f, { attempts: matrix.filter((a) => a.family === f).length, reached: matrix.filter((a) => a.family === f && reached(a.outcome)).length }])),
      outcomes: Object.fromEntries([...new Set(matrix.map((a) => a.outcome))].map((o) => [o, matrix.filter((a) => a.outcome === o).length])),
      msMedian: median(matrix.map((a) => a.ms)),
      msMax: Math.max(0, ...matrix.map((a) => a.ms)),
      parts,
      matrix,
    };
    const threshold = 'every (pod, destination, family): connected or refused (answered by the destination)';
    // CheckStatus has no 'error' yet: "could not establish" is reported as a failure, its reason says so.
    return { status: v.status === 'error' ? 'fail' : v.status, reason: v.reason, metrics, threshold, evidence };
  },
};
