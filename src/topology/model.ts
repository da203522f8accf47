import type { CheckId, Datapath, Family } from './schema.js';

/** The resolved lab: every default applied, every name and address decided. */
export interface Lab {
  name: string;
  file: string;
  backend: string;
  /** qemu: catalogue name of the guest kernel. */
  kernel?: string;
  /** qemu: the user's own kernel instead of a catalogue one (absolute paths). */
  customKernel?: { vmlinuz: string; modulesDir: string; config?: string };
  /** qemu: the kernels `lab run` goes through (a matrix), when the file names several. */
  kernels?: string[];
  families: Family[];
  nodes: LabNode[];
  peers: Peer[];
  links: NodeLink[];
  checks: CheckSpec[];
}

export interface Addr {
  /** Address without prefix length. */
  addr: string;
  /** Prefix length the address is configured with. */
  len: number;
}

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

export interface Peer {
  name: string;
  netns: string;
  node: string;
}

export interface Uplink {
  node: string;
  peer: string;
  nodeDev: string;
  peerDev: string;
  rate?: string;
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
