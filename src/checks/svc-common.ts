import { decisionOf } from '../datapath/feature.js';
import { kubeProxy, podCgroup, type KubeProxyMode } from '../datapath/kpr/kpr.js';
import { servicePlan, type Frontend, type ServicePlan } from '../datapath/kpr/plan.js';
import type { Exec } from '../exec/exec.js';
import type { LabContext } from '../lifecycle/context.js';
import { measurer } from '../measure/measurer.js';
import type { ProbeOp, SvcAttempt } from '../measure/services.js';
import type { CheckSpec, Lab, LabNode, Pod } from '../topology/model.js';
import { pickPod, skip } from './check.js';

/** The pod the service checks connect from, with where its processes run. */
export interface SvcClient {
  node: LabNode;
  pod: Pod;
  exec: Exec;
  /** The pod's cgroup (socket-LB), or undefined when its node has none. */
  cgroup?: string;
  mode: KubeProxyMode;
}

/** The client: the pod the spec names, else the first pod that backs no service (else the first pod). */
export function svcClient(ctx: LabContext, spec: CheckSpec): SvcClient | undefined {
  const backs = new Set(ctx.lab.services.flatMap((s) => s.backends.map((b) => `${b.node}/${b.pod}`)));
  const picked = pickPod(ctx.lab, spec, (n, p) => !!spec.pod || !backs.has(`${n.name}/${p.name}`)) ?? pickPod(ctx.lab, spec, () => true);
  if (!picked) return undefined;
  const mode = decisionOf<KubeProxyMode>(ctx.decisions, kubeProxy, picked.node.name)?.mode ?? 'none';
  return {
    ...picked,
    exec: ctx.backend.exec(picked.pod.netns),
    cgroup: podCgroup(ctx, picked.node, picked.pod),
    mode,
  };
}

/**
 * The client of a check that holds under either kubeProxy mode (socket-LB or kube-proxy's rules):
 * a skip saying why when there is no pod to connect from or its node handles no services.
 */
export function handlingClient(ctx: LabContext, spec: CheckSpec): SvcClient | ReturnType<typeof skip> {
  const client = svcClient(ctx, spec);
  if (!client) return skip('no pod to connect from');
  if (client.mode === 'none') return skip(`node ${client.node.name} handles no services (kubeProxy none, or socket-LB unavailable)`);
  return client;
}

/** The name a backend's server answers with: node/pod (pod names repeat across nodes). */
export const serverName = (node: string, pod: string) => `${node}/${pod}`;

/** Start a server in every backend pod on the ports its services send to; returns the plan and a stop. */
export async function backendServers(ctx: LabContext, plan: ServicePlan = servicePlan(ctx.lab)) {
  const ports = new Map<string, Set<string>>();
  for (const f of plan.frontends)
    for (const b of f.backends) {
      const be = plan.backends.find((x) => x.id === b.id)!;
      const key = serverName(be.node, be.pod);
      if (!ports.has(key)) ports.set(key, new Set());
      ports.get(key)!.add(`${f.targetPort}/${f.protocol.toLowerCase()}`);
    }
  const pods = [...ports].map(([key, set]) => {
    const [node, pod] = key.split('/');
    const p = ctx.lab.nodes.find((n) => n.name === node)!.pods.find((x) => x.name === pod)!;
    return { exec: ctx.backend.exec(p.netns), name: key, ports: [...set].sort() };
  });
  return measurer(ctx).startServers(pods, ctx.objDir, ctx.journal, ctx.signal);
}

/** Names of a frontend's backends as their servers answer. */
export function backendNames(plan: ServicePlan, f: Frontend): string[] {
  return f.backends.map((b) => {
    const be = plan.backends.find((x) => x.id === b.id)!;
    return serverName(be.node, be.pod);
  });
}

/** The probe a frontend's protocol calls for: TCP connects, UDP sendto on an unconnected socket. */
export const opOf = (f: Frontend): ProbeOp => (f.protocol === 'TCP' ? 'tcp' : 'udp');

/** A frontend as people read it: web 10.96.0.10:80/TCP. */
export const labelOf = (f: Pick<Frontend, 'service' | 'vip' | 'port' | 'protocol' | 'family'>) =>
  `${f.service} ${f.family === 'ipv6' ? `[${f.vip}]` : f.vip}:${f.port}/${f.protocol}`;

/** The frontends of the client's families. */
export function frontendsFor(lab: Lab, client: SvcClient, plan: ServicePlan): Frontend[] {
  return plan.frontends.filter((f) => (f.family === 'ipv4' ? client.pod.ipv4 : client.pod.ipv6) && lab.families.includes(f.family));
}

/** An attempt in one line of evidence. */
export const showAttempt = (a: SvcAttempt) =>
  `#${a.i} ${a.op}: ${a.errno ? `${a.errno} at ${a.stage}` : 'ok'} in ${a.us} us${a.peer ? `, peer ${a.peer}:${a.peerPort}` : ''}${
    a.reply ? `, answered by ${a.reply}` : ''
  }${a.seen ? ` (who saw ${a.seen}:${a.seenPort})` : ''}`;

/** Attempts as evidence: the first ten, and a count of the rest. */
export const showAttempts = (as: readonly SvcAttempt[]) =>
  [...as.slice(0, 10).map(showAttempt), ...(as.length > 10 ? [`... and ${as.length - 10} more`] : [])].join('\n');
