import { measurer } from '../measure/measurer.js';
import { servicePlan } from '../datapath/kpr/plan.js';
import type { SvcAttempt } from '../measure/services.js';
import { couldNotEstablish, type Check } from './check.js';
import { reachedBy } from './svc-clusterip.js';
import { backendNames, backendServers, frontendsFor, labelOf, opOf, showAttempts, handlingClient } from './svc-common.js';

/** Attempts to one affinity frontend from one client. */
export interface AffinityRun {
  label: string;
  backends: string[];
  attempts: SvcAttempt[];
}

/** Attempts per affinity frontend: by chance alone all land on one of k backends with probability k^(1-n). */
export const AFFINITY_ATTEMPTS = 12;

/**
 * pass: every completed attempt to each affinity frontend was answered by one and the
 * same backend of it; fail: two backends answered (or a stranger); error: no attempt
 * completed.
 */
export function judgeAffinity(runs: readonly AffinityRun[]): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const done = runs.filter((r) => r.attempts.some((a) => !a.errno));
  if (!done.length) return { status: 'error', reason: couldNotEstablish('no attempt to an affinity service completed') };
  const problems = done.flatMap((r) => {
    const by = Object.keys(reachedBy(r.attempts));
    if (by.some((b) => !r.backends.includes(b))) return [`${r.label}: answered by ${by.join(', ')}, not all its backends`];
    return by.length > 1 ? [`${r.label}: one client reached ${by.join(', ')}`] : [];
  });
  if (problems.length) return { status: 'fail', reason: problems.join('; ') };
  return {
    status: 'pass',
    reason: done
      .map((r) => `${r.label}: ${r.attempts.filter((a) => !a.errno).length} attempts all to ${Object.keys(reachedBy(r.attempts))[0]}`)
      .join(', '),
  };
}

export const svcAffinity: Check = {
  id: 'svc-affinity',
  title: 'Services: session affinity keeps a client on one backend',
  proves: 'with sessionAffinity every new connection from the same pod goes to the same backend (of several)',
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.services.some((s) => s.affinitySeconds && s.backends.length > 1)
      ? { ok: true }
      : { ok: false, reason: 'the topology has no service with sessionAffinity and two or more backends' },
  async run(ctx, spec) {
    const client = handlingClient(ctx, spec);
    if ('status' in client) return client;
    const plan = servicePlan(ctx.lab);
    const fronts = frontendsFor(ctx.lab, client, plan).filter((f) => f.affinitySeconds && f.backends.length > 1);
    const servers = await backendServers(ctx, plan);
    const runs: AffinityRun[] = [];
    try {
      for (const f of fronts)
        runs.push({
          label: labelOf(f),
          backends: backendNames(plan, f),
          attempts: await measurer(ctx).serviceAttempts(client.exec, ctx.objDir, {
            op: opOf(f),
            addr: f.vip,
            port: f.port,
            attempts: AFFINITY_ATTEMPTS,
            timeoutMs: 1000,
            cgroup: client.cgroup,
            signal: ctx.signal,
          }),
        });
    } finally {
      await servers.stop();
    }
    const metrics = { mode: client.mode, frontends: runs.map((r) => ({ frontend: r.label, reached: reachedBy(r.attempts) })) };
    return { ...judgeAffinity(runs), metrics, evidence: runs.map((r) => `${r.label}:\n${showAttempts(r.attempts)}`) };
  },
};
