// SPDX-License-Identifier: GPL-2.0
/* DSR at a backend's node: xl_decap (include/xl_decap.h) with only the maps it needs, so a node
 * that holds DSR backends does not carry the LB's conntrack and backend maps (about 26 MB of
 * preallocated entries in xdp_lb.o). xl_cfg and xl_counters are xdp_lb.c's own (include/xl_base.h),
 * so the same readers serve both objects. */
#include "xl_decap.h"

char _license[] SEC("license") = "GPL";
