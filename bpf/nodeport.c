// SPDX-License-Identifier: GPL-2.0
/* tc NodePort (IPv4): a connection from outside to this node's address:nodePort is
 * translated at the uplink's tc ingress to a backend of the service, picked like
 * socket-LB picks (its services and backends maps, shared by pin). A backend on this node
 * gets the packet with only the destination rewritten (DNAT); a backend on another node
 * also gets this node's address and a port as its source (SNAT) and the packet is
 * redirected (bpf_redirect_neigh) towards it, so its replies come back here. A conntrack
 * map (LRU hash, one entry per direction) keeps a connection on its backend and turns the
 * replies back into node:nodePort -> client: on the uplink's egress (local backend) and on
 * the links' ingress (remote backend, redirected out of the uplink). Cilium does this in
 * bpf/bpf_host.c and bpf/lib/nodeport.h; this is the lab's own, smaller version.
 * Map layout: include/nodeport.h. */
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"
#include "sock_lb.h"
#include "nodeport.h"
#include "svc_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct np_key);
	__type(value, struct np_value);
} np_frontends SEC(".maps");

/* This node's pod addresses: a backend found here needs no SNAT. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32);
	__type(value, __u32);
} np_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct np_ct_key);
	__type(value, struct np_ct_value);
} np_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct np_svc_count);
} np_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} np_counters SEC(".maps");

/* Source ports for SNAT when the client's own is taken: the kernel's default
 * ip_local_port_range (net/ipv4/af_inet.c inet_init_net). */
#define SNAT_PORT_MIN 32768
#define SNAT_PORT_SPAN 28232
#define SNAT_TRIES 8

struct tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u32 l4off;
};

static __always_inline void count(enum np_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&np_counters, &key);

	if (v)
		*v += 1;
}

static __always_inline struct np_svc_count *svc_count(__u32 id)
{
	struct np_svc_count *c = bpf_map_lookup_elem(&np_svc, &id);

	if (c)
		return c;
	struct np_svc_count zero = {};

	bpf_map_update_elem(&np_svc, &id, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&np_svc, &id);
}

/* An unfragmented (or first fragment) IPv4 TCP or UDP packet's tuple; -1 for anything else. */
static __always_inline int parse(struct __sk_buff *skb, struct tuple *t)
{
	struct ethhdr *eth = hdr_ptr(skb, 0, ETH_HLEN);
	struct iphdr *ip;
	__be16 *ports;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));
	if (!ip || ip->ihl < 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return -1;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return -1;
	t->l4off = ETH_HLEN + ip->ihl * 4;
	t->saddr = ip->saddr;
	t->daddr = ip->daddr;
	t->proto = ip->protocol;
	ports = hdr_ptr(skb, t->l4off, 4);
	if (!ports)
		return -1;
	t->sport = ports[0];
	t->dport = ports[1];
	return 0;
}

/* Rewrite the packet's tuple to ct's, fixing the IP and TCP/UDP checksums. */
static __always_inline int rewrite(struct __sk_buff *skb, const struct tuple *t, const struct np_ct_value *ct)
{
	__u32 csum = t->l4off + (t->proto == IPPROTO_TCP ? __builtin_offsetof(struct tcphdr, check)
							 : __builtin_offsetof(struct udphdr, check));
	/* A UDP checksum of 0 means none: leave it (BPF_F_MARK_MANGLED_0). */
	__u64 mz = t->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be32 saddr = ct->saddr, daddr = ct->daddr;
	__be16 sport = ct->sport, dport = ct->dport;

	if (saddr != t->saddr) {
		if (bpf_l4_csum_replace(skb, csum, t->saddr, saddr, BPF_F_PSEUDO_HDR | mz | 4) ||
		    bpf_l3_csum_replace(skb, IP_CSUM_OFF, t->saddr, saddr, 4) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, saddr), &saddr, 4, 0))
			return -1;
	}
	if (daddr != t->daddr) {
		if (bpf_l4_csum_replace(skb, csum, t->daddr, daddr, BPF_F_PSEUDO_HDR | mz | 4) ||
		    bpf_l3_csum_replace(skb, IP_CSUM_OFF, t->daddr, daddr, 4) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, daddr), &daddr, 4, 0))
			return -1;
	}
	if (sport != t->sport) {
		if (bpf_l4_csum_replace(skb, csum, t->sport, sport, mz | 2) || bpf_skb_store_bytes(skb, t->l4off, &sport, 2, 0))
			return -1;
	}
	if (dport != t->dport) {
		if (bpf_l4_csum_replace(skb, csum, t->dport, dport, mz | 2) || bpf_skb_store_bytes(skb, t->l4off + 2, &dport, 2, 0))
			return -1;
	}
	return 0;
}

/* Translate by a conntrack entry; redirect where it says, else let the packet go on. */
static __always_inline int apply(struct __sk_buff *skb, const struct tuple *t, const struct np_ct_value *ct, enum np_dir dir)
{
	struct np_svc_count *c;
	__u32 ifindex = ct->ifindex;

	if (rewrite(skb, t, ct))
		return TCX_DROP;
	c = svc_count(ct->svc_id);
	if (c) {
		if (dir == NP_DIR_FWD)
			c->fwd += 1;
		else
			c->rev += 1;
	}
	if (ifindex)
		return bpf_redirect_neigh(ifindex, NULL, 0, 0);
	return TCX_NEXT;
}

/* The device the kernel would forward to for a backend on another node; 0 when no route. */
static __always_inline __u32 route_to(struct __sk_buff *skb, __be32 src, __be32 dst, __u8 proto)
{
	struct bpf_fib_lookup p = {
		.family = AF_INET,
		.l4_protocol = proto,
		.ipv4_src = src,
		.ipv4_dst = dst,
		.ifindex = skb->ifindex,
	};
	long r = bpf_fib_lookup(skb, &p, sizeof(p), 0);

	/* NO_NEIGH still names the device; bpf_redirect_neigh resolves the neighbour. */
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	return p.ifindex;
}

/* A new connection to a NodePort: pick a backend slot, write both conntrack entries, translate. */
static __always_inline int new_conn(struct __sk_buff *skb, const struct tuple *t, const struct np_value *fe)
{
	struct svc_key key = { .port = fe->vport, .proto = t->proto, .family = AF_INET };
	struct svc_value *svc, *slot;
	struct np_svc_count *c;
	struct backend *be;
	__u32 id;

	__builtin_memcpy(key.addr, &fe->vip, 4);
	svc = bpf_map_lookup_elem(&services, &key);
	if (!svc || svc->count == 0) {
		count(NP_NO_BACKEND);
		return TCX_DROP;
	}
	id = svc->svc_id;
	key.slot = (bpf_get_prandom_u32() % svc->count) + 1;
	key.rev = svc->rev;
	slot = bpf_map_lookup_elem(&services, &key);
	be = slot ? bpf_map_lookup_elem(&backends, &slot->backend_id) : NULL;
	if (!be || be->family != AF_INET) {
		count(NP_SLOT_MISS);
		return TCX_DROP;
	}

	struct np_ct_value fwd = { .saddr = t->saddr, .sport = t->sport, .dport = be->port, .svc_id = id };
	struct np_ct_value rev = { .saddr = t->daddr, .daddr = t->saddr, .sport = t->dport, .dport = t->sport, .svc_id = id };
	struct np_ct_key fk = { .saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto };
	struct np_ct_key rk = { .sport = be->port, .daddr = t->saddr, .dport = t->sport, .proto = t->proto, .dir = NP_DIR_REV };

	__builtin_memcpy(&fwd.daddr, be->addr, 4);
	rk.saddr = fwd.daddr;
	if (bpf_map_lookup_elem(&np_local, &fwd.daddr)) {
		bpf_map_update_elem(&np_ct, &rk, &rev, BPF_ANY);
	} else {
		int ok = 0;

		fwd.remote = rev.remote = 1;
		fwd.saddr = t->daddr;
		fwd.ifindex = route_to(skb, t->daddr, fwd.daddr, t->proto);
		if (!fwd.ifindex) {
			count(NP_FIB_MISS);
			return TCX_DROP;
		}
		rev.ifindex = skb->ifindex;
		rk.daddr = t->daddr;
		/* The client's port as the SNAT port, unless another connection to this backend holds it. */
		for (int i = 0; i < SNAT_TRIES; i++) {
			rk.dport = i ? bpf_htons(SNAT_PORT_MIN + bpf_get_prandom_u32() % SNAT_PORT_SPAN) : t->sport;
			if (!bpf_map_update_elem(&np_ct, &rk, &rev, BPF_NOEXIST)) {
				ok = 1;
				break;
			}
		}
		if (!ok) {
			count(NP_SNAT_FULL);
			return TCX_DROP;
		}
		fwd.sport = rk.dport;
	}
	bpf_map_update_elem(&np_ct, &fk, &fwd, BPF_ANY);
	count(NP_NEW);
	c = svc_count(id);
	if (c) {
		if (fwd.remote)
			c->remote += 1;
		else
			c->local += 1;
	}
	return apply(skb, t, &fwd, NP_DIR_FWD);
}

/* The uplink's ingress: packets from outside to a NodePort, and the rest of their connections. */
SEC_INGRESS
int nodeport_in(struct __sk_buff *skb)
{
	struct tuple t = {};
	struct np_ct_value *ct;
	struct np_value *fe;

	if (parse(skb, &t))
		return TCX_NEXT;
	struct np_ct_key k = { .saddr = t.saddr, .daddr = t.daddr, .sport = t.sport, .dport = t.dport, .proto = t.proto };

	ct = bpf_map_lookup_elem(&np_ct, &k);
	if (ct) {
		struct np_ct_value v = *ct;

		count(NP_CT_HIT);
		return apply(skb, &t, &v, NP_DIR_FWD);
	}
	struct np_key nk = { .addr = t.daddr, .port = t.dport, .proto = t.proto };

	fe = bpf_map_lookup_elem(&np_frontends, &nk);
	if (!fe)
		return TCX_NEXT;
	struct np_value f = *fe;

	return new_conn(skb, &t, &f);
}

/* Replies: backend -> client (or -> this node's SNAT port) back to node:nodePort -> client. */
static __always_inline int reply(struct __sk_buff *skb)
{
	struct tuple t = {};
	struct np_ct_value *ct;

	if (parse(skb, &t))
		return TCX_NEXT;
	struct np_ct_key k = {
		.saddr = t.saddr, .daddr = t.daddr, .sport = t.sport, .dport = t.dport, .proto = t.proto, .dir = NP_DIR_REV,
	};

	ct = bpf_map_lookup_elem(&np_ct, &k);
	if (!ct)
		return TCX_NEXT;
	struct np_ct_value v = *ct;

	count(NP_CT_HIT);
	return apply(skb, &t, &v, NP_DIR_REV);
}

/* The uplink's egress: replies of a backend on this node. */
SEC_EGRESS
int nodeport_out(struct __sk_buff *skb)
{
	return reply(skb);
}

/* The links' ingress: replies of a backend on another node, to this node's SNAT address. */
SEC_INGRESS
int nodeport_rev(struct __sk_buff *skb)
{
	return reply(skb);
}

char _license[] SEC("license") = "GPL";
