// SPDX-License-Identifier: GPL-2.0
/* Records the Ethernet addresses of the TCP frames a device receives, so a test can
 * see which MACs the host routing wrote (the IP stack of a pod reached through
 * bpf_redirect_peer never looks at them again: skb_do_redirect keeps pkt_type). */
#include "common.h"

struct mac_pair {
	__u8 smac[6];
	__u8 dmac[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct mac_pair);
	__type(value, __u64);
} l2_seen SEC(".maps");

SEC_INGRESS
int probe_l2(struct __sk_buff *skb)
{
	struct ethhdr *eth = hdr_ptr(skb, 0, ETH_HLEN);
	struct mac_pair key;
	__u64 one = 1, *v;
	__u8 proto;

	if (!eth)
		return TCX_NEXT;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip)
			return TCX_NEXT;
		proto = ip->protocol;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));

		if (!ip6)
			return TCX_NEXT;
		proto = ip6->nexthdr;
	} else {
		return TCX_NEXT;
	}
	if (proto != 6)	/* IPPROTO_TCP */
		return TCX_NEXT;
	__builtin_memcpy(key.smac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(key.dmac, eth->h_dest, ETH_ALEN);
	v = bpf_map_lookup_elem(&l2_seen, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&l2_seen, &key, &one, BPF_NOEXIST);
	return TCX_NEXT;
}

char _license[] SEC("license") = "GPL";
