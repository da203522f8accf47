import { z } from 'zod';
import { MAGLEV_SIZES } from '../datapath/xdp-lb/maglev.js';
import { BACKENDS, CHECK_IDS, FAMILIES, HOST_ROUTING, KUBE_PROXY, NIC_PROFILES, POD_DEVICES, SERVICE_PROTOCOLS } from './ids.js';
import { addrProblem, prefixProblem } from './ip.js';
import { parseBandwidth } from '../datapath/bwm/quantity.js';
import { ImpairSchema } from './impair.js';

export { BACKENDS, CHECK_IDS, FAMILIES, HOST_ROUTING, KUBE_PROXY, NIC_PROFILES, POD_DEVICES, SERVICE_PROTOCOLS } from './ids.js';

/**
 * The topology file, the single source of its format: the loader validates with it
 * and `lab schema` writes the JSON Schema for editors from it.
 */

// Linux interface names are at most IFNAMSIZ-1 = 15 bytes (include/uapi/linux/if.h).
export const IFNAMSIZ_MAX = 15;
// Device names derived from topology names; the limits below keep them within IFNAMSIZ.
export const POD_DEV_PREFIX = 'lxc-';
export const LINK_DEV_PREFIX = 'n-';

const dnsName = /^[a-z][a-z0-9-]*$/;
const name = (what: string, max: number) =>
  z
    .string()
    .regex(dnsName, `${what} must start with a letter and hold only a-z, 0-9 and '-'`)
    .max(max, `${what} is at most ${max} characters (it becomes part of a namespace or interface name)`);

/** Shows a value the way the user wrote it, for messages. */
export function showInput(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (v === null) return 'an empty value';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** An address or prefix field: syntax and family checked with ip.ts, so the message says what is wrong. */
const ipField = (check: (s: string, f: 4 | 6) => string | undefined, family: 4 | 6) =>
  z.string().superRefine((s, ctx) => {
    const problem = check(s, family);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
// For editors: loose patterns for prefixes and JSON Schema's own formats (draft 2020-12, 7.3.4) for addresses.
const ipv4Cidr = ipField(prefixProblem, 4).meta({ pattern: '^[0-9.]+/[0-9]{1,2}$' });
const ipv6Cidr = ipField(prefixProblem, 6).meta({ pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$' });
const ipv4Addr = ipField(addrProblem, 4).meta({ format: 'ipv4' });
const ipv6Addr = ipField(addrProblem, 6).meta({ format: 'ipv6' });

// tc's rate syntax (tc(8) "RATES"): a number and a unit, k = 1000; bps units are bytes.
const RATE = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps)$/;
const RATE_UNIT_BITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};
/**
 * tbf keeps its burst (64 KiB here) as a time in 32-bit psched ticks (struct tc_tbf_qopt.buffer,
 * include/uapi/linux/pkt_sched.h). Measured with tc -j qdisc show: below ~2kbit the time overflows
 * (8bit leaves a 115-byte burst, no packet fits), from 10tbit it rounds to 0.
 */
export const RATE_BITS = { min: 10e3, max: 1e12 } as const;
const rateBits = (s: string) => {
  const m = RATE.exec(s);
  return m ? Number(m[1]) * RATE_UNIT_BITS[m[2]] : undefined;
};
const rate = z
  .string()
  .regex(RATE, 'a tc rate like 200mbit (units: bit, kbit, mbit, gbit, tbit, or bps, kbps, mbps, gbps for bytes)')
  .superRefine((s, ctx) => {
    const bits = rateBits(s);
    if (bits === 0) ctx.addIssue({ code: 'custom', message: 'a rate of 0 passes nothing; give one above 0, like 200mbit' });
    else if (bits !== undefined && (bits < RATE_BITS.min || bits > RATE_BITS.max))
      ctx.addIssue({
        code: 'custom',
        message: `${s} is outside 10kbit to 1tbit, where tc's tbf keeps its 64 KiB burst (it counts it in 32-bit clock ticks)`,
      });
  });

/** An enum whose error names the bad value and lists the good ones. */
const oneOf = <T extends readonly [string, ...string[]]>(values: T, what: string, plural = `${what}s`) =>
  z.enum(values, {
    error: (iss) =>
      typeof iss.input === 'string'
        ? `unknown ${what} '${iss.input}'; ${plural} are: ${values.join(', ')}`
        : `expected a ${what} (${values.join(', ')}), got ${showInput(iss.input)}`,
  });

/** Kernel names are text: a YAML number loses its trailing zeros ("6.10" unquoted reads as 6.1). */
const kernelName = z.string({
  error: (iss) =>
    typeof iss.input === 'number'
      ? `write the kernel name in quotes (kernel: "6.12"): unquoted, YAML reads it as the number ${iss.input}`
      : undefined,
});

export const DatapathSchema = z
  .object({
    hostRouting: oneOf(HOST_ROUTING, 'hostRouting mode').describe(
      'bpf: tcx programs forward with bpf_redirect_neigh/peer; legacy: the host IP stack forwards',
    ),
    bigTcp: z
      .boolean({ error: (iss) => `expected true or false, got ${showInput(iss.input)}` })
      .describe('set gso/gro max sizes to min(196608, tso_max_size) on every lab device'),
    podDevice: oneOf(POD_DEVICES, 'podDevice kind').describe('pod device type; auto picks netkit where the kernel has it'),
    bandwidthManager: z
      .boolean({ error: (iss) => `expected true or false, got ${showInput(iss.input)}` })
      .optional()
      .describe('EDT rate limiting (BPF on the uplink egress, fq, BBR in pods); on by itself when a pod has egressBandwidth'),
    kubeProxy: oneOf(KUBE_PROXY, 'kubeProxy mode').describe(
      "services: bpf (socket-LB on each pod's cgroup), iptables (kube-proxy's iptables rules in the node), none",
    ),
  })
  .strict();

/** egressBandwidth: the kubernetes.io/egress-bandwidth annotation's Kubernetes quantity, in bit/s. */
const bandwidth = z
  .string({
    error: (iss) =>
      typeof iss.input === 'number'
        ? `write the bandwidth as a quantity in quotes ("${iss.input}"), like the annotation: "50M"`
        : `expected a bandwidth like "50M", got ${showInput(iss.input)}`,
  })
  .superRefine((s, ctx) => {
    const b = parseBandwidth(s);
    if ('problem' in b) ctx.addIssue({ code: 'custom', message: b.problem });
  });

export const PodSchema = z
  .object({
    name: name('pod name', IFNAMSIZ_MAX - POD_DEV_PREFIX.length),
    ipv4: ipv4Addr.optional(),
    ipv6: ipv6Addr.optional(),
    egressBandwidth: bandwidth
      .optional()
      .describe('kubernetes.io/egress-bandwidth: the pod egress rate (bit/s, 50M = 50 Mbit/s), enforced by EDT on the uplink'),
  })
  .strict();

export const UplinkSchema = z
  .object({
    peer: name('peer name', 20).describe(
      'name of the remote host (a namespace) behind the uplink; nodes whose uplinks name the same peer share it (local backend)',
    ),
    rate: rate.optional().describe('bottleneck: a tbf qdisc with this rate on the node side of the uplink'),
    ipv4: ipv4Cidr.optional().describe('a /30 (or larger) for the uplink; node takes the first host, peer the second'),
    ipv6: ipv6Cidr.optional(),
    impair: ImpairSchema.optional(),
  })
  .strict();

/** NIC profiles and congestion control modules the simulator has (src/sim/devices.ts, src/sim/cc.ts). */
export const SIM_NICS = ['veth', 'virtio', 'mlx5-cx6dx', 'ice-e810'] as const;
export const SIM_CCS = ['reno', 'cubic', 'bbr'] as const;

export const SimNodeSchema = z
  .object({
    nic: oneOf(SIM_NICS, 'nic profile')
      .optional()
      .describe("the uplink's device model: veth (default), virtio, mlx5-cx6dx, ice-e810 (100G)"),
    congestionControl: oneOf(SIM_CCS, 'congestion control')
      .optional()
      .describe("the pods' net.ipv4.tcp_congestion_control (default bbr: new namespaces inherit the host's, bbr on the build machine)"),
  })
  .strict();

/** A bare-metal target reached with the OpenSSH client (its config and agent are honoured). */
export const SshTargetSchema = z
  .object({
    host: z.string().min(1, 'host is a name or address').describe('host name or address (or a Host alias of ~/.ssh/config)'),
    user: z.string().optional().describe('login user: root, or one with passwordless sudo'),
    port: z.number().int().min(1).max(65535).optional().describe('ssh port (default: ssh config, else 22)'),
    identityFile: z.string().optional().describe('private key (ssh -i); relative to the topology file'),
    jump: z.string().optional().describe('jump host (ssh -J)'),
    knownHosts: z.string().optional().describe("a known_hosts file of its own (the test guests' keys); default: the user's"),
    nic: z
      .string()
      .regex(/^[^\s/]{1,15}$/, 'a network interface name (at most 15 characters, no spaces or /)')
      .optional()
      .describe("the NIC of this target's back-to-back link: moved into the node's namespace while the lab is up"),
    allowHostChanges: z
      .boolean({ error: (iss) => `expected true or false, got ${showInput(iss.input)}` })
      .default(false)
      .describe('nothing on the target changes (NIC moved, MTU, offloads) unless true; every change is put back by lab down'),
    profile: oneOf(NIC_PROFILES, 'NIC profile').optional().describe('settings for the NIC (needs allowHostChanges)'),
    channels: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .optional()
      .describe("the NIC's combined channels (ethtool -L; needs allowHostChanges); absent: left as they are"),
  })
  .strict();

export const NodeSchema = z
  .object({
    name: name('node name', IFNAMSIZ_MAX - LINK_DEV_PREFIX.length),
    podCidr: ipv4Cidr.optional(),
    podCidr6: ipv6Cidr.optional(),
    pods: z.array(PodSchema).default([]),
    uplink: UplinkSchema.optional(),
    datapath: DatapathSchema.partial().optional().describe('overrides the lab datapath for this node'),
    sim: SimNodeSchema.optional().describe('simulator only (backend sim): this node as the model runs it'),
    ssh: SshTargetSchema.optional().describe('backend ssh: the host this node runs on'),
    loadBalancer: z
      .boolean({ error: (iss) => `expected true or false, got ${showInput(iss.input)}` })
      .default(false)
      .describe('an XDP load-balancer node: serves services[].loadBalancer VIPs natively on its uplink (needs an uplink)'),
  })
  .strict();

export const LinkSchema = z
  .object({
    endpoints: z
      .tuple([z.string(), z.string()], {
        error: (iss) =>
          (iss.code === 'invalid_type' && iss.input !== undefined) || iss.code === 'too_small' || iss.code === 'too_big'
            ? 'a link has two endpoints: [node, node]'
            : undefined,
      })
      .describe('the two node names'),
    rate: rate.optional(),
    ipv4: ipv4Cidr.optional(),
    ipv6: ipv6Cidr.optional(),
    impair: ImpairSchema.optional(),
  })
  .strict();

/** A whole number in [min, max], with one message naming the range. */
const intIn = (what: string, min: number, max: number) => {
  const m = `${what} is a whole number from ${min} to ${max}`;
  return z.number(m).int(m).min(min, m).max(max, m);
};

/** NodePorts come from kube-apiserver's default --service-node-port-range. */
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;

export const ServicePortSchema = z
  .object({
    port: intIn('port', 1, 65535).describe('the port on the ClusterIP'),
    protocol: oneOf(SERVICE_PROTOCOLS, 'protocol').default('TCP'),
    targetPort: intIn('targetPort', 1, 65535).optional().describe("the backend pods' port (default: port)"),
    nodePort: intIn('nodePort', NODE_PORT_RANGE.min, NODE_PORT_RANGE.max).optional().describe('a port on every node'),
  })
  .strict();

export const ServiceBackendSchema = z.union(
  [
    z.string(),
    z
      .object({
        pod: z.string().describe('a pod name, or node/pod when the name is not unique'),
        weight: intIn('weight', 0, 100)
          .default(1)
          .describe('share of new connections, relative to the other backends; 0: no new connections (maintenance)'),
      })
      .strict(),
  ],
  { error: (iss) => `expected a pod name or a mapping {pod, weight}, got ${showInput(iss.input)}` },
);

/** XDP load-balancer forwarding modes (bpf/xdp_lb.c enum xl_mode). */
export const XL_MODES = ['snat', 'dsr'] as const;

export const ServiceSchema = z
  .object({
    name: name('service name', 40),
    clusterIP: ipv4Addr.optional().describe('the IPv4 ClusterIP (outside every lab prefix)'),
    clusterIP6: ipv6Addr.optional().describe('the IPv6 ClusterIP'),
    ports: z.array(ServicePortSchema).min(1, 'a service needs at least one port'),
    sessionAffinity: z
      .object({ timeoutSeconds: intIn('timeoutSeconds', 1, 86400).default(10800).describe("kube-proxy's default is 10800") })
      .strict()
      .optional()
      .describe('ClientIP affinity: a client keeps its backend until it has been idle this long'),
    backends: z.array(ServiceBackendSchema).default([]).describe('pods behind the service; none: connections fail at once'),
    loadBalancer: z
      .object({
        vip: ipv4Addr.optional().describe('the IPv4 VIP the XDP load balancer serves (outside every lab prefix)'),
        vip6: ipv6Addr.optional().describe('the IPv6 VIP the XDP load balancer serves (outside every lab prefix; needs clusterIP6)'),
        mode: oneOf(XL_MODES, 'loadBalancer mode').default('snat').describe('snat: DNAT + SNAT to the LB node; dsr: IPIP to the pod'),
      })
      .strict()
      .optional()
      .describe('north-south load balancing in XDP on the nodes with loadBalancer: true (Maglev backend choice)'),
  })
  .strict();

const checkId = oneOf(CHECK_IDS, 'check');
/** Seconds a check's flow lasts: iperf3 -t takes whole seconds. */
const SECONDS = { min: 1, max: 60 } as const;
const secondsMessage = `seconds is a whole number from ${SECONDS.min} to ${SECONDS.max}`;

export const CheckRefSchema = z.union(
  [
    checkId,
    z
      .object({
        id: checkId,
        pod: z.string().optional().describe('pod that sends the flow (default: the first pod)'),
        seconds: z
          .number(secondsMessage)
          .int(secondsMessage)
          .min(SECONDS.min, secondsMessage)
          .max(SECONDS.max, secondsMessage)
          .optional()
          .describe('flow duration'),
      })
      .strict(),
  ],
  { error: (iss) => `expected a check id (${CHECK_IDS.join(', ')}) or a mapping {id, pod, seconds}, got ${showInput(iss.input)}` },
);

export const TopologySchema = z
  .object({
    name: name('lab name', 12),
    backend: oneOf(BACKENDS, 'backend')
      .default('local')
      .describe('where nodes live: local (namespaces on this kernel), qemu (one VM per node), ssh (hosts reached over SSH)'),
    kernel: z
      .union(
        [
          kernelName,
          z
            .object({
              vmlinuz: z.string().describe('a bzImage'),
              modules: z.string().describe('its lib/modules/<release> directory (the release is its name)'),
              config: z.string().optional().describe("the kernel's config, for what it supports (without it, nothing is assumed)"),
              cmdline: z
                .string()
                .regex(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/, 'kernel parameters: printable words separated by single spaces')
                .max(512, 'at most 512 characters')
                .optional()
                .describe("kernel parameters added after the lab's own (console=ttyS0 panic=-1 quiet loglevel=4)"),
            })
            .strict(),
        ],
        {
          error: (iss) =>
            typeof iss.input === 'number'
              ? `write the kernel name in quotes (kernel: "6.12"): unquoted, YAML reads it as the number ${iss.input}`
              : undefined,
        },
      )
      .optional()
      .describe('qemu: the kernel to boot: a name from vms/kernels.yaml (default 6.12), or your own bzImage and modules'),
    kernels: z
      .array(kernelName)
      .min(1, 'name at least one kernel')
      .optional()
      .describe('qemu: lab run runs the lab once per kernel and writes a matrix summary'),
    families: z
      .array(oneOf(FAMILIES, 'family', 'families'))
      .min(1, 'name at least one family (ipv4, ipv6)')
      .default(['ipv4']),
    datapath: DatapathSchema.partial().default({}),
    nodes: z.array(NodeSchema).min(1, 'a lab needs at least one node'),
    links: z.array(LinkSchema).default([]),
    services: z.array(ServiceSchema).default([]).describe('Kubernetes-style services: ClusterIPs load-balanced to pods'),
    checks: z.array(CheckRefSchema).optional().describe('checks to run (default: all)'),
    maglev: z
      .object({
        tableSize: z
          .number()
          .refine((m) => (MAGLEV_SIZES as readonly number[]).includes(m), {
            message: `tableSize is one of Cilium's Maglev sizes: ${MAGLEV_SIZES.join(', ')}`,
          })
          .default(16381)
          .describe('Maglev table size M, a prime (Cilium pkg/maglev maglevSupportedTableSizes; default 16381)'),
      })
      .strict()
      .optional()
      .describe("the XDP load balancer's Maglev tables"),
    sim: SimNodeSchema.optional().describe("simulator only (backend sim): every node's default, nodes[].sim overrides"),
  })
  .strict();

export type RawTopology = z.input<typeof TopologySchema>;
export type Topology = z.output<typeof TopologySchema>;
export type Datapath = z.output<typeof DatapathSchema>;
export type Family = (typeof FAMILIES)[number];
export type { CheckId } from './ids.js';
export type HostRoutingMode = (typeof HOST_ROUTING)[number];
export type PodDeviceKind = (typeof POD_DEVICES)[number];
export type KubeProxyMode = (typeof KUBE_PROXY)[number];
export type ServiceProtocol = (typeof SERVICE_PROTOCOLS)[number];

export const DEFAULT_DATAPATH: Datapath = { hostRouting: 'bpf', bigTcp: true, podDevice: 'auto', kubeProxy: 'bpf' };

/** JSON Schema for editors (yaml-language-server), generated from the zod schema. */
export function jsonSchema(): object {
  return { $id: 'https://datapath-lab/topology.schema.json', ...z.toJSONSchema(TopologySchema, { io: 'input' }) };
}
