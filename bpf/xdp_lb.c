// SPDX-License-Identifier: GPL-2.0
/* XDP L4 load balancer on an LB node's uplink (Cilium: bpf/bpf_xdp.c -> nodeport_lb4/6 in
 * bpf/lib/nodeport.h; Katran: katran/lib/bpf/balancer_kern.c). A TCP/UDP packet to a
 * frontend (VIP, port, proto) gets a backend from the service's Maglev table, cell
 * jhash(client, ports, proto) mod M as Cilium's lb4/6_select_backend_id_maglev
 * (bpf/lib/lb.h, hash from bpf/lib/hash.h), and leaves in XDP:
 *  - dsr: IPIP (IPv6-in-IPv6) to the backend (a pod: its own address), inner packet untouched
 *    (Cilium dsr_set_ipip4); the backend's node decapsulates (xl_decap) and the backend answers
 *    the client itself, from the VIP;
 *  - snat: DNAT to the backend, SNAT to this node's address, a conntrack entry per
 *    direction; replies are translated back by xl_snat_rev (tc ingress of the links).
 * Next hop by bpf_fib_lookup; XDP_TX when out of the receiving device, else bpf_redirect
 * (Cilium bpf/include/bpf/ctx/xdp.h ctx_redirect). Anything else passes untouched.
 * Fragments: the first fragment of a VIP datagram carries the ports and is balanced;
 * later ones are counted and dropped (they carry no ports; Cilium keeps a fragment map
 * for them, Katran drops all fragments). Map ABI: include/xdp_lb.h. */
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"
#include "xdp_lb.h"
#include "xl_base.h"

/* ICMP and ICMPv6 error types (uapi linux/icmp.h and linux/icmpv6.h, which pull in libc
 * headers under -target bpf). */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3

struct xl_lut {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, 4 * XL_LUT_MAX);
};

/* Service id -> a one-entry array holding the whole table: a fresh inner map replaces
 * the old one in one update (Cilium LB4_MAGLEV_MAP_OUTER, pkg/loadbalancer/maps). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, struct xl_lut);
} xl_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct xl_vip_key);
	__type(value, struct xl_vip);
} xl_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct xl_backend);
} xl_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct xl_ct_key);
	__type(value, struct xl_ct_value);
} xl_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct xl_count);
} xl_vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct xl_count);
} xl_be_stats SEC(".maps");

/* What parsing found: the flow as the client sent it (for an ICMP error, the embedded
 * packet's flow turned around). */
struct flow {
	__u8 family;
	__u8 proto;
	__u8 first_frag;
	__u8 icmp_err;
	__u8 tos;
	__u8 df;
	__be16 sport;		/* client port */
	__be16 dport;		/* service port */
	__u16 l3len;		/* the IP packet's length, header included */
	__u32 l4off;
	__u8 saddr[16];		/* client */
	__u8 daddr[16];		/* VIP */
};

static __always_inline void add_stats(void *map, __u32 id, __u64 bytes)
{
	struct xl_count *c = bpf_map_lookup_elem(map, &id);

	if (!c) {
		struct xl_count zero = {};

		bpf_map_update_elem(map, &id, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(map, &id);
		if (!c)
			return;
	}
	c->packets += 1;
	c->bytes += bytes;
}

/* Bounds-checked pointer into the frame. The verifier gives a variable-offset packet pointer
 * a range only while its maximum offset stays within MAX_PACKET_OFF (0xffff,
 * kernel/bpf/verifier.c find_good_pkt_pointers); an XDP frame fits in a page anyway. */
static __always_inline void *xptr(struct xdp_md *ctx, __u32 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	void *p;

	if (off > 0x3fff)
		return NULL;
	p = data + off;
	if (p + len > end)
		return NULL;
	return p;
}

/* kernel include/linux/jhash.h (= Cilium bpf/lib/jhash.h). */
#define JHASH_INITVAL 0xdeadbeef
static __always_inline __u32 rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}
#define jhash_mix(a, b, c)                                                                   \
	{                                                                                    \
		a -= c; a ^= rol32(c, 4); c += b;                                            \
		b -= a; b ^= rol32(a, 6); a += c;                                            \
		c -= b; c ^= rol32(b, 8); b += a;                                            \
		a -= c; a ^= rol32(c, 16); c += b;                                           \
		b -= a; b ^= rol32(a, 19); a += c;                                           \
		c -= b; c ^= rol32(b, 4); b += a;                                            \
	}
#define jhash_final(a, b, c)                                                                 \
	{                                                                                    \
		c ^= b; c -= rol32(b, 14);                                                   \
		a ^= c; a -= rol32(c, 11);                                                   \
		b ^= a; b -= rol32(a, 25);                                                   \
		c ^= b; c -= rol32(b, 16);                                                   \
		a ^= c; a -= rol32(c, 4);                                                    \
		b ^= a; b -= rol32(a, 14);                                                   \
		c ^= b; c -= rol32(b, 24);                                                   \
	}

/* Cilium bpf/lib/hash.h hash_from_tuple_v4/v6: words are raw (network order) loads; the
 * VIP is left out on purpose, so a client picks the same backend across VIPs. */
static __always_inline __u32 flow_hash(const struct flow *f)
{
	__u32 w[4], a, b, c, ports = ((__u32)f->dport << 16) | f->sport;

	__builtin_memcpy(w, f->saddr, 16);
	if (f->family == AF_INET) {
		a = w[0] + JHASH_INITVAL + 12 + XL_HASH_SEED4;
		b = ports + JHASH_INITVAL + 12 + XL_HASH_SEED4;
		c = f->proto + JHASH_INITVAL + 12 + XL_HASH_SEED4;
		jhash_final(a, b, c);
		return c;
	}
	a = w[0];
	b = w[1];
	c = w[2];
	jhash_mix(a, b, c);
	a += w[3];
	b += ports;
	c += f->proto;
	jhash_mix(a, b, c);
	a += XL_HASH_SEED6;
	jhash_final(a, b, c);
	return c;
}

static __always_inline int parse_ports(struct xdp_md *ctx, struct flow *f)
{
	__be16 *p = xptr(ctx, f->l4off, 4);

	if (!p)
		return -1;
	f->sport = p[0];
	f->dport = p[1];
	return 0;
}

/* ICMP destination unreachable / time exceeded (ICMPv6: unreachable, packet too big, time
 * exceeded) about a packet the VIP sent: the flow is the embedded one turned around
 * (kernel tools/testing/selftests/bpf/progs/test_xdp_noinline.c parse_icmp; like it, an
 * embedded IPv4 header must have no options). 0: a VIP flow to steer, -1 pass. */
static __always_inline int parse_icmp_err(struct xdp_md *ctx, struct flow *f)
{
	__u32 off = f->l4off + 8;
	__u8 type;
	__u8 *t = xptr(ctx, f->l4off, 8);

	if (!t)
		return -1;
	type = t[0];
	if (f->family == AF_INET) {
		struct iphdr *in;

		if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED)
			return -1;
		in = xptr(ctx, off, sizeof(*in) + 4);
		if (!in || in->version != 4 || in->ihl != 5)
			return -1;
		if (__builtin_memcmp(&in->saddr, f->daddr, 4))
			return -1;
		f->proto = in->protocol;
		__builtin_memcpy(f->saddr, &in->daddr, 4);
		off += sizeof(*in);
	} else {
		struct ipv6hdr *in;

		if (type != ICMPV6_DEST_UNREACH && type != ICMPV6_PKT_TOOBIG && type != ICMPV6_TIME_EXCEED)
			return -1;
		in = xptr(ctx, off, sizeof(*in) + 4);
		if (!in || in->version != 6)
			return -1;
		if (__builtin_memcmp(&in->saddr, f->daddr, 16))
			return -1;
		f->proto = in->nexthdr;
		__builtin_memcpy(f->saddr, &in->daddr, 16);
		off += sizeof(*in);
	}
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return -1;
	__be16 *p = xptr(ctx, off, 4);

	if (!p)
		return -1;
	/* Embedded VIP:port -> client:port; the client's flow is the reverse. */
	f->dport = p[0];
	f->sport = p[1];
	f->icmp_err = 1;
	return 0;
}

static __always_inline int vip_addr_known(const struct flow *f)
{
	struct xl_vip_key k = { .family = f->family };

	__builtin_memcpy(k.addr, f->daddr, 16);
	return bpf_map_lookup_elem(&xl_vips, &k) != NULL;
}

enum { P_OK, P_PASS_TRUNC, P_PASS_NOT_IP, P_PASS_L4, P_PASS_EXTHDR, P_PASS_NOT_VIP, P_DROP_FRAG };

static __always_inline int parse4(struct xdp_md *ctx, struct flow *f)
{
	struct iphdr *ip = xptr(ctx, ETH_HLEN, sizeof(*ip));
	__u32 hl, tot, len = ctx->data_end - ctx->data;
	__u16 fo;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return P_PASS_TRUNC;
	hl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hl || ETH_HLEN + tot > len || !xptr(ctx, ETH_HLEN, hl))
		return P_PASS_TRUNC;
	f->family = AF_INET;
	f->proto = ip->protocol;
	f->tos = ip->tos;
	f->l3len = tot;
	f->l4off = ETH_HLEN + hl;
	__builtin_memcpy(f->saddr, &ip->saddr, 4);
	__builtin_memcpy(f->daddr, &ip->daddr, 4);
	fo = bpf_ntohs(ip->frag_off);
	f->df = !!(fo & 0x4000);
	if (fo & 0x1fff)
		return vip_addr_known(f) ? P_DROP_FRAG : P_PASS_NOT_VIP;
	f->first_frag = !!(fo & 0x2000);
	if (f->proto == IPPROTO_ICMP)
		return parse_icmp_err(ctx, f) ? P_PASS_L4 : P_OK;
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return P_PASS_L4;
	return parse_ports(ctx, f) ? P_PASS_TRUNC : P_OK;
}

static __always_inline int parse6(struct xdp_md *ctx, struct flow *f)
{
	struct ipv6hdr *ip = xptr(ctx, ETH_HLEN, sizeof(*ip));
	__u32 off = ETH_HLEN + sizeof(*ip), len = ctx->data_end - ctx->data, plen;
	__u8 nh;

	if (!ip || ip->version != 6)
		return P_PASS_TRUNC;
	plen = bpf_ntohs(ip->payload_len);
	if (ETH_HLEN + sizeof(*ip) + plen > len)
		return P_PASS_TRUNC;
	f->family = AF_INET6;
	f->l3len = sizeof(*ip) + plen;
	f->tos = (ip->priority << 4) | (ip->flow_lbl[0] >> 4);
	__builtin_memcpy(f->saddr, &ip->saddr, 16);
	__builtin_memcpy(f->daddr, &ip->daddr, 16);
	nh = ip->nexthdr;
#pragma unroll
	for (int i = 0; i < XL_MAX_EXTHDR; i++) {
		__u8 *h;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
			break;
		h = xptr(ctx, off, 8);
		if (!h)
			return P_PASS_TRUNC;
		if (nh == IPPROTO_FRAGMENT) {
			__u16 fo = ((__u16)h[2] << 8) | h[3];

			if (fo & 0xfff8)
				return vip_addr_known(f) ? P_DROP_FRAG : P_PASS_NOT_VIP;
			f->first_frag = fo & 1;
			off += 8;
		} else if (nh == IPPROTO_AH) {
			off += ((__u32)h[1] + 2) * 4;
		} else {
			off += ((__u32)h[1] + 1) * 8;
		}
		nh = h[0];
	}
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	    nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH || nh == IPPROTO_ESP)
		return P_PASS_EXTHDR;
	if (off > ETH_HLEN + f->l3len)
		return P_PASS_TRUNC;
	f->proto = nh;
	f->l4off = off;
	if (nh == IPPROTO_ICMPV6)
		return parse_icmp_err(ctx, f) ? P_PASS_L4 : P_OK;
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return P_PASS_L4;
	return parse_ports(ctx, f) ? P_PASS_TRUNC : P_OK;
}

/* The backend id in the service's table cell for this flow; 0 when there is none. */
static __always_inline __u32 maglev_pick(const struct xl_vip *v, const struct flow *f)
{
	__u32 svc = v->svc, zero = 0, m = v->lut_size, idx;
	void *inner = bpf_map_lookup_elem(&xl_maglev, &svc);
	__u32 *lut;

	if (!inner || !m || m > XL_LUT_MAX)
		return 0;
	lut = bpf_map_lookup_elem(inner, &zero);
	if (!lut)
		return 0;
	idx = flow_hash(f) % m;
	/* The verifier does not bound a modulo; keep the compiler from dropping the check. */
	asm volatile("" : "+r"(idx));
	if (idx >= XL_LUT_MAX)
		return 0;
	return lut[idx];
}

static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline int fib_xmit(struct xdp_md *ctx, struct bpf_fib_lookup *p)
{
	long rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	struct ethhdr *eth;

	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		count(XL_DROP_TOO_BIG);
		return XDP_DROP;
	}
	/* No route or no neighbour entry: dropped. The stack cannot take the rewritten packet
	 * instead: its source is this node's own address, a martian on input
	 * (net/ipv4/fib_frontend.c fib_validate_source). Whoever deploys the program resolves
	 * the backend nodes' neighbours first; a STALE entry still counts (NUD_VALID). */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(XL_DROP_FIB);
		return XDP_DROP;
	}
	eth = xptr(ctx, 0, ETH_HLEN);
	if (!eth)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	if (p->ifindex == ctx->ingress_ifindex) {
		count(XL_TX);
		return XDP_TX;
	}
	count(XL_REDIRECT);
	return bpf_redirect(p->ifindex, 0);
}

/* Cilium dsr_set_ipip4 / kernel samples/bpf/xdp_tx_iptunnel_kern.c: push an outer header
 * between Ethernet and the untouched inner packet. */
static __always_inline int encap(struct xdp_md *ctx, const struct flow *f, const struct xl_backend *be,
				 const struct xl_cfg *cfg)
{
	struct bpf_fib_lookup p = { .ifindex = ctx->ingress_ifindex };
	int olen = f->family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	struct ethhdr *eth;

	if (bpf_xdp_adjust_head(ctx, -olen)) {
		count(XL_DROP_ERR);
		return XDP_DROP;
	}
	eth = xptr(ctx, 0, ETH_HLEN + sizeof(struct ipv6hdr));
	if (!eth || !xptr(ctx, olen, ETH_HLEN))
		return XDP_DROP;
	__builtin_memmove(eth, (void *)eth + olen, 2 * ETH_ALEN);
	if (f->family == AF_INET) {
		struct iphdr *o = (void *)(eth + 1);
		__u16 *w = (__u16 *)o;
		__u32 s = 0;

		eth->h_proto = bpf_htons(ETH_P_IP);
		o->version = 4;
		o->ihl = 5;
		o->tos = f->tos;
		o->tot_len = bpf_htons(f->l3len + sizeof(*o));
		o->id = 0;
		/* RFC 2003 3.1: DF copied from the inner header. */
		o->frag_off = f->df ? bpf_htons(0x4000) : 0;
		o->ttl = 64;
		o->protocol = IPPROTO_IPIP;
		o->check = 0;
		__builtin_memcpy(&o->saddr, cfg->addr4, 4);
		__builtin_memcpy(&o->daddr, be->node, 4);
#pragma unroll
		for (int i = 0; i < 10; i++)
			s += w[i];
		o->check = csum_fold(s);
		p.family = AF_INET;
		p.tot_len = f->l3len + sizeof(*o);
		p.ipv4_src = o->saddr;
		p.ipv4_dst = o->daddr;
	} else {
		struct ipv6hdr *o = (void *)(eth + 1);

		eth->h_proto = bpf_htons(ETH_P_IPV6);
		*(__u32 *)o = bpf_htonl(0x60000000 | ((__u32)f->tos << 20));
		o->payload_len = bpf_htons(f->l3len);
		o->nexthdr = IPPROTO_IPV6;
		o->hop_limit = 64;
		__builtin_memcpy(&o->saddr, cfg->addr6, 16);
		__builtin_memcpy(&o->daddr, be->node, 16);
		p.family = AF_INET6;
		p.tot_len = f->l3len + sizeof(*o);
		__builtin_memcpy(p.ipv6_src, cfg->addr6, 16);
		__builtin_memcpy(p.ipv6_dst, be->node, 16);
	}
	return fib_xmit(ctx, &p);
}

/* One's-complement checksum update for bytes from -> to (RFC 1624 eq. 3), n even. */
static __always_inline __u32 csum_delta(__u32 acc, const __u8 *from, const __u8 *to, int n)
{
	for (int i = 0; i < 16; i += 2) {
		if (i >= n)
			break;
		acc += (__u16)~(from[i] | (from[i + 1] << 8));
		acc += to[i] | (to[i + 1] << 8);
	}
	return acc;
}

static __always_inline __u16 csum_apply(__u16 check, __u32 acc)
{
	return csum_fold((__u16)~check + acc);
}

/* Rewrite the packet's addresses and ports to the ct value's, patching checksums. */
static __always_inline int snat_rewrite(struct xdp_md *ctx, const struct flow *f, const struct xl_ct_value *v)
{
	int alen = f->family == AF_INET ? 4 : 16;
	__u32 l3 = 0, l4 = 0;
	__be16 *ports = xptr(ctx, f->l4off, 4);
	__u16 *check;

	__be16 old[2], new[2] = { v->sport, v->dport };

	if (!ports)
		return -1;
	old[0] = ports[0];
	old[1] = ports[1];
	l3 = csum_delta(l3, f->saddr, v->saddr, alen);
	l3 = csum_delta(l3, f->daddr, v->daddr, alen);
	l4 = csum_delta(l3, (__u8 *)old, (__u8 *)new, 4);
	check = xptr(ctx, f->l4off + (f->proto == IPPROTO_TCP ? 16 : 6), 2);
	if (!check)
		return -1;
	/* A UDP checksum of 0 over IPv4 means none; a computed 0 is sent as 0xffff (RFC 768). */
	if (f->proto == IPPROTO_TCP || *check || f->family == AF_INET6) {
		__u16 c = csum_apply(*check, l4);

		*check = (f->proto == IPPROTO_UDP && !c) ? 0xffff : c;
	}
	ports = xptr(ctx, f->l4off, 4);
	if (!ports)
		return -1;
	ports[0] = v->sport;
	ports[1] = v->dport;
	if (f->family == AF_INET) {
		struct iphdr *ip = xptr(ctx, ETH_HLEN, sizeof(*ip));

		if (!ip)
			return -1;
		ip->check = csum_apply(ip->check, l3);
		__builtin_memcpy(&ip->saddr, v->saddr, 4);
		__builtin_memcpy(&ip->daddr, v->daddr, 4);
	} else {
		struct ipv6hdr *ip = xptr(ctx, ETH_HLEN, sizeof(*ip));

		if (!ip)
			return -1;
		__builtin_memcpy(&ip->saddr, v->saddr, 16);
		__builtin_memcpy(&ip->daddr, v->daddr, 16);
	}
	return 0;
}

/* Ephemeral ports for SNAT when the client's own is taken: the kernel's default
 * ip_local_port_range (net/ipv4/af_inet.c inet_init_net). */
#define SNAT_PORT_MIN 32768
#define SNAT_PORT_SPAN 28232
#define SNAT_TRIES 8

static __always_inline int snat(struct xdp_md *ctx, const struct flow *f, const struct xl_vip *v, __u32 hash)
{
	struct xl_ct_key fk = { .family = f->family, .proto = f->proto, .sport = f->sport, .dport = f->dport };
	struct xl_ct_value *ct = NULL, fwd = {}, rev = {};
	struct xl_cfg *cfg;
	__u32 zero = 0, id;
	struct xl_backend *be;

	__builtin_memcpy(fk.saddr, f->saddr, 16);
	__builtin_memcpy(fk.daddr, f->daddr, 16);
	ct = bpf_map_lookup_elem(&xl_ct, &fk);
	if (ct) {
		fwd = *ct;
		if (bpf_map_lookup_elem(&xl_backends, &fwd.backend))
			goto out;
		/* Its backend was removed (lab svc deletes it): forget both directions and pick
		 * again, as Cilium's lb4_local reselects when lb4_lookup_backend fails. */
		struct xl_ct_key old = { .family = f->family, .proto = f->proto, .dir = 1,
					 .sport = fwd.dport, .dport = fwd.sport };

		__builtin_memcpy(old.saddr, fwd.daddr, 16);
		__builtin_memcpy(old.daddr, fwd.saddr, 16);
		bpf_map_delete_elem(&xl_ct, &old);
		bpf_map_delete_elem(&xl_ct, &fk);
		__builtin_memset(&fwd, 0, sizeof(fwd));
	}
	cfg = bpf_map_lookup_elem(&xl_cfg, &zero);
	id = maglev_pick(v, f);
	be = id ? bpf_map_lookup_elem(&xl_backends, &id) : NULL;
	if (!cfg || !be) {
		count(XL_DROP_NO_BACKEND);
		return XDP_DROP;
	}
	struct xl_ct_key rk = { .family = f->family, .proto = f->proto, .dir = 1, .sport = be->port };

	__builtin_memcpy(rk.saddr, be->addr, 16);
	if (f->family == AF_INET)
		__builtin_memcpy(rk.daddr, cfg->addr4, 4);
	else
		__builtin_memcpy(rk.daddr, cfg->addr6, 16);
	rk.dport = f->sport;
	for (int i = 0; i < SNAT_TRIES; i++) {
		if (!bpf_map_lookup_elem(&xl_ct, &rk))
			break;
		if (i == SNAT_TRIES - 1) {
			count(XL_DROP_SNAT_PORT);
			return XDP_DROP;
		}
		rk.dport = bpf_htons(SNAT_PORT_MIN + (hash + i * 7919) % SNAT_PORT_SPAN);
	}
	__builtin_memcpy(fwd.saddr, rk.daddr, 16);
	__builtin_memcpy(fwd.daddr, be->addr, 16);
	fwd.sport = rk.dport;
	fwd.dport = be->port;
	fwd.svc = v->svc;
	fwd.backend = id;
	__builtin_memcpy(rev.saddr, f->daddr, 16);
	__builtin_memcpy(rev.daddr, f->saddr, 16);
	rev.sport = f->dport;
	rev.dport = f->sport;
	rev.svc = v->svc;
	rev.backend = id;
	if (bpf_map_update_elem(&xl_ct, &rk, &rev, BPF_ANY) || bpf_map_update_elem(&xl_ct, &fk, &fwd, BPF_ANY)) {
		count(XL_DROP_ERR);
		return XDP_DROP;
	}
	count(XL_SNAT_NEW);
out:
	add_stats(&xl_be_stats, fwd.backend, ctx->data_end - ctx->data);
	if (snat_rewrite(ctx, f, &fwd))
		return XDP_DROP;
	struct bpf_fib_lookup p = { .ifindex = ctx->ingress_ifindex, .family = f->family, .tot_len = f->l3len };

	if (f->family == AF_INET) {
		__builtin_memcpy(&p.ipv4_src, fwd.saddr, 4);
		__builtin_memcpy(&p.ipv4_dst, fwd.daddr, 4);
	} else {
		__builtin_memcpy(p.ipv6_src, fwd.saddr, 16);
		__builtin_memcpy(p.ipv6_dst, fwd.daddr, 16);
	}
	return fib_xmit(ctx, &p);
}

SEC("xdp")
int xl_xdp(struct xdp_md *ctx)
{
	struct ethhdr *eth = xptr(ctx, 0, ETH_HLEN);
	struct flow f = {};
	struct xl_vip_key k = {};
	struct xl_vip *v;
	struct xl_backend *be;
	struct xl_cfg *cfg;
	__u32 zero = 0, id, bytes = ctx->data_end - ctx->data;
	int r;

	if (!eth) {
		count(XL_PASS_TRUNC);
		return XDP_PASS;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		r = parse4(ctx, &f);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		r = parse6(ctx, &f);
	else
		r = P_PASS_NOT_IP;
	switch (r) {
	case P_OK:
		break;
	case P_DROP_FRAG:
		count(XL_DROP_FRAG);
		return XDP_DROP;
	case P_PASS_TRUNC:
		count(XL_PASS_TRUNC);
		return XDP_PASS;
	case P_PASS_NOT_IP:
		count(XL_PASS_NOT_IP);
		return XDP_PASS;
	case P_PASS_EXTHDR:
		count(XL_PASS_EXTHDR);
		return XDP_PASS;
	case P_PASS_NOT_VIP:
		count(XL_PASS_NOT_VIP);
		return XDP_PASS;
	default:
		count(XL_PASS_L4);
		return XDP_PASS;
	}
	k.family = f.family;
	k.proto = f.proto;
	k.port = f.dport;
	__builtin_memcpy(k.addr, f.daddr, 16);
	v = bpf_map_lookup_elem(&xl_vips, &k);
	if (!v) {
		count(XL_PASS_NOT_VIP);
		return XDP_PASS;
	}
	if (v->pass) {
		count(XL_PASS_CONTROL);
		return XDP_PASS;
	}
	add_stats(&xl_vip_stats, v->svc, bytes);
	if (f.first_frag)
		count(XL_FRAG_FIRST);
	if (f.icmp_err)
		count(XL_ICMP_ERR);
	if (v->mode == XL_MODE_SNAT) {
		if (f.icmp_err) {
			count(XL_PASS_L4);
			return XDP_PASS;
		}
		return snat(ctx, &f, v, flow_hash(&f));
	}
	id = maglev_pick(v, &f);
	be = id ? bpf_map_lookup_elem(&xl_backends, &id) : NULL;
	cfg = bpf_map_lookup_elem(&xl_cfg, &zero);
	if (!be || be->family != f.family) {
		count(XL_DROP_NO_BACKEND);
		return XDP_DROP;
	}
	if (!cfg) {
		count(XL_DROP_ERR);
		return XDP_DROP;
	}
	add_stats(&xl_be_stats, id, bytes);
	return encap(ctx, &f, be, cfg);
}

/* SNAT replies (backend -> this node's address:port), on the links' tc ingress: back to
 * VIP:port -> client with the skb checksum helpers, which also handle a CHECKSUM_PARTIAL
 * reply (XDP cannot tell), then on to the stack, which routes it to the client. */
SEC_INGRESS
int xl_snat_rev(struct __sk_buff *skb)
{
	struct ethhdr *eth = hdr_ptr(skb, 0, ETH_HLEN);
	struct xl_ct_key k = { .dir = 1 };
	struct xl_ct_value *v;
	__u32 l4off, alen, aoff, csum;
	__u64 mz;
	__be16 *ports;

	if (!eth)
		return TCX_NEXT;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip || ip->ihl < 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return TCX_NEXT;
		k.family = AF_INET;
		k.proto = ip->protocol;
		__builtin_memcpy(k.saddr, &ip->saddr, 4);
		__builtin_memcpy(k.daddr, &ip->daddr, 4);
		l4off = ETH_HLEN + ip->ihl * 4;
		alen = 4;
		aoff = ETH_HLEN + __builtin_offsetof(struct iphdr, saddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip)
			return TCX_NEXT;
		k.family = AF_INET6;
		k.proto = ip->nexthdr;
		__builtin_memcpy(k.saddr, &ip->saddr, 16);
		__builtin_memcpy(k.daddr, &ip->daddr, 16);
		l4off = ETH_HLEN + sizeof(*ip);
		alen = 16;
		aoff = ETH_HLEN + __builtin_offsetof(struct ipv6hdr, saddr);
	} else {
		return TCX_NEXT;
	}
	if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP)
		return TCX_NEXT;
	ports = hdr_ptr(skb, l4off, 4);
	if (!ports)
		return TCX_NEXT;
	k.sport = ports[0];
	k.dport = ports[1];
	v = bpf_map_lookup_elem(&xl_ct, &k);
	if (!v)
		return TCX_NEXT;
	struct xl_ct_value n = *v;

	csum = l4off + (k.proto == IPPROTO_TCP ? 16 : 6);
	mz = k.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	for (__u32 i = 0; i < 16; i += 4) {
		__be32 os, od, ns, nd;

		if (i >= alen)
			break;
		__builtin_memcpy(&os, k.saddr + i, 4);
		__builtin_memcpy(&od, k.daddr + i, 4);
		__builtin_memcpy(&ns, n.saddr + i, 4);
		__builtin_memcpy(&nd, n.daddr + i, 4);
		if (bpf_l4_csum_replace(skb, csum, os, ns, BPF_F_PSEUDO_HDR | mz | 4) ||
		    bpf_l4_csum_replace(skb, csum, od, nd, BPF_F_PSEUDO_HDR | mz | 4))
			return TCX_DROP;
		if (alen == 4 && (bpf_l3_csum_replace(skb, IP_CSUM_OFF, os, ns, 4) ||
				  bpf_l3_csum_replace(skb, IP_CSUM_OFF, od, nd, 4)))
			return TCX_DROP;
	}
	if (bpf_l4_csum_replace(skb, csum, k.sport, n.sport, mz | 2) ||
	    bpf_l4_csum_replace(skb, csum, k.dport, n.dport, mz | 2) ||
	    bpf_skb_store_bytes(skb, aoff, n.saddr, alen == 4 ? 4 : 16, 0) ||
	    bpf_skb_store_bytes(skb, aoff + alen, n.daddr, alen == 4 ? 4 : 16, 0) ||
	    bpf_skb_store_bytes(skb, l4off, &n.sport, 2, 0) || bpf_skb_store_bytes(skb, l4off + 2, &n.dport, 2, 0))
		return TCX_DROP;
	count(XL_SNAT_REV);
	return TCX_NEXT;
}

/* xl_decap, for the LB's own tests and benches that decapsulate at a node holding the VIP
 * (the lab's backend nodes load the small xl_decap.o instead). */
#include "xl_decap.h"

char _license[] SEC("license") = "GPL";
