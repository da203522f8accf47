/* The ABI between bpf/host_routing.c and the lab's TypeScript: map keys, values and
 * counter indexes. Userspace writes these bytes with `bpftool map update ... hex`
 * (src/datapath/host-routing/endpoints.ts) and reads the counters with `bpftool -j
 * map dump` (src/measure/datapath-counters.ts): change both sides together. */
#ifndef LAB_HOST_ROUTING_H
#define LAB_HOST_ROUTING_H

#include <linux/types.h>

/* Key of the endpoints map: 20 bytes, no implicit padding. */
struct ep_key {
	__u8 family;		/* 4 or 6 */
	__u8 pad[3];		/* zero */
	__u8 addr[16];		/* network order; IPv4 in the first 4 bytes, rest zero */
};

/* The endpoint has no L2 addresses: a netkit pair in L3 mode keeps the all-zero
 * dev_addr it was created with (drivers/net/netkit.c: netkit_new_link() assigns a
 * random MAC only in NETKIT_L2 mode), so there is nothing to write. */
#define EP_F_NO_L2	(1U << 0)

/* Value of the endpoints map: 20 bytes, every field at its natural alignment (no
 * implicit padding), integers in host byte order. Modelled on Cilium's
 * struct endpoint_info (bpf/lib/eps.h), which carries mac and node_mac for the same
 * rewrite before delivery. */
struct ep_info {
	__u32 ifindex;		/* host-side (node namespace) device of a local pod */
	__u32 flags;		/* EP_F_* */
	__u8 mac[6];		/* the pod's own device (eth0): destination MAC on delivery */
	__u8 node_mac[6];	/* the host-side device (lxc-*): source MAC on delivery */
};

/* Indexes of the per-CPU counters map, one __u64 each. */
enum dpl_counter {
	CNT_REDIRECT_PEER = 0,	/* into a local pod with bpf_redirect_peer (tc ingress) */
	CNT_REDIRECT_LOCAL,	/* into a local pod with bpf_redirect (from a netkit hook) */
	CNT_REDIRECT_FIB,	/* FIB lookup resolved the neighbour: MACs written, bpf_redirect */
	CNT_REDIRECT_NEIGH,	/* FIB route without neighbour: bpf_redirect_neigh */
	CNT_TO_STACK,		/* left to the node's IP stack */
	CNT_DROP_SPOOF,		/* a pod sent with a source address that is not its own */
	CNT_DROP_CSUM,		/* a checksum helper failed */
	CNT_DROP_INVALID,	/* too short for the IP header it claims, or for a MAC rewrite */
	CNT_MAX,
};

#endif /* LAB_HOST_ROUTING_H */
