/*
 * The client library against scripted brokers on a socket pair, each
 * speaking as docs/protocol.md says up to a version:
 * - older than the library, 2 and 3: a hello with a newer version is
 *   EVERSION.  The library must say hello again with an older one and
 *   stream; it must close by the request where version 2 has no close
 *   notification (which would end the session), by the notification in
 *   version 3.
 * - version 4, whose send windows grow: the library must send within a
 *   window the broker grew, without waiting for acks the smaller one
 *   would have needed, and must take a window that shrinks as the
 *   protocol error it is.
 * - version 5, whose receive windows grow: a library that reads all
 *   that comes grows its window up to CLIENT_RECV_WINDOW_MAX with its
 *   credit, only with a broker of version 5, buffers what the grown
 *   window lets come, and grows the windows of one session by no more
 *   than CLIENT_RECV_GROWTH_MAX together, given back as they close.
 * - any version whose hello says it busy-polls (busy_poll_us): the
 *   library polls as long for answers, but never past
 *   CLIENT_BUSY_POLL_US_MAX.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "tcpbroker.h"
#include "tb_limits.h"

/* Messages the scripted broker reads before it gives up: messages. */
#define OLD_MESSAGES_MAX	1024
/* The handle the scripted broker's first connect gives; then the next. */
#define OLD_HANDLE		0x100
/* Connections the scripted broker streams to: connections. */
#define OLD_CONNS		8
/* What the window test writes, more than LIMIT_SEND_WINDOW: bytes. */
#define GROWN_WINDOW		(512 * 1024)
/* How long a write or read of these tests may wait: milliseconds. */
#define WAIT_MS			5000
/* What the receive window tests stream: bytes. */
#define STREAMED		(8 * 1024 * 1024)
/* How long the busy polling test's read waits for nothing: ms. */
#define IDLE_WAIT_MS		200

struct old_broker {
	int		 fd;
	unsigned	 speaks;	/* the newest version it takes */
	uint32_t	 busy_poll_us;	/* said at hello, if not 0 */
	uint32_t	 window_note;	/* pushed after connect, if not 0 */
	unsigned	 hellos;	/* hello calls seen */
	unsigned	 version;	/* the one it accepted, 0 if none */
	unsigned	 close_requests;
	unsigned	 close_notes;
	size_t		 sent;		/* bytes of send notifications */
	unsigned	 others;
	/* Streams to_push bytes to each connection, within its credit. */
	size_t		 to_push;
	unsigned	 nconns;
	size_t		 pushed[OLD_CONNS];
	size_t		 credit[OLD_CONNS];	/* what it may push now */
	size_t		 credit_most[OLD_CONNS];
	size_t		 last_most;	/* the last's, as the first closed */
};

static bool
is_str(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	    memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void
send_packed(struct old_broker *b, msgpack_sbuffer *sb)
{
	/* A library that gave up may have closed: no SIGPIPE then. */
	if (send(b->fd, sb->data, sb->size, MSG_NOSIGNAL) !=
	    (ssize_t)sb->size && errno != EPIPE)
		b->others++;	/* no cmocka assert off the test's thread */
	msgpack_sbuffer_destroy(sb);
}

/* Answers request msgid with an error, or with what fill packs. */
static void
answer(struct old_broker *b, uint64_t msgid, const char *code,
    void (*fill)(struct old_broker *, msgpack_packer *))
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
	char		text[64];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint64(&pk, msgid);
	if (code != NULL) {
		snprintf(text, sizeof(text), "this broker speaks protocol "
		    "versions 1 to %u", b->speaks);
		msgpack_pack_array(&pk, 2);
		pack_str(&pk, code);
		pack_str(&pk, text);
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_nil(&pk);
		fill(b, &pk);
	}
	send_packed(b, &sb);
}

/* Pushes [2, name, [OLD_HANDLE, n]]. */
static void
push(struct old_broker *b, const char *name, uint32_t n)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, 2);
	pack_str(&pk, name);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint32(&pk, OLD_HANDLE);
	msgpack_pack_uint32(&pk, n);
	send_packed(b, &sb);
}

/* Pushes data to connection i of what is left, as far as credit goes. */
static void
push_data(struct old_broker *b, unsigned i)
{
	static const uint8_t	payload[65536];
	msgpack_sbuffer		sb;
	msgpack_packer		pk;
	size_t			n;

	if (b->credit[i] > b->credit_most[i])
		b->credit_most[i] = b->credit[i];
	while (b->pushed[i] < b->to_push && b->credit[i] > 0) {
		n = b->to_push - b->pushed[i];
		if (n > b->credit[i])
			n = b->credit[i];
		if (n > sizeof(payload))
			n = sizeof(payload);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, 2);
		pack_str(&pk, "data");
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint32(&pk, OLD_HANDLE + i);
		msgpack_pack_bin_with_body(&pk, payload, n);
		send_packed(b, &sb);
		b->pushed[i] += n;
		b->credit[i] -= n;
	}
}

static void
fill_hello(struct old_broker *b, msgpack_packer *pk)
{
	msgpack_pack_map(pk, b->busy_poll_us != 0 ? 3 : 2);
	pack_str(pk, "version");
	msgpack_pack_uint8(pk, (uint8_t)b->version);
	pack_str(pk, "session");
	msgpack_pack_uint8(pk, 7);
	if (b->busy_poll_us != 0) {
		pack_str(pk, "busy_poll_us");
		msgpack_pack_uint32(pk, b->busy_poll_us);
	}
}

static void
fill_stream(struct old_broker *b, msgpack_packer *pk)
{
	(void)b;
	msgpack_pack_map(pk, 2);
	pack_str(pk, "recv_window");
	msgpack_pack_uint32(pk, CLIENT_RECV_WINDOW);
	pack_str(pk, "send_window");
	msgpack_pack_uint32(pk, 128 * 1024);
}

static void
fill_handle(struct old_broker *b, msgpack_packer *pk)
{
	msgpack_pack_uint32(pk, OLD_HANDLE + b->nconns);
}

static void
fill_nil(struct old_broker *b, msgpack_packer *pk)
{
	(void)b;
	msgpack_pack_nil(pk);
}

static void
old_handle(struct old_broker *b, const msgpack_object *m)
{
	const msgpack_object	*a = m->via.array.ptr, *params;
	uint64_t		 msgid;
	unsigned		 i;

	if (m->via.array.size == 3 && a[0].via.u64 == 2) {
		params = &a[2];
		i = (unsigned)(params->via.array.ptr[0].via.u64 - OLD_HANDLE);
		if (i >= b->nconns) {
			b->others++;
			return;
		}
		if (is_str(&a[1], "close")) {
			b->close_notes++;
			b->last_most = b->credit_most[b->nconns - 1];
		}
		else if (is_str(&a[1], "send") && b->window_note != 0) {
			/* No ack until the grown window is all sent. */
			b->sent += params->via.array.ptr[1].via.bin.size;
			if (b->sent == b->window_note)
				push(b, "ack", (uint32_t)b->sent);
		} else if (is_str(&a[1], "credit")) {
			b->credit[i] += params->via.array.ptr[1].via.u64;
			push_data(b, i);
		} else
			b->others++;
		return;
	}
	if (m->via.array.size != 4) {
		b->others++;
		return;
	}
	msgid = a[1].via.u64;
	params = &a[3];
	if (is_str(&a[2], "hello")) {
		b->hellos++;
		if (params->via.array.ptr[0].via.u64 > b->speaks)
			answer(b, msgid, "EVERSION", NULL);
		else {
			b->version = (unsigned)params->via.array.ptr[0].via.u64;
			answer(b, msgid, NULL, fill_hello);
		}
	} else if (is_str(&a[2], "stream"))
		answer(b, msgid, b->version ? NULL : "EPROTO", fill_stream);
	else if (is_str(&a[2], "connect")) {
		if (b->nconns == OLD_CONNS) {
			answer(b, msgid, "ELIMIT", NULL);
			return;
		}
		answer(b, msgid, NULL, fill_handle);
		if (b->window_note != 0)
			push(b, "window", b->window_note);
		b->credit[b->nconns] = CLIENT_RECV_WINDOW;
		push_data(b, b->nconns++);
	} else if (is_str(&a[2], "set_timeout_ms"))
		answer(b, msgid, NULL, fill_nil);
	else if (is_str(&a[2], "close")) {
		b->close_requests++;
		answer(b, msgid, NULL, fill_nil);
	} else {
		b->others++;
		answer(b, msgid, "EPROTO", NULL);
	}
}

/* Serves the library's session until it closes it. */
static void *
old_main(void *arg)
{
	struct old_broker	*b = arg;
	msgpack_unpacker	 u;
	msgpack_unpacked	 m;
	unsigned		 n = 0;
	ssize_t			 got;

	msgpack_unpacker_init(&u, 4096);
	msgpack_unpacked_init(&m);
	while (n < OLD_MESSAGES_MAX) {
		msgpack_unpacker_reserve_buffer(&u, 4096);
		got = read(b->fd, msgpack_unpacker_buffer(&u), 4096);
		if (got <= 0)
			break;
		msgpack_unpacker_buffer_consumed(&u, (size_t)got);
		while (n < OLD_MESSAGES_MAX &&
		    msgpack_unpacker_next(&u, &m) == MSGPACK_UNPACK_SUCCESS) {
			n++;
			old_handle(b, &m.data);
		}
	}
	/* A library still waiting fails now instead of at ctest's limit. */
	shutdown(b->fd, SHUT_RDWR);
	msgpack_unpacked_destroy(&m);
	msgpack_unpacker_destroy(&u);
	return NULL;
}

/* A client of a scripted broker b, running on its own thread t. */
static tb_client *
old_start(struct old_broker *b, pthread_t *t)
{
	struct tb_error	 err;
	tb_client	*c;
	int		 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	b->fd = sv[1];
	assert_int_equal(pthread_create(t, NULL, old_main, b), 0);
	if (tb_client_open_fd(&c, sv[0], &err) != 0)
		fail_msg("open: %s", err.message);
	return c;
}

static void
old_stop(struct old_broker *b, tb_client *c, pthread_t t)
{
	tb_client_close(c);
	pthread_join(t, NULL);
	close(b->fd);
	assert_int_equal(b->others, 0);
}

/* Connects, closes, and says how many hellos it took. */
static void
connect_close(struct old_broker *b)
{
	struct tb_error	 err;
	tb_client	*c;
	tb_handle	 h;
	pthread_t	 t;

	c = old_start(b, &t);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(h, OLD_HANDLE);
	if (tb_close(c, h, &err) != 0)
		fail_msg("close: %s", err.message);
	old_stop(b, c, t);
}

static void
test_version2_broker(void **state)
{
	struct old_broker	b = { .speaks = 2 };

	(void)state;
	connect_close(&b);
	/* Hello with 4 and 3, refused; with 2, taken; closed by request. */
	assert_int_equal(b.hellos, PROTO_VERSION - 1);
	assert_int_equal(b.version, 2);
	assert_int_equal(b.close_requests, 1);
	assert_int_equal(b.close_notes, 0);
}

static void
test_version3_broker(void **state)
{
	struct old_broker	b = { .speaks = 3 };

	(void)state;
	connect_close(&b);
	assert_int_equal(b.hellos, PROTO_VERSION - 2);
	assert_int_equal(b.version, 3);
	assert_int_equal(b.close_requests, 0);
	assert_int_equal(b.close_notes, 1);
}

/*
 * The broker grows the window to GROWN_WINDOW and acks nothing before
 * all of it came: with LIMIT_SEND_WINDOW only, the write would wait for
 * an ack until it timed out.
 */
static void
test_window_grows(void **state)
{
	struct old_broker	 b = { .speaks = 4, .window_note = GROWN_WINDOW };
	struct tb_error		 err;
	static uint8_t		 data[GROWN_WINDOW];
	tb_client		*c;
	tb_handle		 h;
	pthread_t		 t;

	(void)state;
	_Static_assert(GROWN_WINDOW > LIMIT_SEND_WINDOW &&
	    GROWN_WINDOW <= PROTO_SEND_WINDOW_MAX, "a window that grew");
	c = old_start(&b, &t);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(tb_set_timeout_ms(c, h, WAIT_MS, &err), 0);
	if (tb_write_all(c, h, data, sizeof(data), &err) != 0)
		fail_msg("write_all: %s", err.message);
	/* close waits for the acks of what was written behind. */
	if (tb_close(c, h, &err) != 0)
		fail_msg("close: %s", err.message);
	old_stop(&b, c, t);
	assert_int_equal(b.version, 4);
	assert_int_equal(b.sent, GROWN_WINDOW);
	assert_int_equal(b.close_notes, 1);
}

/* A window note the protocol does not allow breaks the session. */
static void
window_refused(unsigned speaks, uint32_t window)
{
	struct old_broker	 b = { .speaks = speaks, .window_note = window };
	struct tb_error		 err;
	tb_client		*c;
	tb_handle		 h;
	pthread_t		 t;
	uint8_t			 buf[16];
	size_t			 n;
	int			 rc;

	c = old_start(&b, &t);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	/* The note may have come already: then this fails as well. */
	rc = tb_set_timeout_ms(c, h, WAIT_MS, &err);
	assert_true(rc == 0 || rc == TB_EPROTO);
	assert_int_equal(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_EPROTO);
	old_stop(&b, c, t);
}

static void
test_window_shrink_refused(void **state)
{
	(void)state;
	window_refused(4, LIMIT_SEND_WINDOW / 2);
}

static void
test_window_past_max_refused(void **state)
{
	(void)state;
	window_refused(4, PROTO_SEND_WINDOW_MAX + 1);
}

/* Version 3 has no window notification. */
static void
test_window_version3_refused(void **state)
{
	(void)state;
	window_refused(3, GROWN_WINDOW);
}

/*
 * Reads what the broker streams to connection h, all of it, making a
 * round trip every MiB when round_trips: the broker answers it only
 * after pushing all its credit, so what the window lets come waits in
 * the library's buffer.
 */
static void
read_stream(tb_client *c, tb_handle h, size_t want, bool round_trips)
{
	struct tb_error	 err;
	static uint8_t	 buf[65536];
	size_t		 total = 0, n;

	while (total < want) {
		if (tb_read(c, h, buf, sizeof(buf), &n, &err) != 0)
			fail_msg("read at %zu: %s", total, err.message);
		total += n;
		if (round_trips && total % (1024 * 1024) < n &&
		    tb_set_timeout_ms(c, h, WAIT_MS, &err) != 0)
			fail_msg("set_timeout_ms: %s", err.message);
	}
}

/*
 * One connection streamed and read, the first half as it comes, then
 * with a round trip every MiB when slow_second; the broker's record of
 * it.
 */
static void
stream_one(struct old_broker *b, bool slow_second)
{
	struct tb_error	 err;
	tb_client	*c;
	tb_handle	 h;
	pthread_t	 t;

	b->to_push = STREAMED;
	c = old_start(b, &t);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(tb_set_timeout_ms(c, h, WAIT_MS, &err), 0);
	read_stream(c, h, STREAMED / 2, false);
	read_stream(c, h, STREAMED / 2, slow_second);
	if (tb_close(c, h, &err) != 0)
		fail_msg("close: %s", err.message);
	old_stop(b, c, t);
	assert_int_equal(b->pushed[0], STREAMED);
}

/* Version 5: the window grows, to CLIENT_RECV_WINDOW_MAX and no more. */
static void
stream_grown(bool slow_second)
{
	struct old_broker	b = { .speaks = 5 };

	stream_one(&b, slow_second);
	print_message("most credit: %zu\n", b.credit_most[0]);
	assert_true(b.credit_most[0] > CLIENT_RECV_WINDOW);
	assert_true(b.credit_most[0] <= CLIENT_RECV_WINDOW_MAX);
}

static void
test_recv_window_grows(void **state)
{
	(void)state;
	stream_grown(false);
}

/*
 * What a grown window lets come, the library takes and buffers: the
 * round trips of the second half let the broker push all its credit.
 */
static void
test_recv_window_grown_fills(void **state)
{
	(void)state;
	stream_grown(true);
}

/*
 * A version 4 broker, to which credit past the window is a protocol
 * error, never gets more.
 */
static void
test_recv_window_version4_fixed(void **state)
{
	struct old_broker	b = { .speaks = 4 };

	(void)state;
	stream_one(&b, false);
	assert_true(b.credit_most[0] <= CLIENT_RECV_WINDOW);
}

/*
 * The windows of one session grow by CLIENT_RECV_GROWTH_MAX together:
 * the connections read first take it all, the last gets none until
 * the first closes and gives its growth back.
 */
static void
test_recv_growth_per_session(void **state)
{
	enum { GROWN = CLIENT_RECV_GROWTH_MAX /
	    (CLIENT_RECV_WINDOW_MAX - CLIENT_RECV_WINDOW) };
	struct old_broker	 b = { .speaks = 5, .to_push = STREAMED };
	struct tb_error		 err;
	tb_client		*c;
	tb_handle		 h[GROWN + 1];
	pthread_t		 t;
	int			 i;

	(void)state;
	_Static_assert(GROWN + 1 <= OLD_CONNS, "connections");
	_Static_assert(CLIENT_RECV_GROWTH_MAX %
	    (CLIENT_RECV_WINDOW_MAX - CLIENT_RECV_WINDOW) == 0, "whole");
	c = old_start(&b, &t);
	for (i = 0; i <= GROWN; i++) {
		if (tb_connect(c, "127.0.0.1", 9, &h[i], &err) != 0)
			fail_msg("connect: %s", err.message);
		assert_int_equal(tb_set_timeout_ms(c, h[i], WAIT_MS, &err), 0);
	}
	for (i = 0; i < GROWN; i++)
		read_stream(c, h[i], STREAMED, false);
	read_stream(c, h[GROWN], STREAMED / 2, false);
	if (tb_close(c, h[0], &err) != 0)
		fail_msg("close: %s", err.message);
	read_stream(c, h[GROWN], STREAMED / 2, false);
	old_stop(&b, c, t);
	/* Grown all the way: more credit than the growth itself. */
	for (i = 0; i < GROWN; i++) {
		assert_true(b.credit_most[i] >
		    CLIENT_RECV_WINDOW_MAX - CLIENT_RECV_WINDOW);
		assert_true(b.credit_most[i] <= CLIENT_RECV_WINDOW_MAX);
	}
	print_message("the last connection's most credit: %zu, then %zu\n",
	    b.last_most, b.credit_most[GROWN]);
	assert_true(b.last_most <= CLIENT_RECV_WINDOW);
	assert_true(b.credit_most[GROWN] >
	    CLIENT_RECV_WINDOW_MAX - CLIENT_RECV_WINDOW);
}

/* This thread's CPU time so far: milliseconds. */
static long
cpu_ms(const struct rusage *ru)
{
	return (long)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
	    (long)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

/*
 * A broker that says it polls for over an hour: a read that waits
 * IDLE_WAIT_MS for nothing polls for CLIENT_BUSY_POLL_US_MAX at most,
 * then sleeps until its time-out: this thread sleeps (a wait in poll()
 * is a voluntary context switch; a yield is not) and spends far less
 * CPU than the wait lasts (polling through it would spend most of it,
 * or, on a loaded machine, sleep never).
 */
static void
test_busy_poll_clamped(void **state)
{
	struct old_broker	 b = { .speaks = PROTO_VERSION,
				    .busy_poll_us = UINT32_MAX };
	struct tb_error		 err;
	struct rusage		 before, after;
	tb_client		*c;
	tb_handle		 h;
	pthread_t		 t;
	uint8_t			 buf[16];

	(void)state;
	_Static_assert(CLIENT_BUSY_POLL_US_MAX < IDLE_WAIT_MS * 1000 / 2,
	    "the wait outlasts the polling");
	c = old_start(&b, &t);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(tb_set_timeout_ms(c, h, IDLE_WAIT_MS, &err), 0);
	assert_int_equal(getrusage(RUSAGE_THREAD, &before), 0);
	assert_int_equal(tb_read_exact(c, h, buf, sizeof(buf), &err),
	    TB_ETIMEDOUT);
	assert_int_equal(getrusage(RUSAGE_THREAD, &after), 0);
	assert_true(after.ru_nvcsw > before.ru_nvcsw);
	assert_true(cpu_ms(&after) - cpu_ms(&before) < IDLE_WAIT_MS / 4);
	if (tb_close(c, h, &err) != 0)
		fail_msg("close: %s", err.message);
	old_stop(&b, c, t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version2_broker),
		cmocka_unit_test(test_version3_broker),
		cmocka_unit_test(test_window_grows),
		cmocka_unit_test(test_window_shrink_refused),
		cmocka_unit_test(test_window_past_max_refused),
		cmocka_unit_test(test_window_version3_refused),
		cmocka_unit_test(test_recv_window_grows),
		cmocka_unit_test(test_recv_window_grown_fills),
		cmocka_unit_test(test_recv_window_version4_fixed),
		cmocka_unit_test(test_recv_growth_per_session),
		cmocka_unit_test(test_busy_poll_clamped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
