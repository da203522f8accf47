import { z } from 'zod';

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

const ipv4Cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 prefix like 10.244.1.0/24');
const ipv6Cidr = z.string().regex(/^[0-9a-fA-F:]+\/\d{1,3}$/, 'an IPv6 prefix like fd00:244:1::/64');
const ipv4Addr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'an IPv4 address like 10.244.1.2');
const ipv6Addr = z.string().regex(/^[0-9a-fA-F:]+$/, 'an IPv6 address like fd00:244:1::2');
// tc's rate syntax (tc(8) "RATES"): a number and a unit.
const rate = z.string().regex(/^\d+(\.\d+)?(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps)$/, 'a tc rate like 200mbit');

import { CHECK_IDS, FAMILIES, HOST_ROUTING, POD_DEVICES } from './ids.js';

export { BACKENDS, CHECK_IDS, FAMILIES, HOST_ROUTING, POD_DEVICES } from './ids.js';

export const DatapathSchema = z
  .object({
    hostRouting: z.enum(HOST_ROUTING).describe('bpf: tcx programs forward with bpf_redirect_neigh/peer; legacy: the host IP stack forwards'),
    bigTcp: z.boolean().describe('set gso/gro max sizes to min(196608, tso_max_size) on every lab device'),
    podDevice: z.enum(POD_DEVICES).describe('pod device type; auto picks netkit where the kernel has it'),
  })
  .strict();

export const PodSchema = z
  .object({
    name: name('pod name', IFNAMSIZ_MAX - POD_DEV_PREFIX.length),
    ipv4: ipv4Addr.optional(),
    ipv6: ipv6Addr.optional(),
  })
  .strict();

export const UplinkSchema = z
  .object({
    peer: name('peer name', 20).describe('name of the remote host (a namespace) behind the uplink'),
    rate: rate.optional().describe('bottleneck: a tbf qdisc with this rate on the node side of the uplink'),
    ipv4: ipv4Cidr.optional().describe('a /30 (or larger) for the uplink; node takes the first host, peer the second'),
    ipv6: ipv6Cidr.optional(),
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
  })
  .strict();

export const LinkSchema = z
  .object({
    endpoints: z.tuple([z.string(), z.string()]).describe('the two node names'),
    rate: rate.optional(),
    ipv4: ipv4Cidr.optional(),
    ipv6: ipv6Cidr.optional(),
  })
  .strict();

export const CheckRefSchema = z.union([
  z.enum(CHECK_IDS),
  z
    .object({
      id: z.enum(CHECK_IDS),
      pod: z.string().optional().describe('pod that sends the flow (default: the first pod)'),
      seconds: z.number().min(1).max(60).optional().describe('flow duration'),
    })
    .strict(),
]);

export const TopologySchema = z
  .object({
    name: name('lab name', 12),
    backend: z.string().default('local').describe('where nodes live: local (namespaces on this kernel) or qemu (one VM per node)'),
    kernel: z
      .union([
        z.string(),
        z
          .object({
            vmlinuz: z.string().describe('a bzImage'),
            modules: z.string().describe('its lib/modules/<release> directory (the release is its name)'),
            config: z.string().optional().describe("the kernel's config, for what it supports (without it, nothing is assumed)"),
          })
          .strict(),
      ])
      .optional()
      .describe('qemu: the kernel to boot: a name from vms/kernels.yaml (default 6.12), or your own bzImage and modules'),
    kernels: z.array(z.string()).min(1).optional().describe('qemu: lab run runs the lab once per kernel and writes a matrix summary'),
    families: z.array(z.enum(FAMILIES)).min(1).default(['ipv4']),
    datapath: DatapathSchema.partial().default({}),
    nodes: z.array(NodeSchema).min(1, 'a lab needs at least one node'),
    links: z.array(LinkSchema).default([]),
    checks: z.array(CheckRefSchema).optional().describe('checks to run (default: all)'),
  })
  .strict();

export type RawTopology = z.input<typeof TopologySchema>;
export type Topology = z.output<typeof TopologySchema>;
export type Datapath = z.output<typeof DatapathSchema>;
export type Family = (typeof FAMILIES)[number];
export type { CheckId } from './ids.js';
export type HostRoutingMode = (typeof HOST_ROUTING)[number];
export type PodDeviceKind = (typeof POD_DEVICES)[number];

export const DEFAULT_DATAPATH: Datapath = { hostRouting: 'bpf', bigTcp: true, podDevice: 'auto' };

/** JSON Schema for editors (yaml-language-server), generated from the zod schema. */
export function jsonSchema(): object {
  return { $id: 'https://datapath-lab/topology.schema.json', ...z.toJSONSchema(TopologySchema, { io: 'input' }) };
}
