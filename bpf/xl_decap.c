// SPDX-License-Identifier: GPL-2.0
/* DSR at a backend's node: xl_decap (include/xl_decap.h) with only the maps it needs, so a node
 * that holds DSR backends does not carry the LB's conntrack and backend maps (about 26 MB of
 * preallocated entries in xdp_lb.o). xl_cfg and xl_counters keep xdp_lb.c's layout, so the same
 * readers serve both objects. */
#include "common.h"
#include "xdp_lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xl_cfg);
} xl_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XL_MAX);
	__type(key, __u32);
	__type(value, __u64);
} xl_counters SEC(".maps");

static __always_inline void count(enum xl_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&xl_counters, &key);

	if (v)
		*v += 1;
}

#include "xl_decap.h"

char _license[] SEC("license") = "GPL";
