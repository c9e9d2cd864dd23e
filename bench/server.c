/*
 * The loopback servers every path talks to: one process, one epoll
 * loop, a listener per kind.  It runs until the benchmark stops it by
 * PID, dies with its parent, and in any case ends after
 * BENCH_SERVER_LIFE_S.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Events taken per epoll_wait, and connections accepted per wake-up. */
#define SERVER_EVENTS		256
#define SERVER_ACCEPT_BATCH	64
/* Bytes an echo connection holds while its peer does not read. */
#define ECHO_PENDING_MAX	4096
/* The line source's pattern: 655 lines of 100 bytes. */
#define LINES_PATTERN		(BENCH_CHUNK / BENCH_LINE_SIZE * BENCH_LINE_SIZE)
/* Reads or writes of one stream per wake-up at most. */
#define STREAM_WRITES		16

struct sconn {
	uint8_t		 kind;	/* enum server_kind; SERVER_KINDS = free */
	uint32_t	 off;	/* source and lines: position in the pattern */
	uint16_t	 pend_off, pend_len;	/* echo: bytes not yet sent */
	bool		 want_out;	/* echo: waiting to write, not read */
	uint8_t		*pend;
};

static struct sconn	*conns;
static int		 conns_max;
/* Each pattern twice, so that a write from any offset is a full chunk. */
static uint8_t		 source_data[2 * BENCH_CHUNK];
static uint8_t		 lines_data[2 * LINES_PATTERN];
static uint8_t		 scratch[BENCH_CHUNK];

static void
drop(int fd)
{
	free(conns[fd].pend);
	memset(&conns[fd], 0, sizeof(conns[fd]));
	conns[fd].kind = SERVER_KINDS;
	close(fd);
}

static void
set_events(int ep, int fd, uint32_t events)
{
	struct epoll_event	ev = { .events = events, .data.fd = fd };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == -1)
		drop(fd);
}

static void
accept_batch(int ep, int lfd, enum server_kind kind)
{
	struct epoll_event	 ev;
	int			 fd, i;

	for (i = 0; i < SERVER_ACCEPT_BATCH; i++) {
		if ((fd = accept4(lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
			return;
		if (fd >= conns_max) {
			close(fd);
			continue;
		}
		conns[fd].kind = kind;
		ev.data.fd = fd;
		ev.events = kind == SERVER_SOURCE || kind == SERVER_LINES ?
		    EPOLLIN | EPOLLOUT : EPOLLIN;
		if (kind == SERVER_ECHO &&
		    (conns[fd].pend = malloc(ECHO_PENDING_MAX)) == NULL) {
			drop(fd);
			continue;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			drop(fd);
	}
}

/* Reads what is there; false when the connection ended. */
static bool
drain(int fd, void *buf, size_t cap, ssize_t *got)
{
	ssize_t	n = read(fd, buf, cap);

	*got = n;
	if (n > 0)
		return true;
	return n == -1 && (errno == EAGAIN || errno == EINTR);
}

static void
serve_echo(int ep, int fd, uint32_t events)
{
	struct sconn	*c = &conns[fd];
	ssize_t		 n;

	if (c->pend_len == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (!drain(fd, c->pend, ECHO_PENDING_MAX, &n)) {
			drop(fd);
			return;
		}
		if (n <= 0)
			return;
		c->pend_off = 0;
		c->pend_len = (uint16_t)n;
	}
	if (c->pend_len > 0) {
		n = write(fd, c->pend + c->pend_off, c->pend_len);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			drop(fd);
			return;
		}
		if (n > 0) {
			c->pend_off += (uint16_t)n;
			c->pend_len -= (uint16_t)n;
		}
		/* While a reply waits, stop reading: the peer's problem. */
		if (c->want_out != (c->pend_len > 0)) {
			c->want_out = c->pend_len > 0;
			set_events(ep, fd, c->want_out ? EPOLLOUT : EPOLLIN);
		}
	}
}

/* Writes the pattern of size bytes (held twice in data) without end. */
static void
serve_stream(int fd, uint32_t events, const uint8_t *data, size_t size)
{
	struct sconn	*c = &conns[fd];
	ssize_t		 n;
	int		 i;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (!drain(fd, scratch, sizeof(scratch), &n)) {
			drop(fd);
			return;
		}
	}
	for (i = 0; i < STREAM_WRITES && (events & EPOLLOUT); i++) {
		if ((n = write(fd, data + c->off, size)) == -1) {
			if (errno != EAGAIN && errno != EINTR)
				drop(fd);
			return;
		}
		c->off = (uint32_t)((c->off + (size_t)n) % size);
	}
}

static void
serve(int ep, int fd, uint32_t events)
{
	ssize_t	n;
	int	i;

	switch (conns[fd].kind) {
	case SERVER_ECHO:
		serve_echo(ep, fd, events);
		break;
	case SERVER_SINK:
	case SERVER_IDLE:
		for (i = 0; i < STREAM_WRITES; i++)
			if (!drain(fd, scratch, sizeof(scratch), &n)) {
				drop(fd);
				break;
			} else if (n <= 0)
				break;
		break;
	case SERVER_SOURCE:
		serve_stream(fd, events, source_data, BENCH_CHUNK);
		break;
	case SERVER_LINES:
		serve_stream(fd, events, lines_data, LINES_PATTERN);
		break;
	default:
		break;
	}
}

static void __attribute__((noreturn))
server_main(const int lfd[SERVER_KINDS])
{
	struct epoll_event	 ev, events[SERVER_EVENTS];
	struct rlimit		 rl;
	uint64_t		 end = now_ms() + BENCH_SERVER_LIFE_S * 1000ull;
	int			 ep, n, i, k, fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit: %s", strerror(errno));
	conns_max = (int)rl.rlim_cur;
	if ((conns = calloc((size_t)conns_max, sizeof(*conns))) == NULL)
		die("server: out of memory");
	for (i = 0; i < conns_max; i++)
		conns[i].kind = SERVER_KINDS;
	for (i = 0; i < (int)sizeof(source_data); i++)
		source_data[i] = (uint8_t)('a' + i % BENCH_CHUNK % 26);
	for (i = 0; i < (int)sizeof(lines_data); i++)
		lines_data[i] = i % BENCH_LINE_SIZE == BENCH_LINE_SIZE - 1 ?
		    '\n' : (uint8_t)('a' + i % LINES_PATTERN % 26);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	for (k = 0; k < SERVER_KINDS; k++) {
		/* Listeners are told apart from connections by data.fd < 0. */
		ev.events = EPOLLIN;
		ev.data.fd = -1 - k;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd[k], &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	while (now_ms() < end) {
		if ((n = epoll_wait(ep, events, SERVER_EVENTS, 1000)) == -1 &&
		    errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			fd = events[i].data.fd;
			if (fd < 0)
				accept_batch(ep, lfd[-1 - fd],
				    (enum server_kind)(-1 - fd));
			else
				serve(ep, fd, events[i].events);
		}
	}
	_exit(0);
}

void
servers_start(struct servers *s)
{
	int	lfd[SERVER_KINDS], k;

	for (k = 0; k < SERVER_KINDS; k++)
		lfd[k] = loopback_listen(&s->port[k]);
	if ((s->pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	/* Started before any other helper, so its die() stops nothing. */
	if (s->pid == 0)
		server_main(lfd);
	proc_track(s->pid, "servers");
	for (k = 0; k < SERVER_KINDS; k++)
		close(lfd[k]);
}
