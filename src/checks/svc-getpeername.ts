import { measurer } from '../measure/measurer.js';
import { servicePlan } from '../datapath/kpr/plan.js';
import type { ProbeOp, SvcAttempt } from '../measure/services.js';
import { couldNotEstablish, type Check } from './check.js';
import { backendServers, frontendsFor, labelOf, showAttempts, handlingClient } from './svc-common.js';

/** Attempts of one kind to one frontend, and the address the application should see. */
export interface PeerRun {
  label: string;
  op: ProbeOp;
  vip: string;
  port: number;
  attempts: SvcAttempt[];
}

/**
 * pass: every completed attempt saw the ClusterIP and port as its peer (getpeername
 * for TCP and connected UDP, recvfrom's source for unconnected UDP); fail: one saw
 * another address (the backend's: no reverse translation); error: no attempt completed.
 */
export function judgeGetpeername(runs: readonly PeerRun[]): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const done = runs.flatMap((r) => r.attempts.filter((a) => !a.errno).map((a) => ({ r, a })));
  if (!done.length) return { status: 'error', reason: couldNotEstablish('no attempt to a ClusterIP completed') };
  const wrong = done.filter(({ r, a }) => a.peer !== r.vip || a.peerPort !== r.port);
  if (wrong.length)
    return {
      status: 'fail',
      reason: wrong
        .slice(0, 6)
        .map(({ r, a }) => `${r.label} ${r.op}: the application saw ${a.peer}:${a.peerPort}`)
        .join('; '),
    };
  const ops = [...new Set(done.map(({ a }) => a.op))].join(', ');
  const failed = runs.reduce((n, r) => n + r.attempts.filter((a) => a.errno).length, 0);
  return {
    status: 'pass',
    reason: `${done.length} attempts (${ops}) saw their ClusterIP:port as the peer${failed ? `; ${failed} did not complete` : ''}`,
  };
}

export const svcGetpeername: Check = {
  id: 'svc-getpeername',
  title: 'Services: the application sees the ClusterIP as its peer',
  proves:
    'getpeername on a TCP or connected UDP socket, and the source of a UDP reply, name the ClusterIP and port the pod dialled, not the backend',
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.services.some((s) => s.backends.length) ? { ok: true } : { ok: false, reason: 'the topology has no service with backends' },
  async run(ctx, spec) {
    const client = handlingClient(ctx, spec);
    if ('status' in client) return client;
    const plan = servicePlan(ctx.lab);
    const fronts = frontendsFor(ctx.lab, client, plan).filter((f) => f.backends.length);
    const servers = await backendServers(ctx, plan);
    const runs: PeerRun[] = [];
    try {
      for (const f of fronts)
        for (const op of f.protocol === 'TCP' ? (['tcp'] as const) : (['udp', 'udpc'] as const)) {
          const attempts = await measurer(ctx).serviceAttempts(client.exec, ctx.objDir, {
            op,
            addr: f.vip,
            port: f.port,
            attempts: 4,
            timeoutMs: 1000,
            cgroup: client.cgroup,
            signal: ctx.signal,
          });
          runs.push({ label: labelOf(f), op, vip: f.vip, port: f.port, attempts });
        }
    } finally {
      await servers.stop();
    }
    const metrics = {
      mode: client.mode,
      client: `${client.node.name}/${client.pod.name}`,
      peers: runs.map((r) => ({ frontend: r.label, op: r.op, seen: [...new Set(r.attempts.map((a) => `${a.peer}:${a.peerPort}`))] })),
    };
    const evidence = runs.map((r) => `${r.label} ${r.op}:\n${showAttempts(r.attempts)}`);
    return { ...judgeGetpeername(runs), metrics, evidence };
  },
};
