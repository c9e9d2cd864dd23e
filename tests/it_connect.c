/*
 * TcpClient and TcpClient.connect_timeout through a real broker: IPv4,
 * IPv6 and names, refusals, time-outs, policy denials and bad hosts.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define DENY_POLICY							\
	HARNESS_POLICY_WITH(						\
	"    connect deny 127.0.0.1:40000-40009\n"			\
	"    connect allow db.internal.test:443\n")

static struct broker_proc	broker;
static struct test_server	echo4, echo6;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start(&broker, DENY_POLICY);
	server_start(&echo4, AF_INET, serve_echo, NULL, 0);
	server_start(&echo6, AF_INET6, serve_echo, NULL, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	server_stop(&echo4);
	server_stop(&echo6);
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

/* Connects to host, checks a round trip and the peer address. */
static void
round_trip(tb_client *c, const char *host, uint16_t port, const char *peer)
{
	struct tb_error	err;
	tb_handle	h;
	char		buf[64], addr[TB_ADDR_STRLEN];
	size_t		n;

	assert_ok(tb_connect(c, host, port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "ping\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "ping");
	assert_ok(tb_peer_addr(c, h, addr, sizeof(addr), &err), &err);
	snprintf(buf, sizeof(buf), "%s:%u", peer, port);
	assert_string_equal(addr, buf);
	assert_ok(tb_close(c, h, &err), &err);
}

static void
test_connect_ipv4(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	char		 addr[TB_ADDR_STRLEN];

	(void)state;
	round_trip(c, "127.0.0.1", echo4.port, "127.0.0.1");
	assert_ok(tb_connect(c, "127.0.0.1", echo4.port, &h, &err), &err);
	assert_ok(tb_local_addr(c, h, addr, sizeof(addr), &err), &err);
	assert_memory_equal(addr, "127.0.0.1:", 10);
	tb_client_close(c);
}

static void
test_connect_ipv6(void **state)
{
	tb_client	*c = harness_client(&broker);

	(void)state;
	round_trip(c, "::1", echo6.port, "[::1]");
	round_trip(c, "[::1]", echo6.port, "[::1]");
	tb_client_close(c);
}

static void
test_connect_name(void **state)
{
	tb_client	*c = harness_client(&broker);

	(void)state;
	/* localhost may resolve to ::1 first; the broker tries each address. */
	round_trip(c, "localhost", echo4.port, "127.0.0.1");
	round_trip(c, "LocalHost.", echo4.port, "127.0.0.1");
	/* The decision log names the name, its addresses and the choice. */
	assert_true(harness_log_contains(&broker, "\"host\":\"localhost\""));
	assert_true(harness_log_contains(&broker,
	    "\"addresses\":[\"127.0.0.1\"],\"address\":\"127.0.0.1\","
	    "\"verdict\":\"allow\""));
	tb_client_close(c);
}

static void
test_connect_timeout_ok(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	assert_ok(tb_connect_timeout(c, "127.0.0.1", echo4.port, 3000, &h,
	    &err), &err);
	assert_ok(tb_close(c, h, &err), &err);
	assert_rc(tb_connect_timeout(c, "127.0.0.1", echo4.port, 0, &h, &err),
	    TB_EINVAL, &err);
	tb_client_close(c);
}

/*
 * A listener whose accept queue is full drops new SYNs, so a connect to
 * it hangs: a time-out on loopback alone.
 */
static void
test_connect_timeout_expires(void **state)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	socklen_t		 len = sizeof(sin);
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	struct tcp_info		 ti;
	uint64_t		 start;
	int			 lfd, fill[8], i;

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	for (i = 0; i < 8; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	/*
	 * Wait until the accept queue is full: for a listener, TCP_INFO's
	 * tcpi_unacked is the queue's length and tcpi_sacked its backlog.
	 */
	for (i = 0; i < 5000; i++) {
		len = sizeof(ti);
		assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti,
		    &len), 0);
		if (ti.tcpi_unacked > ti.tcpi_sacked)
			break;
		harness_sleep_ms(1);
	}
	assert_true(ti.tcpi_unacked > ti.tcpi_sacked);

	start = harness_now_ms();
	assert_rc(tb_connect_timeout(c, "127.0.0.1", ntohs(sin.sin_port), 300,
	    &h, &err), TB_ETIMEDOUT, &err);
	assert_true(harness_now_ms() - start >= 250);
	assert_non_null(strstr(err.message, "timeout"));

	/* The session is fine afterwards. */
	round_trip(c, "127.0.0.1", echo4.port, "127.0.0.1");
	for (i = 0; i < 8; i++)
		close(fill[i]);
	close(lfd);
	tb_client_close(c);
}

static void
test_connect_refused(void **state)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	socklen_t		 len = sizeof(sin);
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	int			 fd;

	(void)state;
	/* A port that was just free: nothing listens on it. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	assert_rc(tb_connect(c, "127.0.0.1", ntohs(sin.sin_port), &h, &err),
	    TB_ECONNREFUSED, &err);
	assert_rc(tb_connect(c, "localhost", ntohs(sin.sin_port), &h, &err),
	    TB_ECONNREFUSED, &err);
	tb_client_close(c);
}

static void
test_connect_policy(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	/* Loopback is internal: only an address rule opens it. */
	assert_rc(tb_connect(c, "127.0.0.2", echo4.port, &h, &err),
	    TB_EPOLICY, &err);
	assert_non_null(strstr(err.message, "internal range 127.0.0.0/8"));
	assert_rc(tb_connect(c, "127.0.0.1", 80, &h, &err), TB_EPOLICY, &err);
	/* Not allowed by any rule: the default denies. */
	assert_rc(tb_connect(c, "192.0.2.1", 80, &h, &err), TB_EPOLICY, &err);
	assert_rc(tb_connect(c, "::2", echo6.port, &h, &err), TB_EPOLICY, &err);

	/* A deny rule wins over the allow rule of the same address. */
	assert_rc(tb_connect(c, "127.0.0.1", 40003, &h, &err), TB_EPOLICY,
	    &err);
	assert_non_null(strstr(err.message, "policy.conf:8"));

	/* The same through a name: checked on the address it resolves to. */
	assert_rc(tb_connect(c, "localhost", 40003, &h, &err), TB_EPOLICY,
	    &err);
	assert_non_null(strstr(err.message, "policy.conf:8"));

	/* IPv4-mapped IPv6 is judged as the IPv4 address. */
	assert_rc(tb_connect(c, "::ffff:127.0.0.1", 40003, &h, &err),
	    TB_EPOLICY, &err);
	assert_ok(tb_connect(c, "::ffff:127.0.0.1", echo4.port, &h, &err),
	    &err);
	assert_ok(tb_close(c, h, &err), &err);
	assert_true(harness_log_contains(&broker, "\"verdict\":\"deny\","
	    "\"report\":false,\"rule\":\""));
	tb_client_close(c);
}

static void
test_connect_bad_host(void **state)
{
	static const char *const bad[] = {
		"2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "a..b",
		"-a.example", "exa mple.test", "a/b", "[::1", "1.2.3.4.5",
	};
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rc(tb_connect(c, bad[i], echo4.port, &h, &err),
		    TB_EINVAL, &err);
	}
	assert_rc(tb_connect(c, "", echo4.port, &h, &err), TB_EINVAL, &err);
	assert_rc(tb_connect(c, "127.0.0.1", 0, &h, &err), TB_EINVAL, &err);
	tb_client_close(c);
}

/*
 * A name that no rule names, in a policy with no address rule for the
 * port, is denied before any lookup: nothing reaches DNS.
 */
static void
test_connect_name_denied_before_dns(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	assert_rc(tb_connect(c, "db.internal.test", 444, &h, &err),
	    TB_EPOLICY, &err);
	assert_rc(tb_connect(c, "other.internal.test", 443, &h, &err),
	    TB_EPOLICY, &err);
	assert_true(harness_log_contains(&broker,
	    "\"host\":\"other.internal.test\",\"port\":443,"
	    "\"addresses\":[],\"address\":null,\"verdict\":\"deny\""));
	tb_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ipv4),
		cmocka_unit_test(test_connect_ipv6),
		cmocka_unit_test(test_connect_name),
		cmocka_unit_test(test_connect_timeout_ok),
		cmocka_unit_test(test_connect_timeout_expires),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_policy),
		cmocka_unit_test(test_connect_bad_host),
		cmocka_unit_test(test_connect_name_denied_before_dns),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
