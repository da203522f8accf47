/* DSR to pods, IPv4 (xl_decap writes, include/xl_decap.h; bpf/host_routing.c from_pod reads): the reply
 * tuple of a flow a backend node took out of IPIP and DNATed VIP:port -> pod:targetPort, and
 * the VIP:port its replies must leave from. Cilium keeps the same at the backend: handle_dsr_v4
 * (bpf/lib/nodeport.h) records a NAT entry with snat_v4_create_dsr and flags the CT entry dsr;
 * bpf_lxc.c, seeing a reply of a dsr CT entry, calls xlate_dsr_v4 (nodeport.h) to rewrite its
 * source. Both objects declare the map; the lab loads xl_decap.o with
 * `map name dsr_ct pinned <host routing's pin>` (src/datapath/xdp-lb/feature.ts deployDsrBackend),
 * so the two share one map. */
#ifndef LAB_DSR_CT_H
#define LAB_DSR_CT_H

#include <linux/types.h>

struct dsr_ct_key {
	__be32 pod;		/* the reply's source: the backend pod */
	__be32 client;		/* the reply's destination */
	__be16 pod_port;	/* the pod's target port */
	__be16 client_port;
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];
};

struct dsr_ct_value {
	__be32 vip;		/* the reply's new source */
	__be16 port;		/* the service port: the reply's new source port */
	__u16 pad;
};

/* LRU: entries of finished flows age out as new ones come (Cilium's CT maps are LRU too).
 * Kept small: host routing loads it on every node, and an LRU map is preallocated. */
#define DSR_CT_MAX 8192

#define DSR_CT_MAP                                                                           \
	struct {                                                                             \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                         \
		__uint(max_entries, DSR_CT_MAX);                                             \
		__type(key, struct dsr_ct_key);                                              \
		__type(value, struct dsr_ct_value);                                          \
	} dsr_ct SEC(".maps")

/* The same for IPv6 (xl_decap writes, host routing's route_v6 reads): its own map, so the IPv4
 * entries keep their size. */
struct dsr_ct6_key {
	__u8 pod[16];		/* the reply's source: the backend pod */
	__u8 client[16];	/* the reply's destination */
	__be16 pod_port;	/* the pod's target port */
	__be16 client_port;
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];
};

struct dsr_ct6_value {
	__u8 vip[16];		/* the reply's new source */
	__be16 port;		/* the service port: the reply's new source port */
	__u16 pad;
};

#define DSR_CT6_MAP                                                                          \
	struct {                                                                             \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                         \
		__uint(max_entries, DSR_CT_MAX);                                             \
		__type(key, struct dsr_ct6_key);                                             \
		__type(value, struct dsr_ct6_value);                                         \
	} dsr_ct6 SEC(".maps")

#endif /* LAB_DSR_CT_H */
