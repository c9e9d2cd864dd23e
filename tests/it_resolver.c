/*
 * Names: resolved by the broker's resolver processes from a hosts file
 * of the test's own (bound over /etc/hosts in the broker's mount
 * namespace), every answer judged as the address it reaches, and the
 * resolver surviving the loss of its processes.
 */
#include <sys/socket.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tb_limits.h"

#define RESOLVER_POLICY							\
	"tenant everyone {\n"						\
	"    match uid *\n"						\
	"    connect allow localhost:1024-65535\n"			\
	"    connect allow mapped.test:1024-65535\n"			\
	"    connect allow zero.test:1024-65535\n"			\
	"    connect allow both.test:1024-65535\n"			\
	"    connect allow 127.0.0.1:1024-65535\n"			\
	"    connect deny  127.0.0.1:40000-40009\n"			\
	"}\n"

#define RESOLVER_HOSTS							\
	"127.0.0.1 localhost\n"						\
	"::ffff:127.0.0.1 mapped.test\n"				\
	"0.0.0.0 zero.test\n"						\
	"::1 both.test\n"						\
	"127.0.0.1 both.test\n"						\
	"127.0.0.2 unlisted.test\n"

static struct broker_proc	broker;
static struct test_server	echo;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start_hosts(&broker, RESOLVER_POLICY, RESOLVER_HOSTS);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	server_stop(&echo);
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

static void
round_trip(tb_client *c, const char *host)
{
	struct tb_error	err;
	tb_handle	h;
	char		buf[64], want[64];
	size_t		n;

	assert_ok(tb_connect(c, host, echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "name\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "name");
	assert_ok(tb_peer_addr(c, h, buf, sizeof(buf), &err), &err);
	snprintf(want, sizeof(want), "127.0.0.1:%u", echo.port);
	assert_string_equal(buf, want);
	assert_ok(tb_close(c, h, &err), &err);
}

static void
test_names_from_hosts(void **state)
{
	tb_client	*c = harness_client(&broker);

	(void)state;
	round_trip(c, "localhost");
	/* The name is judged as written in the rule: case, trailing dot. */
	round_trip(c, "LOCALHOST");
	round_trip(c, "localhost.");
	/* ::1 refuses (the echo server is IPv4 only); 127.0.0.1 answers. */
	round_trip(c, "both.test");
	tb_client_close(c);
}

/* An AAAA answer ::ffff:127.0.0.1 is 127.0.0.1 to the policy. */
static void
test_mapped_answer_is_ipv4(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	round_trip(c, "mapped.test");
	assert_rc(tb_connect(c, "mapped.test", 40004, &h, &err), TB_EPOLICY,
	    &err);
	assert_non_null(strstr(err.message, "127.0.0.1:40004"));
	assert_non_null(strstr(err.message, "policy.conf:8"));
	tb_client_close(c);
}

static void
test_unspecified_refused(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	assert_rc(tb_connect(c, "zero.test", echo.port, &h, &err), TB_EPOLICY,
	    &err);
	assert_non_null(strstr(err.message, "unspecified"));
	assert_rc(tb_connect(c, "0.0.0.0", echo.port, &h, &err), TB_EINVAL,
	    &err);
	assert_rc(tb_connect(c, "::", echo.port, &h, &err), TB_EINVAL, &err);
	tb_client_close(c);
}

/* No rule names it: denied before the resolver is asked. */
static void
test_unnamed_denied_before_dns(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	char		 line[160];

	(void)state;
	assert_rc(tb_connect(c, "unlisted.test", echo.port, &h, &err),
	    TB_EPOLICY, &err);
	snprintf(line, sizeof(line), "\"host\":\"unlisted.test\",\"port\":%u,"
	    "\"addresses\":[],\"address\":null,\"verdict\":\"deny\"",
	    echo.port);
	assert_true(harness_log_contains(&broker, line));
	tb_client_close(c);
}

/* Tries a name a few times: a lookup in flight when a worker dies fails. */
static int
connect_soon(tb_client *c, const char *host, struct tb_error *err)
{
	tb_handle	h;
	int		i, rc = TB_ERESOLVE;

	for (i = 0; i < 50 && rc == TB_ERESOLVE; i++) {
		rc = tb_connect(c, host, echo.port, &h, err);
		if (rc == 0)
			tb_close(c, h, err);
		else
			harness_sleep_ms(100);
	}
	return rc;
}

static void
test_resolver_processes_die(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	pid_t		 keeper, workers[16];
	int		 i;

	(void)state;
	keeper = harness_wait_child(broker.pid, "tcpbroker-dns");
	harness_wait_children(keeper, workers, 16, LIMIT_RESOLVER_WORKERS);

	/* A worker dies: the keeper replaces it and names still resolve. */
	assert_int_equal(kill(workers[0], SIGKILL), 0);
	assert_ok(connect_soon(c, "localhost", &err), &err);
	for (i = 0; i < 50; i++) {
		if (harness_children(keeper, workers, 16) ==
		    LIMIT_RESOLVER_WORKERS)
			break;
		harness_sleep_ms(100);
	}
	assert_true(i < 50);
	assert_true(harness_log_contains(&broker, "a resolver worker died"));

	/* The keeper dies: names fail cleanly, addresses still work. */
	assert_int_equal(kill(keeper, SIGKILL), 0);
	for (i = 0; i < 50 && !harness_log_contains(&broker,
	    "the resolver processes are gone"); i++)
		harness_sleep_ms(100);
	assert_rc(tb_connect(c, "localhost", echo.port, &h, &err), TB_ERESOLVE,
	    &err);
	round_trip(c, "127.0.0.1");
	tb_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_from_hosts),
		cmocka_unit_test(test_mapped_answer_is_ipv4),
		cmocka_unit_test(test_unspecified_refused),
		cmocka_unit_test(test_unnamed_denied_before_dns),
		cmocka_unit_test(test_resolver_processes_die),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
