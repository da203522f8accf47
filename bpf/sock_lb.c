// SPDX-License-Identifier: GPL-2.0
/* Socket-LB (Cilium style kube-proxy replacement for pod traffic): cgroup sock_addr
 * programs rewrite a ClusterIP to a backend at connect()/sendmsg() time, so no packet
 * ever carries the ClusterIP and no netfilter rule or conntrack entry is involved; and
 * put the ClusterIP back where the application reads a peer address (recvmsg for UDP,
 * getpeername). Map layout: include/sock_lb.h. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sock_lb.h"
#include "svc_maps.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define EHOSTUNREACH 113

/* Return values of cgroup sock_addr programs: 1 lets the call go on, 0 refuses it
 * (with EPERM unless bpf_set_retval chose another errno). */
#define SYS_PROCEED 1
#define SYS_REJECT 0

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
} affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct revnat_key);
	__type(value, struct revnat_value);
} revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLB_MAX);
	__type(key, __u32);
	__type(value, __u64);
} slb_counters SEC(".maps");

static __always_inline void count(enum sock_lb_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&slb_counters, &key);

	if (v)
		*v += 1;
}

/* The destination (or, for recvmsg/getpeername, the peer) in ctx, in a family-free form. */
static __always_inline void addr_of(struct bpf_sock_addr *ctx, __u8 family, __u8 addr[16])
{
	__u32 *a = (__u32 *)addr;

	if (family == AF_INET) {
		a[0] = ctx->user_ip4;
		return;
	}
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
}

static __always_inline void set_addr(struct bpf_sock_addr *ctx, __u8 family, const __u8 addr[16], __be16 port)
{
	const __u32 *a = (const __u32 *)addr;

	if (family == AF_INET) {
		ctx->user_ip4 = a[0];
	} else {
		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	}
	/* user_port: 4-byte access, the port in network order in its low 16 bits
	 * (struct bpf_sock_addr, include/uapi/linux/bpf.h). */
	ctx->user_port = (__u32)port;
}

/* The client's backend for a service with affinity, if it still exists and was used recently. */
static __always_inline __u32 affinity_pick(struct bpf_sock_addr *ctx, const struct svc_value *svc, __u64 now)
{
	struct affinity_key k = { .netns_cookie = bpf_get_netns_cookie(ctx), .svc_id = svc->svc_id };
	struct affinity_value *v = bpf_map_lookup_elem(&affinity, &k);

	if (!v || now - v->last_ns > (__u64)svc->affinity_secs * 1000000000ULL)
		return 0;
	/* A removed backend is gone from the backends map: pick anew. */
	if (!bpf_map_lookup_elem(&backends, &v->backend_id))
		return 0;
	return v->backend_id;
}

static __always_inline void affinity_update(struct bpf_sock_addr *ctx, const struct svc_value *svc, __u32 id, __u64 now)
{
	struct affinity_key k = { .netns_cookie = bpf_get_netns_cookie(ctx), .svc_id = svc->svc_id };
	struct affinity_value v = { .last_ns = now, .backend_id = id };

	bpf_map_update_elem(&affinity, &k, &v, BPF_ANY);
}

/* A random backend slot of the service's live revision; 0 when the slot is missing. */
static __always_inline __u32 slot_pick(struct svc_key *key, const struct svc_value *svc)
{
	struct svc_value *slot;

	key->slot = (bpf_get_prandom_u32() % svc->count) + 1;
	key->rev = svc->rev;
	slot = bpf_map_lookup_elem(&services, key);
	return slot ? slot->backend_id : 0;
}

/*
 * Translate ctx's destination if it is a service frontend. Returns 0 (translated or not
 * a service) or -EHOSTUNREACH for a service without backends (Cilium's __sock4_xlate_fwd
 * returns the same, and its cil_sock4_connect hands it to bpf_set_retval).
 */
static __always_inline int xlate_fwd(struct bpf_sock_addr *ctx, __u8 family)
{
	struct svc_key key = {};
	struct svc_value *svc;
	struct backend *be;
	__u32 id = 0;
	__u64 now;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 0;
	addr_of(ctx, family, key.addr);
	key.port = (__be16)ctx->user_port;
	key.proto = ctx->protocol;
	key.family = family;
	svc = bpf_map_lookup_elem(&services, &key);
	if (!svc)
		return 0;
	if (svc->count == 0) {
		count(SLB_NO_BACKEND);
		return -EHOSTUNREACH;
	}
	now = bpf_ktime_get_ns();
	if (svc->affinity_secs) {
		id = affinity_pick(ctx, svc, now);
		if (id)
			count(SLB_AFFINITY_HIT);
	}
	if (!id)
		id = slot_pick(&key, svc);
	be = id ? bpf_map_lookup_elem(&backends, &id) : NULL;
	if (!be || be->family != family) {
		count(SLB_SLOT_MISS);
		return 0;
	}
	if (svc->affinity_secs)
		affinity_update(ctx, svc, id, now);

	struct revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx), .port = be->port, .family = family };
	struct revnat_value rv = { .port = key.port, .family = family };

	__builtin_memcpy(rk.addr, be->addr, 16);
	__builtin_memcpy(rv.addr, key.addr, 16);
	bpf_map_update_elem(&revnat, &rk, &rv, BPF_ANY);
	set_addr(ctx, family, be->addr, be->port);
	count(SLB_XLATE);
	return 0;
}

/* Put the frontend back where the application reads its peer (recvmsg, getpeername). */
static __always_inline void xlate_rev(struct bpf_sock_addr *ctx, __u8 family)
{
	struct revnat_key rk = { .cookie = bpf_get_socket_cookie(ctx), .port = (__be16)ctx->user_port, .family = family };
	struct revnat_value *rv;

	addr_of(ctx, family, rk.addr);
	rv = bpf_map_lookup_elem(&revnat, &rk);
	if (!rv)
		return;
	set_addr(ctx, family, rv->addr, rv->port);
	count(SLB_REVNAT);
}

static __always_inline int fwd(struct bpf_sock_addr *ctx, __u8 family)
{
	int err = xlate_fwd(ctx, family);

	if (err) {
		/* bpf_set_retval (5.18) makes the syscall fail with this errno instead of EPERM. */
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, AF_INET);
}

SEC("cgroup/connect6")
int sock6_connect(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, AF_INET6);
}

SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, AF_INET);
}

SEC("cgroup/sendmsg6")
int sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	return fwd(ctx, AF_INET6);
}

/* recvmsg and getpeername programs must return 1 (the verifier allows nothing else). */
SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	xlate_rev(ctx, AF_INET);
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg6")
int sock6_recvmsg(struct bpf_sock_addr *ctx)
{
	xlate_rev(ctx, AF_INET6);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock4_getpeername(struct bpf_sock_addr *ctx)
{
	xlate_rev(ctx, AF_INET);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername6")
int sock6_getpeername(struct bpf_sock_addr *ctx)
{
	xlate_rev(ctx, AF_INET6);
	return SYS_PROCEED;
}

char _license[] SEC("license") = "GPL";
