// SPDX-License-Identifier: GPL-2.0
/* Counts BIG TCP skbs on a tcx (or tc) hook; chains on so later programs still run. */
#include "common.h"

enum { BIG_V4, BIG_V6, ALL_V4, ALL_V6, NR_COUNTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} big_counts SEC(".maps");

/* Pre-BIG-TCP GSO ceiling: IPv4 tot_len / IPv6 payload_len are 16-bit fields. */
#define GSO_LEGACY_MAX	65535

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&big_counts, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC_EGRESS
int count_big(struct __sk_buff *skb)
{
	int big = skb->len > GSO_LEGACY_MAX;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		count(ALL_V4);
		if (big)
			count(BIG_V4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		count(ALL_V6);
		if (big)
			count(BIG_V6);
	}
	return TCX_NEXT;
}

char _license[] SEC("license") = "GPL";
