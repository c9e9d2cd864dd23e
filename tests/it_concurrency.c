/*
 * One client never waits for another: 100 sessions blocked in read or
 * accept do not hold up an echo round trip; threads share a session;
 * a client killed in the middle of a call leaves the broker serving and
 * its sockets closed.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb_limits.h"

#include "harness.h"

/* Blocked clients: half in read, half in accept. */
/* Within the sessions one uid may have, with room for the test's own. */
#define BLOCKED_CLIENTS		(LIMIT_SESSIONS_PER_UID - 4)
/* Threads sharing one session, and round trips each makes. */
#define SHARED_THREADS		8
#define SHARED_ROUNDS		50

static struct broker_proc	broker;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start(&broker, HARNESS_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

struct blocked {
	struct test_server	*hold;
	atomic_int		*ready;
	bool			 accepting;
	tb_client		*c;
	tb_handle		 h;
	uint16_t		 port;		/* the listener's, for accept */
	int			 rc;
	char			 got[16];
	size_t			 len;
	atomic_bool		 returned;
	atomic_int		 tid;		/* set before it blocks */
};

static void *
blocked_main(void *p)
{
	struct blocked	*b = p;
	struct tb_error	 err;
	tb_handle	 conn;
	char		 local[TB_ADDR_STRLEN];

	if (b->accepting) {
		b->rc = tb_listen(b->c, "127.0.0.1:0", &b->h, &err);
		if (b->rc == 0)
			b->rc = tb_local_addr(b->c, b->h, local, sizeof(local),
			    &err);
		if (b->rc == 0)
			b->port = (uint16_t)atoi(strrchr(local, ':') + 1);
	} else
		b->rc = tb_connect(b->c, "127.0.0.1", b->hold->port, &b->h,
		    &err);
	atomic_fetch_add(b->ready, 1);
	if (b->rc != 0)
		return NULL;
	atomic_store(&b->tid, harness_gettid());
	if (b->accepting)
		b->rc = tb_accept(b->c, b->h, &conn, &err);
	else
		b->rc = tb_read(b->c, b->h, b->got, sizeof(b->got), &b->len,
		    &err);
	atomic_store(&b->returned, true);
	return NULL;
}

static int
dial(uint16_t port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			fd;

	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void
test_blocked_clients_do_not_delay_others(void **state)
{
	static struct blocked	 blocked[BLOCKED_CLIENTS];
	pthread_t		 threads[BLOCKED_CLIENTS];
	struct test_server	 hold, echo;
	atomic_int		 ready = 0;
	tb_client		*c;
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;
	uint64_t		 deadline, now;
	int			 i, fds[BLOCKED_CLIENTS];

	(void)state;
	server_start(&hold, AF_INET, serve_hold, "bye", 3);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	for (i = 0; i < BLOCKED_CLIENTS; i++) {
		memset(&blocked[i], 0, sizeof(blocked[i]));
		blocked[i].hold = &hold;
		blocked[i].ready = &ready;
		blocked[i].accepting = i % 2 == 1;
		blocked[i].c = harness_client(&broker);
		assert_int_equal(pthread_create(&threads[i], NULL, blocked_main,
		    &blocked[i]), 0);
	}
	assert_true(server_wait(&ready, BLOCKED_CLIENTS, 10000));
	/*
	 * Every thread sleeps in its blocking call: an accept's request
	 * has reached the broker, a read waits for data pushed to it.
	 */
	deadline = harness_now_ms() + 10000;
	for (i = 0; i < BLOCKED_CLIENTS; i++) {
		now = harness_now_ms();
		assert_true(harness_wait_thread_blocked(&blocked[i].tid,
		    now < deadline ? (unsigned)(deadline - now) : 0));
	}

	/* The echo completes while all 100 are still blocked. */
	c = harness_client(&broker);
	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_set_timeout_ms(c, h, 10000, &err), &err);
	for (i = 0; i < 10; i++) {
		assert_ok(tb_write_all(c, h, "round trip\n", 11, &err), &err);
		assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
		assert_string_equal(buf, "round trip");
	}
	for (i = 0; i < BLOCKED_CLIENTS; i++) {
		assert_int_equal(blocked[i].rc, 0);
		assert_false(atomic_load(&blocked[i].returned));
	}

	/* Release them all: readers get "bye", acceptors a connection. */
	atomic_store(&hold.release, true);
	for (i = 0; i < BLOCKED_CLIENTS; i++)
		fds[i] = blocked[i].accepting ? dial(blocked[i].port) : -1;
	for (i = 0; i < BLOCKED_CLIENTS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(blocked[i].rc, 0);
		if (!blocked[i].accepting) {
			assert_int_equal(blocked[i].len, 3);
			assert_memory_equal(blocked[i].got, "bye", 3);
		}
		if (fds[i] != -1)
			close(fds[i]);
		tb_client_close(blocked[i].c);
	}
	tb_client_close(c);
	server_stop(&hold);
	server_stop(&echo);
}

struct shared {
	tb_client		*c;
	struct test_server	*echo;
	int			 id;
	int			 failures;
};

static void *
shared_main(void *p)
{
	struct shared	*s = p;
	struct tb_error	 err;
	tb_handle	 h;
	char		 line[64], buf[64];
	size_t		 n;
	int		 i;

	if (tb_connect(s->c, "127.0.0.1", s->echo->port, &h, &err) != 0) {
		s->failures++;
		return NULL;
	}
	for (i = 0; i < SHARED_ROUNDS; i++) {
		snprintf(line, sizeof(line), "thread %d round %d\n", s->id, i);
		if (tb_write_all(s->c, h, line, strlen(line), &err) != 0 ||
		    tb_read_line(s->c, h, buf, sizeof(buf), &n, &err) != 0 ||
		    n != strlen(line) - 1 || memcmp(buf, line, n) != 0)
			s->failures++;
	}
	if (tb_close(s->c, h, &err) != 0)
		s->failures++;
	return NULL;
}

/* Threads of one interpreter share a session; answers reach each. */
static void
test_threads_share_a_session(void **state)
{
	struct test_server	 echo, hold;
	struct shared		 shared[SHARED_THREADS];
	pthread_t		 threads[SHARED_THREADS];
	tb_client		*c = harness_client(&broker);
	struct blocked		 reader = { 0 };
	atomic_int		 ready = 0;
	pthread_t		 rt;
	int			 i;

	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	server_start(&hold, AF_INET, serve_hold, "late", 4);
	/* One thread of the session waits in read the whole time. */
	reader.hold = &hold;
	reader.ready = &ready;
	reader.c = c;
	assert_int_equal(pthread_create(&rt, NULL, blocked_main, &reader), 0);
	assert_true(server_wait(&ready, 1, 5000));
	for (i = 0; i < SHARED_THREADS; i++) {
		shared[i] = (struct shared){ c, &echo, i, 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, shared_main,
		    &shared[i]), 0);
	}
	for (i = 0; i < SHARED_THREADS; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(shared[i].failures, 0);
	}
	assert_false(atomic_load(&reader.returned));
	atomic_store(&hold.release, true);
	pthread_join(rt, NULL);
	assert_int_equal(reader.rc, 0);
	assert_memory_equal(reader.got, "late", 4);
	tb_client_close(c);
	server_stop(&echo);
	server_stop(&hold);
}

/* A client process that connects, says so, then blocks in read. */
static void __attribute__((noreturn))
doomed_client(const char *socket_path, uint16_t port, int ready_fd)
{
	tb_client	*c;
	struct tb_error	 err;
	tb_handle	 h;
	char		 buf[16];
	size_t		 n;

	if (tb_client_open_path(&c, socket_path, &err) != 0 ||
	    tb_connect(c, "127.0.0.1", port, &h, &err) != 0 ||
	    tb_write_all(c, h, "x", 1, &err) != 0)
		_exit(1);
	(void)!write(ready_fd, "r", 1);
	tb_read(c, h, buf, sizeof(buf), &n, &err);
	_exit(2);
}

static void
test_killed_client(void **state)
{
	struct test_server	 sink, echo;
	tb_client		*c;
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;
	pid_t			 pid;
	int			 p[2], status;

	(void)state;
	server_start(&sink, AF_INET, serve_sink, NULL, 0);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		doomed_client(broker.socket, sink.port, p[1]);
	}
	close(p[1]);
	assert_int_equal(read(p[0], buf, 1), 1);
	close(p[0]);
	assert_true(server_wait(&sink.accepted, 1, 5000));
	assert_true(harness_wait_blocked(pid, pid, 5000));
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	/* The broker closed the dead client's TCP connection... */
	assert_true(server_wait(&sink.eofs, 1, 5000));
	/* ...and serves everyone else. */
	c = harness_client(&broker);
	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "alive\n", 6, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "alive");
	tb_client_close(c);
	assert_true(harness_log_contains(&broker,
	    "closed: client closed the session"));
	server_stop(&sink);
	server_stop(&echo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_clients_do_not_delay_others),
		cmocka_unit_test(test_threads_share_a_session),
		cmocka_unit_test(test_killed_client),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
