/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The service maps of socket-LB (sock_lb.c), which tc NodePort (nodeport.c) reuses by pin:
 * one definition for both objects, because a pinned map is reused only when its type, key,
 * value and max_entries match the object's definition (libbpf: map_is_reuse_compat), and
 * two copies could drift apart. Layouts in sock_lb.h.
 */
#ifndef LAB_SVC_MAPS_H
#define LAB_SVC_MAPS_H

#include <bpf/bpf_helpers.h>
#include "sock_lb.h"

/* Frontends (ClusterIP, port, proto, rev 0) and their backend slots (rev, slot). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
} services SEC(".maps");

/* Backends by id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

#endif /* LAB_SVC_MAPS_H */
