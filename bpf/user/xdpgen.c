// SPDX-License-Identifier: GPL-2.0
/* xdpgen: a packet generator from a pinned XDP program run in live-frame mode
 * (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, net/bpf/test_run.c
 * bpf_test_run_xdp_live; the kernel selftest tools/testing/selftests/bpf/xdp_trafficgen.c
 * drives it the same way through libbpf). The program runs as if a frame had arrived on
 * DEV (ctx ingress_ifindex), and its XDP_TX becomes a redirect out of DEV; with a veth
 * DEV the frames land on its peer, whose XDP program or stack then handles them. Raw
 * bpf(2), no libbpf: static, like nkctl.
 *
 *   xdpgen PINNED_PROG DEV SECONDS [LEN]     run for SECONDS (LEN-byte frames, default 64;
 *                                            the program writes their content)
 *
 * Runs in the caller's network namespace (DEV is looked up there) on the caller's CPU;
 * the receiving side's NAPI runs on that CPU too, when test_run flushes each batch of 64.
 * Prints {"frames":N,"wall_ns":W,"run_ns":R}: frames generated, the wall time, and the
 * time the kernel counted for them (test_run's duration x repeat: it pauses its timer
 * while the task is rescheduled, so R leaves out time other tasks took the CPU). */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

/* include/uapi/linux/bpf.h (5.18): frames go out for real instead of back to the caller. */
#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif
/* Frames per test_run call; test_run checks for signals and reschedules between batches. */
#define CHUNK (1U << 16)
/* Frames per batch (test_run's default, NAPI_POLL_WEIGHT; at most 256). */
#define BATCH 64

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	union bpf_attr a;
	struct xdp_md ctx;
	unsigned char frame[1500];
	unsigned long long t0, deadline, frames = 0, run_ns = 0;
	unsigned int ifindex, len = 64;
	double seconds;
	int fd;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: xdpgen PINNED_PROG DEV SECONDS [LEN]\n");
		return 2;
	}
	seconds = atof(argv[3]);
	if (argc == 5)
		len = (unsigned int)atoi(argv[4]);
	if (seconds <= 0 || len < 14 || len > sizeof(frame)) {
		fprintf(stderr, "xdpgen: SECONDS must be > 0 and LEN within 14..%zu\n", sizeof(frame));
		return 2;
	}
	ifindex = if_nametoindex(argv[2]);
	if (!ifindex) {
		fprintf(stderr, "xdpgen: no device %s in this network namespace\n", argv[2]);
		return 1;
	}
	memset(&a, 0, sizeof(a));
	a.pathname = (unsigned long)argv[1];
	fd = (int)sys_bpf(BPF_OBJ_GET, &a);
	if (fd < 0) {
		fprintf(stderr, "xdpgen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(frame, 0, sizeof(frame));
	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = len;
	ctx.ingress_ifindex = ifindex;
	t0 = now_ns();
	deadline = t0 + (unsigned long long)(seconds * 1e9);
	while (now_ns() < deadline) {
		memset(&a, 0, sizeof(a));
		a.test.prog_fd = fd;
		a.test.data_in = (unsigned long)frame;
		a.test.data_size_in = len;
		a.test.ctx_in = (unsigned long)&ctx;
		a.test.ctx_size_in = sizeof(ctx);
		a.test.repeat = CHUNK;
		a.test.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
		a.test.batch_size = BATCH;
		if (sys_bpf(BPF_PROG_TEST_RUN, &a)) {
			fprintf(stderr, "xdpgen: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
			return 1;
		}
		frames += CHUNK;
		run_ns += (unsigned long long)a.test.duration * CHUNK;
	}
	printf("{\"frames\":%llu,\"wall_ns\":%llu,\"run_ns\":%llu}\n", frames, now_ns() - t0, run_ns);
	return 0;
}
