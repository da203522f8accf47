/* Map ABI of tc NodePort (bpf/nodeport.c), shared with src/datapath/kpr/nodeport.ts (hex,
 * multi-byte fields little-endian unless marked network order). The service and backend
 * maps are socket-LB's (include/sock_lb.h), shared by pin: a `lab svc` change of a
 * service's backends reaches NodePort through the same revision flip. IPv4 only. */
#ifndef LAB_NODEPORT_H
#define LAB_NODEPORT_H

#include <linux/types.h>

/* A NodePort frontend: this node's address, the nodePort, the protocol. */
struct np_key {
	__be32 addr;		/* network order */
	__be16 port;		/* network order */
	__u8 proto;
	__u8 pad;
};

/* The service port behind it: its ClusterIP entry in socket-LB's services map. */
struct np_value {
	__be32 vip;		/* network order */
	__be16 vport;		/* network order */
	__u16 pad;
};

/* Conntrack, both directions of a connection (Cilium keeps one ct entry per direction
 * too, bpf/lib/conntrack.h): the tuple a packet arrives with -> the tuple it leaves with. */
struct np_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;		/* NP_DIR_* */
	__u16 pad;
};

enum np_dir {
	NP_DIR_FWD,		/* client -> node:nodePort, rewritten to the backend */
	NP_DIR_REV,		/* backend -> client (or -> node's SNAT port), rewritten to node:nodePort -> client */
};

struct np_ct_value {
	__be32 saddr;		/* the packet's new tuple */
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 ifindex;		/* redirect (bpf_redirect_neigh) out of this device; 0: go on */
	__u32 svc_id;		/* the service entry's svc_id (counters) */
	__u32 remote;		/* the backend is on another node (SNAT) */
};

/* Packets per service (svc_id), per CPU. */
struct np_svc_count {
	__u64 fwd;		/* client -> backend */
	__u64 rev;		/* backend -> client */
	__u64 local;		/* new connections to a backend on this node */
	__u64 remote;		/* new connections to a backend on another node (SNAT) */
};

/* Counters of what the programs did (per CPU, index below). */
enum np_counter {
	NP_NEW,			/* a new connection translated */
	NP_CT_HIT,		/* a packet of a known connection translated */
	NP_NO_BACKEND,		/* a NodePort of a service without backends: dropped */
	NP_SLOT_MISS,		/* a slot or backend missing (a change raced): dropped */
	NP_SNAT_FULL,		/* no free SNAT port: dropped */
	NP_FIB_MISS,		/* no route to the remote backend: dropped */
	NP_MAX,
};

#endif /* LAB_NODEPORT_H */
