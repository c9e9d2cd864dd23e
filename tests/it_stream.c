/*
 * The streaming data plane through a real broker: reads served from the
 * client's buffer over many connections, flow control when a client
 * stops reading, time-outs with partial data, write-behind errors, and
 * waiting on many connections and listeners with tb_select.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* Bytes the flooding server sent so far; it sends FLOOD_TOTAL in all. */
static atomic_size_t	flood_sent;
#define FLOOD_TOTAL	(64 * 1024 * 1024)

static uint8_t
flood_byte(size_t i)
{
	return (uint8_t)(i % 251);
}

/* Sends FLOOD_TOTAL bytes of a known pattern as fast as it is taken. */
static void
serve_flood(struct test_server *srv, int fd)
{
	uint8_t		buf[65536];
	struct pollfd	pfd = { fd, POLLOUT, 0 };
	size_t		off = 0, i, n;
	ssize_t		sent;

	while (off < FLOOD_TOTAL && !atomic_load(&srv->stopping)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = FLOOD_TOTAL - off < sizeof(buf) ? FLOOD_TOTAL - off :
		    sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = flood_byte(off + i);
		if ((sent = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT)) <= 0)
			continue;
		off += (size_t)sent;
		atomic_store(&flood_sent, off);
	}
}

/*
 * Waits until the flooding server can send no more (300 ms without
 * progress) and returns how much it sent.
 */
static size_t
flood_wait_stalled(void)
{
	uint64_t	stable_since = harness_now_ms(), give_up;
	size_t		sent, last = 0;

	give_up = stable_since + 20000;
	while (harness_now_ms() < give_up) {
		harness_sleep_ms(20);
		sent = atomic_load(&flood_sent);
		if (sent != last) {
			last = sent;
			stable_since = harness_now_ms();
		} else if (harness_now_ms() - stable_since >= 300)
			break;
	}
	return atomic_load(&flood_sent);
}

/* Reads the flood from total on, checking every byte, to its end. */
static void
flood_read_rest(tb_client *c, tb_handle h, size_t total)
{
	struct tb_error	err;
	static uint8_t	buf[65536];
	size_t		n, i;

	while (total < FLOOD_TOTAL) {
		assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
		assert_true(n > 0);
		for (i = 0; i < n; i++)
			if (buf[i] != flood_byte(total + i))
				fail_msg("byte %zu is %u", total + i, buf[i]);
		total += n;
	}
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
}

/*
 * A client that stops reading: the broker stops reading once the window
 * is used up, the peer is slowed by TCP, and neither the broker nor the
 * client grows.  Reading again drains it all, every byte in order.
 */
static void
test_stopped_reader(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	size_t			 sent;
	long			 rss_before, rss_after;

	(void)state;
	atomic_store(&flood_sent, 0);
	rss_before = harness_status_field(broker.pid, "VmRSS:");
	server_start(&srv, AF_INET, serve_flood, NULL, 0);
	h = connect_to(c, &srv);
	sent = flood_wait_stalled();
	/* The window, the session's output and the kernel's buffers: no more. */
	print_message("stopped reader: the server sent %zu bytes\n", sent);
	assert_true(sent > 0);
	assert_true(sent < FLOOD_TOTAL / 4);
	rss_after = harness_status_field(broker.pid, "VmRSS:");
	print_message("broker RSS %ld kB before, %ld kB stalled\n",
	    rss_before, rss_after);
	assert_true(rss_after - rss_before < 8 * 1024);

	/* Reading again drains the rest, in order. */
	flood_read_rest(c, h, 0);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

/*
 * A reader that kept up, and so grew its window (version 5), stops:
 * the broker reads on within the grown window, and reading again gets
 * every byte in order.  Whether the window grew is not seen from here,
 * nor is how much the server sent meanwhile bounded: the kernel's TCP
 * buffers grew while the reader kept up, to more than the window
 * (unit_version and wire_python check growth and its bounds).
 */
static void
test_grown_window_stopped(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	static uint8_t		 buf[65536];
	size_t			 total = 0, sent, n, i;

	(void)state;
	atomic_store(&flood_sent, 0);
	server_start(&srv, AF_INET, serve_flood, NULL, 0);
	h = connect_to(c, &srv);
	while (total < FLOOD_TOTAL / 8) {
		assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
		for (i = 0; i < n; i++)
			if (buf[i] != flood_byte(total + i))
				fail_msg("byte %zu is %u", total + i, buf[i]);
		total += n;
	}
	sent = flood_wait_stalled();
	print_message("grown window, stopped: %zu bytes sent past the %zu "
	    "read\n", sent - total, total);
	flood_read_rest(c, h, total);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

/* A time-out with part of a line or record there takes nothing of it. */
static void
test_timeout_partial(void **state)
{
	static const char	 partial[] = "no newline yet";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[256];
	size_t			 n;
	uint64_t		 t0;

	(void)state;
	server_start(&srv, AF_INET, serve_send_hold, partial,
	    sizeof(partial) - 1);
	h = connect_to(c, &srv);
	assert_ok(tb_set_timeout_ms(c, h, 150, &err), &err);
	/* Wait until the partial line is in the client's buffer. */
	assert_ok(tb_peek(c, h, buf, 1, &n, &err), &err);
	t0 = harness_now_ms();
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	assert_true(harness_now_ms() - t0 >= 140);
	assert_non_null(strstr(err.message, "still usable"));
	assert_rc(tb_read_until(c, h, '|', buf, sizeof(buf), &n, &err),
	    TB_ETIMEDOUT, &err);
	assert_rc(tb_read_exact(c, h, buf, sizeof(partial), &err),
	    TB_ETIMEDOUT, &err);
	/* All of it is still there. */
	assert_ok(tb_read_exact(c, h, buf, sizeof(partial) - 1, &err), &err);
	assert_memory_equal(buf, partial, sizeof(partial) - 1);
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

/* select over many connections finds exactly those with data. */
static void
test_select_many(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h[MANY];
	bool			 ready[MANY];
	char			 buf[16];
	size_t			 n, nready;
	uint64_t		 t0;
	int			 i;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	for (i = 0; i < MANY; i++)
		h[i] = connect_to(c, &srv);
	t0 = harness_now_ms();
	assert_ok(tb_select(c, h, MANY, ready, 100, &nready, &err), &err);
	assert_int_equal(nready, 0);
	assert_true(harness_now_ms() - t0 >= 90);
	assert_ok(tb_write_all(c, h[37], "a\n", 2, &err), &err);
	assert_ok(tb_write_all(c, h[MANY - 1], "b\n", 2, &err), &err);
	/* The echoes come one after the other: wait for both, boundedly. */
	for (i = 0; i < 100; i++) {
		assert_ok(tb_select(c, h, MANY, ready, 5000, &nready, &err),
		    &err);
		assert_true(nready >= 1);
		if (nready == 2)
			break;
		harness_sleep_ms(10);
	}
	assert_int_equal(nready, 2);
	for (i = 0; i < MANY; i++)
		assert_int_equal(ready[i], i == 37 || i == MANY - 1);
	assert_ok(tb_read_line(c, h[37], buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "a");
	assert_ok(tb_read_line(c, h[MANY - 1], buf, sizeof(buf), &n, &err),
	    &err);
	assert_string_equal(buf, "b");
	assert_ok(tb_select(c, h, MANY, ready, 0, &nready, &err), &err);
	assert_int_equal(nready, 0);
	/* End of stream is ready too: a read would not wait. */
	assert_ok(tb_shutdown(c, h[5], TB_SHUTDOWN_WRITE, &err), &err);
	assert_ok(tb_select(c, h, MANY, ready, 5000, &nready, &err), &err);
	assert_int_equal(nready, 1);
	assert_true(ready[5]);
	assert_ok(tb_read(c, h[5], buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_ok(tb_close(c, h[0], &err), &err);
	assert_rc(tb_select(c, h, MANY, ready, 0, &nready, &err),
	    TB_EBADHANDLE, &err);
	tb_client_close(c);
	server_stop(&srv);
}

/* A listener is ready when a connection waits to be accepted. */
static void
test_select_listener(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	tb_handle		 hs[2];
	bool			 ready[2];
	char			 addr[TB_ADDR_STRLEN], *colon;
	size_t			 nready, n;
	int			 fd;

	(void)state;
	assert_ok(tb_listen(c, "127.0.0.1:0", &hs[0], &err), &err);
	assert_ok(tb_local_addr(c, hs[0], addr, sizeof(addr), &err), &err);
	assert_non_null(colon = strrchr(addr, ':'));
	assert_ok(tb_select(c, hs, 1, ready, 50, &nready, &err), &err);
	assert_int_equal(nready, 0);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_ok(tb_select(c, hs, 1, ready, 5000, &nready, &err), &err);
	assert_int_equal(nready, 1);
	assert_true(ready[0]);
	assert_ok(tb_accept(c, hs[0], &hs[1], &err), &err);
	assert_ok(tb_select(c, hs, 1, ready, 0, &nready, &err), &err);
	assert_int_equal(nready, 0);
	/* Listeners and connections together. */
	assert_int_equal(send(fd, "hi", 2, 0), 2);
	assert_ok(tb_select(c, hs, 2, ready, 5000, &nready, &err), &err);
	assert_int_equal(nready, 1);
	assert_false(ready[0]);
	assert_true(ready[1]);
	assert_ok(tb_read_exact(c, hs[1], addr, 2, &err), &err);
	(void)n;
	close(fd);
	tb_client_close(c);
}

/* Reads nothing; once released, resets the connection. */
static void
serve_reset_on_release(struct test_server *srv, int fd)
{
	struct linger	lg = { 1, 0 };

	while (!atomic_load(&srv->stopping) && !atomic_load(&srv->release))
		harness_sleep_ms(10);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* Fills h's buffers and send window: write returns a short count. */
static void
fill(tb_client *c, tb_handle h)
{
	static uint8_t	data[8 * 1024 * 1024];
	struct tb_error	err;
	size_t		n;

	assert_ok(tb_set_timeout_ms(c, h, 200, &err), &err);
	assert_ok(tb_write(c, h, data, sizeof(data), &n, &err), &err);
	assert_true(n > 0 && n < sizeof(data));
}

/* Waits until h is ready: here, until the broker has told the error. */
static void
wait_ready(tb_client *c, tb_handle h)
{
	struct tb_error	err;
	bool		ready;
	size_t		nready;

	assert_ok(tb_select(c, &h, 1, &ready, 5000, &nready, &err), &err);
	assert_int_equal(nready, 1);
}

static bool
is_reset(int rc)
{
	return rc == TB_ECONNRESET || rc == TB_EPIPE;
}

/*
 * Writes return once the data is in the send window; an error met later
 * is returned by the next call, or by close when no call has seen it.
 */
static void
test_write_behind_errors(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 a, b;
	size_t			 n;
	int			 rc;

	(void)state;
	server_start(&srv, AF_INET, serve_reset_on_release, NULL, 0);
	a = connect_to(c, &srv);
	b = connect_to(c, &srv);
	assert_true(server_wait(&srv.accepted, 2, 5000));
	fill(c, a);
	fill(c, b);
	atomic_store(&srv.release, true);
	wait_ready(c, a);
	wait_ready(c, b);
	/* The next call on a says what happened. */
	rc = tb_write(c, a, "x", 1, &n, &err);
	if (!is_reset(rc))
		fail_msg("write after the reset: %s", tb_err_name(rc));
	assert_non_null(strstr(err.message, "none of the 1 bytes of this "
	    "call"));
	assert_ok(tb_close(c, a, &err), &err);
	/* Nothing asked on b: close says its data was lost. */
	rc = tb_close(c, b, &err);
	if (!is_reset(rc))
		fail_msg("close after the reset: %s", tb_err_name(rc));
	assert_non_null(strstr(err.message, "not all sent"));
	/* Closed once, even by a failing close: again is a no-op. */
	assert_ok(tb_close(c, b, &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

/* Bytes serve_late_check received in order, and whether one was wrong. */
static atomic_size_t	checked;
static atomic_bool	mismatch;

/*
 * Reads nothing until released, then 200 ms more, so that data waits in
 * the broker; then reads to the end, checking the flood pattern.
 */
static void
serve_late_check(struct test_server *srv, int fd)
{
	uint8_t		buf[65536];
	struct pollfd	pfd = { fd, POLLIN, 0 };
	size_t		off = 0, i;
	ssize_t		n;
	int		rcvbuf = 64 * 1024;

	/* A small, fixed receive buffer: the kernel cannot take it all. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	while (!atomic_load(&srv->stopping) && !atomic_load(&srv->release))
		harness_sleep_ms(10);
	harness_sleep_ms(200);
	while (!atomic_load(&srv->stopping)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((n = recv(fd, buf, sizeof(buf), 0)) <= 0)
			break;
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != flood_byte(off + i))
				atomic_store(&mismatch, true);
		off += (size_t)n;
		atomic_store(&checked, off);
	}
	atomic_fetch_add(&srv->eofs, 1);
}

/*
 * A write returns before the peer has the data; close (of the handle or
 * of the whole session) waits until the broker's socket has what the
 * broker still held, so the peer gets every byte.
 */
static void
close_flushes(bool whole_session)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	uint8_t			 piece[16384];
	size_t			 total = 0, n, i;
	int			 rounds, rc;

	atomic_store(&checked, 0);
	atomic_store(&mismatch, false);
	server_start(&srv, AF_INET, serve_late_check, NULL, 0);
	h = connect_to(c, &srv);
	/* Write until the buffers and the send window are full. */
	assert_ok(tb_set_timeout_ms(c, h, 200, &err), &err);
	for (rounds = 0; rounds < 100000; rounds++) {
		for (i = 0; i < sizeof(piece); i++)
			piece[i] = flood_byte(total + i);
		rc = tb_write(c, h, piece, sizeof(piece), &n, &err);
		if (rc == TB_ETIMEDOUT)
			break;		/* nothing more fits */
		assert_ok(rc, &err);
		total += n;
		if (n < sizeof(piece))
			break;
	}
	assert_true(rounds < 100000);
	assert_ok(tb_set_timeout_ms(c, h, 0, &err), &err);
	atomic_store(&srv.release, true);
	if (whole_session)
		tb_client_close(c);
	else
		assert_ok(tb_close(c, h, &err), &err);
	assert_true(server_wait(&srv.eofs, 1, 20000));
	print_message("close flushed: the peer got %zu of %zu bytes\n",
	    atomic_load(&checked), total);
	assert_int_equal(atomic_load(&checked), total);
	assert_false(atomic_load(&mismatch));
	if (!whole_session)
		tb_client_close(c);
	server_stop(&srv);
}

static void
test_write_behind_close_flushes(void **state)
{
	(void)state;
	close_flushes(false);
}

static void
test_write_behind_session_close_flushes(void **state)
{
	(void)state;
	close_flushes(true);
}

/* Threads sharing the session, each reading its connection's lines. */
#define THREADS		8
#define THREAD_LINES	20000

struct line_reader {
	tb_client	*c;
	tb_handle	 h;
	int		 lines;
	int		 rc;
	struct tb_error	 err;
};

static void *
line_reader_main(void *p)
{
	struct line_reader	*r = p;
	char			 buf[64], want[16];
	size_t			 n;

	for (r->lines = 0; r->lines < THREAD_LINES; r->lines++) {
		r->rc = tb_read_line(r->c, r->h, buf, sizeof(buf), &n, &r->err);
		snprintf(want, sizeof(want), "%05d", r->lines);
		if (r->rc != 0 || strcmp(buf, want) != 0)
			return NULL;
	}
	r->rc = tb_read_line(r->c, r->h, buf, sizeof(buf), &n, &r->err);
	return NULL;
}

/* The reader hands every message to the thread it is for. */
static void
test_threads_read_streams(void **state)
{
	struct test_server	 srv;
	struct line_reader	 r[THREADS];
	pthread_t		 t[THREADS];
	tb_client		*c = harness_client(&broker);
	char			*text;
	int			 i;

	(void)state;
	assert_non_null(text = malloc(THREAD_LINES * 6 + 1));
	for (i = 0; i < THREAD_LINES; i++)
		snprintf(text + i * 6, 7, "%05d\n", i);
	server_start(&srv, AF_INET, serve_send, text, THREAD_LINES * 6);
	for (i = 0; i < THREADS; i++) {
		r[i].c = c;
		r[i].h = connect_to(c, &srv);
		assert_int_equal(pthread_create(&t[i], NULL, line_reader_main,
		    &r[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (r[i].lines != THREAD_LINES)
			fail_msg("thread %d: line %d: %s", i, r[i].lines,
			    r[i].err.message);
		assert_rc(r[i].rc, TB_EOF, &r[i].err);
	}
	tb_client_close(c);
	server_stop(&srv);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_line_many),
		cmocka_unit_test(test_threads_read_streams),
		cmocka_unit_test(test_stopped_reader),
		cmocka_unit_test(test_grown_window_stopped),
		cmocka_unit_test(test_timeout_partial),
		cmocka_unit_test(test_select_many),
		cmocka_unit_test(test_select_listener),
		cmocka_unit_test(test_write_behind_errors),
		cmocka_unit_test(test_write_behind_close_flushes),
		cmocka_unit_test(test_write_behind_session_close_flushes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
