/*
 * --revoke-on-reload: a reload closes the open connections and listeners
 * the new policy no longer allows, each logged with the rule that now
 * denies it; the rest stay open.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"

static struct broker_proc	broker;
static struct test_server	echo, other;
static char			policy[1024];

/* A policy that allows both servers, and denies what extra says. */
static const char *
policy_with(const char *extra)
{
	snprintf(policy, sizeof(policy),
	    "tenant everyone {\n"
	    "    match uid *\n"
	    "    connect allow 127.0.0.1:%u\n"
	    "    connect allow 127.0.0.1:%u\n"
	    "    connect allow localhost:%u\n"
	    "    listen allow 127.0.0.1:0\n"
	    "%s"
	    "}\n", echo.port, other.port, echo.port, extra);
	return policy;
}

static int
setup(void **state)
{
	struct harness_options	opts = { .args = { "--revoke-on-reload" } };

	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	server_start(&other, AF_INET, serve_echo, NULL, 0);
	harness_broker_start_opts(&broker, policy_with(""), &opts);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_broker_stop(&broker);
	server_stop(&echo);
	server_stop(&other);
	return 0;
}

static int
echo_once(tb_client *c, tb_handle h, struct tb_error *err)
{
	char	line[16];
	size_t	n;
	int	rc;

	if ((rc = tb_write_all(c, h, "x\n", 2, err)) != 0)
		return rc;
	return tb_read_line(c, h, line, sizeof(line), &n, err);
}

static void
test_revoke(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 by_addr, by_name, kept, l;
	char		 deny[128];

	(void)state;
	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &by_addr, &err), &err);
	assert_ok(tb_connect(c, "localhost", echo.port, &by_name, &err), &err);
	assert_ok(tb_connect(c, "127.0.0.1", other.port, &kept, &err), &err);
	assert_ok(tb_listen(c, "127.0.0.1:0", &l, &err), &err);
	assert_ok(echo_once(c, by_addr, &err), &err);

	/* The echo server's port is denied now: both of its connections go. */
	snprintf(deny, sizeof(deny), "    connect deny 127.0.0.1:%u\n",
	    echo.port);
	assert_true(harness_broker_reload(&broker, policy_with(deny)));
	assert_true(harness_log_contains(&broker, "closed 2 connections and "
	    "listeners it no longer allows"));
	assert_true(harness_log_contains(&broker, "\"event\":\"revoke\""));
	assert_true(harness_log_contains(&broker, "\"host\":\"localhost\""));
	assert_true(harness_log_contains(&broker, "policy.conf:7\","
	    "\"reason\":\"rule\""));
	assert_int_not_equal(echo_once(c, by_addr, &err), 0);
	assert_int_not_equal(echo_once(c, by_name, &err), 0);
	/* What the new policy allows stays open and works. */
	assert_ok(echo_once(c, kept, &err), &err);

	/* A listener the new policy denies goes too. */
	assert_true(harness_broker_reload(&broker, policy_with(
	    "    listen deny 127.0.0.1:*\n")));
	assert_true(harness_log_contains(&broker, "\"action\":\"listen\""));
	assert_rc(tb_accept(c, l, &kept, &err), TB_EBADHANDLE, &err);
	tb_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoke),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
