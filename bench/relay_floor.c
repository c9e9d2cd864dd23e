/*
 * tcpbroker-relay-floor: how fast bulk data can cross a relay process
 * on this machine with no protocol at all, against direct TCP, so that
 * docs/performance.md can say what limits tcpbroker's bulk figures and
 * which data plane shapes would pay.  Each shape moves 64 KiB writes
 * from a source to a reader (read) or from a writer to a sink (write),
 * over loopback TCP in a network namespace of its own:
 *
 *   direct    the client holds the TCP socket
 *   copy      client - Unix socket pair - relay (read/write, 1 MiB) - TCP
 *   splice    the same, the relay splicing through a 1 MiB pipe
 *   pipe      client - 1 MiB pipe - relay (splice) - TCP: a pipe handed
 *             to the client, which never holds the TCP socket
 *
 *   tcpbroker-relay-floor [--runs N] [--seconds S]
 *
 * The shapes take turns within each round; the medians of the rounds
 * are printed, in MB/s (10^6 bytes a second), with their ratio to
 * direct.  Runs as root (the namespace).
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* What the client moves per call, as the benchmark's bulk figures. */
#define FLOOR_CHUNK	(64 * 1024)
/* The relay's reads and writes, and its pipes: bytes. */
#define FLOOR_RELAY	(1024 * 1024)
/* Most rounds. */
#define FLOOR_RUNS_MAX	9

enum shape { SHAPE_DIRECT, SHAPE_COPY, SHAPE_SPLICE, SHAPE_PIPE, SHAPES };
static const char *const shape_names[SHAPES] = {
	"direct", "copy", "splice", "pipe"
};

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

/* The TCP server: a source (reading) or a sink (writing), until EOF. */
static pid_t
serve(int lfd, bool source)
{
	static uint8_t	buf[FLOOR_CHUNK];
	pid_t		pid;
	int		fd;

	if ((pid = helper_fork("server")) != 0)
		return pid;
	if (fcntl(lfd, F_SETFL, 0) == -1 ||
	    (fd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	for (;;) {
		if (source)
			write_all_fd(fd, buf, sizeof(buf));
		else if (read(fd, buf, sizeof(buf)) <= 0)
			_exit(0);
	}
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
client_end(enum shape s, int tcp, bool reading, pid_t *relay_pid)
{
	int	sv[2];

	if (s == SHAPE_DIRECT)
		return tcp;
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

/* MB/s through shape s for seconds, reading or writing. */
static double
measure(enum shape s, bool reading, unsigned seconds)
{
	static uint8_t	buf[FLOOR_CHUNK];
	uint64_t	start, took, moved = 0;
	uint16_t	port;
	pid_t		server, relay_pid = -1;
	ssize_t		n;
	int		lfd, fd;

	lfd = loopback_listen(&port);
	server = serve(lfd, reading);
	close(lfd);
	if ((fd = loopback_dial(port)) == -1)
		die("connect: %s", strerror(errno));
	fd = client_end(s, fd, reading, &relay_pid);
	start = now_ns();
	while (now_ns() - start < (uint64_t)seconds * 1000000000ULL) {
		n = reading ? read(fd, buf, sizeof(buf)) :
		    write(fd, buf, sizeof(buf));
		if (n <= 0)
			die("%s: %s", shape_names[s], strerror(errno));
		moved += (uint64_t)n;
	}
	took = now_ns() - start;
	close(fd);
	if (relay_pid > 0)
		helper_stop(relay_pid);
	helper_stop(server);
	return (double)moved * 1e3 / (double)took;
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
		{ NULL, 0, NULL, 0 }
	};
	double		v[2][SHAPES][FLOOR_RUNS_MAX], med[2][SHAPES];
	unsigned	seconds = 2;
	int		runs = 3, ch, r, s, d;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'r':
			runs = atoi(optarg);
			if (runs < 1 || runs > FLOOR_RUNS_MAX)
				die("--runs: 1 to %d", FLOOR_RUNS_MAX);
			break;
		case 's':
			seconds = (unsigned)atoi(optarg);
			if (seconds < 1 || seconds > 60)
				die("--seconds: 1 to 60");
			break;
		default:
			fprintf(stderr, "usage: tcpbroker-relay-floor "
			    "[--runs N] [--seconds S]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	net_isolate();
	for (r = 0; r < runs; r++)
		for (d = 0; d < 2; d++)
			for (s = 0; s < SHAPES; s++)
				v[d][s][r] = measure((enum shape)s, d == 0,
				    seconds);
	printf("medians of %d interleaved rounds, %u s each; MB/s, "
	    "ratio to direct\n%-8s %18s %18s\n", runs, seconds, "shape",
	    "read", "write");
	for (s = 0; s < SHAPES; s++) {
		for (d = 0; d < 2; d++) {
			qsort(v[d][s], (size_t)runs, sizeof(double),
			    cmp_double);
			med[d][s] = v[d][s][runs / 2];
		}
		printf("%-8s %10.0f (%.2fx) %10.0f (%.2fx)\n", shape_names[s],
		    med[0][s], med[0][s] / med[0][SHAPE_DIRECT], med[1][s],
		    med[1][s] / med[1][SHAPE_DIRECT]);
	}
	return 0;
}
