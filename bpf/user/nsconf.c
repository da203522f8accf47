// SPDX-License-Identifier: GPL-2.0
/* nsconf: configure many network namespaces from one process. Reads commands on stdin,
 * one per line, enters each namespace itself (setns) and speaks rtnetlink over a raw
 * NETLINK_ROUTE socket: no libmnl or libnl, so it builds statically against any
 * linux-libc-dev and runs in the lab's guests (copied into the initramfs like nkctl).
 *
 *   ns NAME                                        setns into /run/netns/NAME
 *   link up DEV                                    set IFF_UP
 *   addrgenmode none DEV                           no automatic IPv6 link-local address
 *   addr add ADDR/LEN dev DEV [nodad]              IPv4 or IPv6
 *   route add PREFIX|default [via GW] dev DEV [scope link]
 *   sysctl KEY VALUE                               write /proc/sys/KEY (dots as slashes)
 *   show DEV                                       print {"netns","ifname","ifindex","address"} (RTM_GETLINK)
 *   netkit add DEV netns NS peer PDEV netns PNS [size N] [size4 N]
 *                                                  a netkit pair in L3 mode, the primary DEV forwarding and
 *                                                  the peer blackholing until a program is attached (Cilium's
 *                                                  peer policy), both ends with BIG TCP sizes: size sets
 *                                                  gso/gro_max_size, size4 the IPv4 ones. iproute2 cannot create
 *                                                  more than one netkit pair per process (its netkit parser
 *                                                  keeps "mode seen" in globals).
 *
 * Empty lines and lines starting with # are skipped. A failed line is reported on stderr
 * as "nsconf: line N: errno E (NAME): message: LINE" (with the kernel's extended ack
 * message when it gives one); the remaining lines still run, and the exit status is 1
 * if any line failed, 2 on a line that does not parse.
 *
 * With NSCONF_TIMES=1 in the environment it prints, at the end, how many commands of each
 * kind ran and the wall time they took (to see where bring-up time goes). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define BUF 8192
#define MAXARGS 16

/* IN6_ADDR_GEN_MODE_NONE and IFLA_INET6_ADDR_GEN_MODE of include/uapi/linux/if_link.h. */
#define GEN_MODE_NONE 1
#define INET6_GEN_MODE 8

/* IFLA_NETKIT_PEER_INFO, IFLA_NETKIT_PEER_POLICY, IFLA_NETKIT_MODE, NETKIT_L3 and NETKIT_DROP of
 * include/uapi/linux/if_link.h (6.7); IFLA_GRO_MAX_SIZE (5.19), IFLA_GSO_IPV4_MAX_SIZE and
 * IFLA_GRO_IPV4_MAX_SIZE (6.3) of the same file. Numeric so that older headers build too. */
#define NK_PEER_INFO 1
#define NK_PEER_POLICY 4
#define NK_MODE 5
#define NK_L3 1
#define NK_DROP 2
#define GRO_MAX 58
#define GSO_IPV4_MAX 63
#define GRO_IPV4_MAX 64

static int rtnl = -1;
static unsigned int seq;
static char kmsg[256];
static char netns[256];
/* The last reply to a request (RTM_NEWLINK for `show`), before its ack. */
static char reply[BUF];

struct req {
	struct nlmsghdr *h;
	char buf[BUF];
};

static void *req_init(struct req *r, int type, int flags, size_t body)
{
	memset(r->buf, 0, sizeof(r->buf));
	r->h = (struct nlmsghdr *)r->buf;
	r->h->nlmsg_len = NLMSG_LENGTH(body);
	r->h->nlmsg_type = type;
	r->h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->h->nlmsg_seq = ++seq;
	return NLMSG_DATA(r->h);
}

static struct rtattr *attr(struct req *r, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(r->buf + NLMSG_ALIGN(r->h->nlmsg_len));

	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	r->h->nlmsg_len = NLMSG_ALIGN(r->h->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

/* Bytes without an attribute header (a struct inside a nested attribute), zeroed. */
static void *raw(struct req *r, size_t len)
{
	void *p = r->buf + NLMSG_ALIGN(r->h->nlmsg_len);

	r->h->nlmsg_len = NLMSG_ALIGN(r->h->nlmsg_len) + NLMSG_ALIGN(len);
	return p;
}

static void nest_end(struct req *r, struct rtattr *a)
{
	a->rta_len = (char *)r->h + r->h->nlmsg_len - (char *)a;
}

static int open_rtnl(void)
{
	int one = 1;

	if (rtnl >= 0)
		close(rtnl);
	rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (rtnl < 0)
		return -errno;
	/* The kernel's reason in the ack, and no copy of the request echoed back. */
	setsockopt(rtnl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(rtnl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	return 0;
}

/* Send one request and wait for its ack: 0, or -errno with the extended ack message in kmsg. */
static int talk(struct req *r)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[BUF];

	kmsg[0] = 0;
	if (rtnl < 0 && open_rtnl() < 0)
		return -errno;
	if (sendto(rtnl, r->buf, r->h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(rtnl, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct nlmsgerr *e;

			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type != NLMSG_ERROR) {
				if (h->nlmsg_len <= sizeof(reply))
					memcpy(reply, h, h->nlmsg_len);
				continue;
			}
			e = NLMSG_DATA(h);
			if (e->error && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
				size_t off = NLMSG_ALIGN(sizeof(*e));
				struct rtattr *a = (struct rtattr *)((char *)e + off);
				int left = (int)h->nlmsg_len - (int)NLMSG_HDRLEN - (int)off;

				for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
					if (a->rta_type == NLMSGERR_ATTR_MSG)
						snprintf(kmsg, sizeof(kmsg), "%s", (char *)RTA_DATA(a));
			}
			return e->error;
		}
	}
}

static int ifindex(const char *dev)
{
	unsigned int i = if_nametoindex(dev);

	return i ? (int)i : -ENODEV;
}

static int do_ns(const char *name)
{
	char path[256];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		rc = -errno;
	close(fd);
	snprintf(netns, sizeof(netns), "%s", name);
	/* A netlink socket stays in the namespace it was opened in. */
	return rc ? rc : open_rtnl();
}

static int open_netns(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A device's name, namespace and BIG TCP sizes (size for IPv6 and GSO in general, size4 for IPv4; 0: the default). */
static void device_attrs(struct req *r, const char *dev, int nsfd, unsigned int size, unsigned int size4)
{
	attr(r, IFLA_IFNAME, dev, strlen(dev) + 1);
	attr(r, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
	if (size) {
		attr(r, IFLA_GSO_MAX_SIZE, &size, sizeof(size));
		attr(r, GRO_MAX, &size, sizeof(size));
	}
	if (size4) {
		attr(r, GSO_IPV4_MAX, &size4, sizeof(size4));
		attr(r, GRO_IPV4_MAX, &size4, sizeof(size4));
	}
}

static int do_netkit_add(const char *dev, const char *ns, const char *pdev, const char *pns, unsigned int size,
			 unsigned int size4)
{
	struct req r;
	struct ifinfomsg *i = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*i));
	struct rtattr *info, *data, *peer;
	__u32 mode = NK_L3, policy = NK_DROP;
	int fd = open_netns(ns), pfd = open_netns(pns), rc;

	if (fd < 0 || pfd < 0) {
		rc = -errno;
		goto out;
	}
	i->ifi_family = AF_UNSPEC;
	device_attrs(&r, dev, fd, size, size4);
	info = attr(&r, IFLA_LINKINFO, NULL, 0);
	attr(&r, IFLA_INFO_KIND, "netkit", sizeof("netkit"));
	data = attr(&r, IFLA_INFO_DATA, NULL, 0);
	attr(&r, NK_MODE, &mode, sizeof(mode));
	attr(&r, NK_PEER_POLICY, &policy, sizeof(policy));
	/* The peer: a struct ifinfomsg, then its own attributes (drivers/net/netkit.c netkit_new_link). */
	peer = attr(&r, NK_PEER_INFO, NULL, 0);
	((struct ifinfomsg *)raw(&r, sizeof(struct ifinfomsg)))->ifi_family = AF_UNSPEC;
	device_attrs(&r, pdev, pfd, size, size4);
	nest_end(&r, peer);
	nest_end(&r, data);
	nest_end(&r, info);
	rc = talk(&r);
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return rc;
}

static int do_link_up(const char *dev)
{
	struct req r;
	struct ifinfomsg *i = req_init(&r, RTM_NEWLINK, 0, sizeof(*i));
	int idx = ifindex(dev);

	if (idx < 0)
		return idx;
	i->ifi_family = AF_UNSPEC;
	i->ifi_index = idx;
	i->ifi_flags = IFF_UP;
	i->ifi_change = IFF_UP;
	return talk(&r);
}

static int do_addrgenmode_none(const char *dev)
{
	struct req r;
	struct ifinfomsg *i = req_init(&r, RTM_NEWLINK, 0, sizeof(*i));
	struct rtattr *spec, *inet6;
	unsigned char mode = GEN_MODE_NONE;
	int idx = ifindex(dev);

	if (idx < 0)
		return idx;
	i->ifi_family = AF_UNSPEC;
	i->ifi_index = idx;
	spec = attr(&r, IFLA_AF_SPEC, NULL, 0);
	inet6 = attr(&r, AF_INET6, NULL, 0);
	attr(&r, INET6_GEN_MODE, &mode, 1);
	nest_end(&r, inet6);
	nest_end(&r, spec);
	return talk(&r);
}

/* "ADDR[/LEN]" into family, bytes and prefix length (default: a host prefix). */
static int parse_prefix(const char *s, int *family, unsigned char *addr, int *len)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	char *slash;

	snprintf(tmp, sizeof(tmp), "%s", s);
	slash = strchr(tmp, '/');
	if (slash)
		*slash = 0;
	if (inet_pton(AF_INET, tmp, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, tmp, addr) == 1)
		*family = AF_INET6;
	else
		return -EINVAL;
	*len = slash ? atoi(slash + 1) : (*family == AF_INET ? 32 : 128);
	return *len < 0 || *len > (*family == AF_INET ? 32 : 128) ? -EINVAL : 0;
}

static int alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int do_addr_add(const char *prefix, const char *dev, int nodad)
{
	struct req r;
	struct ifaddrmsg *a = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(*a));
	unsigned char addr[16];
	int family, len, idx = ifindex(dev);
	unsigned int flags = nodad ? IFA_F_NODAD : 0;

	if (idx < 0)
		return idx;
	if (parse_prefix(prefix, &family, addr, &len) < 0)
		return -EINVAL;
	a->ifa_family = family;
	a->ifa_prefixlen = len;
	a->ifa_index = idx;
	a->ifa_flags = flags & 0xff;
	/* As `ip addr add` sends it: IFA_LOCAL and IFA_ADDRESS the same address. */
	attr(&r, IFA_LOCAL, addr, alen(family));
	attr(&r, IFA_ADDRESS, addr, alen(family));
	if (flags)
		attr(&r, IFA_FLAGS, &flags, sizeof(flags));
	return talk(&r);
}

static int do_route_add(const char *prefix, const char *via, const char *dev, int scope_link)
{
	struct req r;
	struct rtmsg *m = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(*m));
	unsigned char dst[16] = { 0 }, gw[16];
	int family = 0, len = 0, gwfamily, gwlen, idx = ifindex(dev);

	if (idx < 0)
		return idx;
	if (strcmp(prefix, "default") && parse_prefix(prefix, &family, dst, &len) < 0)
		return -EINVAL;
	if (via && parse_prefix(via, &gwfamily, gw, &gwlen) < 0)
		return -EINVAL;
	if (!family)
		family = via ? gwfamily : AF_INET;
	m->rtm_family = family;
	m->rtm_dst_len = len;
	m->rtm_table = RT_TABLE_MAIN;
	m->rtm_protocol = RTPROT_BOOT;
	m->rtm_type = RTN_UNICAST;
	/* iproute2's default scope (iproute_modify): link for an IPv4 route without a gateway. */
	m->rtm_scope = scope_link || (family == AF_INET && !via) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	if (len)
		attr(&r, RTA_DST, dst, alen(family));
	if (via)
		attr(&r, RTA_GATEWAY, gw, alen(gwfamily));
	attr(&r, RTA_OIF, &idx, sizeof(idx));
	return talk(&r);
}

static int do_sysctl(const char *key, const char *value)
{
	char path[512];
	size_t i, n = strlen(value);
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	for (i = strlen("/proc/sys/"); path[i]; i++)
		if (path[i] == '.')
			path[i] = '/';
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, n) != (ssize_t)n)
		rc = -errno;
	close(fd);
	return rc;
}

static int do_show(const char *dev)
{
	struct req r;
	struct ifinfomsg *i = req_init(&r, RTM_GETLINK, 0, sizeof(*i));
	struct nlmsghdr *h = (struct nlmsghdr *)reply;
	struct rtattr *a;
	unsigned char *mac = NULL;
	int idx = ifindex(dev), rc, left, n = 0;

	if (idx < 0)
		return idx;
	i->ifi_family = AF_UNSPEC;
	i->ifi_index = idx;
	memset(reply, 0, sizeof(reply));
	rc = talk(&r);
	if (rc)
		return rc;
	if (h->nlmsg_type != RTM_NEWLINK)
		return -EPROTO;
	a = IFLA_RTA((struct ifinfomsg *)NLMSG_DATA(h));
	left = IFLA_PAYLOAD(h);
	for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
		if (a->rta_type == IFLA_ADDRESS) {
			mac = RTA_DATA(a);
			n = RTA_PAYLOAD(a);
		}
	printf("{\"netns\":\"%s\",\"ifname\":\"%s\",\"ifindex\":%d,\"address\":\"", netns, dev, idx);
	for (left = 0; mac && left < n; left++)
		printf("%s%02x", left ? ":" : "", mac[left]);
	printf("\"}\n");
	return 0;
}

/* Run one split line: 0, -errno, or 1 when the line does not parse. */
static int run(int argc, char **argv)
{
	const char *via = NULL, *dev = NULL;
	int i, nodad = 0, scope_link = 0;

	if (argc == 2 && !strcmp(argv[0], "ns"))
		return do_ns(argv[1]);
	if (argc == 3 && !strcmp(argv[0], "link") && !strcmp(argv[1], "up"))
		return do_link_up(argv[2]);
	if (argc == 3 && !strcmp(argv[0], "addrgenmode") && !strcmp(argv[1], "none"))
		return do_addrgenmode_none(argv[2]);
	if (argc == 2 && !strcmp(argv[0], "show"))
		return do_show(argv[1]);
	if (argc >= 9 && !strcmp(argv[0], "netkit") && !strcmp(argv[1], "add") && !strcmp(argv[3], "netns") &&
	    !strcmp(argv[5], "peer") && !strcmp(argv[7], "netns")) {
		unsigned int size = 0, size4 = 0;

		for (i = 9; i + 1 < argc && (!strcmp(argv[i], "size") || !strcmp(argv[i], "size4")); i += 2)
			*(argv[i][4] ? &size4 : &size) = (unsigned int)strtoul(argv[i + 1], NULL, 10);
		return i == argc ? do_netkit_add(argv[2], argv[4], argv[6], argv[8], size, size4) : 1;
	}
	if (argc == 3 && !strcmp(argv[0], "sysctl"))
		return do_sysctl(argv[1], argv[2]);
	if (argc >= 5 && !strcmp(argv[0], "addr") && !strcmp(argv[1], "add") && !strcmp(argv[3], "dev")) {
		for (i = 5; i < argc; i++)
			if (!strcmp(argv[i], "nodad"))
				nodad = 1;
			else
				return 1;
		return do_addr_add(argv[2], argv[4], nodad);
	}
	if (argc >= 5 && !strcmp(argv[0], "route") && !strcmp(argv[1], "add")) {
		for (i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "via") && i + 1 < argc)
				via = argv[++i];
			else if (!strcmp(argv[i], "dev") && i + 1 < argc)
				dev = argv[++i];
			else if (!strcmp(argv[i], "scope") && i + 1 < argc && !strcmp(argv[i + 1], "link"))
				scope_link = 1, i++;
			else
				return 1;
		}
		return dev ? do_route_add(argv[2], via, dev, scope_link) : 1;
	}
	return 1;
}

/* Per command kind (its first word, and the second for addr/route/link): count and nanoseconds. */
#define KINDS 16
static struct {
	char name[24];
	long n, ns;
} times[KINDS];

static long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void account(int argc, char **argv, long ns)
{
	char name[24];
	int i;

	snprintf(name, sizeof(name), "%s%s%s", argv[0], argc > 1 && strcmp(argv[0], "ns") ? " " : "",
		 argc > 1 && strcmp(argv[0], "ns") ? argv[1] : "");
	for (i = 0; i < KINDS && times[i].name[0] && strcmp(times[i].name, name); i++)
		;
	if (i == KINDS)
		return;
	snprintf(times[i].name, sizeof(times[i].name), "%s", name);
	times[i].n++;
	times[i].ns += ns;
}

int main(void)
{
	char line[1024], copy[1024];
	int lineno = 0, failed = 0, bad = 0, timed = getenv("NSCONF_TIMES") != NULL;
	long t0 = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *argv[MAXARGS], *tok, *save;
		int argc = 0, rc;

		lineno++;
		line[strcspn(line, "\n")] = 0;
		snprintf(copy, sizeof(copy), "%s", line);
		for (tok = strtok_r(line, " \t", &save); tok && argc < MAXARGS; tok = strtok_r(NULL, " \t", &save))
			argv[argc++] = tok;
		if (!argc || argv[0][0] == '#')
			continue;
		kmsg[0] = 0;
		if (timed)
			t0 = now_ns();
		rc = run(argc, argv);
		if (timed)
			account(argc, argv, now_ns() - t0);
		if (rc == 1) {
			fprintf(stderr, "nsconf: line %d: cannot parse: %s\n", lineno, copy);
			bad = 1;
		} else if (rc < 0) {
			fprintf(stderr, "nsconf: line %d: errno %d (%s)%s%s: %s\n", lineno, -rc, strerror(-rc), kmsg[0] ? ": " : "",
				kmsg, copy);
			failed = 1;
		}
	}
	for (int i = 0; timed && i < KINDS && times[i].name[0]; i++)
		fprintf(stderr, "nsconf: %-20s %6ld in %8.3f ms\n", times[i].name, times[i].n, times[i].ns / 1e6);
	return bad ? 2 : failed;
}
