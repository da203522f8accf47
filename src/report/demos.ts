import type { CheckId } from '../topology/ids.js';

export const DEMO_IDS = ['backpressure', 'bigtcp', 'netkit', 'services', 'bandwidth'] as const;
export type DemoId = (typeof DEMO_IDS)[number];

/** A teaching demo: one check with its control on a small shipped topology, and what to read in its plot. */
export interface Demo {
  /** `lab demo <id>`. */
  id: DemoId;
  /** Heading of the page. */
  title: string;
  /** File under topologies/. */
  topology: string;
  /** The one check it runs (`--only`). */
  check: CheckId;
  /** The control the check measures beside the feature, in a few words. */
  control: string;
  /** Set for the demos that boot a QEMU VM: the catalogue kernel (vms/kernels.yaml) they need cached. */
  vmKernel?: string;
  /** What the plot shows, then why the kernel does it: paragraphs of plain text. */
  explain: string[];
}

export const DEMOS: Record<DemoId, Demo> = {
  backpressure: {
    id: 'backpressure',
    title: 'Backpressure: who owns the bytes waiting at the bottleneck',
    topology: 'quickstart.yaml',
    check: 'backpressure',
    control: 'the same flow with hostRouting: legacy (the node IP stack forwards)',
    explain: [
      'A pod sends one bulk TCP flow to the remote peer through a 200 Mbit/s tbf on the node uplink. ' +
        'Each plot follows two numbers over time: the bytes the sending socket is charged for (sk_wmem_alloc, from ss) ' +
        'and the bytes waiting in the bottleneck qdisc (backlog, from tc -s). Both plots share one y scale.',
      'With legacy host routing the packet leaving the pod is received by the node IP stack, and ip_rcv_core ' +
        '(net/ipv4/ip_input.c) orphans the skb: its destructor runs and the sender socket stops accounting for it. ' +
        'The queue at the bottleneck grows while the socket owns almost nothing, so TCP small queues ' +
        '(tcp_small_queue_check in net/ipv4/tcp_output.c) and the socket send buffer never hold the sender back.',
      'With BPF host routing the tc programs move the packet with bpf_redirect_peer and bpf_redirect_neigh, ' +
        'which never enter the node stack: the skb keeps its socket until the bottleneck sends it. The socket owns ' +
        'about what the queue holds, so TSQ and sk_sndbuf limit what is in flight: the sender feels the bottleneck.',
    ],
  },
  bigtcp: {
    id: 'bigtcp',
    title: 'BIG TCP: packets larger than an IP length field can say',
    topology: 'quickstart.yaml',
    check: 'bigtcp',
    control: 'the same flow with gso_max_size/gro_max_size at 65536',
    explain: [
      'A BPF program on the sending pod device counts every skb it sees, split at 65535 bytes. ' +
        'The bars show, per address family, how many skbs were longer than 64 KiB with BIG TCP on (sizes at 196608, ' +
        'as Cilium sets them) and off (65536), and the throughput of each flow.',
      'GSO builds one large skb per burst and the device (or software GSO) cuts it into MTU-sized packets later; ' +
        'an skb up to gso_max_size crosses the stack once instead of many times. The IPv4 tot_len and IPv6 ' +
        'payload_len fields are 16 bits, so above 65535 bytes the stack leaves them at 0 and takes the length from ' +
        'skb->len (iph_set_totlen in include/net/ip.h for IPv4). With the sizes at 65536 no skb is larger than that.',
    ],
  },
  netkit: {
    id: 'netkit',
    title: 'netkit: a pod device with the host program in its transmit path',
    topology: 'vm-quickstart.yaml',
    check: 'netkit-throughput',
    control: 'a veth pod beside it and the node itself, the same flow each',
    vmKernel: '6.12',
    explain: [
      'One bulk flow to the remote peer, three times: from a netkit pod, from a veth pod beside it, and from the node ' +
        'namespace. The bars are their throughputs. Under TCG (an emulated CPU) the numbers are measured but not ' +
        'judged: the check then ends as skip with the ratios in its metrics.',
      'With veth the pod packet is queued to the host-side peer (veth_xmit, drivers/net/veth.c) and received a ' +
        'second time there, softirq and tc ingress included, before a BPF program can redirect it. netkit runs the ' +
        'host-owned BPF program in the pod device transmit itself (netkit_xmit, drivers/net/netkit.c), so a redirect ' +
        'leaves for the uplink without that second receive: the pod gets close to what the node sends.',
    ],
  },
  services: {
    id: 'services',
    title: 'Services: backpressure to a ClusterIP, socket-LB vs kube-proxy',
    topology: 'services.yaml',
    check: 'svc-backpressure',
    control: "the same flow through kube-proxy's iptables DNAT (legacy host routing)",
    explain: [
      'A pod sends a bulk flow to a ClusterIP whose backend sits on the other node behind a 200 Mbit/s link. As in the ' +
        'backpressure demo, each plot follows the bytes the sending socket owns against the bottleneck backlog.',
      'Socket-LB translates the ClusterIP once, at connect(), in a cgroup BPF hook (Cilium bpf/bpf_sock.c): the ' +
        'socket talks to the backend address directly and BPF host routing forwards its packets without the node ' +
        "stack, so they stay owned by the socket. kube-proxy's DNAT lives in the node netfilter, so every packet has " +
        'to be received by the node stack (where ip_rcv_core orphans it) before it is forwarded: the backpressure is lost.',
    ],
  },
  bandwidth: {
    id: 'bandwidth',
    title: 'Bandwidth Manager: a pod held to its egress limit by departure times',
    topology: 'vm-bandwidth.yaml',
    check: 'bwm-rate',
    control: 'an unlimited pod on the same node, and several limits',
    vmKernel: '7.3',
    explain: [
      "Pod 'limited' carries an egress-bandwidth limit; pod 'free' has none. The bars show, for each limit, the " +
        'goodput the pod reached against the goodput the limit allows after headers, then both pods side by side.',
      'A BPF program on the uplink egress gives each packet of a limited pod a departure time: skb->tstamp is set ' +
        'to the later of now and the previous departure plus the packet length at the rate (Cilium bpf/lib/edt.h). ' +
        'The fq qdisc under it (net/sched/sch_fq.c) holds each packet until its time. The packets wait owned by ' +
        'their socket, so TCP small queues slow the sender to the rate instead of a queue dropping its packets.',
    ],
  },
};

/** What `lab demo X` says before a VM demo starts: it boots a VM under TCG, and how long that takes. */
export function vmNotice(d: Demo): string | undefined {
  if (!d.vmKernel) return undefined;
  return (
    `lab demo ${d.id} boots a QEMU VM with kernel ${d.vmKernel} (topologies/${d.topology}). Without KVM it runs under TCG, an ` +
    'emulated CPU: the guest answers its agent 5-15 s after QEMU starts, and boot, flows and teardown take about a ' +
    'minute in all (35-45 s measured on a 2-core machine). Throughput under TCG is measured but not judged.'
  );
}
