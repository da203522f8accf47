import { createHash } from 'node:crypto';
import type { Family } from '../../topology/schema.js';
import type { Frontend, PlanBackend, ServicePlan } from './plan.js';

/**
 * The rules kube-proxy's iptables mode writes (pkg/proxy/iptables/proxier.go), for one
 * family, as iptables-restore input: PREROUTING and OUTPUT jump to KUBE-SERVICES, a
 * KUBE-SVC-* chain per service port that picks a KUBE-SEP-* chain per endpoint with the
 * statistic match, DNAT in each KUBE-SEP-*, KUBE-MARK-MASQ and KUBE-POSTROUTING's
 * masquerade for hairpin and NodePort traffic, KUBE-NODEPORTS through KUBE-EXT-*, ClientIP
 * affinity with the recent match, and a
 * REJECT in the filter table for a service without endpoints. Differences: no
 * --cluster-cidr rule (the lab's pod prefixes are per node) and weights, which
 * kube-proxy does not have, as unequal probabilities.
 */

/** kube-proxy's portProtoHash: the first 16 characters of base32(sha256(name + protocol)). */
export function chainHash(s: string): string {
  const digest = createHash('sha256').update(s).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** kube-proxy's servicePortName: namespace/name:port (the lab has one namespace, default). */
const portName = (f: Frontend) => `default/${f.service}:${f.port}`;
const proto = (f: Frontend) => f.protocol.toLowerCase();
const host = (family: Family) => (family === 'ipv4' ? '/32' : '/128');
const hostPort = (b: PlanBackend) => (b.family === 'ipv4' ? `${b.addr}:${b.port}` : `[${b.addr}]:${b.port}`);

/** The mark KUBE-MARK-MASQ sets (kube-proxy's --iptables-masquerade-bit default 14). */
export const MASQ_MARK = '0x4000';

/**
 * Probability of the i-th of the remaining endpoints, as kube-proxy prints it (%0.10f):
 * with equal weights 1/(n-i); with weights w_i / (sum of the weights from i on).
 */
export function probability(weights: readonly number[], i: number): string {
  const rest = weights.slice(i).reduce((a, b) => a + b, 0);
  return (weights[i] / rest).toFixed(10);
}

/** iptables-restore input (nat and filter tables) for one family's frontends. */
export function kubeProxyRules(plan: ServicePlan, family: Family): string {
  const fronts = plan.frontends.filter((f) => f.family === family);
  const byId = new Map(plan.backends.map((b) => [b.id, b]));
  const natChains = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];
  const nat: string[] = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  const filter: string[] = [];
  const nodePorts: string[] = [];
  for (const f of fronts) {
    const name = portName(f);
    const match = `-m ${proto(f)} -p ${proto(f)} -d ${f.vip}${host(family)} --dport ${f.port}`;
    if (!f.backends.length) {
      filter.push(
        `-A KUBE-SERVICES -m comment --comment "${name} has no endpoints" ${match} -j REJECT --reject-with ${
          family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'
        }`,
      );
      continue;
    }
    const svc = `KUBE-SVC-${chainHash(name + f.protocol)}`;
    natChains.push(svc);
    nat.push(`-A KUBE-SERVICES -m comment --comment "${name} cluster IP" ${match} -j ${svc}`);
    const nodePort = plan.nodePorts?.get(f.svcId);
    if (nodePort) {
      const ext = `KUBE-EXT-${chainHash(name + f.protocol)}`;
      natChains.push(ext);
      nodePorts.push(`-A KUBE-NODEPORTS -m comment --comment "${name}" -m ${proto(f)} -p ${proto(f)} --dport ${nodePort} -j ${ext}`);
      nat.push(
        `-A ${ext} -m comment --comment "masquerade traffic for ${name} external destinations" -j KUBE-MARK-MASQ`,
        `-A ${ext} -j ${svc}`,
      );
    }
    const weights = f.backends.map((b) => b.weight);
    const seps = f.backends.map((b) => {
      const be = byId.get(b.id)!;
      const ep = hostPort(be);
      return { be, ep, sep: `KUBE-SEP-${chainHash(name + f.protocol + ep)}` };
    });
    // ClientIP affinity: the xt_recent list of each endpoint sends a client seen recently back to it.
    const mask = family === 'ipv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const recent = (sep: string, op: string) => ` -m recent --name ${sep} --mask ${mask} --rsource ${op}`;
    if (f.affinitySeconds)
      for (const { ep, sep } of seps)
        nat.push(
          `-A ${svc} -m comment --comment "${name} -> ${ep}"${recent(sep, `--rcheck --seconds ${f.affinitySeconds} --reap`)} -j ${sep}`,
        );
    seps.forEach(({ be, ep, sep }, i) => {
      natChains.push(sep);
      const pick = i < f.backends.length - 1 ? ` -m statistic --mode random --probability ${probability(weights, i)}` : '';
      nat.push(`-A ${svc} -m comment --comment "${name} -> ${ep}"${pick} -j ${sep}`);
      nat.push(`-A ${sep} -m comment --comment "${name}" -s ${be.addr}${host(family)} -j KUBE-MARK-MASQ`);
      const set = f.affinitySeconds ? recent(sep, '--set') : '';
      nat.push(`-A ${sep} -m comment --comment "${name}"${set} -m ${proto(f)} -p ${proto(f)} -j DNAT --to-destination ${ep}`);
    });
  }
  nat.push(...nodePorts);
  nat.push(
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  );
  return [
    '*filter',
    ':KUBE-SERVICES - [0:0]',
    '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    ...filter,
    'COMMIT',
    '*nat',
    ...[...new Set(natChains)].map((c) => `:${c} - [0:0]`),
    ...nat,
    'COMMIT',
    '',
  ].join('\n');
}
