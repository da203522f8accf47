import { z } from 'zod';

/** One physical NIC of a target, as the probe read it (ethtool, ip -d -j link, sysfs). */
export interface NicFacts {
  name: string;
  /** ethtool -i: the kernel driver (mlx5_core, virtio_net, ...). */
  driver?: string;
  firmware?: string;
  busInfo?: string;
  address?: string;
  /** Administratively up (IFF_UP in ip -j link's flags). */
  up: boolean;
  mtu?: number;
  /** ip -d -j link: the most the device accepts per TSO skb (BIG TCP is clamped to it). */
  tsoMaxSize?: number;
  gsoMaxSize?: number;
  groMaxSize?: number;
  gsoIpv4MaxSize?: number;
  groIpv4MaxSize?: number;
  /** ethtool -l: channel kind → [max, current]. */
  channels: Record<string, [number | undefined, number | undefined]>;
  /** ethtool --show-priv-flags (mlx5: rx_striding_rq, ...). */
  privFlags: Record<string, boolean>;
  /** ethtool -k: feature → on, and whether the driver fixes it. */
  features: Record<string, { on: boolean; fixed: boolean }>;
  numaNode?: number;
  /** MSI/MSI-X IRQs of the device (/sys/class/net/X/device/msi_irqs) and their smp_affinity_list. */
  irqs: { irq: number; cpus: string }[];
}

const Link = z
  .object({
    ifname: z.string(),
    address: z.string().optional(),
    flags: z.array(z.string()).optional(),
    mtu: z.number().optional(),
    tso_max_size: z.number().optional(),
    gso_max_size: z.number().optional(),
    gro_max_size: z.number().optional(),
    gso_ipv4_max_size: z.number().optional(),
    gro_ipv4_max_size: z.number().optional(),
  })
  .loose();

const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s.trim()) ? Number(s.trim()) : undefined);

/** `key: value` lines of ethtool's text output. */
function kv(text: string): [string, string][] {
  return text.split('\n').flatMap((l) => {
    const m = /^\s*([^:]+?)\s*:\s*(.*)$/.exec(l);
    return m ? [[m[1], m[2].trim()] as [string, string]] : [];
  });
}

/** ethtool -l: "Pre-set maximums:" then "Current hardware settings:", each with RX/TX/Other/Combined. */
export function parseChannels(text: string): NicFacts['channels'] {
  const out: NicFacts['channels'] = {};
  let col: 0 | 1 | undefined;
  for (const l of text.split('\n')) {
    if (/^Pre-set maximums/i.test(l)) col = 0;
    else if (/^Current hardware settings/i.test(l)) col = 1;
    else if (col !== undefined) {
      const m = /^\s*(RX|TX|Other|Combined):\s*(\S+)/i.exec(l);
      if (m) {
        const k = m[1].toLowerCase();
        out[k] ??= [undefined, undefined];
        out[k][col] = num(m[2]);
      }
    }
  }
  return out;
}

/** ethtool -k: "large-receive-offload: off [fixed]". */
export function parseFeatures(text: string): NicFacts['features'] {
  const out: NicFacts['features'] = {};
  for (const [k, v] of kv(text)) {
    const m = /^(on|off)(\s+\[fixed\])?/.exec(v);
    if (m) out[k] = { on: m[1] === 'on', fixed: !!m[2] };
  }
  return out;
}

/** ethtool --show-priv-flags: "rx_striding_rq : on" (nothing when the driver has none). */
export function parsePrivFlags(text: string): Record<string, boolean> {
  return Object.fromEntries(kv(text).flatMap(([k, v]) => (v === 'on' || v === 'off' ? [[k, v === 'on']] : [])));
}

/** The probe's NIC sections (see probe.ts) as NicFacts. */
export function parseNics(s: Map<string, string>): NicFacts[] {
  let links: z.infer<typeof Link>[] = [];
  try {
    links = z.array(Link).parse(JSON.parse(s.get('links') || '[]'));
  } catch {
    links = [];
  }
  const names = [...s.keys()].flatMap((k) => (/^nic [^/]+$/.test(k) ? [k.slice(4)] : []));
  return names.map((name) => {
    const sec = (x: string) => s.get(`nic ${name}/${x}`) ?? '';
    const info = Object.fromEntries(kv(sec('ethtool-i')));
    const l = links.find((x) => x.ifname === name);
    return {
      name,
      driver: info.driver || undefined,
      firmware: info['firmware-version'] || undefined,
      busInfo: info['bus-info'] || undefined,
      address: l?.address,
      up: !!l?.flags?.includes('UP'),
      mtu: l?.mtu,
      tsoMaxSize: l?.tso_max_size,
      gsoMaxSize: l?.gso_max_size,
      groMaxSize: l?.gro_max_size,
      gsoIpv4MaxSize: l?.gso_ipv4_max_size,
      groIpv4MaxSize: l?.gro_ipv4_max_size,
      channels: parseChannels(sec('ethtool-l')),
      privFlags: parsePrivFlags(sec('priv')),
      features: parseFeatures(sec('ethtool-k')),
      numaNode: num(sec('numa')),
      irqs: [...sec('irqs').matchAll(/(\d+):(\S*)/g)].map((m) => ({ irq: Number(m[1]), cpus: m[2] })),
    };
  });
}

/** One NIC as `lab doctor --target` prints it: label → value. */
export function nicRows(n: NicFacts): [string, string][] {
  const ch = Object.entries(n.channels)
    .filter(([, [max, cur]]) => max !== undefined || cur !== undefined)
    .map(([k, [max, cur]]) => `${k} ${cur ?? '-'}/${max ?? '-'}`)
    .join(', ');
  const f = (k: string) => (n.features[k] ? `${n.features[k].on ? 'on' : 'off'}${n.features[k].fixed ? ' [fixed]' : ''}` : 'unknown');
  const priv = Object.entries(n.privFlags);
  return [
    ['driver', `${n.driver ?? 'unknown'} (firmware ${n.firmware ?? 'n/a'}, bus ${n.busInfo ?? 'n/a'})`],
    ['mtu', String(n.mtu ?? 'unknown')],
    ['tso_max_size', String(n.tsoMaxSize ?? 'unknown')],
    ['gso/gro max (ipv6, ipv4)', `${n.gsoMaxSize ?? '?'}/${n.groMaxSize ?? '?'}, ${n.gsoIpv4MaxSize ?? '?'}/${n.groIpv4MaxSize ?? '?'}`],
    ['channels (current/max)', ch || 'none reported'],
    ['LRO', f('large-receive-offload')],
    ['GRO', f('generic-receive-offload')],
    ['rx_striding_rq', n.privFlags.rx_striding_rq === undefined ? 'no such private flag' : n.privFlags.rx_striding_rq ? 'on' : 'off'],
    ['private flags', priv.length ? priv.map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(' ') : 'none'],
    ['NUMA node', n.numaNode === undefined ? 'unknown' : String(n.numaNode)],
    ['IRQs (irq:cpus)', n.irqs.length ? n.irqs.map((i) => `${i.irq}:${i.cpus || '?'}`).join(' ') : 'none (no MSI)'],
  ];
}
