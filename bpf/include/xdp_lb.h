/* Map ABI of the XDP load balancer (bpf/xdp_lb.c), shared with bpf/user/xlctl.c and
 * src/datapath/xdp-lb/ (hex, multi-byte fields little-endian unless marked network order).
 * Addresses are 16 bytes; IPv4 uses the first 4. */
#ifndef LAB_XDP_LB_H
#define LAB_XDP_LB_H

#include <linux/types.h>

/* The largest Maglev table size Cilium accepts (pkg/maglev/maglev.go
 * maglevSupportedTableSizes). Every inner table has room for it; a service's own size M
 * is in its xl_vip entry, so one object serves every M (Cilium compiles M in instead:
 * LB_MAGLEV_LUT_SIZE, pkg/datapath/linux/config/config.go). */
#define XL_LUT_MAX 131071

/* Cilium's default jhash seeds: bytes 4-7 and 8-11 (big-endian) of the base64 seed
 * "JLfvgnHc2kaSUFaI" (pkg/maglev/maglev.go DefaultHashSeed), compiled into its BPF
 * objects as HASH_INIT4_SEED / HASH_INIT6_SEED (pkg/datapath/linux/config/config.go). */
#define XL_HASH_SEED4 0x71dcda46U
#define XL_HASH_SEED6 0x92505688U

enum xl_mode {
	XL_MODE_DSR = 1,	/* IPIP (IPv6-in-IPv6) to the backend's node, which answers the client */
	XL_MODE_SNAT = 2,	/* DNAT to the backend and SNAT to this node; replies reversed here */
};

/* A frontend (family, proto, port, addr); proto 0 and port 0: the address itself is a
 * VIP (later fragments carry no ports and are matched by address alone). */
struct xl_vip_key {
	__u8 family;		/* AF_INET or AF_INET6 */
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP, or 0 for the address entry */
	__be16 port;		/* network order */
	__u8 addr[16];
};

struct xl_vip {
	__u32 svc;		/* service id: key of xl_maglev and xl_vip_stats */
	__u32 lut_size;		/* this service's Maglev table size M (prime, <= XL_LUT_MAX) */
	__u8 mode;		/* enum xl_mode */
	__u8 pass;		/* 1: XDP_PASS this VIP untouched (the in-XDP check's control) */
	__u16 pad;
};

/* A backend by id (the kube-proxy replacement's backend ids, src/datapath/kpr/plan.ts). */
struct xl_backend {
	__u8 family;
	__u8 pad;
	__be16 port;		/* target port, network order (SNAT rewrites to it) */
	__u8 addr[16];		/* the pod's address (SNAT destination) */
	__u8 node[16];		/* the backend's node address: the IPIP outer destination (DSR) */
};

/* This node's own addresses: outer source of the IPIP header, SNAT source; on a backend's
 * node, the outer destination xl_decap accepts. */
struct xl_cfg {
	__u8 addr4[4];
	__u8 addr6[16];
};

struct xl_count {
	__u64 packets;
	__u64 bytes;		/* whole frames as XDP saw them, Ethernet header included */
};

/* SNAT conntrack, one entry per direction: the tuple a packet arrives with -> the one it
 * leaves with (as Cilium keeps one ct entry per direction, bpf/lib/conntrack.h). */
struct xl_ct_key {
	__u8 family;
	__u8 proto;
	__u8 dir;		/* 0 client->VIP, 1 backend->LB */
	__u8 pad;
	__be16 sport;
	__be16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct xl_ct_value {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u32 svc;
	__u32 backend;
};

/* DSR to a pod, on the pod's node: the IPIP (IPv6-in-IPv6) outer destination is the pod itself
 * (as Cilium's dsr_set_ipip4/6 write the backend address), the inner one the VIP; this entry
 * says the pod serves that VIP:port/proto and on which port. IPv4 addresses fill the first 4
 * bytes, the rest zero. */
struct xl_dsr_key {
	__u8 family;		/* AF_INET or AF_INET6 */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__be16 port;		/* service port, network order */
	__u8 vip[16];
	__u8 pod[16];
};

struct xl_dsr_target {
	__be16 port;		/* the pod's target port, network order */
	__u16 pad;
};

/* What the program did, per CPU. */
enum xl_counter {
	XL_PASS_NOT_IP,		/* not IPv4/IPv6 */
	XL_PASS_NOT_VIP,	/* no frontend for (daddr, dport, proto) */
	XL_PASS_TRUNC,		/* a header ended past the frame, or lengths disagree */
	XL_PASS_L4,		/* not TCP/UDP/ICMP error for a VIP (echo, other protocols) */
	XL_PASS_EXTHDR,		/* more than XL_MAX_EXTHDR IPv6 extension headers, or ESP */
	XL_PASS_CONTROL,	/* a VIP marked pass (xl_vip.pass) */
	XL_FRAG_FIRST,		/* first fragment of a VIP datagram: balanced */
	XL_DROP_FRAG,		/* later fragment to a VIP address: dropped */
	XL_DROP_NO_BACKEND,	/* no table, empty cell or unknown backend */
	XL_DROP_TOO_BIG,	/* the encapsulated frame exceeds the next hop's MTU */
	XL_DROP_ERR,		/* adjust_head failed, or no own address configured */
	XL_ICMP_ERR,		/* an ICMP error about a VIP flow, steered to that flow's backend */
	XL_TX,			/* sent back out of the receiving device */
	XL_REDIRECT,		/* sent out of another device */
	XL_DROP_FIB,		/* no route or no neighbour entry for the next hop */
	XL_SNAT_NEW,		/* new SNAT connections */
	XL_SNAT_REV,		/* replies translated back (tc program) */
	XL_DROP_SNAT_PORT,	/* no free SNAT port */
	XL_DECAP,		/* DSR packets decapsulated at a backend's node (tc program) */
	XL_DSR_POD,		/* DSR packets decapsulated and DNATed to a local pod (tc program) */
	XL_DROP_DSR,		/* DSR to a local pod: no room in dsr_ct, or a checksum helper failed */
	XL_MAX,
};

/* Cilium bpf/lib/ipv6.h IPV6_MAX_HEADERS. */
#define XL_MAX_EXTHDR 4

#endif /* LAB_XDP_LB_H */
