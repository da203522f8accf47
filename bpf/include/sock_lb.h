/* Map ABI of socket-LB (bpf/sock_lb.c), shared with src/datapath/kpr/maps.ts, which
 * writes the entries as hex: every multi-byte field there is little-endian (host order)
 * except those marked network order. */
#ifndef LAB_SOCK_LB_H
#define LAB_SOCK_LB_H

#include <linux/types.h>

/*
 * A service frontend and one of its backend slots. Slot 0 with rev 0 is the service
 * entry itself; slots 1..count of the service entry's rev hold its backends. A change of
 * backends writes the new slots under rev + 1, then replaces the service entry (one map
 * update, atomic for a reader), then deletes the old slots: a connect sees the old set or
 * the new one, never half of each. (Cilium keys lb4_key by backend_slot the same way,
 * bpf/lib/lb.h; the revision is this lab's.)
 */
struct svc_key {
	__u8 addr[16];		/* ClusterIP, network order; IPv4 in the first 4 bytes */
	__be16 port;		/* network order */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;		/* AF_INET or AF_INET6 */
	__u16 slot;
	__u16 rev;
};

struct svc_value {
	__u32 backend_id;	/* slots: the backend (backends map) */
	__u32 svc_id;		/* service entry: affinity key part */
	__u16 count;		/* service entry: backend slots; 0: no backends, connect fails */
	__u16 rev;		/* service entry: revision of the live slots */
	__u32 affinity_secs;	/* service entry: ClientIP affinity timeout; 0: none */
};

struct backend {
	__u8 addr[16];		/* network order; IPv4 in the first 4 bytes */
	__be16 port;		/* network order */
	__u8 family;
	__u8 pad;
};

/* Session affinity per client: Cilium's socket-LB identifies the client by its network
 * namespace cookie (lb4_affinity_backend_id_by_netns, bpf/lib/lb.h); a pod is a namespace. */
struct affinity_key {
	__u64 netns_cookie;
	__u32 svc_id;
	__u32 pad;
};

struct affinity_value {
	__u64 last_ns;		/* bpf_ktime_get_ns of the last pick */
	__u32 backend_id;
	__u32 pad;
};

/* Reverse translation, per socket: the backend a socket was sent to -> the frontend the
 * application asked for (Cilium's sock revnat map, bpf/bpf_sock.c sock4_update_revnat). */
struct revnat_key {
	__u64 cookie;		/* bpf_get_socket_cookie */
	__u8 addr[16];		/* backend, network order */
	__be16 port;
	__u8 family;
	__u8 pad;
	__u32 pad2;
};

struct revnat_value {
	__u8 addr[16];		/* frontend */
	__be16 port;
	__u8 family;
	__u8 pad;
};

/* Counters of what the programs did (per CPU, index below). */
enum sock_lb_counter {
	SLB_XLATE,		/* a connect/sendmsg translated to a backend */
	SLB_NO_BACKEND,		/* refused: the service has no backends */
	SLB_AFFINITY_HIT,	/* the client's previous backend reused */
	SLB_REVNAT,		/* a recvmsg/getpeername address put back to the frontend */
	SLB_SLOT_MISS,		/* a slot or backend missing (a change raced): not translated */
	SLB_MAX,
};

#endif /* LAB_SOCK_LB_H */
