/*
 * The streaming data plane through a real broker: reads served from the
 * client's buffer over many connections, flow control when a client
 * stops reading, time-outs with partial data, write-behind errors, and
 * waiting on many connections and listeners with tb_select.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Connections the many-connection cases open: more than 32 (issue 9). */
#define MANY	100

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

static tb_handle
connect_to(tb_client *c, struct test_server *srv)
{
	struct tb_error	err;
	tb_handle	h;

	assert_ok(tb_connect(c, "127.0.0.1", srv->port, &h, &err), &err);
	return h;
}

/*
 * Reading lines on many connections at once, each with data left over:
 * the broker once charged a whole line buffer per connection, so the
 * 33rd connection failed with ELIMIT while about 1 KB was buffered.
 * The buffer is as large as a line may be, as the Lua module's is.
 */
static void
test_read_line_many(void **state)
{
	static const char	 lines[] = "first line\r\nsecond line\nthird";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h[MANY];
	static char		 buf[TB_LINE_MAX];
	size_t			 n;
	int			 i;

	(void)state;
	server_start(&srv, AF_INET, serve_send_hold, lines, sizeof(lines) - 1);
	for (i = 0; i < MANY; i++)
		h[i] = connect_to(c, &srv);
	for (i = 0; i < MANY; i++) {
		assert_ok(tb_read_line(c, h[i], buf, sizeof(buf), &n, &err),
		    &err);
		assert_string_equal(buf, "first line");
	}
	for (i = 0; i < MANY; i++) {
		assert_ok(tb_read_line(c, h[i], buf, sizeof(buf), &n, &err),
		    &err);
		assert_string_equal(buf, "second line");
	}
	for (i = 0; i < MANY; i++)
		assert_ok(tb_close(c, h[i], &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_line_many),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
