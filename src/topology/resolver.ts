import { dirname, resolve as resolvePath } from 'node:path';
import type { TopologyIssue } from '../errors.js';
import { backendNames } from '../backends/registry.js';
import { pathString, type Loaded, type Result } from './loader.js';
import { CHECK_IDS, DEFAULT_DATAPATH, LINK_DEV_PREFIX, POD_DEV_PREFIX } from './schema.js';
import { contains, formatPrefix, nthAddr, overlaps, parseAddr, parsePrefix, type Prefix } from './ip.js';
import { netnsOf, type Addr, type Lab, type LabNode, type NodeLink, type Uplink } from './model.js';

/** The reference VM kernel (vms/kernels.yaml). */
export const DEFAULT_VM_KERNEL = '6.12';

/** Default address plan: node i gets 10.244.i.0/24, uplink i 10.255.i.0/30, link k 10.254.k.0/30. */
const DEFAULTS = {
  pod4: (i: number) => `10.244.${i}.0/24`,
  pod6: (i: number) => `fd00:244:${i.toString(16)}::/64`,
  uplink4: (i: number) => `10.255.${i}.0/30`,
  uplink6: (i: number) => `fd00:255:${i.toString(16)}::/64`,
  link4: (k: number) => `10.254.${k}.0/30`,
  link6: (k: number) => `fd00:254:${k.toString(16)}::/64`,
};

/** Turn a validated topology into a lab: defaults, names, addresses; reports every semantic error. */
export function resolve(loaded: Loaded): Result<Lab> {
  const { topology: t, file, locate } = loaded;
  const errors: TopologyIssue[] = [];
  const err = (path: (string | number)[], message: string) => errors.push({ file, ...locate(path), path: pathString(path), message });
  const prefixes: { p: Prefix; path: (string | number)[] }[] = [];
  const prefix = (s: string, path: (string | number)[]) => {
    const p = parsePrefix(s);
    if (!p) return void err(path, `'${s}' is not a valid prefix`);
    const clash = prefixes.find((q) => overlaps(q.p, p));
    if (clash) err(path, `${formatPrefix(p)} overlaps ${formatPrefix(clash.p)} at ${pathString(clash.path)}`);
    prefixes.push({ p, path });
    return p;
  };
  const v4 = t.families.includes('ipv4');
  const v6 = t.families.includes('ipv6');

  if (!backendNames().includes(t.backend)) err(['backend'], `unknown backend '${t.backend}'; known: ${backendNames().join(', ')}`);
  if (t.kernel && t.backend !== 'qemu') err(['kernel'], `kernel applies to the qemu backend only (this lab's backend is ${t.backend})`);
  if (t.kernels && t.backend !== 'qemu') err(['kernels'], `kernels applies to the qemu backend only (this lab's backend is ${t.backend})`);

  const hostNames = new Map<string, (string | number)[]>();
  const claim = (n: string, path: (string | number)[], what: string) => {
    const prev = hostNames.get(n);
    if (prev) err(path, `duplicate ${what} name '${n}' (first at ${pathString(prev)})`);
    else hostNames.set(n, path);
  };

  const nodes: LabNode[] = t.nodes.map((n, i) => {
    const idx = i + 1;
    claim(n.name, ['nodes', i, 'name'], 'node');
    const datapath = { ...DEFAULT_DATAPATH, ...t.datapath, ...n.datapath };
    const p4 = v4 ? prefix(n.podCidr ?? DEFAULTS.pod4(idx), ['nodes', i, n.podCidr ? 'podCidr' : 'name']) : undefined;
    const p6 = v6 ? prefix(n.podCidr6 ?? DEFAULTS.pod6(idx), ['nodes', i, n.podCidr6 ? 'podCidr6' : 'name']) : undefined;
    const podNames = new Set<string>();
    const pods = n.pods.map((p, j) => {
      if (podNames.has(p.name)) err(['nodes', i, 'pods', j, 'name'], `duplicate pod name '${p.name}' in node '${n.name}'`);
      podNames.add(p.name);
      // Host 1 is the gateway; pods take hosts 2, 3, ... unless given.
      const pick = (pre: Prefix | undefined, given: string | undefined, field: 'ipv4' | 'ipv6') => {
        if (!pre) return undefined;
        if (given && !contains(pre, given)) err(['nodes', i, 'pods', j, field], `${given} is not inside the node's pod prefix ${formatPrefix(pre)}`);
        const a = given ?? nthAddr(pre, j + 2);
        if (!a) err(['nodes', i, 'pods', j], `pod prefix ${formatPrefix(pre)} has no room for pod ${j + 1}`);
        return a;
      };
      return {
        name: p.name,
        node: n.name,
        netns: netnsOf(t.name, n.name, p.name),
        hostDev: `${POD_DEV_PREFIX}${p.name}`,
        dev: 'eth0',
        ipv4: pick(p4, p.ipv4, 'ipv4'),
        ipv6: pick(p6, p.ipv6, 'ipv6'),
      };
    });
    for (const [field, list] of [['ipv4', pods.map((p) => p.ipv4)], ['ipv6', pods.map((p) => p.ipv6)]] as const) {
      const seen = new Set<string>();
      list.forEach((a, j) => {
        const key = a && String(parseAddr(a)?.value);
        if (key && seen.has(key)) err(['nodes', i, 'pods', j, field], `address ${a} is used twice in node '${n.name}'`);
        if (key) seen.add(key);
      });
    }
    let uplink: Uplink | undefined;
    if (n.uplink) {
      const u = n.uplink;
      claim(u.peer, ['nodes', i, 'uplink', 'peer'], 'peer');
      const u4 = v4 ? prefix(u.ipv4 ?? DEFAULTS.uplink4(idx), ['nodes', i, 'uplink', u.ipv4 ? 'ipv4' : 'peer']) : undefined;
      const u6 = v6 ? prefix(u.ipv6 ?? DEFAULTS.uplink6(idx), ['nodes', i, 'uplink', u.ipv6 ? 'ipv6' : 'peer']) : undefined;
      uplink = { node: n.name, peer: u.peer, nodeDev: 'uplink', peerDev: 'eth0', rate: u.rate, ...pair(u4, 'node4', 'peer4'), ...pair(u6, 'node6', 'peer6') };
      if ((u4 && u4.len > 30) || (u6 && u6.len > 126)) err(['nodes', i, 'uplink'], 'uplink prefix must hold two hosts (at most /30 or /126)');
    }
    return {
      name: n.name,
      netns: netnsOf(t.name, n.name),
      datapath,
      podCidr4: p4 && formatPrefix(p4),
      podCidr6: p6 && formatPrefix(p6),
      gw4: p4 && nthAddr(p4, 1),
      gw6: p6 && nthAddr(p6, 1),
      pods,
      uplink,
    };
  });

  const nodeNames = new Set(t.nodes.map((n) => n.name));
  const linkKeys = new Set<string>();
  const links: NodeLink[] = [];
  t.links.forEach((l, k) => {
    const [a, b] = l.endpoints;
    l.endpoints.forEach((e, m) => {
      if (!nodeNames.has(e)) err(['links', k, 'endpoints', m], `unknown node '${e}'; nodes are: ${[...nodeNames].join(', ')}`);
    });
    if (a === b) return void err(['links', k, 'endpoints'], 'a link joins two different nodes');
    const key = [a, b].sort().join('\0');
    if (linkKeys.has(key)) err(['links', k, 'endpoints'], `duplicate link between '${a}' and '${b}'`);
    linkKeys.add(key);
    const l4 = v4 ? prefix(l.ipv4 ?? DEFAULTS.link4(k + 1), ['links', k, l.ipv4 ? 'ipv4' : 'endpoints']) : undefined;
    const l6 = v6 ? prefix(l.ipv6 ?? DEFAULTS.link6(k + 1), ['links', k, l.ipv6 ? 'ipv6' : 'endpoints']) : undefined;
    links.push({ a, b, devA: `${LINK_DEV_PREFIX}${b}`, devB: `${LINK_DEV_PREFIX}${a}`, rate: l.rate, ...pair(l4, 'a4', 'b4'), ...pair(l6, 'a6', 'b6') });
  });

  const allPods = nodes.flatMap((n) => n.pods.map((p) => `${n.name}/${p.name}`));
  const checks = (t.checks ?? [...CHECK_IDS]).map((c) => (typeof c === 'string' ? { id: c } : c));
  checks.forEach((c, m) => {
    if (c.pod && !nodes.some((n) => n.pods.some((p) => p.name === c.pod || `${n.name}/${p.name}` === c.pod)))
      err(['checks', m, 'pod'], `unknown pod '${c.pod}'; pods are: ${allPods.join(', ')}`);
  });

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    value: {
      name: t.name,
      file,
      backend: t.backend,
      kernel: t.backend !== 'qemu' ? undefined : typeof t.kernel === 'object' ? 'custom' : (t.kernel ?? t.kernels?.[0] ?? DEFAULT_VM_KERNEL),
      customKernel:
        typeof t.kernel === 'object'
          ? { vmlinuz: resolvePath(dirname(file), t.kernel.vmlinuz), modulesDir: resolvePath(dirname(file), t.kernel.modules), config: t.kernel.config && resolvePath(dirname(file), t.kernel.config) }
          : undefined,
      kernels: t.kernels,
      families: t.families,
      nodes,
      peers: nodes.filter((n) => n.uplink).map((n) => ({ name: n.uplink!.peer, netns: netnsOf(t.name, n.uplink!.peer), node: n.name })),
      links,
      checks,
    },
  };
}

/** First and second host of a point-to-point prefix, under the given keys. */
function pair<K1 extends string, K2 extends string>(p: Prefix | undefined, k1: K1, k2: K2): Partial<Record<K1 | K2, Addr>> {
  if (!p) return {};
  return { [k1]: { addr: nthAddr(p, 1)!, len: p.len }, [k2]: { addr: nthAddr(p, 2)!, len: p.len } } as Partial<Record<K1 | K2, Addr>>;
}
