// SPDX-License-Identifier: GPL-2.0
/* Bandwidth manager: Earliest Departure Time rate limiting per pod on the node's
 * uplink egress (tcx egress, or clsact egress before 6.6). The program only stamps
 * skb->tstamp; the fq qdisc under it holds each packet until that time (sch_fq
 * reads skb->tstamp as the departure time, net/sched/sch_fq.c), and since the skb
 * stays charged to its socket while fq holds it (BPF host routing never passes it
 * through ip_rcv, which would orphan it), TCP small queues throttle the sender
 * instead of a queue building up: the latency EDT buys over a shaping qdisc.
 *
 * Which pod sent a packet: its source address, looked up in edt_pods. Cilium instead
 * stores the endpoint id in skb->queue_mapping in the pod-side program and reads it
 * back (and resets it) on the native device, because there the packet may already
 * be masqueraded or encapsulated. In this lab nothing rewrites a pod's source on
 * its way to the uplink, and host routing's from_pod drops any packet whose source
 * is not the sending pod's own address (anti-spoofing), so the source identifies the
 * pod on the uplink as well, for veth and netkit pods alike, without a second
 * program on the pod path or a field repurposed. Once the lab masquerades or
 * tunnels pod traffic, this must move to a mark carried from the pod side. */
#include "common.h"
#include "bwm.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct edt_addr);
	__type(value, struct edt_id);
} edt_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct edt_id);
	__type(value, struct edt_rate);
} edt_rates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EDT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} edt_counters SEC(".maps");

#define NSEC_PER_SEC	1000000000ULL
/* One plain load or store, not torn or refetched (the kernel's READ_ONCE/WRITE_ONCE). */
#define READ_ONCE(x)		(*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v)	(*(volatile typeof(x) *)&(x) = (v))

static __always_inline void count(enum edt_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&edt_counters, &key);

	if (v)
		*v += 1;
}

/* The sending pod's aggregate id, or NULL for a packet of no limited pod. */
static __always_inline struct edt_id *pod_of(struct __sk_buff *skb)
{
	struct edt_addr key = {};

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = hdr_ptr(skb, ETH_HLEN, sizeof(*ip));

		if (!ip)
			return NULL;
		key.family = 4;
		__builtin_memcpy(key.addr, &ip->saddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = hdr_ptr(skb, ETH_HLEN, sizeof(*ip6));

		if (!ip6)
			return NULL;
		key.family = 6;
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
	} else {
		return NULL;
	}
	return bpf_map_lookup_elem(&edt_pods, &key);
}

static __always_inline struct edt_rate *rate_of(struct __sk_buff *skb)
{
	struct edt_id *id = pod_of(skb);

	return id ? bpf_map_lookup_elem(&edt_rates, id) : NULL;
}

/*
 * t_next = max(now, t_last) + wire_len * 1e9 / rate: the packet leaves when its last
 * byte would have at the pod's rate, after the pod's previous packet. A sender that
 * already paced the skb later than that (skb->tstamp, set by TCP) keeps its own time.
 * Cilium's edt_sched_departure (bpf/lib/edt.h) differs in one point: after an idle
 * period it lets the first packet go at once (t_last + delay <= max(now, tstamp)).
 * wire_len counts every segment of a GSO skb with its headers (qdisc_pkt_len).
 */
SEC_EGRESS
int edt_uplink(struct __sk_buff *skb)
{
	struct edt_rate *r = rate_of(skb);
	__u64 now, base, t_next;

	if (!r || !r->bytes_per_sec) {
		if (skb->protocol == bpf_htons(ETH_P_IP) || skb->protocol == bpf_htons(ETH_P_IPV6))
			count(EDT_UNLIMITED);
		return TCX_NEXT;
	}
	now = bpf_ktime_get_ns();
	base = READ_ONCE(r->t_last);
	if (base < now)
		base = now;
	t_next = base + (__u64)skb->wire_len * NSEC_PER_SEC / r->bytes_per_sec;
	if (skb->tstamp > t_next)
		t_next = skb->tstamp;
	/* Dropped here rather than by fq's own horizon so that t_last never runs ahead of
	 * what was sent (Cilium's reason too, bpf/lib/edt.h), and so the drop is counted. */
	if (t_next - now >= r->t_horizon_drop) {
		count(EDT_DROP_HORIZON);
		return TC_ACT_SHOT;
	}
	/* Racy across CPUs like Cilium's: a lost update costs one packet's delay. */
	WRITE_ONCE(r->t_last, t_next);
	skb->tstamp = t_next;
	count(EDT_STAMPED);
	return TCX_NEXT;
}

/*
 * The classic shaper the checks compare EDT with: an HTB class per pod on the same
 * device, classid 1:<pod id>. The same pod identification puts the packet in its
 * class: HTB takes skb->priority as the classid when its major is the qdisc's
 * handle (htb_classify, net/sched/sch_htb.c), so no tc filter is needed. A packet
 * of no limited pod keeps priority 0 and leaves through HTB's direct queue unshaped.
 */
#define HTB_MAJOR	(1U << 16)

SEC_EGRESS
int htb_classify(struct __sk_buff *skb)
{
	struct edt_id *id = pod_of(skb);

	if (id)
		skb->priority = HTB_MAJOR | (id->id & 0xffff);
	return TCX_NEXT;
}

char _license[] SEC("license") = "GPL";
