// SPDX-License-Identifier: GPL-2.0
/* BPF host routing (Cilium style): forward pod traffic from tcx ingress of the
 * host-side device straight to the target device, bypassing the node's IP stack
 * (no netfilter, no skb_orphan in ip_rcv, so TCP backpressure reaches the pod). */
#include "common.h"

struct ep_key {
	__u8 family;		/* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];		/* IPv4 in the first 4 bytes, rest zero */
};

struct ep_info {
	__u32 ifindex;		/* host-side (node namespace) device of a local pod */
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ep_key);
	__type(value, struct ep_info);
} endpoints SEC(".maps");

static __always_inline struct ep_info *ep_lookup(__u8 family, const void *addr, __u32 len)
{
	struct ep_key key = { .family = family };

	__builtin_memcpy(key.addr, addr, len);
	return bpf_map_lookup_elem(&endpoints, &key);
}

/* Caller has checked ttl > 1. The TTL is the high byte of its 16-bit checksum word.
 * bpf_l3_csum_replace invalidates packet pointers: call it last. */
static __always_inline void ipv4_dec_ttl(struct __sk_buff *skb, struct iphdr *ip)
{
	__u8 ttl = ip->ttl;

	ip->ttl = ttl - 1;
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons(ttl << 8), bpf_htons((ttl - 1) << 8), 2);
}

/* Redirect via the neighbour subsystem; fib->ipv*_dst holds the gateway if has_gw. */
static __always_inline int redirect_fib(const struct bpf_fib_lookup *fib, int has_gw)
{
	struct bpf_redir_neigh nh = {};

	if (!has_gw)
		return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
	/* fib->family is the nexthop's family (IPv4 routes may have IPv6 gateways). */
	nh.nh_family = fib->family;
	if (fib->family == AF_INET)
		nh.ipv4_nh = fib->ipv4_dst;
	else
		__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, sizeof(nh.ipv6_nh));
	return bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
}

static __always_inline int fib_ok(long rc)
{
	/* NO_NEIGH: route found, bpf_redirect_neigh resolves the neighbour itself. */
	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/* Where a packet entered the datapath. */
enum { FROM_NETDEV, FROM_POD, FROM_NETKIT };

/* Into a local pod: bpf_redirect_peer needs tc ingress (skb_do_redirect drops it
 * elsewhere), so from a netkit hook transmit through the target's primary instead. */
static __always_inline int to_endpoint(const struct ep_info *ep, int from)
{
	if (from == FROM_NETKIT)
		return bpf_redirect(ep->ifindex, 0);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int route_v4(struct __sk_buff *skb, int from)
{
	struct bpf_fib_lookup fib = {};
	struct ep_info *ep;
	struct iphdr *ip;
	__be32 daddr;
	long rc;

	ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return TCX_NEXT;
	daddr = ip->daddr;
	/* Multicast (224/4) and limited broadcast stay with the stack; TTL 1 gets ICMP there. */
	if ((daddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) ||
	    daddr == bpf_htonl(0xffffffff) || ip->ttl <= 1)
		return TCX_NEXT;

	ep = ep_lookup(4, &daddr, sizeof(daddr));
	if (ep) {
		ipv4_dec_ttl(skb, ip);
		return to_endpoint(ep, from);
	}
	if (from == FROM_NETDEV)
		return TCX_NEXT;

	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tos = ip->tos;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = daddr;
	/* tot_len 0: kernel checks the skb's MTU itself, GSO-aware (a GSO skb's tot_len
	 * exceeds the MTU and would return FRAG_NEEDED). */
	fib.tot_len = 0;
	fib.ifindex = skb->ifindex;	/* tc ingress: the device; netkit: its primary */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (!fib_ok(rc))
		return TCX_NEXT;
	ipv4_dec_ttl(skb, ip);
	return redirect_fib(&fib, fib.family != AF_INET || fib.ipv4_dst != daddr);
}

static __always_inline int route_v6(struct __sk_buff *skb, int from)
{
	struct bpf_fib_lookup fib = {};
	struct in6_addr daddr;
	struct ep_info *ep;
	struct ipv6hdr *ip6;
	long rc;

	ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));
	if (!ip6)
		return TCX_NEXT;
	daddr = ip6->daddr;
	/* Multicast ff00::/8 and link-local fe80::/10 stay with the stack (NDP, RA). */
	if (daddr.s6_addr[0] == 0xff ||
	    (daddr.s6_addr[0] == 0xfe && (daddr.s6_addr[1] & 0xc0) == 0x80) ||
	    ip6->hop_limit <= 1)
		return TCX_NEXT;

	ep = ep_lookup(6, &daddr, sizeof(daddr));
	if (ep) {
		ip6->hop_limit--;
		return to_endpoint(ep, from);
	}
	if (from == FROM_NETDEV)
		return TCX_NEXT;

	fib.family = AF_INET6;
	fib.l4_protocol = ip6->nexthdr;
	/* Traffic class + flow label: the first word without the version nibble. */
	fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &daddr, sizeof(fib.ipv6_dst));
	fib.tot_len = 0;	/* see route_v4 */
	fib.ifindex = skb->ifindex;	/* tc ingress: the device; netkit: its primary */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (!fib_ok(rc))
		return TCX_NEXT;
	ip6->hop_limit--;
	return redirect_fib(&fib, __builtin_memcmp(fib.ipv6_dst, &daddr, sizeof(daddr)) != 0);
}

static __always_inline int route(struct __sk_buff *skb, int from)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return route_v4(skb, from);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return route_v6(skb, from);
	return TCX_NEXT;	/* ARP and everything else: the stack */
}

/* tcx ingress of a pod's host-side device: local pods by redirect_peer, rest by FIB. */
SEC_INGRESS
int from_pod(struct __sk_buff *skb)
{
	return route(skb, FROM_POD);
}

/* tcx ingress of uplink / node-to-node devices: only traffic for local pods. */
SEC_INGRESS
int from_netdev(struct __sk_buff *skb)
{
	return route(skb, FROM_NETDEV);
}

#ifndef DPL_TC
/* netkit (6.7+): the peer hook of a pod's netkit pair, run in the pod's transmit
 * path with skb->dev already the primary. Pods are created with the peer policy
 * blackhole, so nothing leaves a pod until this (or pass_pod_nk) is attached. */
SEC("netkit/peer")
int from_pod_nk(struct __sk_buff *skb)
{
	return route(skb, FROM_NETKIT);
}

/* netkit primary hook: traffic the node sends into a pod. Nothing to decide yet (a
 * policy program would go here); it passes, and keeps the hook owned by the host. */
SEC("netkit/primary")
int to_pod_nk(struct __sk_buff *skb)
{
	return TCX_NEXT;
}

/* Legacy host routing on netkit: hand the pod's traffic to the node's IP stack. */
SEC("netkit/peer")
int pass_pod_nk(struct __sk_buff *skb)
{
	return TCX_NEXT;	/* NETKIT_NEXT: the last program's NEXT means pass */
}
#endif

char _license[] SEC("license") = "GPL";
