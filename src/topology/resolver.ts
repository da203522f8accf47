import { dirname, resolve as resolvePath } from 'node:path';
import { formatIssue, type TopologyIssue } from '../errors.js';
import { loadCatalogue } from '../kernels/catalogue.js';
import { pathString, type Loaded, type Result } from './loader.js';
import { CHECK_IDS, DEFAULT_DATAPATH, LINK_DEV_PREFIX, POD_DEV_PREFIX, type Topology } from './schema.js';
import { contains, formatAddr, formatPrefix, nthAddr, overlaps, parseAddr, parsePrefix, prefixSize, type Prefix } from './ip.js';
import { parseBandwidth } from '../datapath/bwm/quantity.js';
import { resolveServices } from './services.js';
import { sshLinkRules, sshTarget } from './ssh.js';
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

/** Smallest prefixes that hold what the lab puts in them: network, two hosts and (IPv4) broadcast. */
const MAX_LEN = { pod: { 4: 30, 6: 126 }, p2p: { 4: 30, 6: 126 } } as const;

export interface ResolveOptions {
  /** Names of the catalogue's kernels (vms/kernels.yaml); read from the catalogue when a qemu lab names one. */
  kernelNames?: readonly string[];
}

/** Why `addr` cannot be a pod's address in prefix `p` whose host 1 is the node's gateway, if it cannot. */
function reservedAddr(p: Prefix, addr: string): string | undefined {
  const v = parseAddr(addr)!.value;
  const pre = formatPrefix(p);
  if (v === p.base) return `${addr} is the network address of ${pre}`;
  if (v === p.base + 1n) return `${addr} is the node's gateway (host 1 of ${pre}, on every pod device)`;
  if (p.family === 4 && v === p.base + prefixSize(p) - 1n) return `${addr} is the broadcast address of ${pre}`;
  return undefined;
}

/** Turn a validated topology into a lab: defaults, names, addresses; reports every semantic error. */
export function resolve(loaded: Loaded, opts: ResolveOptions = {}): Result<Lab> {
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

  // Fields of a family the lab does not use would be ignored without a word.
  const unused = (family: 'ipv4' | 'ipv6', path: (string | number)[], given: unknown) => {
    if (given !== undefined && !t.families.includes(family))
      err(path, `${family} is set but families is [${t.families.join(', ')}]: add ${family} to families, or remove this`);
  };
  const dupes = <T>(
    list: readonly T[] | undefined,
    key: (x: T) => string,
    path: (i: number) => (string | number)[],
    what: (x: T) => string,
  ) => {
    const seen = new Map<string, number>();
    list?.forEach((x, i) => {
      const k = key(x);
      if (seen.has(k)) err(path(i), `${what(x)} is listed twice (first at ${pathString(path(seen.get(k)!))})`);
      else seen.set(k, i);
    });
  };
  dupes(
    t.families,
    (f) => f,
    (i) => ['families', i],
    (f) => `family ${f}`,
  );
  if (t.kernel && t.backend !== 'qemu' && t.backend !== 'vagrant')
    err(['kernel'], `kernel applies to the qemu and vagrant backends only (this lab's backend is ${t.backend})`);
  // The vagrant backend boots a box built for one catalogue kernel (lab kernels box NAME).
  if (t.backend === 'vagrant' && typeof t.kernel === 'object') err(['kernel'], 'the vagrant backend boots a catalogue kernel: name one');
  if (t.kernels && t.backend !== 'qemu') err(['kernels'], `kernels applies to the qemu backend only (this lab's backend is ${t.backend})`);
  dupes(
    t.kernels,
    (k) => k,
    (i) => ['kernels', i],
    (k) => `kernel ${k}`,
  );
  const named = [
    ...(typeof t.kernel === 'string' ? [{ name: t.kernel, path: ['kernel'] }] : []),
    ...(t.kernels ?? []).map((name, i) => ({ name, path: ['kernels', i] })),
  ];
  if ((t.backend === 'qemu' || t.backend === 'vagrant') && named.length) {
    let known: readonly string[] | undefined = opts.kernelNames;
    try {
      known ??= loadCatalogue().map((k) => k.name);
    } catch (e) {
      err(named[0].path, `cannot check kernel names: ${(e as Error).message.split('\n')[0]}`);
    }
    for (const k of named)
      if (known && !known.includes(k.name))
        err(
          k.path,
          `no kernel '${k.name}' in the catalogue (vms/kernels.yaml); kernels are: ${known.join(', ')}, or {vmlinuz, modules} for your own`,
        );
  }

  const hostNames = new Map<string, (string | number)[]>();
  const claim = (n: string, path: (string | number)[], what: string) => {
    const prev = hostNames.get(n);
    if (prev) err(path, `duplicate ${what} name '${n}' (first at ${pathString(prev)})`);
    else hostNames.set(n, path);
  };

  // A peer named by several uplinks is one namespace with a device per node (sharedPeerRules).
  const peerUses = new Map<string, number>();
  for (const n of t.nodes) if (n.uplink) peerUses.set(n.uplink.peer, (peerUses.get(n.uplink.peer) ?? 0) + 1);
  const peerAt = new Map<string, (string | number)[]>();

  const nodes: LabNode[] = t.nodes.map((n, i) => {
    const idx = i + 1;
    claim(n.name, ['nodes', i, 'name'], 'node');
    const datapath = { ...DEFAULT_DATAPATH, ...t.datapath, ...n.datapath };
    unused('ipv4', ['nodes', i, 'podCidr'], n.podCidr);
    unused('ipv6', ['nodes', i, 'podCidr6'], n.podCidr6);
    const p4 = v4 ? prefix(n.podCidr ?? DEFAULTS.pod4(idx), ['nodes', i, n.podCidr ? 'podCidr' : 'name']) : undefined;
    const p6 = v6 ? prefix(n.podCidr6 ?? DEFAULTS.pod6(idx), ['nodes', i, n.podCidr6 ? 'podCidr6' : 'name']) : undefined;
    for (const [p, field] of [
      [p4, 'podCidr'],
      [p6, 'podCidr6'],
    ] as const)
      if (p && p.len > MAX_LEN.pod[p.family])
        err(
          ['nodes', i, field],
          `${formatPrefix(p)} is too small for pods: it holds the network address, the gateway, a pod${p.family === 4 ? ' and the broadcast address' : ''} (at most /${MAX_LEN.pod[p.family]})`,
        );
    const podNames = new Set<string>();
    const pods = n.pods.map((p, j) => {
      if (podNames.has(p.name)) err(['nodes', i, 'pods', j, 'name'], `duplicate pod name '${p.name}' in node '${n.name}'`);
      podNames.add(p.name);
      unused('ipv4', ['nodes', i, 'pods', j, 'ipv4'], p.ipv4);
      unused('ipv6', ['nodes', i, 'pods', j, 'ipv6'], p.ipv6);
      // Host 1 is the gateway; pods take hosts 2, 3, ... unless given.
      const pick = (pre: Prefix | undefined, given: string | undefined, field: 'ipv4' | 'ipv6') => {
        if (!pre || pre.len > MAX_LEN.pod[pre.family]) return undefined;
        const at = ['nodes', i, 'pods', j, field];
        if (given && !contains(pre, given)) err(at, `${given} is not inside the node's pod prefix ${formatPrefix(pre)}`);
        else if (given && reservedAddr(pre, given)) err(at, `${reservedAddr(pre, given)}; pods take hosts 2 and up`);
        const a = given ?? nthAddr(pre, j + 2);
        if (!a || (!given && reservedAddr(pre, a)))
          err(['nodes', i, 'pods', j], `pod prefix ${formatPrefix(pre)} has no room for pod ${j + 1}`);
        return a && formatAddr(pre.family, parseAddr(a)!.value);
      };
      return {
        name: p.name,
        node: n.name,
        netns: netnsOf(t.name, n.name, p.name),
        hostDev: `${POD_DEV_PREFIX}${p.name}`,
        dev: 'eth0',
        ipv4: pick(p4, p.ipv4, 'ipv4'),
        ipv6: pick(p6, p.ipv6, 'ipv6'),
        egressBps: bandwidthOf(p.egressBandwidth),
      };
    });
    bandwidthRules(n, i, datapath, err);
    if (n.pods.some((p) => p.egressBandwidth)) datapath.bandwidthManager ??= true;
    for (const [field, list] of [
      ['ipv4', pods.map((p) => p.ipv4)],
      ['ipv6', pods.map((p) => p.ipv6)],
    ] as const) {
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
      const firstUse = peerAt.get(u.peer);
      if (firstUse) sharedPeerRules(t.backend, u.peer, ['nodes', i, 'uplink', 'peer'], firstUse, err);
      else {
        claim(u.peer, ['nodes', i, 'uplink', 'peer'], 'peer');
        peerAt.set(u.peer, ['nodes', i, 'uplink', 'peer']);
      }
      unused('ipv4', ['nodes', i, 'uplink', 'ipv4'], u.ipv4);
      unused('ipv6', ['nodes', i, 'uplink', 'ipv6'], u.ipv6);
      const u4 = v4 ? prefix(u.ipv4 ?? DEFAULTS.uplink4(idx), ['nodes', i, 'uplink', u.ipv4 ? 'ipv4' : 'peer']) : undefined;
      const u6 = v6 ? prefix(u.ipv6 ?? DEFAULTS.uplink6(idx), ['nodes', i, 'uplink', u.ipv6 ? 'ipv6' : 'peer']) : undefined;
      uplink = {
        node: n.name,
        peer: u.peer,
        nodeDev: 'uplink',
        // A shared peer's device names the node it faces, as a link's does.
        peerDev: (peerUses.get(u.peer) ?? 0) > 1 ? `${LINK_DEV_PREFIX}${n.name}` : 'eth0',
        rate: u.rate,
        impair: u.impair,
        ...pair(u4, 'node4', 'peer4'),
        ...pair(u6, 'node6', 'peer6'),
      };
      for (const [p, field] of [
        [u4, 'ipv4'],
        [u6, 'ipv6'],
      ] as const)
        if (p && p.len > MAX_LEN.p2p[p.family])
          err(
            ['nodes', i, 'uplink', field],
            `${formatPrefix(p)} is too small: the uplink needs two hosts (at most /${MAX_LEN.p2p[p.family]})`,
          );
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
      sim: simOf(file, locate, t.sim, n.sim, i),
      ssh: sshTarget(t.backend, n, i, dirname(file), err),
      loadBalancer: n.loadBalancer || undefined,
    };
  });
  if (t.backend === 'ssh') sshLinkRules(t, err);

  const nodeNames = new Set(t.nodes.map((n) => n.name));
  const linkKeys = new Set<string>();
  const links: NodeLink[] = [];
  t.links.forEach((l, k) => {
    const [a, b] = l.endpoints;
    l.endpoints.forEach((e, m) => {
      if (!nodeNames.has(e)) err(['links', k, 'endpoints', m], `unknown node '${e}'; nodes are: ${[...nodeNames].join(', ')}`);
    });
    if (a === b) {
      err(['links', k, 'endpoints'], 'a link joins two different nodes');
      return;
    }
    const key = [a, b].sort().join('\0');
    if (linkKeys.has(key)) err(['links', k, 'endpoints'], `duplicate link between '${a}' and '${b}'`);
    // A Vagrant machine gets one private-network NIC for links (the vagrant backend's LINK_NIC, eth1).
    if (t.backend === 'vagrant')
      l.endpoints.forEach((e, m) => {
        if (t.links.findIndex((o) => o.endpoints.includes(e)) < k)
          err(['links', k, 'endpoints', m], `node '${e}' already has a link: the vagrant backend gives a node one link`);
      });
    linkKeys.add(key);
    unused('ipv4', ['links', k, 'ipv4'], l.ipv4);
    unused('ipv6', ['links', k, 'ipv6'], l.ipv6);
    const l4 = v4 ? prefix(l.ipv4 ?? DEFAULTS.link4(k + 1), ['links', k, l.ipv4 ? 'ipv4' : 'endpoints']) : undefined;
    const l6 = v6 ? prefix(l.ipv6 ?? DEFAULTS.link6(k + 1), ['links', k, l.ipv6 ? 'ipv6' : 'endpoints']) : undefined;
    for (const [p, field] of [
      [l4, 'ipv4'],
      [l6, 'ipv6'],
    ] as const)
      if (p && p.len > MAX_LEN.p2p[p.family])
        err(['links', k, field], `${formatPrefix(p)} is too small: a link needs two hosts (at most /${MAX_LEN.p2p[p.family]})`);
    links.push({
      a,
      b,
      devA: `${LINK_DEV_PREFIX}${b}`,
      devB: `${LINK_DEV_PREFIX}${a}`,
      rate: l.rate,
      impair: l.impair,
      ...pair(l4, 'a4', 'b4'),
      ...pair(l6, 'a6', 'b6'),
    });
  });

  const services = resolveServices(t, nodes, prefixes, err);
  const allPods = nodes.flatMap((n) => n.pods.map((p) => `${n.name}/${p.name}`));
  const checks = (t.checks ?? [...CHECK_IDS]).map((c) => (typeof c === 'string' ? { id: c } : c));
  dupes(
    checks,
    (c) => `${c.id}\0${c.pod ?? ''}`,
    (m) => ['checks', m],
    (c) => `check ${c.id}${c.pod ? ` for pod ${c.pod}` : ''}`,
  );
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
      kernel:
        t.backend === 'vagrant'
          ? typeof t.kernel === 'string'
            ? t.kernel
            : DEFAULT_VM_KERNEL
          : t.backend !== 'qemu'
            ? undefined
            : typeof t.kernel === 'object'
              ? 'custom'
              : (t.kernel ?? t.kernels?.[0] ?? DEFAULT_VM_KERNEL),
      customKernel:
        typeof t.kernel === 'object'
          ? {
              vmlinuz: resolvePath(dirname(file), t.kernel.vmlinuz),
              modulesDir: resolvePath(dirname(file), t.kernel.modules),
              config: t.kernel.config && resolvePath(dirname(file), t.kernel.config),
              cmdline: t.kernel.cmdline,
            }
          : undefined,
      kernels: t.kernels,
      families: t.families,
      nodes,
      peers: nodes.filter((n) => n.uplink).map((n) => ({ name: n.uplink!.peer, netns: netnsOf(t.name, n.uplink!.peer), node: n.name })),
      links,
      services,
      checks,
      maglevSize: t.services.some((s) => s.loadBalancer) ? (t.maglev?.tableSize ?? 16381) : undefined,
    },
  };
}

/**
 * A peer behind several nodes (a client or router reaching each of them) is one namespace with one veth per node, so
 * every node must be a namespace on one kernel: qemu and vagrant put a node's peer inside its VM, ssh on its host.
 */
function sharedPeerRules(
  backend: string,
  peer: string,
  at: (string | number)[],
  first: (string | number)[],
  err: (path: (string | number)[], message: string) => void,
): void {
  if (backend === 'qemu' || backend === 'vagrant' || backend === 'ssh')
    err(
      at,
      `peer '${peer}' is also behind the node at ${pathString(first)}: a peer shared by nodes runs on the local backend only ` +
        `(the ${backend} backend puts each node's peer on the node's own machine); give this uplink its own peer`,
    );
}

const bandwidthOf = (s: string | undefined) => {
  const b = s === undefined ? undefined : parseBandwidth(s);
  return b && 'bps' in b ? b.bps : undefined;
};

type RawNode = Loaded['topology']['nodes'][number];

/**
 * What the bandwidth manager cannot run with. Legacy host routing: the node's IP stack
 * orphans the pod's skb in ip_rcv (ip_rcv_core, net/ipv4/ip_input.c: skb_orphan), so
 * the socket no longer owns what fq holds and cannot be paced (Cilium refuses it too).
 * A tbf bottleneck on the uplink: both want the uplink's root qdisc.
 */
function bandwidthRules(
  n: RawNode,
  i: number,
  dp: { hostRouting: string; bandwidthManager?: boolean },
  err: (path: (string | number)[], message: string) => void,
): void {
  const limited = n.pods.flatMap((p, j) => (p.egressBandwidth ? [j] : []));
  const on = dp.bandwidthManager ?? limited.length > 0;
  const at = limited.length ? ['nodes', i, 'pods', limited[0], 'egressBandwidth'] : ['nodes', i, 'name'];
  if (limited.length && dp.bandwidthManager === false)
    err(at, `egressBandwidth needs the bandwidth manager, which this node's datapath turns off (bandwidthManager: false)`);
  if (!on) return;
  if (dp.hostRouting === 'legacy')
    err(
      at,
      'the bandwidth manager needs hostRouting: bpf: with legacy routing the node IP stack orphans the pod skb in ip_rcv ' +
        '(net/ipv4/ip_input.c), so the socket no longer owns what fq queues and cannot be paced',
    );
  if (n.uplink?.rate)
    err(
      ['nodes', i, 'uplink', 'rate'],
      'an uplink rate (a tbf) and the bandwidth manager (fq) both want the uplink root qdisc: remove the rate, or the egressBandwidth',
    );
  if (n.uplink?.impair)
    err(
      ['nodes', i, 'uplink', 'impair'],
      'uplink impair (a netem) and the bandwidth manager (fq) both want the uplink root qdisc: impair a node-to-node link instead',
    );
}

/** First and second host of a point-to-point prefix, under the given keys. */
function pair<K1 extends string, K2 extends string>(p: Prefix | undefined, k1: K1, k2: K2): Partial<Record<K1 | K2, Addr>> {
  if (!p) return {};
  return { [k1]: { addr: nthAddr(p, 1)!, len: p.len }, [k2]: { addr: nthAddr(p, 2)!, len: p.len } } as Partial<Record<K1 | K2, Addr>>;
}

/** A node's simulator settings: the lab's, overridden by the node's; `at` names the place in the file for a refusal. */
function simOf(file: string, locate: Loaded['locate'], lab: Topology['sim'], node: Topology['sim'], i: number): LabNode['sim'] {
  if (!lab && !node) return undefined;
  const path = node ? ['nodes', i, 'sim'] : ['sim'];
  return { ...lab, ...node, at: formatIssue({ file, ...locate(path), path: pathString(path), message: '' }).replace(/: $/, '') };
}
