import type { Impair } from './impair.js';
import type { CheckId, Datapath, Family, SIM_CCS, SIM_NICS, ServiceProtocol } from './schema.js';
import type { NIC_PROFILES } from './ids.js';

export type NicProfileName = (typeof NIC_PROFILES)[number];

/** The resolved lab: every default applied, every name and address decided. */
export interface Lab {
  name: string;
  file: string;
  backend: string;
  /** qemu: catalogue name of the guest kernel. */
  kernel?: string;
  /** qemu: the user's own kernel instead of a catalogue one (absolute paths). */
  customKernel?: { vmlinuz: string; modulesDir: string; config?: string; cmdline?: string };
  /** qemu: the kernels `lab run` goes through (a matrix), when the file names several. */
  kernels?: string[];
  families: Family[];
  nodes: LabNode[];
  peers: Peer[];
  links: NodeLink[];
  /** Services (ClusterIPs load-balanced to pods); empty when the file has none. */
  services: Service[];
  checks: CheckSpec[];
  /** Map ids of the services' frontends and backends once `lab svc` changed them (src/datapath/kpr/plan.ts). */
  serviceIds?: ServiceIds;
  /** Maglev table size of the XDP load balancer (topology maglev.tableSize). */
  maglevSize?: number;
}

/** Ids of frontends and backends kept across live service changes, so a map entry never changes meaning. */
export interface ServiceIds {
  /** Frontend id by service/family/port/protocol. */
  frontends: Record<string, number>;
  /** Backend id by family/address/port. */
  backends: Record<string, number>;
  /** Next unused frontend id (ids are never reused: affinity entries carry them). */
  nextFrontend: number;
  /** Next unused backend id. */
  nextBackend: number;
}

/** A Kubernetes-style service, resolved: its backends name real pods. */
export interface Service {
  name: string;
  /** The IPv4 ClusterIP. */
  ipv4?: string;
  /** The IPv6 ClusterIP. */
  ipv6?: string;
  ports: ServicePort[];
  /** ClientIP session affinity's idle timeout in seconds; absent: none. */
  affinitySeconds?: number;
  backends: ServiceBackend[];
  /** The XDP load balancer's VIP for this service (src/datapath/xdp-lb); absent: none. */
  loadBalancer?: {
    /** The IPv4 VIP; absent: none. */
    vip?: string;
    /** The IPv6 VIP; absent: none. */
    vip6?: string;
    mode: 'snat' | 'dsr';
  };
}

export interface ServicePort {
  port: number;
  protocol: ServiceProtocol;
  /** The backends' port. */
  targetPort: number;
  nodePort?: number;
}

export interface ServiceBackend {
  node: string;
  pod: string;
  /** Share of new connections relative to the service's other backends. */
  weight: number;
}

export interface Addr {
  /** Address without prefix length. */
  addr: string;
  /** Prefix length the address is configured with. */
  len: number;
}

export type SimNic = (typeof SIM_NICS)[number];
export type SimCc = (typeof SIM_CCS)[number];

export interface LabNode {
  name: string;
  netns: string;
  datapath: Datapath;
  podCidr4?: string;
  podCidr6?: string;
  /** Gateway address pods route through, carried by every host-side pod device. */
  gw4?: string;
  gw6?: string;
  pods: Pod[];
  uplink?: Uplink;
  /** Simulator-only settings (the lab's sim: merged with the node's), and where the file sets them (file:line:col: path). */
  sim?: { nic?: SimNic; congestionControl?: SimCc; at: string };
  /** backend ssh: the host the node runs on. */
  ssh?: SshTarget;
  /** An XDP load-balancer node (serves the services' loadBalancer VIPs on its uplink). */
  loadBalancer?: boolean;
}

/** A bare-metal target (backend ssh), as the topology names it; paths absolute. */
export interface SshTarget {
  host: string;
  user?: string;
  port?: number;
  identityFile?: string;
  jump?: string;
  /** A known_hosts file of its own (default: the user's). */
  knownHosts?: string;
  /** The NIC of the node's back-to-back link. */
  nic?: string;
  /** Whether the lab may change anything of the host's own (its NIC, MTU, offloads). */
  allowHostChanges: boolean;
  profile?: NicProfileName;
  /** Combined channels of the link's NIC (ethtool -L); absent: left as they are. */
  channels?: number;
}

export interface Pod {
  name: string;
  node: string;
  netns: string;
  /** Device in the node namespace. */
  hostDev: string;
  /** Device in the pod namespace. */
  dev: string;
  ipv4?: string;
  ipv6?: string;
  /** kubernetes.io/egress-bandwidth of the pod, bit/s (the bandwidth manager enforces it on the uplink). */
  egressBps?: number;
}

/**
 * The peer end of one uplink. A peer behind several nodes (their uplinks name it) is one namespace with a device per
 * node: it has an entry per node, with the same name and netns (namespacesOf creates it once).
 */
export interface Peer {
  name: string;
  netns: string;
  /** The node whose uplink this entry is the far end of. */
  node: string;
}

export interface Uplink {
  node: string;
  peer: string;
  nodeDev: string;
  /** The peer's device: eth0, or n-NODE when the peer is behind several nodes. */
  peerDev: string;
  rate?: string;
  /** netem on both ends (src/topology/impair.ts); absent: no netem. */
  impair?: Impair;
  node4?: Addr;
  peer4?: Addr;
  node6?: Addr;
  peer6?: Addr;
}

export interface NodeLink {
  a: string;
  b: string;
  /** Device on a's side, named after b. */
  devA: string;
  devB: string;
  rate?: string;
  /** netem on both ends (src/topology/impair.ts); absent: no netem. */
  impair?: Impair;
  a4?: Addr;
  b4?: Addr;
  a6?: Addr;
  b6?: Addr;
}

export interface CheckSpec {
  id: CheckId;
  pod?: string;
  seconds?: number;
}

export const NETNS_PREFIX = 'dpl-';
/**
 * Namespace names carry the lab's name, like containerlab's ownership labels.
 * '.' separates parts because topology names cannot hold it, so no two labs or
 * nodes can produce the same name (dpl-LAB.NODE.POD).
 */
export const netnsOf = (lab: string, ...parts: string[]) => `${NETNS_PREFIX}${[lab, ...parts].join('.')}`;
export const labNetnsPrefix = (lab: string) => `${NETNS_PREFIX}${lab}.`;
