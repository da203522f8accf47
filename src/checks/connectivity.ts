import { pool } from '../exec/pool.js';
import { needTool } from '../kernel/facts.js';
import { CONNECT_PARALLEL, CONNECT_TIMEOUT_MS, type ConnectOutcome, type ConnectResult } from '../measure/connect.js';
import { measurer } from '../measure/measurer.js';
import { median } from '../measure/flow.js';
import type { Family } from '../topology/schema.js';
import type { Lab } from '../topology/model.js';
import { parts as labParts } from '../topology/routes.js';
import { couldNotEstablish, type Check } from './check.js';

/**
 * Nobody listens on this port, so a SYN that arrives is answered with a RST by the
 * destination's own kernel (tcp_v4_send_reset / tcp_v6_send_reset): every pod and
 * peer is its own network namespace, so a RST back at the source proves the round
 * trip as well as a handshake would, with no listener to start, journal and stop on
 * every destination. 'connected' (something listens after all) counts as reached too.
 */
export const PROBE_PORT = 5299;
/** Source pods whose attempts run at once (each CONNECT_PARALLEL at a time): a few seconds for a 3-node matrix. */
const SOURCES_AT_ONCE = 2;

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

/** One attempt to make: from a pod's namespace to an endpoint's address in one family. */
export interface Planned {
  from: string;
  netns: string;
  to: Endpoint;
  family: Family;
  addr: string;
}

/** Every pod to every other pod and every peer, per family the lab has (Cilium's pod-to-pod and pod-to-world). */
export function plannedAttempts(lab: Lab): Planned[] {
  const pods = lab.nodes.flatMap((n) =>
    n.pods.map((p) => ({ label: `${n.name}/${p.name}`, kind: 'pod' as const, netns: p.netns, v4: p.ipv4, v6: p.ipv6 })),
  );
  const peers: Endpoint[] = lab.nodes.flatMap(({ uplink: u }) =>
    u ? [{ label: u.peer, kind: 'peer' as const, v4: u.peer4?.addr, v6: u.peer6?.addr }] : [],
  );
  const out: Planned[] = [];
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
const list = (xs: Attempt[]) => xs.slice(0, NAMED).map(cell).join('; ') + (xs.length > NAMED ? `; and ${xs.length - NAMED} more` : '');
const count = <T>(xs: readonly T[], f: (x: T) => boolean) => xs.filter(f).length;

export interface ConnectivityVerdict {
  /** 'error': could not establish (nothing attempted, a family untested, attempts that could not run). */
  status: 'pass' | 'fail' | 'error';
  reason: string;
}

/** The verdict from the matrix alone (kept apart so its failing cases are tested). */
export function judgeConnectivity(matrix: readonly Attempt[], families: readonly Family[], parts: string[][] = []): ConnectivityVerdict {
  if (!matrix.length) return { status: 'error', reason: couldNotEstablish('no connection was attempted (no pod with a destination)') };
  const n = matrix.length;
  const failed = matrix.filter((a) => !reached(a.outcome) && a.outcome !== 'error');
  const errors = matrix.filter((a) => a.outcome === 'error');
  if (failed.length) {
    const split =
      parts.length > 1
        ? ` (nodes in separate parts, no path of links between them: ${parts.map((p) => `[${p.join(', ')}]`).join(' ')})`
        : '';
    const also = errors.length ? `; ${errors.length} attempts could not run` : '';
    return { status: 'fail', reason: `${failed.length} of ${n} attempts did not reach: ${list(failed)}${split}${also}` };
  }
  if (errors.length)
    return { status: 'error', reason: couldNotEstablish(`${errors.length} of ${n} attempts could not run: ${list(errors)}`) };
  const missing = families.filter((f) => !matrix.some((a) => a.family === f));
  if (missing.length) return { status: 'error', reason: couldNotEstablish(`no attempt in ${missing.join(', ')}`) };
  const per = families.map((f) => `${f} ${count(matrix, (a) => a.family === f)}`).join(', ');
  const froms = new Set(matrix.map((a) => a.from)).size;
  const tos = new Set(matrix.map((a) => a.to)).size;
  return {
    status: 'pass',
    reason: `${froms} pods reached ${tos} destinations: all ${n} attempts (${per}), median ${median(matrix.map((a) => a.ms))} ms`,
  };
}

/** Counts for the report: per family and per outcome, and the attempts' times. */
function summarize(matrix: readonly Attempt[], families: readonly Family[]) {
  const byFamily = (f: Family) => ({
    attempts: count(matrix, (a) => a.family === f),
    reached: count(matrix, (a) => a.family === f && reached(a.outcome)),
  });
  return {
    attempts: matrix.length,
    reached: count(matrix, (a) => reached(a.outcome)),
    byFamily: Object.fromEntries(families.map((f) => [f, byFamily(f)])),
    outcomes: Object.fromEntries([...new Set(matrix.map((a) => a.outcome))].map((o) => [o, count(matrix, (a) => a.outcome === o)])),
    msMedian: median(matrix.map((a) => a.ms)),
    msMax: Math.max(0, ...matrix.map((a) => a.ms)),
  };
}

export const connectivity: Check = {
  id: 'connectivity',
  title: 'Connectivity: every pod reaches every pod and every peer, per family',
  proves:
    'from every pod a TCP SYN to every other pod and every remote peer, in each family, is answered by the destination itself (a RST from a closed port)',
  requires: ({ facts }) => needTool(facts, 'iperf3'),
  applies: (lab) => (plannedAttempts(lab).length ? { ok: true } : { ok: false, reason: 'needs a pod and another pod or a peer to reach' }),
  async run(ctx) {
    const planned = plannedAttempts(ctx.lab);
    ctx.progress(
      `connectivity: ${planned.length} TCP connects to port ${PROBE_PORT}, up to ${SOURCES_AT_ONCE * CONNECT_PARALLEL} at a time`,
    );
    // One script per source pod, each running its attempts CONNECT_PARALLEL at a time.
    const results: ConnectResult[] = [];
    const sources = [...new Set(planned.map((p) => p.netns))];
    await pool(sources, SOURCES_AT_ONCE, async (netns) => {
      const mine = [...planned.keys()].filter((i) => planned[i].netns === netns);
      const spec = { port: PROBE_PORT, timeoutMs: CONNECT_TIMEOUT_MS, signal: ctx.signal };
      const got = await measurer(ctx).tcpConnectAll(
        ctx.backend.exec(netns),
        mine.map((i) => planned[i].addr),
        spec,
      );
      for (const [k, i] of mine.entries()) results[i] = got[k];
    });
    const matrix: Attempt[] = planned.map((p, i) => {
      const { outcome, errno, ms } = results[i];
      return { from: p.from, to: p.to.label, kind: p.to.kind, family: p.family, addr: p.addr, outcome, errno, ms };
    });
    const evidence = matrix.map((a, i) => `${cell(a)}, ${a.addr}:${PROBE_PORT} in ${a.ms} ms: ${results[i].detail}`);
    // Only the connected parts: planRoutes would also plan every route (a million of them at 1000 nodes).
    const parts = labParts(ctx.lab);
    const v = judgeConnectivity(matrix, ctx.lab.families, parts);
    const metrics = { port: PROBE_PORT, timeoutMs: CONNECT_TIMEOUT_MS, ...summarize(matrix, ctx.lab.families), parts, matrix };
    const threshold = 'every (pod, destination, family): connected or refused (answered by the destination)';
    return { status: v.status, reason: v.reason, metrics, threshold, evidence };
  },
};
