/* What bpf/xdp_lb.c and bpf/xl_decap.c (through include/xl_decap.h) both carry: xl_cfg, xl_counters
 * and count(), one layout in both objects, so the same readers (src/checks/xdp-lb.ts xlCounters,
 * lab status) serve either. */
#ifndef LAB_XL_BASE_H
#define LAB_XL_BASE_H

#include "common.h"
#include "xdp_lb.h"

/* This node's own addresses (struct xl_cfg): the IPIP outer source and SNAT source of an LB
 * node, the outer destination xl_decap takes for the node itself. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xl_cfg);
} xl_cfg SEC(".maps");

/* What the programs did, per CPU (enum xl_counter). */
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

#endif /* LAB_XL_BASE_H */
