/*
 * tcpbroker-relay-floor: what a relay between a client and TCP costs
 * on this machine with no protocol at all, against direct TCP, so that
 * docs/performance.md can say what limits tcpbroker's figures and which
 * data plane shapes would pay.  Over loopback TCP, in a network
 * namespace of its own, each shape carries:
 *
 *   read     64 KiB reads from a source, MB/s (10^6 bytes a second)
 *   write    64 KiB writes into a sink, MB/s
 *   echo     64-byte round trips, median microseconds (the shapes that
 *            carry both ways)
 *   stopped  what a source sends, MiB, to a client that never reads:
 *            until its writes have not moved for 300 ms (or 1 GiB)
 *   connect  connections opened and closed a second, each opened by a
 *            request the client waits for and closed by one it does
 *            not, as tcpbroker's are (direct and copy only)
 *
 * The shapes:
 *
 *   direct    the client holds the TCP socket
 *   copy      client - Unix socket pair - relay (read/write, 1 MiB) - TCP
 *   splice    the same, the relay splicing through a 1 MiB pipe
 *   pipe      client - 1 MiB pipe - relay (splice) - TCP: a pipe handed
 *             to the client, which never holds the TCP socket
 *   sockmap   client - Unix socket pair - TCP, a BPF program moving
 *             each skb in the kernel (sockmap.c); the relay process only
 *             holds the sockets.  The client's receive buffer is
 *             --rcvbuf MiB (32)
 *
 *   tcpbroker-relay-floor [--runs N] [--seconds S] [--rcvbuf MIB]
 *
 * The shapes take turns within each round; the medians of the rounds
 * are printed with their ratio to direct.  Runs as root (the namespace,
 * and the BPF program).
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "sockmap.h"

/* What the client moves per call, as the benchmark's bulk figures. */
#define FLOOR_CHUNK	(64 * 1024)
/* The relay's reads and writes, and its pipes: bytes. */
#define FLOOR_RELAY	(1024 * 1024)
/* Most rounds, and longest measurement: seconds. */
#define FLOOR_RUNS_MAX	9
#define FLOOR_SECONDS_MAX	60
/* The sockmap client's receive buffer by default, and at most: MiB. */
#define FLOOR_RCVBUF_MIB	32
#define FLOOR_RCVBUF_MIB_MAX	256
/*
 * A source whose reader never reads stops when its writes have not
 * moved for this long (milliseconds), or when it has sent this much.
 */
#define FLOOR_STALL_QUIET_MS	300
#define FLOOR_STALL_CAP		(1024ULL * 1024 * 1024)
/* Most echo round trips timed in one measurement. */
#define FLOOR_ECHO_MAX	200000

enum shape {
	SHAPE_DIRECT, SHAPE_COPY, SHAPE_SPLICE, SHAPE_PIPE, SHAPE_SOCKMAP,
	SHAPES
};
static const char *const shape_names[SHAPES] = {
	"direct", "copy", "splice", "pipe", "sockmap"
};

/* What is measured, and what the server does for it. */
enum mode {
	MODE_READ, MODE_WRITE, MODE_ECHO, MODE_STALL, MODE_CONNECT, MODES
};
static const char *const mode_names[MODES] = {
	"read MB/s", "write MB/s", "echo p50 us", "stopped MiB", "connect /s"
};

/* --rcvbuf: bytes. */
static int	rcvbuf = FLOOR_RCVBUF_MIB << 20;

/*
 * Forks a helper (server or relay) that dies with this process, and
 * that die() stops; 0 in the child.
 */
static pid_t
helper_fork(const char *name)
{
	pid_t	pid, parent = getpid();

	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* A parent gone before the prctl() is not told of. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    getppid() != parent)
			_exit(1);
		return 0;
	}
	proc_track(pid, name);
	return pid;
}

static void
helper_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	proc_untrack(pid);
}

static void
write_all_fd(int fd, const uint8_t *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			_exit(0);		/* the other end went */
		p += n;
		len -= (size_t)n;
	}
}

/* The measuring side's write, where the other end going is a failure. */
static void
must_write(int fd, const uint8_t *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write to the relay or server: %s", n == -1 ?
			    strerror(errno) : "nothing written");
		p += n;
		len -= (size_t)n;
	}
}

/*
 * A source for a reader that never reads: sends until nothing moves,
 * and writes to report how much it got rid of.
 */
static void __attribute__((noreturn))
serve_stalled(int fd, int report)
{
	static uint8_t	buf[FLOOR_CHUNK];
	struct pollfd	pfd = { fd, POLLOUT, 0 };
	uint64_t	sent = 0;
	ssize_t		n;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		_exit(1);
	while (sent < FLOOR_STALL_CAP) {
		if ((n = write(fd, buf, sizeof(buf))) > 0) {
			sent += (uint64_t)n;
			continue;
		}
		if (n == -1 && errno != EAGAIN)
			_exit(1);
		if (poll(&pfd, 1, FLOOR_STALL_QUIET_MS) != 1)
			break;
	}
	(void)!write(report, &sent, sizeof(sent));
	for (;;)
		pause();	/* holding the connection until stopped */
}

/*
 * The TCP server: a source, a sink or an echo server, until EOF; or a
 * source that reports on report (MODE_STALL).  It starts once a byte
 * comes on go, when the client's shape is ready: a sockmap relay must
 * hold the socket before data waits on it, or the data may wait for a
 * wake-up that never comes.
 */
static pid_t
serve(int lfd, enum mode m, int report, int go)
{
	static uint8_t	buf[FLOOR_CHUNK];
	pid_t		pid;
	ssize_t		n;
	int		fd;

	if ((pid = helper_fork("server")) != 0)
		return pid;
	if (fcntl(lfd, F_SETFL, 0) == -1 ||
	    (fd = accept(lfd, NULL, NULL)) == -1 ||
	    read(go, buf, 1) != 1)
		_exit(1);
	if (m == MODE_STALL)
		serve_stalled(fd, report);
	for (;;) {
		if (m == MODE_READ)
			write_all_fd(fd, buf, sizeof(buf));
		else if ((n = read(fd, buf, sizeof(buf))) <= 0)
			_exit(0);
		else if (m == MODE_ECHO)
			write_all_fd(fd, buf, (size_t)n);
	}
}

/* Copies both ways between a and b until either end goes. */
static void __attribute__((noreturn))
relay_both(int a, int b)
{
	static uint8_t	buf[FLOOR_RELAY];
	struct pollfd	pfd[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
	ssize_t		n;
	int		i;

	for (;;) {
		if (poll(pfd, 2, -1) == -1)
			_exit(1);
		for (i = 0; i < 2; i++) {
			if (pfd[i].revents == 0)
				continue;
			if ((n = read(pfd[i].fd, buf, sizeof(buf))) <= 0)
				_exit(0);
			write_all_fd(pfd[1 - i].fd, buf, (size_t)n);
		}
	}
}

/*
 * The sockmap relay: puts the sockets in the map, says so on ready,
 * and holds them until it is stopped.
 */
static void __attribute__((noreturn))
relay_sockmap(int tcp, int relay_end, int client_end, int ready)
{
	const char	*why;

	if (sockmap_join(tcp, relay_end, client_end, &why) == -1) {
		fprintf(stderr, "sockmap: %s: %s\n", strerror(errno), why);
		_exit(1);
	}
	close(client_end);
	(void)!write(ready, "r", 1);
	close(ready);
	for (;;)
		pause();
}

/* Moves from one descriptor to another until either end goes. */
static void __attribute__((noreturn))
relay(enum shape s, int from, int to)
{
	static uint8_t	buf[FLOOR_RELAY];
	ssize_t		n;
	int		p[2];

	if (s == SHAPE_COPY) {
		while ((n = read(from, buf, sizeof(buf))) > 0)
			write_all_fd(to, buf, (size_t)n);
		_exit(0);
	}
	if (s == SHAPE_PIPE) {
		/* One end is the client's pipe: splice straight across. */
		while (splice(from, NULL, to, NULL, FLOOR_RELAY,
		    SPLICE_F_MOVE | SPLICE_F_MORE) > 0)
			;
		_exit(0);
	}
	if (pipe2(p, O_CLOEXEC) == -1 ||
	    fcntl(p[0], F_SETPIPE_SZ, FLOOR_RELAY) == -1)
		_exit(1);
	while ((n = splice(from, NULL, p[1], NULL, FLOOR_RELAY,
	    SPLICE_F_MOVE | SPLICE_F_MORE)) > 0)
		while (n > 0) {
			ssize_t	m = splice(p[0], NULL, to, NULL, (size_t)n,
			    SPLICE_F_MOVE | SPLICE_F_MORE);

			if (m <= 0)
				_exit(0);
			n -= m;
		}
	_exit(0);
}

/* The client's end for shape s: TCP itself, or the relay's far end. */
static int
client_end(enum shape s, int tcp, enum mode m, pid_t *relay_pid)
{
	bool	reading = m == MODE_READ || m == MODE_STALL;
	char	c;
	int	sv[2], ready[2];

	if (s == SHAPE_DIRECT)
		return tcp;
	if (s == SHAPE_SOCKMAP) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ==
		    -1 || pipe2(ready, O_CLOEXEC) == -1)
			die("socketpair: %s", strerror(errno));
		/*
		 * What the program moves to the client's queue counts
		 * against its receive buffer.  Past it, the kernel holds
		 * the skb and tries again a tick later: reads from a
		 * buffer under 16 MiB crawl (docs/performance.md).
		 */
		if (setsockopt(sv[0], SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		    sizeof(rcvbuf)) == -1)
			die("SO_RCVBUFFORCE: %s", strerror(errno));
		if ((*relay_pid = helper_fork("relay")) == 0) {
			close(ready[0]);
			relay_sockmap(tcp, sv[1], sv[0], ready[1]);
		}
		close(ready[1]);
		if (read(ready[0], &c, 1) != 1)
			die("the sockmap relay did not start");
		close(ready[0]);
		close(tcp);
		close(sv[1]);
		return sv[0];
	}
	if (s == SHAPE_PIPE) {
		if (pipe2(sv, O_CLOEXEC) == -1 ||
		    fcntl(sv[0], F_SETPIPE_SZ, FLOOR_RELAY) == -1)
			die("pipe: %s", strerror(errno));
		/* sv[0] is the read end, sv[1] the write end. */
	} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ==
	    -1)
		die("socketpair: %s", strerror(errno));
	if ((*relay_pid = helper_fork("relay")) == 0) {
		/* The client's end closed here, its close reaches the relay. */
		if (s == SHAPE_PIPE) {
			close(reading ? sv[0] : sv[1]);
			relay(s, reading ? tcp : sv[0], reading ? sv[1] : tcp);
		}
		close(sv[0]);
		if (m == MODE_ECHO)
			relay_both(tcp, sv[1]);
		relay(s, reading ? tcp : sv[1], reading ? sv[1] : tcp);
	}
	close(tcp);
	if (s == SHAPE_PIPE) {
		close(reading ? sv[1] : sv[0]);
		return reading ? sv[0] : sv[1];
	}
	close(sv[1]);
	return sv[0];
}

/*
 * A read that waits in poll().  A blocking read on a Unix socket in a
 * sockmap may wake with nothing queued and then wait on the socket's
 * own queue, which the program's data never reaches (Linux 6.18): a
 * lost wake-up.  poll() sees the sockmap's queue.
 */
static ssize_t
read_polled(int fd, void *buf, size_t len)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	ssize_t		n;

	for (;;) {
		if (poll(&pfd, 1, -1) == -1)
			return -1;
		n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n != -1 || errno != EAGAIN)
			return n;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median microseconds of 64-byte round trips on fd for seconds. */
static double
echo_p50(int fd, bool polled, unsigned seconds)
{
	static uint64_t	rtt[FLOOR_ECHO_MAX];
	uint8_t		msg[64] = { 0 };
	uint64_t	start, t;
	size_t		n = 0, got;
	ssize_t		r;

	start = now_ns();
	while (n < FLOOR_ECHO_MAX &&
	    now_ns() - start < (uint64_t)seconds * 1000000000ULL) {
		t = now_ns();
		must_write(fd, msg, sizeof(msg));
		for (got = 0; got < sizeof(msg); got += (size_t)r)
			if ((r = polled ? read_polled(fd, msg + got,
			    sizeof(msg) - got) : read(fd, msg + got,
			    sizeof(msg) - got)) <= 0)
				die("echo: %s", r == 0 ? "EOF" :
				    strerror(errno));
		rtt[n++] = now_ns() - t;
	}
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	return (double)rtt[n / 2] / 1e3;
}

/* The connect+close server: accepts and closes, until stopped. */
static pid_t
serve_accept(int lfd)
{
	pid_t	pid;
	int	fd;

	if ((pid = helper_fork("server")) != 0)
		return pid;
	if (fcntl(lfd, F_SETFL, 0) == -1)
		_exit(1);
	for (;;)
		if ((fd = accept(lfd, NULL, NULL)) != -1)
			close(fd);
}

/*
 * The connect relay: for each 'c' from the client it connects to port
 * and answers 'k' (or 'e'); for each 'x' it closes that connection.
 */
static void __attribute__((noreturn))
relay_connect(int client, uint16_t port)
{
	uint8_t	c, answer;
	int	fd = -1;

	while (read(client, &c, 1) == 1) {
		if (c == 'x') {
			if (fd != -1)
				close(fd);
			fd = -1;
			continue;
		}
		fd = loopback_dial(port);
		answer = fd == -1 ? 'e' : 'k';
		write_all_fd(client, &answer, 1);
	}
	_exit(0);
}

/* Connections opened and closed a second through shape s. */
static double
measure_connect(enum shape s, unsigned seconds)
{
	uint64_t	start, n = 0;
	uint16_t	port;
	pid_t		server, relay_pid = -1;
	uint8_t		answer;
	double		rate;
	int		lfd, fd, sv[2];

	if (s != SHAPE_DIRECT && s != SHAPE_COPY)
		return NAN;
	lfd = loopback_listen(&port);
	server = serve_accept(lfd);
	close(lfd);
	if (s == SHAPE_COPY) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ==
		    -1)
			die("socketpair: %s", strerror(errno));
		if ((relay_pid = helper_fork("relay")) == 0) {
			close(sv[0]);
			relay_connect(sv[1], port);
		}
		close(sv[1]);
	}
	start = now_ns();
	while (now_ns() - start < (uint64_t)seconds * 1000000000ULL) {
		if (s == SHAPE_DIRECT) {
			if ((fd = loopback_dial(port)) == -1)
				die("connect: %s", strerror(errno));
			close(fd);
		} else {
			must_write(sv[0], (const uint8_t *)"c", 1);
			if (read(sv[0], &answer, 1) != 1 || answer != 'k')
				die("the connect relay failed");
			must_write(sv[0], (const uint8_t *)"x", 1);
		}
		n++;
	}
	rate = (double)n * 1e9 / (double)(now_ns() - start);
	if (relay_pid > 0) {
		close(sv[0]);
		helper_stop(relay_pid);
	}
	helper_stop(server);
	return rate;
}

/*
 * Shape s for seconds: MB/s read or written, the echo's median
 * microseconds, the MiB a reader that never reads let the source send,
 * or connections a second; NAN where the shape carries one way only,
 * and for connections through any shape but direct and copy.
 */
static double
measure(enum shape s, enum mode m, unsigned seconds)
{
	static uint8_t	buf[FLOOR_CHUNK];
	uint64_t	start, took, moved = 0;
	uint16_t	port;
	pid_t		server, relay_pid = -1;
	ssize_t		n;
	double		v;
	int		lfd, fd, report[2], go[2];

	if (m == MODE_ECHO && (s == SHAPE_SPLICE || s == SHAPE_PIPE))
		return NAN;
	if (m == MODE_CONNECT)
		return measure_connect(s, seconds);
	if (pipe2(report, O_CLOEXEC) == -1 || pipe2(go, O_CLOEXEC) == -1)
		die("pipe: %s", strerror(errno));
	lfd = loopback_listen(&port);
	server = serve(lfd, m, report[1], go[0]);
	close(lfd);
	close(report[1]);
	close(go[0]);
	if ((fd = loopback_dial(port)) == -1)
		die("connect: %s", strerror(errno));
	fd = client_end(s, fd, m, &relay_pid);
	if (write(go[1], "g", 1) != 1)
		die("the server went: %s", strerror(errno));
	close(go[1]);
	if (m == MODE_ECHO)
		v = echo_p50(fd, s == SHAPE_SOCKMAP, seconds);
	else if (m == MODE_STALL) {
		if (read(report[0], &moved, sizeof(moved)) != sizeof(moved))
			die("%s: the stalled source did not report",
			    shape_names[s]);
		v = (double)moved / (1024 * 1024);
	} else {
		start = now_ns();
		while (now_ns() - start < (uint64_t)seconds * 1000000000ULL) {
			if (m == MODE_WRITE)
				n = write(fd, buf, sizeof(buf));
			else if (s == SHAPE_SOCKMAP)
				n = read_polled(fd, buf, sizeof(buf));
			else
				n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				die("%s: %s", shape_names[s], n == 0 ? "EOF" :
				    strerror(errno));
			moved += (uint64_t)n;
		}
		took = now_ns() - start;
		v = (double)moved * 1e3 / (double)took;
	}
	close(fd);
	close(report[0]);
	if (relay_pid > 0)
		helper_stop(relay_pid);
	helper_stop(server);
	return v;
}

/* A whole number from 1 to max, or the program ends saying so. */
static int
option_int(const char *name, const char *s, int max)
{
	char	*end;
	long	 v;

	errno = 0;
	if (!isdigit((unsigned char)*s) || (v = strtol(s, &end, 10), errno) ||
	    *end != '\0' || v < 1 || v > max)
		die("%s: expected 1 to %d, not \"%s\"", name, max, s);
	return (int)v;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	static const struct option	options[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "rcvbuf", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	double		v[MODES][SHAPES][FLOOR_RUNS_MAX], med[MODES][SHAPES];
	unsigned	seconds = 2;
	int		runs = 3, ch, r, s, d;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'r':
			runs = option_int("--runs", optarg, FLOOR_RUNS_MAX);
			break;
		case 'b':
			rcvbuf = option_int("--rcvbuf", optarg,
			    FLOOR_RCVBUF_MIB_MAX) << 20;
			break;
		case 's':
			seconds = (unsigned)option_int("--seconds", optarg,
			    FLOOR_SECONDS_MAX);
			break;
		default:
			fprintf(stderr, "usage: tcpbroker-relay-floor "
			    "[--runs N] [--seconds S] [--rcvbuf MIB]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	net_isolate();
	for (r = 0; r < runs; r++)
		for (d = 0; d < MODES; d++)
			for (s = 0; s < SHAPES; s++)
				v[d][s][r] = measure((enum shape)s,
				    (enum mode)d, seconds);
	printf("medians of %d interleaved rounds, %u s each; "
	    "ratio to direct\n%-8s", runs, seconds, "shape");
	for (d = 0; d < MODES; d++)
		printf(" %18s", mode_names[d]);
	printf("\n");
	for (s = 0; s < SHAPES; s++) {
		printf("%-8s", shape_names[s]);
		for (d = 0; d < MODES; d++) {
			qsort(v[d][s], (size_t)runs, sizeof(double),
			    cmp_double);
			med[d][s] = v[d][s][runs / 2];
			if (isnan(med[d][s]))
				printf(" %18s", "n/a");
			else
				printf(" %10.*f (%.2fx)",
				    d == MODE_ECHO || d == MODE_STALL,
				    med[d][s], med[d][s] / med[d][SHAPE_DIRECT]);
		}
		printf("\n");
	}
	return 0;
}
