/** The names the topology format and the CLI share, kept free of the schema library so the CLI starts fast. */
export const BACKENDS = ['local', 'qemu', 'sim', 'ssh', 'vagrant'] as const;
/** NIC profiles a bare-metal (ssh) target may ask for (src/backends/ssh/profile.ts). */
export const NIC_PROFILES = ['mlx5-back-to-back'] as const;
export const FAMILIES = ['ipv4', 'ipv6'] as const;
export const HOST_ROUTING = ['bpf', 'legacy'] as const;
export const POD_DEVICES = ['auto', 'veth', 'netkit'] as const;
export const KUBE_PROXY = ['bpf', 'iptables', 'none'] as const;
export const SERVICE_PROTOCOLS = ['TCP', 'UDP'] as const;
/** The Bandwidth Manager's checks (src/checks/bwm.ts). */
export const BWM_CHECK_IDS = ['bwm-rate', 'bwm-latency', 'bwm-horizon', 'bwm-backpressure'] as const;
export const CHECK_IDS = [
  'backpressure',
  'tso-probe',
  'bigtcp',
  'netkit',
  'netkit-throughput',
  'connectivity',
  'svc-clusterip',
  'svc-getpeername',
  'svc-no-backend',
  'kube-proxy-free',
  'svc-affinity',
  'svc-backend-removal',
  'svc-backpressure',
  'svc-nodeport',
  ...BWM_CHECK_IDS,
  'tcp-mmap',
  'xdp-lb-reachable',
  'xdp-lb-in-xdp',
  'maglev-balance',
  'xdp-lb-weight-zero',
  'maglev-consistency',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];
