// SPDX-License-Identifier: GPL-2.0
/* An XDP program that passes every frame. virtio-net sends XDP_REDIRECTed frames
 * (ndo_xdp_xmit) only from a device that has an XDP program of its own: its XDP send
 * queues exist only then (drivers/net/virtio_net.c virtnet_xdp_xmit: "Only allow
 * ndo_xdp_xmit if XDP is loaded on dev", -ENXIO otherwise). An LB node in a VM puts this
 * on the link NICs xl_xdp redirects to (Cilium's L4LB test does the same for veth with
 * test/l4lb/bpf_xdp_veth_host.c). */
#include "common.h"

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
