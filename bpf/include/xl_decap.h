/* xl_decap: DSR at a backend's node (tc ingress of its links), included by bpf/xl_decap.c (what
 * the lab loads on backend nodes: these maps only, not the LB's large ones) and bpf/xdp_lb.c;
 * xl_cfg, xl_counters and count() come from include/xl_base.h. */
#ifndef LAB_XL_DECAP_H
#define LAB_XL_DECAP_H

#include <linux/in.h>
#include "common.h"
#include "xdp_lb.h"
#include "xl_base.h"
#include "dsr_ct.h"

/* On a backend pod's node: the VIP ports each local pod serves by DSR (struct xl_dsr_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xl_dsr_key);
	__type(value, struct xl_dsr_target);
} xl_dsr SEC(".maps");

/* Shared with host routing's from_pod, which turns replies back (include/dsr_ct.h). */
DSR_CT_MAP;
DSR_CT6_MAP;

/* dsr_to_pod for IPv6: no header checksum, the pseudo-header's addresses in the L4 one (four
 * 32-bit words each). */
static __always_inline int dsr6_to_pod(struct __sk_buff *skb, const struct xl_dsr_key *k, const struct xl_dsr_target *t,
				       const __u8 *client, __be16 cport, __u32 l4off)
{
	struct dsr_ct6_key ck = { .pod_port = t->port, .client_port = cport, .proto = k->proto };
	struct dsr_ct6_value cv = { .port = k->port };
	__u32 check = l4off + (k->proto == IPPROTO_TCP ? 16 : 6);
	__be16 port = k->port, tport = t->port;
	/* A result of 0 goes out as 0xffff: 0 is no valid IPv6 UDP checksum (RFC 8200 8.1). */
	__u64 mz = k->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	__builtin_memcpy(ck.pod, k->pod, 16);
	__builtin_memcpy(ck.client, client, 16);
	__builtin_memcpy(cv.vip, k->vip, 16);
	if (bpf_map_update_elem(&dsr_ct6, &ck, &cv, BPF_ANY))
		return -1;
	for (int i = 0; i < 16; i += 4) {
		__be32 from, to;

		__builtin_memcpy(&from, k->vip + i, 4);
		__builtin_memcpy(&to, k->pod + i, 4);
		if (bpf_l4_csum_replace(skb, check, from, to, BPF_F_PSEUDO_HDR | mz | 4))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, check, port, tport, mz | 2) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct ipv6hdr, daddr), k->pod, 16, 0) ||
	    bpf_skb_store_bytes(skb, l4off + 2, &tport, 2, 0))
		return -1;
	return 0;
}

/* DSR to a pod: the packet inside is client -> VIP:port; DNAT it to pod:targetPort (the pod is
 * the outer destination) and remember the reply tuple for host routing's from_pod, which turns
 * the reply's source back to VIP:port (Cilium: handle_dsr_v4 + snat_v4_create_dsr at the
 * backend, bpf/lib/nodeport.h and nat.h). The outer header is already gone. 0 done, -1 drop. */
static __always_inline int dsr_to_pod(struct __sk_buff *skb, const struct xl_dsr_key *k, const struct xl_dsr_target *t,
				      const __u8 *client, __be16 cport, __u32 l4off)
{
	__u32 check = l4off + (k->proto == IPPROTO_TCP ? 16 : 6);
	__u64 mz = k->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 port = k->port, tport = t->port;
	__be32 vip, pod;

	if (k->family == AF_INET6)
		return dsr6_to_pod(skb, k, t, client, cport, l4off);
	__builtin_memcpy(&vip, k->vip, 4);
	__builtin_memcpy(&pod, k->pod, 4);
	struct dsr_ct_key ck = { .pod = pod, .pod_port = t->port, .client_port = cport, .proto = k->proto };
	struct dsr_ct_value cv = { .vip = vip, .port = k->port };

	__builtin_memcpy(&ck.client, client, 4);
	/* Recorded first: a reply cannot be faster than the request it answers. */
	if (bpf_map_update_elem(&dsr_ct, &ck, &cv, BPF_ANY))
		return -1;
	if (bpf_l4_csum_replace(skb, check, vip, pod, BPF_F_PSEUDO_HDR | mz | 4) ||
	    bpf_l4_csum_replace(skb, check, port, tport, mz | 2) ||
	    bpf_l3_csum_replace(skb, IP_CSUM_OFF, vip, pod, 4) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, daddr), &pod, 4, 0) ||
	    bpf_skb_store_bytes(skb, l4off + 2, &tport, 2, 0))
		return -1;
	return 0;
}

/* DSR at the backend's node (tc ingress of its links toward LB nodes). An IPIP
 * (IPv6-in-IPv6) packet loses its outer header (bpf_skb_adjust_room with BPF_ADJ_ROOM_MAC
 * removes the bytes right after the Ethernet header; Cilium's L4LB test attaches the kernel
 * selftest test_tc_tunnel.c "decap" the same way; the kernel's own ipip/ip6_tunnel drivers need
 * CONFIG_NET_IPIP / CONFIG_IPV6_TUNNEL, which not every kernel has):
 *  - outer destination = this node (xl_cfg): the inner packet goes on to the stack as the
 *    client sent it (a VIP on the node's lo answers);
 *  - outer destination = a local pod serving the inner VIP:port (xl_dsr): DNAT to the pod's
 *    target port and a dsr_ct (dsr_ct6) entry, then TCX_NEXT: host routing's from_netdev, after
 *    this program on the same hook, delivers it to the pod.
 * Anything else goes on untouched. */
SEC_INGRESS
int xl_decap(struct __sk_buff *skb)
{
	struct ethhdr *eth = hdr_ptr(skb, 0, ETH_HLEN);
	__u32 zero = 0, l4off = 0;
	struct xl_cfg *cfg = bpf_map_lookup_elem(&xl_cfg, &zero);
	struct xl_dsr_key dk = {};
	struct xl_dsr_target t = {};
	__u8 client[16] = {};
	__be16 cport = 0;
	int olen, pod = 0;

	if (!eth || !cfg)
		return TCX_NEXT;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip || ip->ihl != 5 || ip->protocol != IPPROTO_IPIP || (ip->frag_off & bpf_htons(0x3fff)))
			return TCX_NEXT;
		olen = sizeof(*ip);
		if (__builtin_memcmp(&ip->daddr, cfg->addr4, 4)) {
			struct iphdr *in = hdr_ptr(skb, ETH_HLEN + sizeof(*ip), sizeof(*in));

			if (!in || in->version != 4 || in->ihl < 5 || (in->frag_off & bpf_htons(0x1fff)))
				return TCX_NEXT;
			if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
				return TCX_NEXT;
			/* Offset after decapsulation. */
			l4off = ETH_HLEN + in->ihl * 4;
			dk.family = AF_INET;
			dk.proto = in->protocol;
			__builtin_memcpy(dk.vip, &in->daddr, 4);
			__builtin_memcpy(dk.pod, &ip->daddr, 4);
			__builtin_memcpy(client, &in->saddr, 4);
			pod = 1;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip || ip->nexthdr != IPPROTO_IPV6)
			return TCX_NEXT;
		olen = sizeof(*ip);
		if (__builtin_memcmp(&ip->daddr, cfg->addr6, 16)) {
			struct ipv6hdr *in = hdr_ptr(skb, ETH_HLEN + sizeof(*ip), sizeof(*in));

			/* TCP or UDP right after the inner header; one with extension headers
			 * is no DSR flow here and goes on untouched. */
			if (!in || in->version != 6 || (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP))
				return TCX_NEXT;
			l4off = ETH_HLEN + sizeof(*in);
			dk.family = AF_INET6;
			dk.proto = in->nexthdr;
			__builtin_memcpy(dk.vip, &in->daddr, 16);
			__builtin_memcpy(dk.pod, &ip->daddr, 16);
			__builtin_memcpy(client, &in->saddr, 16);
			pod = 1;
		}
	} else {
		return TCX_NEXT;
	}
	if (pod) {
		/* The inner ports, still behind the outer header. */
		__be16 *ports = hdr_ptr(skb, olen + l4off, 4);
		struct xl_dsr_target *tp;

		if (!ports)
			return TCX_NEXT;
		dk.port = ports[1];
		cport = ports[0];
		tp = bpf_map_lookup_elem(&xl_dsr, &dk);
		/* Not a DSR backend of that VIP port: untouched. */
		if (!tp)
			return TCX_NEXT;
		t = *tp;
	}
	/* GRO on the link (prepareBackendNode) merges IPIP TCP segments (ipip_gro_receive), so one skb
	 * here may be several segments (xdp-lb-traffic's 200 KB upload: 177 frames from the LB, 47
	 * skbs here). FIXED_GSO keeps gso_size, the inner MSS: without it bpf_skb_net_shrink
	 * (net/core/filter.c) grows it by the bytes removed, and a segment re-split by it can exceed
	 * the MSS. The packet is then delivered locally (the pod, or the VIP on lo). */
	if (bpf_skb_adjust_room(skb, -olen, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO)) {
		count(XL_DROP_ERR);
		return TCX_DROP;
	}
	if (pod) {
		if (dsr_to_pod(skb, &dk, &t, client, cport, l4off)) {
			count(XL_DROP_DSR);
			return TCX_DROP;
		}
		count(XL_DSR_POD);
		return TCX_NEXT;
	}
	count(XL_DECAP);
	return TCX_NEXT;
}

#endif /* LAB_XL_DECAP_H */
