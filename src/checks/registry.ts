import { LabError } from '../errors.js';
import type { CheckId } from '../topology/schema.js';
import { backpressure } from './backpressure.js';
import { bigtcp } from './bigtcp.js';
import type { Check } from './check.js';
import { connectivity } from './connectivity.js';
import { tsoProbe } from './tso-probe.js';
import { netkit } from './netkit.js';
import { netkitThroughput } from './netkit-throughput.js';
import { BWM_CHECKS } from './bwm.js';
import { svcClusterIp } from './svc-clusterip.js';
import { svcGetpeername } from './svc-getpeername.js';
import { svcNoBackend } from './svc-no-backend.js';
import { kubeProxyFree } from './kube-proxy-free.js';
import { svcAffinity } from './svc-affinity.js';
import { svcBackendRemoval } from './svc-backend-removal.js';
import { svcBackpressure } from './svc-backpressure.js';
import { svcNodePort } from './svc-nodeport.js';
import { tcpMmap } from './tcp-mmap.js';
import { XDP_LB_CHECKS } from './xdp-lb.js';
import { XDP_LB_MAGLEV_CHECKS } from './xdp-lb-maglev.js';

/** Every check, in the order a run performs them (cheap reads first). */
export const CHECKS: readonly Check[] = [
  tsoProbe,
  connectivity,
  netkit,
  backpressure,
  bigtcp,
  netkitThroughput,
  kubeProxyFree,
  svcClusterIp,
  svcGetpeername,
  svcNoBackend,
  svcAffinity,
  svcBackendRemoval,
  svcBackpressure,
  svcNodePort,
  ...BWM_CHECKS,
  tcpMmap,
  ...XDP_LB_CHECKS,
  ...XDP_LB_MAGLEV_CHECKS,
];

export function checkById(id: CheckId): Check {
  const c = CHECKS.find((x) => x.id === id);
  if (!c) throw new LabError('E_USAGE', `unknown check '${id}'; checks are: ${CHECKS.map((x) => x.id).join(', ')}`);
  return c;
}
