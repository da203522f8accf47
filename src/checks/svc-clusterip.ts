import { measurer } from '../measure/measurer.js';
import { servicePlan, type Frontend } from '../datapath/kpr/plan.js';
import type { SvcAttempt } from '../measure/services.js';
import { couldNotEstablish, type Check } from './check.js';
import { backendNames, backendServers, frontendsFor, labelOf, opOf, showAttempt, showAttempts, handlingClient } from './svc-common.js';

/** What one frontend's attempts showed. */
export interface FrontendRun {
  label: string;
  /** The backends' names (node/pod) as their servers answer. */
  backends: string[];
  /** Session affinity: one backend per client is the claim, so not every backend is expected. */
  affinity: boolean;
  attempts: SvcAttempt[];
}

/**
 * Attempts so that a backend with the smallest share is missed with probability under
 * 1e-6 when the datapath picks at random: (1 - p)^n < 1e-6. At most 200.
 */
export function attemptsFor(f: Pick<Frontend, 'backends' | 'affinitySeconds'>): number {
  if (f.affinitySeconds || !f.backends.length) return 8;
  const total = f.backends.reduce((a, b) => a + b.weight, 0);
  const p = Math.min(...f.backends.map((b) => b.weight)) / total;
  if (p >= 1) return 8;
  return Math.min(200, Math.max(8, Math.ceil(Math.log(1e-6) / Math.log(1 - p))));
}

/** Attempts answered per backend name. */
export function reachedBy(attempts: readonly SvcAttempt[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of attempts) if (!a.errno && a.reply) out[a.reply] = (out[a.reply] ?? 0) + 1;
  return out;
}

/**
 * pass: every attempt to every frontend was answered, only by that service's backends,
 * and (without affinity) every backend answered some; fail: an attempt failed, a
 * non-backend answered, or a backend was never picked; error: nothing to judge.
 */
export function judgeClusterIp(runs: readonly FrontendRun[]): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const tried = runs.filter((r) => r.attempts.length);
  if (!tried.length) return { status: 'error', reason: couldNotEstablish('no attempt to any frontend with backends') };
  const problems: string[] = [];
  for (const r of tried) {
    const failed = r.attempts.filter((a) => a.errno);
    if (failed.length) problems.push(`${r.label}: ${failed.length}/${r.attempts.length} failed (${showAttempt(failed[0])})`);
    const by = reachedBy(r.attempts);
    const strangers = Object.keys(by).filter((n) => !r.backends.includes(n));
    if (strangers.length) problems.push(`${r.label}: answered by ${strangers.join(', ')}, not a backend of it`);
    const missed = r.affinity ? [] : r.backends.filter((n) => !by[n]);
    if (missed.length && !failed.length) problems.push(`${r.label}: ${missed.join(', ')} never picked in ${r.attempts.length} attempts`);
  }
  if (problems.length) return { status: 'fail', reason: problems.join('; ') };
  const n = tried.reduce((a, r) => a + r.attempts.length, 0);
  const per = tried
    .map((r) => {
      const by = reachedBy(r.attempts);
      return `${r.label} ${r.backends.map((b) => by[b] ?? 0).join('/')}`;
    })
    .join(', ');
  return { status: 'pass', reason: `${tried.length} frontends: all ${n} attempts answered by their backends (${per})` };
}

export const svcClusterIp: Check = {
  id: 'svc-clusterip',
  title: 'Services: each ClusterIP reaches its backends (TCP and UDP, per family)',
  proves:
    "a pod's connections and datagrams to each ClusterIP are answered by that service's backends, every backend in turn (the lab's kubeProxy mode)",
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.services.some((s) => s.backends.length) ? { ok: true } : { ok: false, reason: 'the topology has no service with backends' },
  async run(ctx, spec) {
    const client = handlingClient(ctx, spec);
    if ('status' in client) return client;
    const plan = servicePlan(ctx.lab);
    const fronts = frontendsFor(ctx.lab, client, plan).filter((f) => f.backends.length);
    const servers = await backendServers(ctx, plan);
    const runs: FrontendRun[] = [];
    try {
      for (const f of fronts) {
        const attempts = await measurer(ctx).serviceAttempts(client.exec, ctx.objDir, {
          op: opOf(f),
          addr: f.vip,
          port: f.port,
          attempts: attemptsFor(f),
          timeoutMs: 1000,
          cgroup: client.cgroup,
          signal: ctx.signal,
        });
        runs.push({ label: labelOf(f), backends: backendNames(plan, f), affinity: f.affinitySeconds > 0, attempts });
      }
    } finally {
      await servers.stop();
    }
    const metrics = {
      mode: client.mode,
      client: `${client.node.name}/${client.pod.name}`,
      frontends: runs.map((r) => ({
        frontend: r.label,
        attempts: r.attempts.length,
        failed: r.attempts.filter((a) => a.errno).length,
        reached: reachedBy(r.attempts),
      })),
    };
    const evidence = runs.map((r) => `${r.label} from ${metrics.client}:\n${showAttempts(r.attempts)}`);
    return { ...judgeClusterIp(runs), metrics, evidence };
  },
};
