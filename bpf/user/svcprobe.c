// SPDX-License-Identifier: GPL-2.0
/* svcprobe: the client and server of the service checks, as one static binary that
 * runs in a pod's namespace and cgroup on this machine and in the lab's guests (which
 * have no Node). One process makes N attempts, timing each syscall itself, so a figure
 * is the kernel's, not a process start's.
 *
 *   svcprobe serve NAME PORT/tcp|udp...   answer every TCP connection and UDP datagram
 *                                          with "NAME ADDR PORT", the source its socket saw
 *                                          (dual-stack sockets); "ready" once bound, then per
 *                                          client that source again:
 *                                          {"seen":"10.255.1.1","port":40000,"proto":"tcp"}
 *   svcprobe tcp  ADDR PORT N TIMEOUT_MS  N connects: errno, connect time, getpeername, reply
 *   svcprobe udp  ADDR PORT N TIMEOUT_MS  N sendto on an unconnected socket: errno, time,
 *                                          the reply's source (recvfrom), reply
 *   svcprobe udpc ADDR PORT N TIMEOUT_MS  N connected UDP sockets: connect, send, getpeername, reply
 *   svcprobe tcp|udp|udpc ADDR PORT N TIMEOUT_MS DEV SRC SPORT   the same, each socket bound
 *                                          to device DEV (SO_BINDTODEVICE) and to SRC:SPORT+i
 *                                          ('-' and 0: none), so a 5-tuple can be sent again
 *                                          and through a chosen next hop
 *   svcprobe hold ADDR PORT NAME INTERVAL_MS MAX_MS   connect until backend NAME answers, then
 *                                          keep that connection exchanging until SIGTERM
 *                                          (servers keep TCP connections open and answer
 *                                          each message with NAME)
 *
 * One JSON object per attempt and line, the answer split into the server's name (reply) and
 * the source it saw (seen, seenPort: "" and 0 when the answer had none), and the port the
 * attempt's socket had (localPort):
 *   {"i":0,"op":"tcp","errno":"","us":52,"peer":"10.96.0.10","peerPort":80,"reply":"web",
 *    "seen":"10.255.1.1","seenPort":40000,"localPort":40000} */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 16
/* An answer: a name, a space, an address (INET6_ADDRSTRLEN), a space and a port. */
#define ANSWER_MAX 160
/* Listening sockets and the TCP connections a server keeps open. */
#define MAX_POLL 1024

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "";

	return n ? n : "E?";
}

/* ADDR:PORT into a sockaddr of its own family. */
static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	return -1;
}

/* "addr", port of a sockaddr (IPv4-mapped IPv6 shown as IPv4). */
static void show_addr(const struct sockaddr_storage *ss, char *buf, size_t n, int *port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	buf[0] = 0;
	*port = 0;
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, buf, n);
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, n);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, n);
		*port = ntohs(s6->sin6_port);
	}
}

/* Keep only printable characters that need no JSON escaping. */
static void clean(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			*s = '?';
}

/* Split an answer "NAME ADDR PORT" in place: *seen and *port from its last two words (a name
 * may hold spaces), the name left in ans; an answer without them stays whole (seen "", 0). */
static void split_answer(char *ans, char *seen, size_t n, int *port)
{
	char *sp = strrchr(ans, ' '), *sa;

	seen[0] = 0;
	*port = 0;
	if (!sp || sp == ans)
		return;
	*sp = 0;
	sa = strrchr(ans, ' ');
	if (!sa || sa == ans) {
		*sp = ' ';
		return;
	}
	*sa = 0;
	snprintf(seen, n, "%s", sa + 1);
	*port = atoi(sp + 1);
}

/* The port a socket is bound to (getsockname), 0 when it has none. */
static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];
	int port = 0;

	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		show_addr(&ss, a, sizeof(a), &port);
	return port;
}

static void emit(int i, const char *op, int err, long long us, const struct sockaddr_storage *peer, const char *reply,
		 const char *stage, int lport)
{
	char a[INET6_ADDRSTRLEN] = "", s[INET6_ADDRSTRLEN] = "";
	int port = 0, sport = 0;
	char r[ANSWER_MAX] = "";

	if (peer)
		show_addr(peer, a, sizeof(a), &port);
	if (reply) {
		snprintf(r, sizeof(r), "%s", reply);
		r[strcspn(r, "\r\n")] = 0;
		split_answer(r, s, sizeof(s), &sport);
		r[64] = 0;
		clean(r);
		clean(s);
	}
	printf("{\"i\":%d,\"op\":\"%s\",\"errno\":\"%s\",\"stage\":\"%s\",\"us\":%lld,\"peer\":\"%s\",\"peerPort\":%d,\"reply\":\"%s\","
	       "\"seen\":\"%s\",\"seenPort\":%d,\"localPort\":%d}\n",
	       i, op, ename(err), stage, us, a, port, r, s, sport, lport);
	fflush(stdout);
}

/* Wait for fd to be readable or writable; 0 on time out. */
static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, timeout_ms);
}

static int read_reply(int fd, char *buf, size_t n, int timeout_ms, struct sockaddr_storage *from)
{
	socklen_t fl = sizeof(*from);
	ssize_t r;

	if (wait_fd(fd, POLLIN, timeout_ms) <= 0)
		return ETIMEDOUT;
	r = recvfrom(fd, buf, n - 1, 0, (struct sockaddr *)from, from ? &fl : NULL);
	if (r < 0)
		return errno;
	buf[r] = 0;
	return 0;
}

/* Where each attempt's socket is bound: a device, and a source address and first port. */
static const char *bind_dev;
static struct sockaddr_storage bind_src;
static socklen_t bind_len;
static int bind_port;

/* Bind attempt i's socket as asked; an errno when the kernel refuses. */
static int bind_attempt(int fd, int i)
{
	if (bind_dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, bind_dev, strlen(bind_dev)) < 0)
		return errno;
	if (!bind_len)
		return 0;
	if (bind_src.ss_family == AF_INET)
		((struct sockaddr_in *)&bind_src)->sin_port = htons(bind_port ? bind_port + i : 0);
	else
		((struct sockaddr_in6 *)&bind_src)->sin6_port = htons(bind_port ? bind_port + i : 0);
	return bind(fd, (struct sockaddr *)&bind_src, bind_len) < 0 ? errno : 0;
}

static void one_tcp(int i, struct sockaddr_storage *dst, socklen_t dl, int timeout_ms)
{
	int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	char buf[ANSWER_MAX] = "";
	long long t0 = now_us(), us;
	int err = bind_attempt(fd, i);

	if (err) {
		emit(i, "tcp", err, 0, NULL, NULL, "bind", local_port(fd));
		close(fd);
		return;
	}
	if (connect(fd, (struct sockaddr *)dst, dl) < 0) {
		err = errno;
		if (err == EINPROGRESS) {
			socklen_t el = sizeof(err);

			err = wait_fd(fd, POLLOUT, timeout_ms) > 0 ? 0 : ETIMEDOUT;
			if (!err)
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		}
	}
	us = now_us() - t0;
	if (err) {
		emit(i, "tcp", err, us, NULL, NULL, "connect", local_port(fd));
		close(fd);
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
		err = errno;
		emit(i, "tcp", err, us, NULL, NULL, "getpeername", local_port(fd));
		close(fd);
		return;
	}
	err = read_reply(fd, buf, sizeof(buf), timeout_ms, NULL);
	emit(i, "tcp", err, us, &peer, buf, err ? "reply" : "done", local_port(fd));
	close(fd);
}

static void one_udp(int i, struct sockaddr_storage *dst, socklen_t dl, int timeout_ms, int connected)
{
	int fd = socket(dst->ss_family, SOCK_DGRAM, 0);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	const char *op = connected ? "udpc" : "udp";
	char buf[ANSWER_MAX] = "";
	long long t0 = now_us(), us;
	int err = bind_attempt(fd, i), r;

	if (err) {
		emit(i, op, err, 0, NULL, NULL, "bind", local_port(fd));
		close(fd);
		return;
	}
	if (connected) {
		r = connect(fd, (struct sockaddr *)dst, dl);
		if (r == 0)
			r = send(fd, "?", 1, 0);
	} else {
		r = sendto(fd, "?", 1, 0, (struct sockaddr *)dst, dl);
	}
	us = now_us() - t0;
	if (r < 0) {
		err = errno;
		emit(i, op, err, us, NULL, NULL, connected ? "connect" : "sendto", local_port(fd));
		close(fd);
		return;
	}
	err = read_reply(fd, buf, sizeof(buf), timeout_ms, &peer);
	if (connected && !err && getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
		err = errno;
	emit(i, op, err, us, err ? NULL : &peer, buf, err ? "reply" : "done", local_port(fd));
	close(fd);
}

static volatile sig_atomic_t stop_hold;

static void on_term(int sig)
{
	(void)sig;
	stop_hold = 1;
}

/* Read up to a newline (the server's answer), within timeout_ms. */
static int read_line(int fd, char *buf, size_t n, int timeout_ms)
{
	size_t got = 0;

	while (got < n - 1) {
		ssize_t r;

		if (wait_fd(fd, POLLIN, timeout_ms) <= 0)
			return ETIMEDOUT;
		r = read(fd, buf + got, 1);
		if (r < 0)
			return errno;
		if (r == 0)
			return ECONNRESET;
		if (buf[got] == '\n')
			break;
		got++;
	}
	buf[got] = 0;
	return 0;
}

/* Whether an answer ("NAME ADDR PORT") came from the server named want. */
static int answered_by(const char *answer, const char *want)
{
	char a[ANSWER_MAX], seen[INET6_ADDRSTRLEN];
	int port;

	snprintf(a, sizeof(a), "%s", answer);
	split_answer(a, seen, sizeof(seen), &port);
	return !strcmp(a, want);
}

/*
 * Connect until a connection lands on the backend named WANT (others are closed), then
 * keep it: one message and its answer every interval_ms, until SIGTERM (one last
 * exchange after it, stage "final") or max_ms. Line 0 (stage "held") is the pick.
 */
static int hold(struct sockaddr_storage *dst, socklen_t dl, const char *want, int interval_ms, int max_ms)
{
	struct sigaction sa = { .sa_handler = on_term };
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	char buf[ANSWER_MAX] = "";
	long long start, t0;
	int fd = -1, err = 0;

	sigaction(SIGTERM, &sa, NULL);
	for (int tries = 0; tries < 64 && fd < 0; tries++) {
		fd = socket(dst->ss_family, SOCK_STREAM, 0);
		t0 = now_us();
		if (connect(fd, (struct sockaddr *)dst, dl) < 0) {
			err = errno;
			emit(tries, "hold", err, now_us() - t0, NULL, NULL, "connect", local_port(fd));
			close(fd);
			return 1;
		}
		err = read_line(fd, buf, sizeof(buf), 1000);
		if (err || !answered_by(buf, want)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		emit(0, "hold", err ? err : ESRCH, 0, NULL, buf, "pick", 0);
		return 1;
	}
	getpeername(fd, (struct sockaddr *)&peer, &pl);
	emit(0, "hold", 0, 0, &peer, buf, "held", local_port(fd));
	start = now_us();
	for (int i = 1;; i++) {
		struct timespec ts = { .tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000L };
		int last;

		nanosleep(&ts, NULL);
		last = stop_hold || now_us() - start > (long long)max_ms * 1000;
		buf[0] = 0;
		t0 = now_us();
		err = send(fd, "?", 1, MSG_NOSIGNAL) < 0 ? errno : read_line(fd, buf, sizeof(buf), 1000);
		emit(i, "hold", err, now_us() - t0, &peer, buf, err ? "reply" : last ? "final" : "done", local_port(fd));
		if (err || last)
			break;
	}
	close(fd);
	return err ? 1 : 0;
}

static int listen_on(int port, int type)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
	int fd = socket(AF_INET6, type, 0), off = 0, on = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The source a server saw (after NAT: svc-nodeport judges the SNAT by it). */
static void seen(const struct sockaddr_storage *from, const char *proto)
{
	char a[INET6_ADDRSTRLEN];
	int port;

	show_addr(from, a, sizeof(a), &port);
	printf("{\"seen\":\"%s\",\"port\":%d,\"proto\":\"%s\"}\n", a, port, proto);
	fflush(stdout);
}

/* The answer to a client whose source the server's socket saw as *from: "NAME ADDR PORT",
 * with a newline for TCP (a reader never sees it without its newline: one write). */
static int answer(char *buf, size_t n, const char *name, const struct sockaddr_storage *from, int newline)
{
	char a[INET6_ADDRSTRLEN];
	int port, len;

	show_addr(from, a, sizeof(a), &port);
	len = snprintf(buf, n, "%.64s %s %d%s", name, a, port, newline ? "\n" : "");
	return len < (int)n ? len : (int)n - 1;
}

static int serve(const char *name, int n, char **specs)
{
	struct pollfd p[MAX_POLL];
	int nc = 0;
	int types[MAX_LISTEN];
	char line[ANSWER_MAX];

	if (n > MAX_LISTEN)
		n = MAX_LISTEN;
	for (int k = 0; k < n; k++) {
		int port = atoi(specs[k]);
		const char *proto = strchr(specs[k], '/');

		types[k] = proto && !strcmp(proto + 1, "udp") ? SOCK_DGRAM : SOCK_STREAM;
		p[k].fd = listen_on(port, types[k]);
		p[k].events = POLLIN;
		if (p[k].fd < 0) {
			fprintf(stderr, "svcprobe: cannot listen on %s: %s\n", specs[k], strerror(errno));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(p, n + nc, -1) < 0 && errno != EINTR)
			return 1;
		/* Open connections: a message gets the name back; EOF or an error closes. */
		for (int k = n; k < n + nc; k++) {
			char b[64];

			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (read(p[k].fd, b, sizeof(b)) > 0) {
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);

				if (getpeername(p[k].fd, (struct sockaddr *)&from, &fl) < 0)
					memset(&from, 0, sizeof(from));
				(void)!write(p[k].fd, line, answer(line, sizeof(line), name, &from, 1));
				continue;
			}
			close(p[k].fd);
			p[k] = p[n + nc - 1];
			nc--;
			k--;
		}
		for (int k = 0; k < n; k++) {
			if (!(p[k].revents & POLLIN))
				continue;
			if (types[k] == SOCK_STREAM) {
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				int c = accept(p[k].fd, (struct sockaddr *)&from, &fl);

				if (c >= 0) {
					seen(&from, "tcp");
					(void)!write(c, line, answer(line, sizeof(line), name, &from, 1));
					/* Kept open, answering each message (svcprobe hold), while there is room. */
					if (n + nc < MAX_POLL) {
						p[n + nc].fd = c;
						p[n + nc].events = POLLIN;
						p[n + nc].revents = 0;
						nc++;
					} else {
						close(c);
					}
				}
			} else {
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				char b[64];

				if (recvfrom(p[k].fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl) >= 0) {
					sendto(p[k].fd, line, answer(line, sizeof(line), name, &from, 0), 0, (struct sockaddr *)&from, fl);
					seen(&from, "udp");
				}
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage dst;
	socklen_t dl;

	if (argc >= 4 && !strcmp(argv[1], "serve"))
		return serve(argv[2], argc - 3, argv + 3);
	if (argc == 7 && !strcmp(argv[1], "hold") && parse_addr(argv[2], atoi(argv[3]), &dst, &dl) >= 0)
		return hold(&dst, dl, argv[4], atoi(argv[5]), atoi(argv[6]));
	if ((argc != 6 && argc != 9) || parse_addr(argv[2], atoi(argv[3]), &dst, &dl) < 0 ||
	    (argc == 9 && strcmp(argv[7], "-") && parse_addr(argv[7], 0, &bind_src, &bind_len) != dst.ss_family)) {
		fprintf(stderr, "usage: svcprobe serve NAME PORT/tcp|udp... | tcp|udp|udpc ADDR PORT N TIMEOUT_MS [DEV SRC SPORT]"
				" | hold ADDR PORT NAME INTERVAL_MS MAX_MS\n");
		return 2;
	}
	if (argc == 9) {
		bind_dev = strcmp(argv[6], "-") ? argv[6] : NULL;
		bind_port = atoi(argv[8]);
	}
	for (int i = 0, n = atoi(argv[4]), t = atoi(argv[5]); i < n; i++) {
		if (!strcmp(argv[1], "tcp"))
			one_tcp(i, &dst, dl, t);
		else if (!strcmp(argv[1], "udp"))
			one_udp(i, &dst, dl, t, 0);
		else if (!strcmp(argv[1], "udpc"))
			one_udp(i, &dst, dl, t, 1);
		else
			return 2;
	}
	return 0;
}
