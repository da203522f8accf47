// SPDX-License-Identifier: GPL-2.0
/* nkctl: attach, detach and query BPF programs on a netkit device's primary or peer
 * hook (bpf_mprog), which bpftool 7.5 cannot attach. Raw bpf(2) calls, no libbpf, so
 * it builds statically against any linux-libc-dev and runs in the lab's guests.
 *
 *   nkctl attach primary|peer DEV PINNED_PROG
 *   nkctl attach tcx-ingress|tcx-egress DEV PINNED_PROG   tcx (same bpf_mprog calls), put first
 *                                    on the hook (BPF_F_BEFORE), which bpftool 7.5 cannot
 *   nkctl detach primary|peer DEV PINNED_PROG
 *   nkctl query  primary|peer DEV
 *   nkctl batch                      the commands above, one per line on stdin (without
 *                                    "nkctl"): a node's pods in one process, not one each
 *
 * Prints one JSON object per command; on failure {"error":"EACCES","errno":13,...} and
 * exit 1 (in batch mode: the remaining lines still run), so a check can show the
 * kernel's own answer. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

/* enum bpf_attach_type values of include/uapi/linux/bpf.h since 6.7; numeric so that
 * older headers build too. */
#define NK_PRIMARY 54
#define NK_PEER 55
/* BPF_TCX_INGRESS, BPF_TCX_EGRESS (6.6) and BPF_F_BEFORE without a relative program:
 * attach at the head of the hook (kernel/bpf/mprog.c bpf_mprog_attach). */
#define TCX_INGRESS 46
#define TCX_EGRESS 47
#define F_BEFORE (1U << 3)

static const char *errname(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "E?";
	}
}

static int fail(const char *what, int e)
{
	printf("{\"error\":\"%s\",\"errno\":%d,\"op\":\"%s\",\"message\":\"%s\"}\n", errname(e), e, what, strerror(e));
	return 1;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int obj_get(const char *path)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.pathname = (unsigned long)path;
	return (int)sys_bpf(BPF_OBJ_GET, &a);
}

#define USAGE "usage: nkctl attach|detach primary|peer|tcx-ingress|tcx-egress DEV PINNED_PROG | nkctl query primary|peer|tcx-ingress|tcx-egress DEV | nkctl batch\n"

/* One command, argv[0] being its verb's predecessor as in main's argv: 0, 1 on failure, 2 on bad usage. */
static int run(int argc, char **argv)
{
	union bpf_attr a;
	unsigned int ifindex, type;
	__u32 ids[64];

	if (argc < 4) {
		fprintf(stderr, USAGE);
		return 2;
	}
	if (!strcmp(argv[2], "primary"))
		type = NK_PRIMARY;
	else if (!strcmp(argv[2], "peer"))
		type = NK_PEER;
	else if (!strcmp(argv[2], "tcx-ingress"))
		type = TCX_INGRESS;
	else if (!strcmp(argv[2], "tcx-egress"))
		type = TCX_EGRESS;
	else {
		fprintf(stderr, USAGE);
		return 2;
	}
	ifindex = if_nametoindex(argv[3]);
	if (!ifindex)
		return fail("if_nametoindex", errno);
	memset(&a, 0, sizeof(a));

	if (!strcmp(argv[1], "query")) {
		a.query.target_fd = ifindex; /* target_ifindex in 6.6+ headers: same field */
		a.query.attach_type = type;
		a.query.prog_ids = (unsigned long)ids;
		a.query.prog_cnt = 64;
		if (sys_bpf(BPF_PROG_QUERY, &a))
			return fail("query", errno);
		printf("{\"dev\":\"%s\",\"ifindex\":%u,\"hook\":\"%s\",\"count\":%u,\"prog_ids\":[", argv[3], ifindex, argv[2], a.query.prog_cnt);
		for (unsigned int i = 0; i < a.query.prog_cnt && i < 64; i++)
			printf("%s%u", i ? "," : "", ids[i]);
		printf("]}\n");
		return 0;
	}
	if (argc < 5)
		return fail("usage", EINVAL);
	int fd = obj_get(argv[4]), rc = 0;
	if (fd < 0)
		return fail("obj_get", errno);
	a.target_fd = ifindex;
	a.attach_bpf_fd = fd;
	a.attach_type = type;
	if (type == TCX_INGRESS || type == TCX_EGRESS)
		a.attach_flags = !strcmp(argv[1], "attach") ? F_BEFORE : 0;
	if (!strcmp(argv[1], "attach"))
		rc = sys_bpf(BPF_PROG_ATTACH, &a) ? fail("attach", errno) : 0;
	else if (!strcmp(argv[1], "detach"))
		rc = sys_bpf(BPF_PROG_DETACH, &a) ? fail("detach", errno) : 0;
	else
		rc = fail("usage", EINVAL);
	close(fd);
	if (rc)
		return rc;
	printf("{\"dev\":\"%s\",\"ifindex\":%u,\"hook\":\"%s\",\"%s\":\"%s\"}\n", argv[3], ifindex, argv[2], argv[1], argv[4]);
	return 0;
}

int main(int argc, char **argv)
{
	char line[1024];
	int worst = 0;

	if (argc != 2 || strcmp(argv[1], "batch"))
		return run(argc, argv);
	while (fgets(line, sizeof(line), stdin)) {
		char *args[8], *save;
		int n = 1, rc;

		args[0] = argv[0];
		for (char *t = strtok_r(line, " \t\n", &save); t && n < 8; t = strtok_r(NULL, " \t\n", &save))
			args[n++] = t;
		if (n == 1)
			continue;
		rc = run(n, args);
		if (rc > worst)
			worst = rc;
	}
	return worst;
}
