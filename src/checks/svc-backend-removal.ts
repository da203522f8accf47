import { measurer } from '../measure/measurer.js';
import { servicePlan, type Frontend } from '../datapath/kpr/plan.js';
import type { SvcAttempt } from '../measure/services.js';
import { couldNotEstablish, skip, type Check } from './check.js';
import { attemptsFor, reachedBy } from './svc-clusterip.js';
import { backendNames, backendServers, frontendsFor, labelOf, showAttempt, showAttempts, svcClient } from './svc-common.js';

/** The three phases of a removal: all backends, one removed, and put back. */
export interface RemovalRun {
  label: string;
  removed: string;
  survivors: string[];
  before: SvcAttempt[];
  after: SvcAttempt[];
  restored: SvcAttempt[];
  /**
   * A connection held to the removed backend from before its removal until after the new
   * attempts (svcprobe hold): its pick (stage held), then one exchange per interval, the
   * last one (stage final) after them.
   */
  held?: SvcAttempt[];
}

/**
 * pass: before, every backend answered (the removed one included); after the live
 * removal no new connection reached it and all reached survivors; once put back it
 * answered again. fail: the removed backend answered after removal, an attempt failed
 * after it, or it never came back; error: before the removal it never answered (so its
 * absence after would prove nothing).
 */
export function judgeBackendRemoval(r: RemovalRun): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const before = reachedBy(r.before);
  if (!before[r.removed])
    return { status: 'error', reason: couldNotEstablish(`${r.removed} never answered before the removal (${r.before.length} attempts)`) };
  const after = reachedBy(r.after);
  const failed = r.after.filter((a) => a.errno);
  if (!r.after.length) return { status: 'error', reason: couldNotEstablish('no attempt after the removal') };
  const pick = r.held?.[0];
  const exchanges = r.held?.slice(1) ?? [];
  if (r.held && (pick?.stage !== 'held' || pick.reply !== r.removed))
    return { status: 'error', reason: couldNotEstablish(`no connection held to ${r.removed} (${pick ? showAttempt(pick) : 'no output'})`) };
  if (r.held && !exchanges.some((a) => a.stage === 'final' || a.errno))
    return { status: 'error', reason: couldNotEstablish('the held connection made no exchange after the removal') };
  if (after[r.removed])
    return { status: 'fail', reason: `${r.label}: ${after[r.removed]} new connections reached ${r.removed} after its removal` };
  if (failed.length) return { status: 'fail', reason: `${r.label}: ${failed.length}/${r.after.length} attempts failed after the removal` };
  const broken = exchanges.filter((a) => a.errno || a.reply !== r.removed);
  if (broken.length)
    return {
      status: 'fail',
      reason: `${r.label}: the connection established to ${r.removed} before its removal broke: ${showAttempt(broken[0])}`,
    };
  if (!reachedBy(r.restored)[r.removed])
    return { status: 'fail', reason: `${r.label}: ${r.removed} was not picked again once put back (${r.restored.length} attempts)` };
  return {
    status: 'pass',
    reason: `${r.label}: after removing ${r.removed}, ${r.after.length} new connections all reached ${r.survivors.join(', ')}${
      r.held ? `, while a connection established to it before kept answering (${exchanges.length} exchanges, the last after them)` : ''
    }; put back, it answered again`,
  };
}

export const svcBackendRemoval: Check = {
  id: 'svc-backend-removal',
  title: 'Services: a removed backend gets no new connections; an established one goes on',
  proves:
    "after a live, atomic change of a service's backends (new slots under a new revision, then the service entry flipped) no new connection reaches the removed backend, while a connection established to it before keeps working",
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.services.some((s) => !s.affinitySeconds && s.backends.length > 1 && s.ports.some((p) => p.protocol === 'TCP'))
      ? { ok: true }
      : { ok: false, reason: 'the topology has no TCP service without affinity with two or more backends' },
  async run(ctx, spec) {
    const client = svcClient(ctx, spec);
    if (!client) return skip('no pod to connect from');
    if (client.mode !== 'bpf')
      return skip(`socket-LB is not on node ${client.node.name} (kubeProxy ${client.mode}); live changes are socket-LB's`);
    const plan = servicePlan(ctx.lab);
    const f = frontendsFor(ctx.lab, client, plan).find((x) => x.protocol === 'TCP' && !x.affinitySeconds && x.backends.length > 1);
    if (!f) return skip(`no TCP frontend without affinity with two or more backends in ${client.pod.name}'s families`);
    const names = backendNames(plan, f);
    const removed = names.at(-1)!;
    const without: Frontend = { ...f, backends: f.backends.slice(0, -1) };
    const attempts = (fr: Frontend) =>
      measurer(ctx).serviceAttempts(client.exec, ctx.objDir, {
        op: 'tcp',
        addr: fr.vip,
        port: fr.port,
        attempts: attemptsFor(f),
        timeoutMs: 1000,
        cgroup: client.cgroup,
        signal: ctx.signal,
      });
    const gone = plan.backends.find((b) => b.id === f.backends.at(-1)!.id)!;
    const servers = await backendServers(ctx, plan);
    let run: RemovalRun;
    try {
      const before = await attempts(f);
      // Socket-LB translated this connection at connect(): the removal must not touch it.
      const hold = measurer(ctx).holdConnection(client.exec, ctx.objDir, {
        addr: f.vip,
        port: f.port,
        want: removed,
        backend: { addr: gone.addr, port: gone.port },
        intervalMs: 100,
        maxMs: 60_000,
        cgroup: client.cgroup,
        journal: ctx.journal,
        signal: ctx.signal,
      });
      let after: SvcAttempt[];
      let held: SvcAttempt[];
      try {
        await hold.ready;
        await measurer(ctx).setBackends(ctx, without);
        after = await attempts(f);
      } finally {
        held = await hold.stop();
        await measurer(ctx).setBackends(ctx, f);
      }
      run = { label: labelOf(f), removed, survivors: names.slice(0, -1), before, after, held, restored: await attempts(f) };
    } finally {
      await servers.stop();
    }
    const metrics = {
      frontend: run.label,
      removed,
      before: reachedBy(run.before),
      after: reachedBy(run.after),
      restored: reachedBy(run.restored),
      heldExchanges: run.held?.length ? run.held.length - 1 : 0,
    };
    const evidence = [
      `before:\n${showAttempts(run.before)}`,
      `after removing ${removed}:\n${showAttempts(run.after)}`,
      `held to ${removed} across the removal:\n${showAttempts(run.held ?? [])}`,
      `put back:\n${showAttempts(run.restored)}`,
    ];
    return { ...judgeBackendRemoval(run), metrics, evidence };
  },
};
