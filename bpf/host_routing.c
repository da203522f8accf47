// SPDX-License-Identifier: GPL-2.0
/* BPF host routing (Cilium style): forward pod traffic from tcx ingress of the
 * host-side device straight to the target device, bypassing the node's IP stack
 * (no netfilter, no skb_orphan in ip_rcv, so TCP backpressure reaches the pod). */
#include <linux/in.h>
#include "common.h"
#include "host_routing.h"
#include "dsr_ct.h"

/* Local pods by address (struct ep_key/ep_info: include/host_routing.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ep_key);
	__type(value, struct ep_info);
} endpoints SEC(".maps");

/* DSR to pods: reply tuple -> the VIP:port it leaves from (include/dsr_ct.h; xl_decap fills it). */
DSR_CT_MAP;
DSR_CT6_MAP;

/* What the programs did, per CPU (summed by src/measure/datapath-counters.ts). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(enum dpl_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += 1;	/* per-CPU slot: no other writer while this program runs */
}

static __always_inline int to_stack(void)
{
	count(CNT_TO_STACK);
	return TCX_NEXT;
}

/* TC_ACT_SHOT is 2 on both hooks (TCX_DROP on tcx, NETKIT_DROP on netkit). */
static __always_inline int drop(enum dpl_counter why)
{
	count(why);
	return TC_ACT_SHOT;
}

static __always_inline struct ep_info *ep_lookup(__u8 family, const void *addr, __u32 len)
{
	struct ep_key key = { .family = family };

	__builtin_memcpy(key.addr, addr, len);
	return bpf_map_lookup_elem(&endpoints, &key);
}

/* Where a packet entered the datapath. */
enum { FROM_NETDEV, FROM_POD, FROM_NETKIT };

/*
 * Source address verification (Cilium: is_valid_lxc_src_ipv4 / is_valid_lxc_src_ip in
 * bpf/lib/lxc.h compare with the endpoint's own address). Here the endpoint is found
 * by the source address and must be the one whose device the packet came in on:
 * skb->ifindex is the host-side device on tc ingress, and on a netkit peer hook the
 * primary, which netkit_xmit() makes skb->dev before it runs the programs
 * (drivers/net/netkit.c). That primary is the ifindex the endpoints map holds.
 */
static __always_inline int src_is_pod(const struct __sk_buff *skb, __u8 family, const void *saddr, __u32 len)
{
	const struct ep_info *ep = ep_lookup(family, saddr, len);

	return ep && ep->ifindex == skb->ifindex;
}

/* fe80::/10 and ::, the sources of neighbour discovery and DAD (RFC 4861, 4862). */
static __always_inline int ipv6_src_for_nd(const struct in6_addr *a)
{
	if (a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80)
		return 1;
	return !(a->s6_addr32[0] | a->s6_addr32[1] | a->s6_addr32[2] | a->s6_addr32[3]);
}

/* Caller has checked ttl > 1. The TTL is the high byte of its 16-bit checksum word.
 * bpf_l3_csum_replace invalidates packet pointers: call it last. Cilium drops with
 * DROP_CSUM_L3 when it fails (ipv4_dec_ttl in bpf/lib/ipv4.h). */
static __always_inline long ipv4_dec_ttl(struct __sk_buff *skb, struct iphdr *ip)
{
	__u8 ttl = ip->ttl;

	ip->ttl = ttl - 1;
	return bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons(ttl << 8), bpf_htons((ttl - 1) << 8), 2);
}

/* Ethernet source and destination; re-reads the header, since checksum helpers
 * invalidate earlier packet pointers. */
static __always_inline int eth_set_macs(struct __sk_buff *skb, const __u8 *smac, const __u8 *dmac)
{
	struct ethhdr *eth = hdr_ptr(skb, 0, ETH_HLEN);

	if (!eth)
		return -1;
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	return 0;
}

/*
 * Into a local pod. As Cilium's ipv4_l3/ipv6_l3 (bpf/lib/l3.h) do before delivery,
 * the frame gets the node device's MAC as source and the pod's as destination, the
 * frame the pod would get from the node's stack. Needed for correctness where the
 * frame does not come from the pod's gateway: a veth pod reached from a netkit pod
 * receives it through veth_xmit, and eth_type_trans() there drops a frame whose
 * destination is not the pod's MAC (PACKET_OTHERHOST). bpf_redirect_peer needs tc
 * ingress (skb_do_redirect drops it elsewhere), so from a netkit hook transmit through
 * the target's host-side device instead.
 */
static __always_inline int to_endpoint(struct __sk_buff *skb, const struct ep_info *ep, int from)
{
	if (!(ep->flags & EP_F_NO_L2) && eth_set_macs(skb, ep->node_mac, ep->mac) < 0)
		return drop(CNT_DROP_INVALID);
	if (from == FROM_NETKIT) {
		count(CNT_REDIRECT_LOCAL);
		return bpf_redirect(ep->ifindex, 0);
	}
	count(CNT_REDIRECT_PEER);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/*
 * Out of the node after a FIB lookup, as Cilium's fib_do_redirect (bpf/lib/fib.h):
 * SUCCESS resolved the neighbour, so write its MACs and transmit; NO_NEIGH found the
 * route only, so let bpf_redirect_neigh resolve the neighbour (fib->ipv*_dst holds
 * the gateway if has_gw).
 */
static __always_inline int fib_redirect(struct __sk_buff *skb, const struct bpf_fib_lookup *fib, long rc, int has_gw)
{
	struct bpf_redir_neigh nh = {};

	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (eth_set_macs(skb, fib->smac, fib->dmac) < 0)
			return drop(CNT_DROP_INVALID);
		count(CNT_REDIRECT_FIB);
		return bpf_redirect(fib->ifindex, 0);
	}
	count(CNT_REDIRECT_NEIGH);
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
	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH;
}

/*
 * A pod's reply to a client whose request came by DSR (xl_decap, include/xl_decap.h, took it out
 * of IPIP and DNATed VIP:port -> pod:targetPort): the source becomes VIP:port again, so the client
 * gets its answer from the address it asked, straight from this node (Cilium: bpf_lxc.c calls
 * xlate_dsr_v4, bpf/lib/nodeport.h, for a reply whose CT entry is flagged dsr). Runs after the
 * anti-spoof check, which has seen the pod's own source.
 * 1: rewritten (packet pointers invalidated), 0: not a DSR reply, -1: a helper failed.
 */
static __always_inline int dsr_rev_v4(struct __sk_buff *skb)
{
	struct iphdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));
	struct dsr_ct_key k = {};
	struct dsr_ct_value *v, n;
	__u32 l4off, check;
	__be16 *ports;
	__u64 mz;

	/* A later fragment has no ports (the first one carries them). */
	if (!ip || ip->ihl < 5 || (ip->frag_off & bpf_htons(0x1fff)))
		return 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	k.pod = ip->saddr;
	k.client = ip->daddr;
	k.proto = ip->protocol;
	l4off = ETH_HLEN + ip->ihl * 4;
	ports = hdr_ptr(skb, l4off, 4);
	if (!ports)
		return 0;
	k.pod_port = ports[0];
	k.client_port = ports[1];
	v = bpf_map_lookup_elem(&dsr_ct, &k);
	if (!v)
		return 0;
	n = *v;
	check = l4off + (k.proto == IPPROTO_TCP ? 16 : 6);
	/* A UDP checksum of 0 (none) stays 0 (BPF_F_MARK_MANGLED_0, as Cilium's csum_l4_offset_and_flags). */
	mz = k.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	if (bpf_l4_csum_replace(skb, check, k.pod, n.vip, BPF_F_PSEUDO_HDR | mz | 4) ||
	    bpf_l4_csum_replace(skb, check, k.pod_port, n.port, mz | 2) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, k.pod, n.vip, 4) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, saddr), &n.vip, 4, 0) ||
	    bpf_skb_store_bytes(skb, l4off, &n.port, 2, 0))
		return -1;
	return 1;
}

/* dsr_rev_v4 for IPv6 (dsr_ct6): TCP or UDP right after the header, as xl_decap DNATed it. */
static __always_inline int dsr_rev_v6(struct __sk_buff *skb)
{
	struct ipv6hdr *ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));
	struct dsr_ct6_key k = {};
	struct dsr_ct6_value *v, n;
	__u32 l4off = ETH_HLEN + sizeof(*ip6), check;
	__be16 *ports;
	__u64 mz;

	if (!ip6 || (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP))
		return 0;
	k.proto = ip6->nexthdr;
	__builtin_memcpy(k.pod, &ip6->saddr, 16);
	__builtin_memcpy(k.client, &ip6->daddr, 16);
	ports = hdr_ptr(skb, l4off, 4);
	if (!ports)
		return 0;
	k.pod_port = ports[0];
	k.client_port = ports[1];
	v = bpf_map_lookup_elem(&dsr_ct6, &k);
	if (!v)
		return 0;
	n = *v;
	check = l4off + (k.proto == IPPROTO_TCP ? 16 : 6);
	/* A result of 0 goes out as 0xffff: 0 is no valid IPv6 UDP checksum (RFC 8200 8.1). */
	mz = k.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	for (int i = 0; i < 16; i += 4) {
		__be32 from, to;

		__builtin_memcpy(&from, k.pod + i, 4);
		__builtin_memcpy(&to, n.vip + i, 4);
		if (bpf_l4_csum_replace(skb, check, from, to, BPF_F_PSEUDO_HDR | mz | 4))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, check, k.pod_port, n.port, mz | 2) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, saddr), n.vip, 16, 0) ||
	    bpf_skb_store_bytes(skb, l4off, &n.port, 2, 0))
		return -1;
	return 1;
}

static __always_inline int route_v4(struct __sk_buff *skb, int from)
{
	struct bpf_fib_lookup fib = {};
	__be32 saddr, daddr;
	struct ep_info *ep;
	struct iphdr *ip;
	long rc;

	ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return drop(CNT_DROP_INVALID);
	saddr = ip->saddr;
	daddr = ip->daddr;
	if (from != FROM_NETDEV && !src_is_pod(skb, 4, &saddr, sizeof(saddr)))
		return drop(CNT_DROP_SPOOF);
	if (from != FROM_NETDEV) {
		int r = dsr_rev_v4(skb);

		if (r < 0)
			return drop(CNT_DROP_CSUM);
		if (r > 0) {
			ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));
			if (!ip)
				return drop(CNT_DROP_INVALID);
			saddr = ip->saddr;
		}
	}
	/* Multicast (224/4) and limited broadcast stay with the stack; TTL 1 gets ICMP there. */
	if ((daddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) ||
	    daddr == bpf_htonl(0xffffffff) || ip->ttl <= 1)
		return to_stack();

	ep = ep_lookup(4, &daddr, sizeof(daddr));
	if (ep) {
		if (ipv4_dec_ttl(skb, ip) < 0)
			return drop(CNT_DROP_CSUM);
		return to_endpoint(skb, ep, from);
	}
	if (from == FROM_NETDEV)
		return to_stack();

	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tos = ip->tos;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	/* tot_len 0: kernel checks the skb's MTU itself, GSO-aware (a GSO skb's tot_len
	 * exceeds the MTU and would return FRAG_NEEDED). */
	fib.tot_len = 0;
	fib.ifindex = skb->ifindex;	/* tc ingress: the device; netkit: its primary */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (!fib_ok(rc))
		return to_stack();
	if (ipv4_dec_ttl(skb, ip) < 0)
		return drop(CNT_DROP_CSUM);
	return fib_redirect(skb, &fib, rc, fib.family != AF_INET || fib.ipv4_dst != daddr);
}

static __always_inline int route_v6(struct __sk_buff *skb, int from)
{
	struct bpf_fib_lookup fib = {};
	struct in6_addr saddr, daddr;
	struct ep_info *ep;
	struct ipv6hdr *ip6;
	long rc;

	ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));
	if (!ip6)
		return drop(CNT_DROP_INVALID);
	saddr = ip6->saddr;
	daddr = ip6->daddr;
	if (from != FROM_NETDEV) {
		/* Neighbour discovery from a pod: the node's stack answers it. */
		if (ipv6_src_for_nd(&saddr))
			return to_stack();
		if (!src_is_pod(skb, 6, &saddr, sizeof(saddr)))
			return drop(CNT_DROP_SPOOF);
		int r = dsr_rev_v6(skb);

		if (r < 0)
			return drop(CNT_DROP_CSUM);
		if (r > 0) {
			ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));
			if (!ip6)
				return drop(CNT_DROP_INVALID);
			saddr = ip6->saddr;
		}
	}
	/* Multicast ff00::/8 and link-local fe80::/10 stay with the stack (NDP, RA). */
	if (daddr.s6_addr[0] == 0xff ||
	    (daddr.s6_addr[0] == 0xfe && (daddr.s6_addr[1] & 0xc0) == 0x80) ||
	    ip6->hop_limit <= 1)
		return to_stack();

	ep = ep_lookup(6, &daddr, sizeof(daddr));
	if (ep) {
		ip6->hop_limit--;	/* no header checksum in IPv6 */
		return to_endpoint(skb, ep, from);
	}
	if (from == FROM_NETDEV)
		return to_stack();

	fib.family = AF_INET6;
	fib.l4_protocol = ip6->nexthdr;
	/* Traffic class + flow label: the first word without the version nibble. */
	fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	__builtin_memcpy(fib.ipv6_src, &saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &daddr, sizeof(fib.ipv6_dst));
	fib.tot_len = 0;	/* see route_v4 */
	fib.ifindex = skb->ifindex;	/* tc ingress: the device; netkit: its primary */
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (!fib_ok(rc))
		return to_stack();
	ip6->hop_limit--;
	return fib_redirect(skb, &fib, rc, __builtin_memcmp(fib.ipv6_dst, &daddr, sizeof(daddr)) != 0);
}

static __always_inline int route(struct __sk_buff *skb, int from)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return route_v4(skb, from);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return route_v6(skb, from);
	return to_stack();	/* ARP and everything else */
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
