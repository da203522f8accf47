import { readFileSync } from 'node:fs';
import { LabError } from '../errors.js';

/**
 * The per-user limit on network namespaces (user.max_net_namespaces, kernel/ucount.c
 * UCOUNT_NET_NAMESPACES; Documentation/admin-guide/sysctl/user.rst): past it, creating one fails
 * with ENOSPC. Every node, pod and peer of a lab is one namespace, so the pod count meets this
 * limit first; undefined when it cannot be read.
 */
export function maxNetNamespaces(): number | undefined {
  try {
    const n = Number(readFileSync('/proc/sys/user/max_net_namespaces', 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The refusal of a lab whose namespaces exceed what the kernel lets this user create, beside
 * the `existing` ones the lab can see (/run/netns: other labs'); undefined when they fit.
 */
export function netnsRefusal(need: number, max: number | undefined, existing: number): LabError | undefined {
  if (max === undefined || need + existing <= max) return undefined;
  return new LabError(
    'E_REQUIREMENT',
    `the lab needs ${need} network namespaces (one per node, pod and peer); with the ${existing} that exist, that passes the kernel's limit of ${max} (user.max_net_namespaces)`,
    'fewer pods or nodes, or a higher user.max_net_namespaces',
  );
}
