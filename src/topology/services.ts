import { contains, formatAddr, formatPrefix, parseAddr, type Prefix } from './ip.js';
import { pathString } from './loader.js';
import type { LabNode, Service } from './model.js';
import type { Topology } from './schema.js';

type Path = (string | number)[];
type Err = (path: Path, message: string) => void;

/**
 * Resolve the file's services against its pods and prefixes: a backend names a pod that
 * exists (node/pod when the name is on several nodes), no ClusterIP:port/protocol twice,
 * no ClusterIP inside a lab prefix (the address would be a pod's or a link's), each
 * ClusterIP's family among the lab's families, NodePorts unique.
 */
export function resolveServices(
  t: Pick<Topology, 'services' | 'families' | 'nodes'>,
  nodes: readonly LabNode[],
  prefixes: readonly { p: Prefix; path: Path }[],
  err: Err,
): Service[] {
  nodes.forEach((n, i) => {
    if (n.datapath.kubeProxy !== 'iptables' || n.datapath.hostRouting !== 'bpf') return;
    const own = t.nodes[i]?.datapath?.kubeProxy !== undefined;
    err(
      own ? ['nodes', i, 'datapath', 'kubeProxy'] : ['datapath', 'kubeProxy'],
      `kubeProxy iptables needs hostRouting legacy on node '${n.name}': BPF host routing redirects pod packets at tcx ingress, ` +
        "before netfilter's PREROUTING where kube-proxy's DNAT is (Cilium too needs its kube-proxy replacement for BPF host routing)",
    );
  });
  const pods = nodes.flatMap((n) => n.pods.map((p) => ({ node: n.name, pod: p.name })));
  const allPods = pods.map((p) => `${p.node}/${p.pod}`).join(', ');
  t.nodes.forEach((n, i) => {
    if (n.loadBalancer && !n.uplink)
      err(['nodes', i, 'loadBalancer'], `node '${n.name}' serves load-balancer VIPs on its uplink: give it one`);
  });
  if (t.services.some((s) => s.loadBalancer) && !t.nodes.some((n) => n.loadBalancer))
    err(['services'], 'a service has a loadBalancer but no node has loadBalancer: true');
  const vips = new Map<string, Path>();
  const names = new Map<string, number>();
  const frontends = new Map<string, Path>();
  const nodePorts = new Map<string, Path>();
  return t.services.map((s, i) => {
    const at = (...rest: (string | number)[]): Path => ['services', i, ...rest];
    if (names.has(s.name)) err(at('name'), `duplicate service name '${s.name}' (first at services[${names.get(s.name)}])`);
    else names.set(s.name, i);
    if (!s.clusterIP && !s.clusterIP6) err(at(), 'a service needs a clusterIP, a clusterIP6, or both');
    const ips: { field: 'clusterIP' | 'clusterIP6'; family: 'ipv4' | 'ipv6'; addr?: string }[] = [
      { field: 'clusterIP', family: 'ipv4', addr: s.clusterIP },
      { field: 'clusterIP6', family: 'ipv6', addr: s.clusterIP6 },
    ];
    const canonical: Partial<Record<'ipv4' | 'ipv6', string>> = {};
    for (const { field, family, addr } of ips) {
      if (!addr) continue;
      if (!t.families.includes(family))
        err(at(field), `${family} is set but families is [${t.families.join(', ')}]: add ${family} to families, or remove this`);
      const a = parseAddr(addr);
      if (!a) continue;
      const inside = prefixes.find((q) => contains(q.p, addr));
      if (inside)
        err(
          at(field),
          `${addr} is inside ${formatPrefix(inside.p)} (${pathString(inside.path)}): a ClusterIP is a virtual address outside every lab prefix`,
        );
      canonical[family] = formatAddr(a.family, a.value);
      s.ports.forEach((p, k) => {
        const key = `${canonical[family]}\0${p.port}\0${p.protocol}`;
        const first = frontends.get(key);
        if (first) err(at('ports', k), `${addr}:${p.port}/${p.protocol} is already a frontend (first at ${pathString(first)})`);
        else frontends.set(key, at('ports', k));
      });
    }
    s.ports.forEach((p, k) => {
      if (p.nodePort === undefined) return;
      const key = `${p.nodePort}\0${p.protocol}`;
      const first = nodePorts.get(key);
      if (first) err(at('ports', k, 'nodePort'), `nodePort ${p.nodePort}/${p.protocol} is used twice (first at ${pathString(first)})`);
      else nodePorts.set(key, at('ports', k, 'nodePort'));
    });
    const lb = s.loadBalancer;
    if (lb) {
      if (!lb.vip && !lb.vip6) err(at('loadBalancer'), 'a loadBalancer needs a vip, a vip6, or both');
      const lbVips: { field: 'vip' | 'vip6'; family: 'ipv4' | 'ipv6'; addr?: string; cip: 'clusterIP' | 'clusterIP6' }[] = [
        { field: 'vip', family: 'ipv4', addr: lb.vip, cip: 'clusterIP' },
        { field: 'vip6', family: 'ipv6', addr: lb.vip6, cip: 'clusterIP6' },
      ];
      for (const { field, family, addr, cip } of lbVips) {
        if (!addr) continue;
        const where = at('loadBalancer', field);
        const inside = prefixes.find((q) => contains(q.p, addr));
        if (inside)
          err(where, `${addr} is inside ${formatPrefix(inside.p)} (${pathString(inside.path)}): a VIP is outside every lab prefix`);
        if (!t.families.includes(family)) err(where, `the ${field} is ${family} but families is [${t.families.join(', ')}]`);
        // The XDP LB serves a VIP per service port of the family's frontends (kpr servicePlan): they exist with a ClusterIP.
        if (!canonical[family]) err(where, `a ${field} needs the service's ${cip} (the ${family} frontends the VIP serves)`);
        const a = parseAddr(addr);
        const key = a ? formatAddr(a.family, a.value) : addr;
        const first = vips.get(key);
        if (first) err(where, `VIP ${addr} is already used (first at ${pathString(first)})`);
        else vips.set(key, where);
      }
    }
    const seen = new Set<string>();
    const backends = s.backends.flatMap((b, k) => {
      const ref = typeof b === 'string' ? b : b.pod;
      const weight = typeof b === 'string' ? 1 : b.weight;
      const where = typeof b === 'string' ? at('backends', k) : at('backends', k, 'pod');
      const [nodeName, podName] = ref.includes('/') ? ref.split('/', 2) : [undefined, ref];
      const found = pods.filter((p) => p.pod === podName && (nodeName === undefined || p.node === nodeName));
      const key = found.length === 1 ? `${found[0].node}/${found[0].pod}` : '';
      if (!found.length) err(where, `unknown pod '${ref}'; pods are: ${allPods || '(none)'}`);
      else if (found.length > 1) err(where, `pod '${ref}' is on several nodes (${found.map((p) => p.node).join(', ')}): write node/pod`);
      else if (seen.has(key)) err(where, `backend ${key} is listed twice`);
      if (!key || seen.has(key)) return [];
      seen.add(key);
      const n = nodes.find((x) => x.name === found[0].node);
      if (lb?.mode === 'dsr' && n?.datapath.hostRouting !== 'bpf')
        err(
          where,
          `dsr to pod ${key} needs hostRouting: bpf on node '${found[0].node}': its from_pod turns the pod's replies back ` +
            'to the VIP (legacy host routing runs no program on that path): use mode: snat, or BPF host routing there',
        );
      if (lb?.mode === 'dsr' && n?.loadBalancer)
        err(where, `dsr to pod ${key} on a loadBalancer node is not supported: put the pod on another node, or use mode: snat`);
      return [{ ...found[0], weight }];
    });
    return {
      name: s.name,
      ipv4: canonical.ipv4,
      ipv6: canonical.ipv6,
      ports: s.ports.map((p) => ({ port: p.port, protocol: p.protocol, targetPort: p.targetPort ?? p.port, nodePort: p.nodePort })),
      affinitySeconds: s.sessionAffinity?.timeoutSeconds,
      backends,
      loadBalancer: lb && { vip: canonicalOf(lb.vip), vip6: canonicalOf(lb.vip6), mode: lb.mode },
    };
  });
}

/** An address in its canonical text (the form the kernel and svcprobe print), as given when it does not parse. */
function canonicalOf(addr: string | undefined): string | undefined {
  const a = addr === undefined ? undefined : parseAddr(addr);
  return a ? formatAddr(a.family, a.value) : addr;
}
