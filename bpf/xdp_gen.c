// SPDX-License-Identifier: GPL-2.0
/* A packet generator and a packet sink in XDP, for bench/xdp-lb-pps.ts.
 *
 * xg_tx runs under BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (bpf/user/xdpgen.c):
 * it writes the frame from xg_tmpl and returns XDP_TX, which test_run turns into a
 * redirect out of the ctx's ingress device (net/bpf/test_run.c xdp_test_run_batch). It
 * rewrites the whole frame each time because test_run recycles its pages without
 * restoring their content, and the LB downstream rewrites the headers in place
 * (Documentation/bpf/bpf_prog_run.rst, "live frame mode"). The UDP source port varies per
 * frame over XG_FLOWS ports, so the LB sees many flows; the UDP checksum is 0 (none, IPv4).
 *
 * xg_sink counts what arrives by IPv4 protocol (IPIP after the LB's DSR, UDP through the
 * stack; 255 for anything not IPv4) and drops it. */
#include "common.h"

#define XG_LEN 64
#define XG_FLOWS 1024
#define XG_SPORT_OFF (ETH_HLEN + 20)

struct xg_tmpl {
	__u8 data[XG_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_tmpl);
} xg_tmpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} xg_rx SEC(".maps");

SEC("xdp")
int xg_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct xg_tmpl *t = bpf_map_lookup_elem(&xg_tmpl, &zero);
	__u16 sport;

	if (!t || data + XG_LEN > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->data, XG_LEN);
	sport = bpf_htons(40000 + bpf_get_prandom_u32() % XG_FLOWS);
	__builtin_memcpy(data + XG_SPORT_OFF, &sport, 2);
	return XDP_TX;
}

SEC("xdp")
int xg_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 key = 255;
	__u64 *n;

	if (data + ETH_HLEN + sizeof(*ip) <= end && eth->h_proto == bpf_htons(ETH_P_IP))
		key = ip->protocol;
	n = bpf_map_lookup_elem(&xg_rx, &key);
	if (n)
		*n += 1;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
