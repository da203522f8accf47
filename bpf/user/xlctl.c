// SPDX-License-Identifier: GPL-2.0
/* xlctl: writes and reads the XDP load balancer's Maglev tables (bpf/xdp_lb.c), which
 * bpftool cannot carry: a batch line holds about 4 KB of value bytes
 * (tools/bpf/bpftool/main.c BATCH_LINE_LEN_MAX, BATCH_ARG_NB_MAX) and a table of 16381
 * cells is 64 KB. Raw bpf(2) calls, no libbpf, static: runs in the lab's guests too.
 *
 *   xlctl PINNED_OUTER    then one command per line on stdin, many services per process:
 *     set SVC M ID0 ... ID(M-1)   a fresh inner map holding the table, then outer[SVC] = it:
 *                                 a reader sees the old table or the new one, never a mix
 *                                 (Cilium pkg/loadbalancer/maps UpdateMaglev)
 *     del SVC                     the service has no table (the program drops its packets)
 *     get SVC M                   the table's first M cells as read back from the kernel
 *
 * Prints one JSON object per command; a failed command prints {"error":..,"errno":..}, the
 * others still run, and the exit status is 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include "../include/xdp_lb.h"

static const char *errname(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case E2BIG: return "E2BIG";
	case ENOMEM: return "ENOMEM";
	default: return "E?";
	}
}

static int fail(const char *op, int e)
{
	printf("{\"error\":\"%s\",\"errno\":%d,\"op\":\"%s\",\"message\":\"%s\"}\n", errname(e), e, op, strerror(e));
	return 1;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int update(int fd, const void *key, const void *value)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (unsigned long)key;
	a.value = (unsigned long)value;
	a.flags = BPF_ANY;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static int lookup(int fd, const void *key, void *value)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (unsigned long)key;
	a.value = (unsigned long)value;
	return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static __u32 table[XL_LUT_MAX];

/* One stdin line; 0 ok, 1 failed, 2 bad usage. */
static int run(int outer, char *line)
{
	char *save = NULL, *verb = strtok_r(line, " \t\n", &save), *tok;
	union bpf_attr a;
	__u32 svc, m, i, zero = 0, id;
	int inner;

	if (!verb)
		return 0;
	tok = strtok_r(NULL, " \t\n", &save);
	if (!tok)
		return 2;
	svc = (__u32)strtoul(tok, NULL, 10);
	if (!strcmp(verb, "del")) {
		memset(&a, 0, sizeof(a));
		a.map_fd = outer;
		a.key = (unsigned long)&svc;
		if (sys_bpf(BPF_MAP_DELETE_ELEM, &a) && errno != ENOENT)
			return fail("del", errno);
		printf("{\"op\":\"del\",\"svc\":%u}\n", svc);
		return 0;
	}
	tok = strtok_r(NULL, " \t\n", &save);
	if (!tok)
		return 2;
	m = (__u32)strtoul(tok, NULL, 10);
	if (m == 0 || m > XL_LUT_MAX)
		return 2;
	if (!strcmp(verb, "get")) {
		if (lookup(outer, &svc, &id))
			return fail("get", errno);
		memset(&a, 0, sizeof(a));
		a.map_id = id;
		inner = (int)sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
		if (inner < 0)
			return fail("get", errno);
		if (lookup(inner, &zero, table)) {
			close(inner);
			return fail("get", errno);
		}
		close(inner);
		printf("{\"op\":\"get\",\"svc\":%u,\"map_id\":%u,\"ids\":[", svc, id);
		for (i = 0; i < m; i++)
			printf(i ? ",%u" : "%u", table[i]);
		printf("]}\n");
		return 0;
	}
	if (strcmp(verb, "set"))
		return 2;
	memset(table, 0, sizeof(table));
	for (i = 0; i < m; i++) {
		tok = strtok_r(NULL, " \t\n", &save);
		if (!tok)
			return 2;
		table[i] = (__u32)strtoul(tok, NULL, 10);
	}
	if (strtok_r(NULL, " \t\n", &save))
		return 2;
	/* Must equal the program's inner template (kernel/bpf/map_in_map.c bpf_map_meta_equal). */
	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = sizeof(table);
	a.max_entries = 1;
	inner = (int)sys_bpf(BPF_MAP_CREATE, &a);
	if (inner < 0)
		return fail("create", errno);
	if (update(inner, &zero, table)) {
		close(inner);
		return fail("write", errno);
	}
	if (update(outer, &svc, &inner)) {
		close(inner);
		return fail("swap", errno);
	}
	close(inner);
	printf("{\"op\":\"set\",\"svc\":%u,\"size\":%u}\n", svc, m);
	return 0;
}

int main(int argc, char **argv)
{
	union bpf_attr a;
	char *line = NULL;
	size_t cap = 0;
	int outer, rc = 0, r;

	if (argc != 2) {
		fprintf(stderr, "usage: xlctl PINNED_OUTER < commands (set SVC M IDS... | del SVC | get SVC M)\n");
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.pathname = (unsigned long)argv[1];
	outer = (int)sys_bpf(BPF_OBJ_GET, &a);
	if (outer < 0)
		return fail("open", errno);
	while (getline(&line, &cap, stdin) > 0) {
		r = run(outer, line);
		if (r == 2) {
			printf("{\"error\":\"usage\",\"errno\":%d,\"op\":\"parse\",\"message\":\"bad command line\"}\n", EINVAL);
			r = 1;
		}
		rc |= r;
		fflush(stdout);
	}
	free(line);
	return rc;
}
