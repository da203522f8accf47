import { measurer } from '../measure/measurer.js';
import { servicePlan } from '../datapath/kpr/plan.js';
import type { ProbeOp, SvcAttempt } from '../measure/services.js';
import { couldNotEstablish, skip, type Check } from './check.js';
import { frontendsFor, labelOf, showAttempt, showAttempts, svcClient } from './svc-common.js';

/** The claim's bound: the call fails at once, not after a connect timeout (issue 8: within 50 ms). */
export const NO_BACKEND_MAX_US = 50_000;
/**
 * The errno socket-LB gives a service without backends: EHOSTUNREACH, as Cilium's
 * cil_sock4_connect hands -EHOSTUNREACH from __sock4_xlate_fwd to bpf_set_retval
 * (bpf/bpf_sock.c); without bpf_set_retval a rejecting sock_addr program gives EPERM.
 */
export const NO_BACKEND_ERRNO = 'EHOSTUNREACH';

export interface NoBackendRun {
  label: string;
  op: ProbeOp;
  attempts: SvcAttempt[];
}

/** The syscall a probe makes first: where the refusal must come. */
const firstStage = (op: ProbeOp) => (op === 'udp' ? 'sendto' : 'connect');

/**
 * pass: every attempt to a service without backends failed in its first syscall
 * (connect, sendto) with EHOSTUNREACH within 50 ms; fail: one succeeded, failed later
 * (a reply that never came) or slower, or with another errno; error: nothing attempted.
 */
export function judgeNoBackend(runs: readonly NoBackendRun[]): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const all = runs.flatMap((r) => r.attempts.map((a) => ({ r, a })));
  if (!all.length) return { status: 'error', reason: couldNotEstablish('no attempt to a service without backends') };
  const problems = all.flatMap(({ r, a }) => {
    if (!a.errno) return [`${r.label} ${r.op}: #${a.i} went through (answered by ${a.reply || 'someone'})`];
    if (a.stage !== firstStage(r.op)) return [`${r.label} ${r.op}: #${a.i} was not refused at ${firstStage(r.op)} (${showAttempt(a)})`];
    if (a.errno !== NO_BACKEND_ERRNO) return [`${r.label} ${r.op}: #${a.i} failed with ${a.errno}, not ${NO_BACKEND_ERRNO}`];
    if (a.us > NO_BACKEND_MAX_US) return [`${r.label} ${r.op}: #${a.i} took ${a.us} us (over ${NO_BACKEND_MAX_US})`];
    return [];
  });
  if (problems.length) return { status: 'fail', reason: problems.slice(0, 6).join('; ') };
  const max = Math.max(...all.map(({ a }) => a.us));
  return { status: 'pass', reason: `${all.length} attempts refused with ${NO_BACKEND_ERRNO} at the call, slowest in ${max} us` };
}

export const svcNoBackend: Check = {
  id: 'svc-no-backend',
  title: 'Services: a service without backends fails at once',
  proves: `connect() and sendto() to a ClusterIP without backends fail in the call itself with ${NO_BACKEND_ERRNO} within 50 ms (socket-LB), instead of timing out`,
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.services.some((s) => !s.backends.length) ? { ok: true } : { ok: false, reason: 'the topology has no service without backends' },
  async run(ctx, spec) {
    const client = svcClient(ctx, spec);
    if (!client) return skip('no pod to connect from');
    if (client.mode !== 'bpf')
      return skip(`socket-LB is not on node ${client.node.name} (kubeProxy ${client.mode}); the claim is socket-LB's`);
    const fronts = frontendsFor(ctx.lab, client, servicePlan(ctx.lab)).filter((f) => !f.backends.length);
    const runs: NoBackendRun[] = [];
    for (const f of fronts)
      for (const op of f.protocol === 'TCP' ? (['tcp'] as const) : (['udp', 'udpc'] as const))
        runs.push({
          label: labelOf(f),
          op,
          attempts: await measurer(ctx).serviceAttempts(client.exec, ctx.objDir, {
            op,
            addr: f.vip,
            port: f.port,
            attempts: 3,
            timeoutMs: 1000,
            cgroup: client.cgroup,
            signal: ctx.signal,
          }),
        });
    const attempts = runs.flatMap((r) => r.attempts);
    const metrics = {
      client: `${client.node.name}/${client.pod.name}`,
      errnos: [...new Set(attempts.map((a) => a.errno || 'none'))],
      maxUs: attempts.length ? Math.max(...attempts.map((a) => a.us)) : undefined,
      attempts: attempts.length,
    };
    return {
      ...judgeNoBackend(runs),
      metrics,
      threshold: `${NO_BACKEND_ERRNO} at the call within ${NO_BACKEND_MAX_US / 1000} ms`,
      evidence: runs.map((r) => `${r.label} ${r.op}:\n${showAttempts(r.attempts)}`),
    };
  },
};
