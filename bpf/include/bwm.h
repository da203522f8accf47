/* The ABI between bpf/bwm_edt.c and the lab's TypeScript (src/datapath/bwm/maps.ts):
 * map keys, values and counter indexes, written with `bpftool map update ... hex` and
 * read with `bpftool -j map dump`. Change both sides together. */
#ifndef LAB_BWM_H
#define LAB_BWM_H

#include <linux/types.h>

/* Key of edt_pods: a pod's address, the same 20 bytes as host routing's struct ep_key
 * (family 4 or 6, three zero bytes, the address in network order, IPv4 in the first 4). */
struct edt_addr {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* Value of edt_pods, key of edt_rates: the pod's aggregate id (1, 2, ... per node). All
 * addresses of one pod share one id, so IPv4 and IPv6 share one rate and one clock. */
struct edt_id {
	__u32 id;
};

/* Value of edt_rates: 24 bytes, host byte order. Modelled on Cilium's struct edt_info
 * (bpf/lib/edt.h, pkg/maps/bwmap), which also keeps the rate in bytes per second. */
struct edt_rate {
	__u64 bytes_per_sec;	/* the pod's egress rate / 8; 0 = not limited */
	__u64 t_last;		/* departure time given to the pod's last packet, ns (CLOCK_MONOTONIC) */
	__u64 t_horizon_drop;	/* a packet that would depart later than now + this is dropped, ns */
};

/* Indexes of the per-CPU edt_counters map, one __u64 each. */
enum edt_counter {
	EDT_STAMPED = 0,	/* a limited pod's packet given a departure time */
	EDT_DROP_HORIZON,	/* dropped: its departure lay beyond the horizon */
	EDT_UNLIMITED,		/* IP packet of no limited pod: passed untouched */
	EDT_CNT_MAX,
};

#endif /* LAB_BWM_H */
