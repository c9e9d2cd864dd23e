/*
 * Faults: a client killed in the middle of each blocking call, a client
 * that sends requests and never reads, one that sends half a message
 * and stalls.  Afterwards the broker's descriptors come back to their
 * baseline, its memory stays near it, and it serves the next client.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tb_limits.h"

/* How long the broker may take to let go of a dead client: ms. */
#define FAULT_SETTLE_MS	5000
/* Growth of the broker's memory a fault test allows: kilobytes. */
#define FAULT_RSS_SLACK_KB	(8 * 1024)

static struct broker_proc	broker;
static struct test_server	silent;
static int			full_fd = -1, filler = -1;
static uint16_t			full_port;
/* The broker's descriptors with no client at all, once it has settled. */
static int			steady;

static int
count_fds(pid_t pid)
{
	struct dirent	*d;
	char		 path[64];
	DIR		*dir;
	int		 n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/*
 * Waits until the broker holds n descriptors (at least n, when atleast);
 * false if it never does.
 */
static bool
wait_fds_cmp(int n, bool atleast)
{
	uint64_t	deadline = harness_now_ms() + FAULT_SETTLE_MS;
	int		have;

	while ((have = count_fds(broker.pid)) != n && !(atleast && have > n))
		if (harness_now_ms() > deadline)
			return false;
		else
			harness_sleep_ms(5);
	return true;
}

static bool
wait_fds(int n)
{
	return wait_fds_cmp(n, false);
}

/*
 * The harness's readiness probe is a session too: the baselines are
 * counted once the broker has closed it.  The broker logs that a
 * session closed just before it closes the descriptor, so the count is
 * taken during a second session, which the broker took after the first
 * was gone, less that session's one descriptor.
 */
static void
settle(void)
{
	tb_client	*c;
	int		 i;

	for (i = 0; i < 500 && !harness_log_contains(&broker,
	    "session 1 closed"); i++)
		harness_sleep_ms(10);
	assert_true(harness_log_contains(&broker, "session 1 closed"));
	c = harness_client(&broker);
	steady = count_fds(broker.pid) - 1;
	tb_client_close(c);
}

/* A test starts once the clients of the one before are gone. */
static int
quiet_broker(void)
{
	if (!wait_fds(steady))
		fail_msg("the broker holds %d descriptors, not %d",
		    count_fds(broker.pid), steady);
	return steady;
}

enum fault { F_CONNECT, F_READ, F_READ_LINE, F_READ_EXACT, F_ACCEPT,
    F_WRITE_ALL };

static const char *const fault_names[] = { "connect", "read", "read_line",
    "read_exact", "accept", "write_all" };

/* The child: a session, then the call that blocks, until it is killed. */
static void __attribute__((noreturn))
blocked_child(enum fault f, int ready)
{
	static uint8_t	 data[8 * 1024 * 1024];
	struct tb_error	 err;
	tb_client	*c;
	tb_handle	 h, l;
	char		 buf[256];
	size_t		 n;

	if (tb_client_open_path(&c, broker.socket, &err) != 0)
		_exit(2);
	if (f == F_CONNECT) {
		(void)!write(ready, "r", 1);
		tb_connect(c, "127.0.0.1", full_port, &h, &err);
		_exit(3);
	}
	if (f == F_ACCEPT) {
		if (tb_listen(c, "127.0.0.1:0", &l, &err) != 0)
			_exit(2);
		(void)!write(ready, "r", 1);
		tb_accept(c, l, &h, &err);
		_exit(3);
	}
	if (tb_connect(c, "127.0.0.1", silent.port, &h, &err) != 0)
		_exit(2);
	(void)!write(ready, "r", 1);
	switch (f) {
	case F_READ:
		tb_read(c, h, buf, sizeof(buf), &n, &err);
		break;
	case F_READ_LINE:
		tb_read_line(c, h, buf, sizeof(buf), &n, &err);
		break;
	case F_READ_EXACT:
		tb_read_exact(c, h, buf, sizeof(buf), &err);
		break;
	default:
		tb_write_all(c, h, data, sizeof(data), &err);
		break;
	}
	_exit(3);
}

static void
kill_in_call(enum fault f, int extra_fds)
{
	int	base = quiet_broker(), p[2], status;
	long	rss = harness_status_field(broker.pid, "VmRSS:");
	char	byte;
	pid_t	pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		blocked_child(f, p[1]);
	}
	close(p[1]);
	/* It has its session and what the call holds (a socket), then dies. */
	assert_int_equal(read(p[0], &byte, 1), 1);
	close(p[0]);
	if (!wait_fds_cmp(base + 1 + extra_fds, true))
		fail_msg("%s: the broker never held the call's descriptors",
		    fault_names[f]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!wait_fds(base))
		fail_msg("%s: the broker holds %d descriptors, not %d",
		    fault_names[f], count_fds(broker.pid), base);
	print_message("killed in %s: descriptors %d -> %d, RSS %ld -> %ld "
	    "KiB\n", fault_names[f], base, count_fds(broker.pid), rss,
	    harness_status_field(broker.pid, "VmRSS:"));
	assert_true(harness_status_field(broker.pid, "VmRSS:") <
	    rss + FAULT_RSS_SLACK_KB);
}

static void
test_killed_in_each_call(void **state)
{
	tb_client	*c;

	(void)state;
	kill_in_call(F_CONNECT, 1);
	kill_in_call(F_READ, 1);
	kill_in_call(F_READ_LINE, 1);
	kill_in_call(F_READ_EXACT, 1);
	kill_in_call(F_ACCEPT, 1);
	kill_in_call(F_WRITE_ALL, 1);
	c = harness_client(&broker);
	tb_client_close(c);
}

/*
 * A client that sends requests and never reads its answers, and one
 * that sends half a message and stalls: each costs the broker its
 * bounded session and no more, and goes when it closes.
 */
static void
test_never_reads_and_half_message(void **state)
{
	/* [0, 1, "local_addr", [1]] over and over; never read. */
	static const uint8_t	req[] = { 0x94, 0x00, 0x01, 0xaa, 'l', 'o',
				    'c', 'a', 'l', '_', 'a', 'd', 'd', 'r', 0x91,
				    0x01 };
	uint8_t			hello[] = { 0x94, 0x00, 0x01, 0xa5, 'h', 'e',
				    'l', 'l', 'o', 0x91, 1 };
	int			base = quiet_broker(), a, b, i;
	long			rss = harness_status_field(broker.pid, "VmRSS:");

	(void)state;
	assert_true((a = harness_connect_as(&broker, 0)) != -1);
	assert_int_equal(send(a, hello, sizeof(hello), 0), sizeof(hello));
	for (i = 0; i < 200000; i++)
		if (send(a, req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	if (!wait_fds_cmp(base + 1, true))
		fail_msg("the session that never reads is gone: %d descriptors, "
		    "base %d", count_fds(broker.pid), base);
	assert_true((b = harness_connect_as(&broker, 0)) != -1);
	assert_int_equal(send(b, hello, 5, 0), 5);	/* half of hello */
	if (!wait_fds_cmp(base + 2, true))
		fail_msg("the stalled session is gone: %d descriptors, base %d",
		    count_fds(broker.pid), base);
	print_message("a client that never reads (%d requests sent) and one "
	    "half way through a message: RSS %ld -> %ld KiB\n", i, rss,
	    harness_status_field(broker.pid, "VmRSS:"));
	assert_true(harness_status_field(broker.pid, "VmRSS:") <
	    rss + FAULT_RSS_SLACK_KB);
	close(a);
	close(b);
	assert_true(wait_fds(base));
}

struct blocked_read {
	tb_client	*c;
	tb_handle	 h;
	int		 rc;
	uint64_t	 returned_ms;
	atomic_int	 tid;		/* harness_wait_thread_blocked() */
};

static void *
read_blocked(void *arg)
{
	struct blocked_read	*r = arg;
	struct tb_error		 err;
	char			 buf[64];
	size_t			 n;

	atomic_store(&r->tid, harness_gettid());
	r->rc = tb_read(r->c, r->h, buf, sizeof(buf), &n, &err);
	r->returned_ms = harness_now_ms();
	return NULL;
}

/*
 * The broker killed while a client waits: the call returns EBROKER at
 * once, later calls too, and a new broker serves a new session.
 */
static void
test_broker_killed(void **state)
{
	struct blocked_read	 r = { 0 };
	struct tb_error		 err;
	pthread_t		 t;
	uint64_t		 killed;
	tb_handle		 h;
	char			 cmd[128];
	int			 status;

	(void)state;
	r.c = harness_client(&broker);
	assert_ok(tb_connect(r.c, "127.0.0.1", silent.port, &r.h, &err),
	    &err);
	assert_int_equal(pthread_create(&t, NULL, read_blocked, &r), 0);
	/* The read waits for the broker; the broker dies under it. */
	assert_true(harness_wait_thread_blocked(&r.tid, 5000));
	killed = harness_now_ms();
	status = harness_broker_kill(&broker);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	pthread_join(t, NULL);
	assert_int_equal(r.rc, TB_EBROKER);
	print_message("broker killed: the waiting read returned EBROKER after "
	    "%llu ms\n", (unsigned long long)(r.returned_ms - killed));
	assert_true(r.returned_ms - killed < 1000);
	assert_rc(tb_connect(r.c, "127.0.0.1", silent.port, &h, &err),
	    TB_EBROKER, &err);
	tb_client_close(r.c);
	/* A new broker, a new session; the old one's files go. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", broker.dir);
	assert_int_equal(system(cmd), 0);
	harness_broker_start(&broker, HARNESS_POLICY);
	settle();
	r.c = harness_client(&broker);
	assert_ok(tb_connect(r.c, "127.0.0.1", silent.port, &h, &err), &err);
	tb_client_close(r.c);
}

/*
 * A peer that never reads cannot hold a close: without a timeout it
 * waits LIMIT_CLOSE_LINGER_MS for what was written behind, then says
 * how much was not sent.
 */
static void
test_close_never_hangs(void **state)
{
	static uint8_t	 data[16 * 1024 * 1024];
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	size_t		 n;
	uint64_t	 t0;
	int		 i;

	(void)state;
	assert_ok(tb_connect(c, "127.0.0.1", silent.port, &h, &err), &err);
	assert_ok(tb_set_timeout_ms(c, h, 200, &err), &err);
	/*
	 * Fills the peer's window, the socket buffers and the send window:
	 * until a write makes no progress within its timeout.
	 */
	for (i = 0; i < 1000; i++)
		if (tb_write(c, h, data, sizeof(data), &n, &err) != 0 ||
		    n == 0)
			break;
	assert_int_equal(err.code, TB_ETIMEDOUT);
	assert_ok(tb_set_timeout_ms(c, h, 0, &err), &err);
	t0 = harness_now_ms();
	assert_rc(tb_close(c, h, &err), TB_ETIMEDOUT, &err);
	print_message("close to a peer that never reads: %llu ms, %s\n",
	    (unsigned long long)(harness_now_ms() - t0), err.message);
	assert_true(harness_now_ms() - t0 >= LIMIT_CLOSE_LINGER_MS - 100);
	assert_true(harness_now_ms() - t0 < LIMIT_CLOSE_LINGER_MS + 5000);
	tb_client_close(c);
}

static int
setup(void **state)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	socklen_t		len = sizeof(sin);

	(void)state;
	server_start(&silent, AF_INET, serve_silent, NULL, 0);
	/* A listener whose queue is full: a connect to it waits. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	full_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(full_fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(full_fd, 0), 0);
	assert_int_equal(getsockname(full_fd, (struct sockaddr *)&sin, &len),
	    0);
	full_port = ntohs(sin.sin_port);
	filler = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	harness_broker_start(&broker, HARNESS_POLICY);
	settle();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_broker_stop(&broker);
	server_stop(&silent);
	close(filler);
	close(full_fd);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_killed_in_each_call),
		cmocka_unit_test(test_never_reads_and_half_message),
		cmocka_unit_test(test_broker_killed),
		cmocka_unit_test(test_close_never_hangs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
