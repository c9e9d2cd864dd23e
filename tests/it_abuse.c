/*
 * What a hostile or broken client can send: garbage, sizes meant to
 * make msgpack-c allocate gigabytes, wrong shapes and types, calls
 * past the limits, and floods it never reads the answers to.  Each
 * must end in an error reply or the end of that session alone, with
 * the broker serving everyone else.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"

static struct broker_proc	broker;
static struct test_server	echo;

static int
setup(void **state)
{
	(void)state;
	struct harness_options	opts = { .args = { "--socket-mode", "0666" } };

	harness_broker_start_opts(&broker, HARNESS_POLICY, &opts);
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

/* A raw session: a Unix socket with no client library in between. */
static int
raw_open(void)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	struct timeval		tv = { 5, 0 };
	int			fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", broker.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A raw session of another uid, with the same time limits. */
static int
raw_open_as(uid_t uid)
{
	struct timeval	tv = { 5, 0 };
	int		fd = harness_connect_as(&broker, uid);

	assert_true(fd != -1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
raw_send(int fd, const void *data, size_t len)
{
	assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Whether the broker closed the session (EOF within 5 s). */
static bool
raw_closed(int fd)
{
	uint8_t	buf[4096];
	ssize_t	n;
	int	i;

	for (i = 0; i < 1000; i++) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return true;
		if (n == -1)
			return false;	/* timed out: still open */
	}
	return false;
}

/*
 * Reads one response; returns its error code (0 for none) and copies
 * the result's unsigned value, if it has one, to *value.
 */
static int
raw_response(int fd, uint32_t msgid, uint64_t *value)
{
	static uint8_t		 buf[PROTO_MESSAGE_MAX];
	static size_t		 len;
	msgpack_unpacked	 u;
	struct proto_msg	 m;
	const char		*why;
	char			 message[256];
	size_t			 mlen;
	ssize_t			 n;
	int			 code, i;

	for (i = 0; i < 1000; i++) {
		if (len > 0 && proto_scan(buf, len, &mlen, &why) ==
		    PROTO_SCAN_DONE)
			break;
		n = recv(fd, buf + len, sizeof(buf) - len, 0);
		assert_true(n > 0);
		len += (size_t)n;
	}
	msgpack_unpacked_init(&u);
	assert_int_equal(proto_decode(&u, buf, mlen, &m, &why), 0);
	assert_int_equal(m.type, PROTO_RESPONSE);
	assert_int_equal(m.msgid, msgid);
	code = proto_read_error(m.error, message, sizeof(message));
	if (value != NULL && m.result->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*value = m.result->via.u64;
	msgpack_unpacked_destroy(&u);
	memmove(buf, buf + mlen, len - mlen);
	len -= mlen;
	return code;
}

static void
raw_hello(int fd)
{
	struct proto_buf	b;
	msgpack_packer		pk;

	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	proto_pack_request(&pk, 1, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	raw_send(fd, b.data, b.len);
	proto_buf_free(&b);
	assert_int_equal(raw_response(fd, 1, NULL), 0);
}

/* The broker still serves: a fresh session does an echo round trip. */
static void
assert_serving(void)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	char		 buf[32];
	size_t		 n;

	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "still here\n", 11, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "still here");
	tb_client_close(c);
}

static void
expect_closed(const uint8_t *bytes, size_t len, bool hello)
{
	int	fd = raw_open();

	if (hello)
		raw_hello(fd);
	raw_send(fd, bytes, len);
	assert_true(raw_closed(fd));
	close(fd);
	assert_serving();
}

static void
test_garbage_closes_session(void **state)
{
	static const uint8_t	reserved[] = { 0xc1 };
	static const uint8_t	ext[] = { 0xd4, 0x01, 0x02 };
	static const uint8_t	not_array[] = { 0x81, 0xa1, 'a', 0x01 };
	static const uint8_t	short_array[] = { 0x93, 0x00, 0x01, 0xa1, 'x' };
	static const uint8_t	notification[] = { 0x93, 0x02, 0xa1, 'x', 0x90 };
	static const uint8_t	response[] = { 0x94, 0x01, 0x01, 0xc0, 0xc0 };

	(void)state;
	expect_closed(reserved, sizeof(reserved), false);
	expect_closed(ext, sizeof(ext), true);
	expect_closed(not_array, sizeof(not_array), true);
	expect_closed(short_array, sizeof(short_array), true);
	expect_closed(notification, sizeof(notification), true);
	expect_closed(response, sizeof(response), true);
}

/* Five bytes that would make msgpack-c reserve gigabytes. */
static void
test_huge_declared_sizes(void **state)
{
	static const uint8_t	array32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t	map32[] = { 0xdf, 0x7f, 0xff, 0xff, 0xff };
	static const uint8_t	bin32[] = { 0x94, 0x00, 0x01, 0xa4, 'r', 'e',
				    'a', 'd', 0x92, 0x01, 0xc6, 0x40, 0x00, 0x00,
				    0x00 };
	static const uint8_t	str32[] = { 0xdb, 0xff, 0xff, 0xff, 0xf0 };
	uint8_t			deep[16];

	(void)state;
	expect_closed(array32, sizeof(array32), false);
	expect_closed(map32, sizeof(map32), true);
	expect_closed(bin32, sizeof(bin32), true);
	expect_closed(str32, sizeof(str32), true);
	memset(deep, 0x91, sizeof(deep));
	expect_closed(deep, sizeof(deep), true);
}

/* A call that is not hello first, unknown methods, wrong params. */
static void
test_error_replies_keep_session(void **state)
{
	struct proto_buf	b;
	msgpack_packer		pk;
	uint64_t		h = 0;
	int			fd = raw_open();

	(void)state;
	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);

	proto_pack_request(&pk, 7, PROTO_METHOD_READ, 2);
	msgpack_pack_uint32(&pk, 1);
	msgpack_pack_uint32(&pk, 1);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 7, NULL), TB_EPROTO);
	b.len = 0;

	proto_pack_request(&pk, 8, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&pk, PROTO_VERSION + 1);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 8, NULL), TB_EVERSION);
	b.len = 0;

	raw_hello(fd);

	/* [0, 9, "frobnicate", []] */
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 9);
	msgpack_pack_str_with_body(&pk, "frobnicate", 10);
	msgpack_pack_array(&pk, 0);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 9, NULL), TB_ENOMETHOD);
	b.len = 0;

	/* connect with a port given as a string, then with too few params */
	proto_pack_request(&pk, 10, PROTO_METHOD_CONNECT, 2);
	msgpack_pack_str_with_body(&pk, "127.0.0.1", 9);
	msgpack_pack_str_with_body(&pk, "80", 2);
	proto_pack_request(&pk, 11, PROTO_METHOD_CONNECT, 1);
	msgpack_pack_str_with_body(&pk, "127.0.0.1", 9);
	/* write with str data instead of bin */
	proto_pack_request(&pk, 12, PROTO_METHOD_WRITE, 2);
	msgpack_pack_uint32(&pk, 256);
	msgpack_pack_str_with_body(&pk, "text", 4);
	/* read more than the data limit */
	proto_pack_request(&pk, 13, PROTO_METHOD_READ, 2);
	msgpack_pack_uint32(&pk, 256);
	msgpack_pack_uint32(&pk, PROTO_DATA_MAX + 1);
	/* a negative handle */
	proto_pack_request(&pk, 14, PROTO_METHOD_CLOSE, 1);
	msgpack_pack_int32(&pk, -1);
	/* a second hello */
	proto_pack_request(&pk, 15, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	/* shutdown with a bad mode */
	proto_pack_request(&pk, 16, PROTO_METHOD_SHUTDOWN, 2);
	msgpack_pack_uint32(&pk, 256);
	msgpack_pack_str_with_body(&pk, "sideways", 8);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 10, NULL), TB_EINVAL);
	assert_int_equal(raw_response(fd, 11, NULL), TB_EINVAL);
	assert_int_equal(raw_response(fd, 12, NULL), TB_EINVAL);
	assert_int_equal(raw_response(fd, 13, NULL), TB_ELIMIT);
	assert_int_equal(raw_response(fd, 14, NULL), TB_EINVAL);
	assert_int_equal(raw_response(fd, 15, NULL), TB_EPROTO);
	assert_int_equal(raw_response(fd, 16, NULL), TB_EINVAL);
	b.len = 0;

	/* The session still works. */
	proto_pack_request(&pk, 17, PROTO_METHOD_CONNECT, 2);
	msgpack_pack_str_with_body(&pk, "127.0.0.1", 9);
	msgpack_pack_uint16(&pk, echo.port);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 17, &h), 0);
	assert_true(h != 0);
	proto_buf_free(&b);
	close(fd);
}

/* One byte at a time still frames correctly. */
static void
test_byte_by_byte(void **state)
{
	struct proto_buf	b;
	msgpack_packer		pk;
	size_t			i;
	int			fd = raw_open();

	(void)state;
	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	proto_pack_request(&pk, 1, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	for (i = 0; i < b.len; i++) {
		raw_send(fd, b.data + i, 1);
		harness_sleep_ms(1);
	}
	assert_int_equal(raw_response(fd, 1, NULL), 0);
	proto_buf_free(&b);
	close(fd);
}

/* More calls in flight than the limit: the extra one is refused. */
static void
test_calls_in_flight_limit(void **state)
{
	struct test_server	hold;
	struct proto_buf	b;
	msgpack_packer		pk;
	uint64_t		h = 0;
	uint32_t		i;
	int			fd = raw_open();

	(void)state;
	server_start(&hold, AF_INET, serve_hold, NULL, 0);
	raw_hello(fd);
	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	proto_pack_request(&pk, 2, PROTO_METHOD_CONNECT, 2);
	msgpack_pack_str_with_body(&pk, "127.0.0.1", 9);
	msgpack_pack_uint16(&pk, hold.port);
	raw_send(fd, b.data, b.len);
	assert_int_equal(raw_response(fd, 2, &h), 0);
	b.len = 0;
	for (i = 0; i <= LIMIT_CALLS_PER_SESSION; i++) {
		proto_pack_request(&pk, 100 + i, PROTO_METHOD_READ, 2);
		msgpack_pack_uint32(&pk, (uint32_t)h);
		msgpack_pack_uint32(&pk, 16);
	}
	raw_send(fd, b.data, b.len);
	/* Only the one past the limit is answered, with ELIMIT. */
	assert_int_equal(raw_response(fd, 100 + LIMIT_CALLS_PER_SESSION, NULL),
	    TB_ELIMIT);
	proto_buf_free(&b);
	close(fd);
	assert_true(server_wait(&hold.eofs, 1, 5000));
	server_stop(&hold);
	assert_serving();
}

/*
 * A client that sends requests and never reads the answers: the broker
 * stops reading from it once its answers pass the output limit, and
 * everyone else is served meanwhile.
 */
static void
test_flood_without_reading(void **state)
{
	struct proto_buf	b;
	msgpack_packer		pk;
	struct pollfd		pfd;
	size_t			sent = 0, off;
	uint32_t		id = 2;
	ssize_t			n;
	int			fd = raw_open(), i, stalls = 0;

	(void)state;
	raw_hello(fd);
	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	/* Bounded: at most 64 MiB sent, or 0.5 s of a full socket. */
	for (i = 0; i < 4096 && sent < 64 * 1024 * 1024 && stalls < 5; i++) {
		b.len = 0;
		while (b.len < 60000) {
			proto_pack_request(&pk, id++, PROTO_METHOD_LOCAL_ADDR, 1);
			msgpack_pack_uint32(&pk, 99999);
		}
		for (off = 0; off < b.len && stalls < 5; ) {
			n = send(fd, b.data + off, b.len - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				off += (size_t)n;
				sent += (size_t)n;
				continue;
			}
			pfd = (struct pollfd){ fd, POLLOUT, 0 };
			if (poll(&pfd, 1, 100) == 0)
				stalls++;
		}
	}
	/* The broker pushed back long before 64 MiB of requests. */
	assert_int_equal(stalls, 5);
	assert_true(sent < 64 * 1024 * 1024);
	assert_serving();
	proto_buf_free(&b);
	close(fd);
	assert_serving();
}

/* A client that shuts down its side still gets the answers it asked for. */
static void
test_half_close(void **state)
{
	struct proto_buf	b;
	msgpack_packer		pk;
	uint64_t		h = 0;
	int			fd = raw_open();

	(void)state;
	raw_hello(fd);
	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	proto_pack_request(&pk, 2, PROTO_METHOD_LISTEN, 1);
	msgpack_pack_str_with_body(&pk, "127.0.0.1:0", 11);
	raw_send(fd, b.data, b.len);
	proto_buf_free(&b);
	/* Ask, shut down our side, then read the answer and the end. */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(raw_response(fd, 2, &h), 0);
	assert_true(h != 0);
	assert_true(raw_closed(fd));
	close(fd);
	assert_serving();
}

struct flood {
	atomic_bool	stop;
	atomic_long	sent;
	int		fd;
};

/* Pipelines cheap requests and reads the answers, as fast as it can. */
static void *
flood_main(void *p)
{
	struct flood		*f = p;
	struct proto_buf	 b;
	msgpack_packer		 pk;
	uint8_t			 sink[65536];
	uint32_t		 id = 100;
	uint64_t		 deadline = harness_now_ms() + 20000;
	size_t			 off;
	ssize_t			 n;

	proto_buf_init(&b, PROTO_MESSAGE_MAX);
	proto_packer_init(&pk, &b);
	while (!atomic_load(&f->stop) && harness_now_ms() < deadline) {
		b.len = 0;
		while (b.len < 16384) {
			proto_pack_request(&pk, id++, PROTO_METHOD_SET_TIMEOUT_MS,
			    2);
			msgpack_pack_uint32(&pk, 12345);
			msgpack_pack_uint32(&pk, 1);
		}
		for (off = 0; off < b.len; ) {
			n = send(f->fd, b.data + off, b.len - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				off += (size_t)n;
			while (recv(f->fd, sink, sizeof(sink),
			    MSG_DONTWAIT) > 0)
				;
			if (n <= 0 && (atomic_load(&f->stop) ||
			    harness_now_ms() > deadline))
				break;
		}
		atomic_fetch_add(&f->sent, 1);
	}
	proto_buf_free(&b);
	return NULL;
}

/*
 * A client that never lets its socket go empty does not hold the loop:
 * another session's round trips go on while the flood does.
 */
static void
test_busy_client_does_not_starve_others(void **state)
{
	struct flood	 f = { .fd = raw_open() };
	tb_client	*c;
	struct tb_error	 err;
	tb_handle	 h;
	pthread_t	 t;
	char		 buf[32];
	size_t		 n;
	long		 before;
	int		 i;

	(void)state;
	raw_hello(f.fd);
	assert_int_equal(pthread_create(&t, NULL, flood_main, &f), 0);
	for (i = 0; i < 100 && atomic_load(&f.sent) < 5; i++)
		harness_sleep_ms(20);
	c = harness_client(&broker);
	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_set_timeout_ms(c, h, 10000, &err), &err);
	for (i = 0; i < 20; i++) {
		assert_ok(tb_write_all(c, h, "fair\n", 5, &err), &err);
		assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
		assert_string_equal(buf, "fair");
	}
	/* The flood was still going when the round trips were done. */
	before = atomic_load(&f.sent);
	for (i = 0; i < 250 && atomic_load(&f.sent) == before; i++)
		harness_sleep_ms(20);
	assert_true(atomic_load(&f.sent) > before);
	atomic_store(&f.stop, true);
	pthread_join(t, NULL);
	close(f.fd);
	tb_client_close(c);
}

/* A flood of denied requests is logged LIMIT_LOG_DECISIONS a second. */
static void
test_decision_log_is_bounded(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;
	char		 needle[64], line[1024];
	FILE		*f;
	int		 i, lines = 0;
	uint64_t	 start = harness_now_ms();

	(void)state;
	for (i = 0; i < 500; i++)
		assert_rc(tb_connect(c, "10.9.8.7", 2222, &h, &err),
		    TB_EPOLICY, &err);
	snprintf(needle, sizeof(needle), "\"session\":%llu,",
	    (unsigned long long)tb_client_session_id(c));
	tb_client_close(c);
	/* The broker writes each decision before it answers the request. */
	assert_non_null(f = fopen(broker.log, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL &&
		    strstr(line, "10.9.8.7") != NULL)
			lines++;
	fclose(f);
	/*
	 * At most the uid's budget for each second the flood lasted (the
	 * other tests of this group spend from the same budget).
	 */
	assert_true(lines <= LIMIT_LOG_DECISIONS *
	    (int)((harness_now_ms() - start) / 1000 + 2));
	/* The count of the rest comes once the second is over. */
	for (i = 0; i < 300 && !harness_log_contains(&broker,
	    "\"event\":\"suppressed\",\"time\""); i++)
		harness_sleep_ms(10);
	assert_true(harness_log_contains(&broker,
	    "\"event\":\"suppressed\""));
}

/* A uid no other test of this group uses, so its account is fresh. */
#define ABUSE_UID	4242

/* Sessions of one uid past the limit are refused; the others go on. */
static void
test_sessions_per_uid(void **state)
{
	int	fds[LIMIT_SESSIONS_PER_UID + 1], i;

	(void)state;
	for (i = 0; i < LIMIT_SESSIONS_PER_UID; i++) {
		fds[i] = raw_open_as(ABUSE_UID);
		raw_hello(fds[i]);
	}
	fds[i] = raw_open_as(ABUSE_UID);
	assert_true(raw_closed(fds[i]));
	for (i = 0; i <= LIMIT_SESSIONS_PER_UID; i++)
		close(fds[i]);
	assert_serving();
	assert_true(harness_log_contains(&broker,
	    "its uid has all the sessions it may"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage_closes_session),
		cmocka_unit_test(test_huge_declared_sizes),
		cmocka_unit_test(test_error_replies_keep_session),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_calls_in_flight_limit),
		cmocka_unit_test(test_flood_without_reading),
		cmocka_unit_test(test_sessions_per_uid),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_busy_client_does_not_starve_others),
		cmocka_unit_test(test_decision_log_is_bounded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
