/* Shared includes and helpers for the lab's tc/tcx programs. */
#ifndef LAB_COMMON_H
#define LAB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Older uapi headers lack enum tcx_action_base (added in 6.6); enum constants are
 * invisible to #ifndef, so these macros shadow the enum with identical values. */
/* Sections: tcx attach points (6.6+), or with -DDPL_TC a plain tc classifier for
 * kernels without tcx, attached through clsact + cls_bpf direct-action. There
 * TCX_NEXT (-1) is TC_ACT_UNSPEC: "no verdict", so the packet continues. */
#ifdef DPL_TC
#define SEC_INGRESS SEC("tc")
#define SEC_EGRESS SEC("tc")
#else
#define SEC_INGRESS SEC("tcx/ingress")
#define SEC_EGRESS SEC("tcx/egress")
#endif

#ifndef TCX_NEXT
#define TCX_NEXT	-1
#define TCX_PASS	0
#define TCX_DROP	2
#define TCX_REDIRECT	7
#endif

/* From <sys/socket.h>, which is not usable with -target bpf. */
#ifndef AF_INET
#define AF_INET		2
#endif
#ifndef AF_INET6
#define AF_INET6	10
#endif

#define IP_CSUM_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, check))

/* Bounds-checked pointer to a header at offset off; NULL if the packet is too short. */
static __always_inline void *hdr_ptr(struct __sk_buff *skb, __u32 off, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + off + len > data_end)
		return NULL;
	return data + off;
}

#endif /* LAB_COMMON_H */
