/*
 * TcpListener, accept and local_addr through a real broker, with plain
 * TCP clients of the test process and with clients through the broker.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define LISTEN_POLICY							\
	HARNESS_POLICY_WITH("    listen allow 127.0.0.1:20000-60000\n")

static struct broker_proc	broker;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start(&broker, LISTEN_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

/* The port of an "ip:port" text. */
static uint16_t
port_of(const char *addr)
{
	const char	*colon = strrchr(addr, ':');

	assert_non_null(colon);
	return (uint16_t)atoi(colon + 1);
}

/* A plain TCP client of the test process. */
static int
dial(int family, uint16_t port)
{
	struct sockaddr_storage	ss;
	struct timeval		tv = { 5, 0 };
	socklen_t		len;
	int			fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	/* No wait in a test is unbounded. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static void
accept_and_talk(const char *addr, int family, const char *prefix)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l, conn;
	char		 local[TB_ADDR_STRLEN], peer[TB_ADDR_STRLEN], buf[64];
	size_t		 n;
	int		 fd;
	struct sockaddr_storage ss;
	socklen_t	 len = sizeof(ss);

	assert_ok(tb_listen(c, addr, &l, &err), &err);
	assert_ok(tb_local_addr(c, l, local, sizeof(local), &err), &err);
	assert_memory_equal(local, prefix, strlen(prefix));
	assert_true(port_of(local) != 0);

	fd = dial(family, port_of(local));
	assert_true(send(fd, "hello broker\r\n", 14, 0) == 14);
	assert_ok(tb_accept(c, l, &conn, &err), &err);
	assert_ok(tb_read_line(c, conn, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "hello broker");
	assert_ok(tb_write_all(c, conn, "OK\r\n", 4, &err), &err);
	assert_int_equal(recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "OK\r\n", 4);

	/* peer_addr of the accepted connection is the dialer's address. */
	assert_ok(tb_peer_addr(c, conn, peer, sizeof(peer), &err), &err);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(port_of(peer), ntohs(family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port));

	/* Closing the accepted connection ends the dialer's stream. */
	assert_ok(tb_close(c, conn, &err), &err);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	assert_ok(tb_close(c, l, &err), &err);
	tb_client_close(c);
}

static void
test_listen_accept_ipv4(void **state)
{
	(void)state;
	accept_and_talk("127.0.0.1:0", AF_INET, "127.0.0.1:");
}

static void
test_listen_accept_ipv6(void **state)
{
	(void)state;
	accept_and_talk("[::1]:0", AF_INET6, "[::1]:");
}

static void
test_listen_policy(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l;

	(void)state;
	assert_rc(tb_listen(c, "0.0.0.0:0", &l, &err), TB_EPOLICY, &err);
	assert_rc(tb_listen(c, "[::]:0", &l, &err), TB_EPOLICY, &err);
	assert_rc(tb_listen(c, "127.0.0.1:8080", &l, &err), TB_EPOLICY, &err);
	assert_non_null(strstr(err.message, "the default"));
	assert_rc(tb_listen(c, "[::1]:20000", &l, &err), TB_EPOLICY, &err);
	assert_true(harness_log_contains(&broker, "\"action\":\"listen\","
	    "\"host\":\"0.0.0.0:0\",\"port\":0,\"addresses\":[],"
	    "\"address\":null,\"verdict\":\"deny\""));
	tb_client_close(c);
}

static void
test_listen_bad_address(void **state)
{
	static const char *const bad[] = {
		"localhost:8080", "127.0.0.1", "127.0.0.1:", ":80",
		"127.0.0.1:65536", "::1:80", "[::1]", "127.1:0", "",
	};
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rc(tb_listen(c, bad[i], &l, &err), TB_EINVAL, &err);
	tb_client_close(c);
}

static void
test_listen_in_use(void **state)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	socklen_t		 len = sizeof(sin);
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 l;
	char			 addr[64];
	int			 fd, i;

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Find a port in the allowed range that we hold. */
	for (i = 0; i < 100; i++) {
		sin.sin_port = htons((uint16_t)(20000 + rand() % 40000));
		if (bind(fd, (struct sockaddr *)&sin, len) == 0)
			break;
	}
	assert_true(i < 100);
	assert_int_equal(listen(fd, 1), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_rc(tb_listen(c, addr, &l, &err), TB_EADDRINUSE, &err);
	close(fd);
	assert_ok(tb_listen(c, addr, &l, &err), &err);
	tb_client_close(c);
}

static void
test_accept_timeout(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l, conn;
	char		 local[TB_ADDR_STRLEN];
	int		 fd;

	(void)state;
	assert_ok(tb_listen(c, "127.0.0.1:0", &l, &err), &err);
	assert_ok(tb_set_timeout_ms(c, l, 100, &err), &err);
	assert_rc(tb_accept(c, l, &conn, &err), TB_ETIMEDOUT, &err);
	/* The listener is still usable. */
	assert_ok(tb_local_addr(c, l, local, sizeof(local), &err), &err);
	fd = dial(AF_INET, port_of(local));
	assert_ok(tb_accept(c, l, &conn, &err), &err);
	close(fd);
	tb_client_close(c);
}

struct blocked_accept {
	tb_client	*c;
	tb_handle	 l;
	atomic_int	 tid;
	int		 rc;
};

static void *
blocked_accept_main(void *p)
{
	struct blocked_accept	*b = p;
	struct tb_error		 err;
	tb_handle		 conn;

	atomic_store(&b->tid, harness_gettid());
	b->rc = tb_accept(b->c, b->l, &conn, &err);
	return NULL;
}

static void
test_close_listener_while_accepting(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct blocked_accept	 b = { 0 };
	struct tb_error		 err;
	pthread_t		 t;
	tb_handle		 conn;

	(void)state;
	assert_ok(tb_listen(c, "127.0.0.1:0", &b.l, &err), &err);
	b.c = c;
	assert_int_equal(pthread_create(&t, NULL, blocked_accept_main, &b), 0);
	assert_true(harness_wait_thread_blocked(&b.tid, 5000));
	assert_ok(tb_close(c, b.l, &err), &err);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, TB_ECLOSED);
	assert_rc(tb_accept(c, b.l, &conn, &err), TB_EBADHANDLE, &err);
	tb_client_close(c);
}

/* Both ends through the broker: a listener and a client of it. */
static void
test_broker_to_broker(void **state)
{
	tb_client	*server = harness_client(&broker);
	tb_client	*client = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l, a, b;
	char		 local[TB_ADDR_STRLEN], buf[64];
	size_t		 n;

	(void)state;
	assert_ok(tb_listen(server, "127.0.0.1:0", &l, &err), &err);
	assert_ok(tb_local_addr(server, l, local, sizeof(local), &err), &err);
	assert_ok(tb_connect(client, "127.0.0.1", port_of(local), &b, &err),
	    &err);
	assert_ok(tb_accept(server, l, &a, &err), &err);
	assert_ok(tb_write_all(client, b, "question\n", 9, &err), &err);
	assert_ok(tb_read_line(server, a, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "question");
	assert_ok(tb_write_all(server, a, "answer\n", 7, &err), &err);
	assert_ok(tb_read_line(client, b, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "answer");
	/* Handles belong to their session only. */
	assert_rc(tb_read(client, a, buf, sizeof(buf), &n, &err),
	    TB_EBADHANDLE, &err);
	tb_client_close(client);
	/* The client's session is gone: the server side sees the end. */
	assert_ok(tb_read(server, a, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	tb_client_close(server);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_accept_ipv4),
		cmocka_unit_test(test_listen_accept_ipv6),
		cmocka_unit_test(test_listen_policy),
		cmocka_unit_test(test_listen_bad_address),
		cmocka_unit_test(test_listen_in_use),
		cmocka_unit_test(test_accept_timeout),
		cmocka_unit_test(test_close_listener_while_accepting),
		cmocka_unit_test(test_broker_to_broker),
	};

	srand((unsigned)getpid());
	return cmocka_run_group_tests(tests, setup, teardown);
}
