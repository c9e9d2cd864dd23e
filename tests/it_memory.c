/*
 * Memory pressure: the broker under a low RLIMIT_AS (a little above the
 * most a first broker mapped serving one client) cannot serve every
 * call.  The call that could not be served gets ENOMEM, the broker
 * stays up, and once the memory is given back it serves a new client.
 * The limit is set before the broker starts: root here may lack
 * CAP_SYS_RESOURCE, which prlimit of the broker's uid would need.
 *
 * RLIMIT_AS, not a cgroup: under a cgroup's memory.max malloc rarely
 * fails, the OOM killer ends the process instead; an address space
 * limit makes the allocation itself fail, which is what this tests.
 * Sanitizer builds map terabytes of shadow memory and are skipped.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <poll.h>

#include "harness.h"
#include "proto.h"

/* Address space the broker may map past what it has at the start: bytes. */
#define MEMORY_MARGIN		(2 * 1024 * 1024)
/* Connections the pressure test opens at most: connections. */
#define MEMORY_CONNS_MAX	100
/* Bytes one write offers; the send window and the sockets take less. */
#define MEMORY_WRITE		(16 * 1024 * 1024)
/* How long a write waits for a window that never opens: ms. */
#define MEMORY_WRITE_MS		200

/* What the sender server sends: the most a client may grant, bytes. */
#define MEMORY_SENT		PROTO_RECV_WINDOW_MAX
/* How long the broker may take to say its output is short: ms. */
#define MEMORY_WAIT_MS		10000

static struct broker_proc	broker;
static struct test_server	silent, echo, sender;
static struct rlimit		limit;
static uint8_t			pattern[MEMORY_SENT];

/* A session spoken by hand, which reads only when the test says. */
struct raw {
	int		 fd;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	uint8_t		 in[2 * PROTO_MESSAGE_MAX];
	size_t		 inlen;
};

static void
raw_flush(struct raw *r)
{
	assert_int_equal(send(r->fd, r->sb.data, r->sb.size, MSG_NOSIGNAL),
	    (ssize_t)r->sb.size);
	msgpack_sbuffer_clear(&r->sb);
}

/* The next whole message, within MEMORY_WAIT_MS; fails the test at EOF. */
static struct proto_cursor
raw_next(struct raw *r, size_t *used)
{
	struct pollfd	 pfd = { r->fd, POLLIN, 0 };
	const char	*why;
	size_t		 len;
	ssize_t		 n;

	for (;;) {
		switch (proto_scan(r->in, r->inlen, &len, &why)) {
		case PROTO_SCAN_DONE:
			*used = len;
			return (struct proto_cursor){ r->in, len };
		case PROTO_SCAN_BAD:
			fail_msg("the broker sent a bad message: %s", why);
			break;
		case PROTO_SCAN_MORE:
			break;
		}
		if (poll(&pfd, 1, MEMORY_WAIT_MS) != 1)
			fail_msg("nothing from the broker in %d ms",
			    MEMORY_WAIT_MS);
		n = recv(r->fd, r->in + r->inlen, sizeof(r->in) - r->inlen, 0);
		if (n <= 0)
			fail_msg("the broker ended the session (%zd)", n);
		r->inlen += (size_t)n;
	}
}

static void
raw_consume(struct raw *r, size_t used)
{
	memmove(r->in, r->in + used, r->inlen - used);
	r->inlen -= used;
}

/* Reads the response to msgid (notifications before it are dropped). */
static uint64_t
raw_result(struct raw *r, uint32_t msgid)
{
	struct proto_cursor	 c;
	uint64_t		 type, id, v = 0;
	uint32_t		 n;
	size_t			 used;

	for (;;) {
		c = raw_next(r, &used);
		assert_int_equal(proto_get_array(&c, &n), 0);
		assert_int_equal(proto_get_uint(&c, &type), 0);
		if (type == PROTO_RESPONSE) {
			assert_int_equal(proto_get_uint(&c, &id), 0);
			assert_int_equal(id, msgid);
			assert_int_equal(proto_get_nil(&c), 0);
			if (proto_get_uint(&c, &v) != 0)
				v = 0;
			raw_consume(r, used);
			return v;
		}
		raw_consume(r, used);
	}
}

static void
raw_open(struct raw *r)
{
	r->inlen = 0;
	assert_true((r->fd = harness_connect_as(&broker, 0)) != -1);
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
	proto_pack_request(&r->pk, 1, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&r->pk, PROTO_VERSION);
	proto_pack_request(&r->pk, 2, PROTO_METHOD_STREAM, 1);
	msgpack_pack_uint32(&r->pk, PROTO_RECV_WINDOW_MAX);
	raw_flush(r);
	raw_result(r, 1);
	raw_result(r, 2);
}

/*
 * With the broker out of memory, a connection's peer sends a whole
 * receive window to r, which does not read until the broker says its
 * output could not grow.  Then every byte arrives, in order, and the
 * session still answers.
 */
static void
raw_receive_short(struct raw *r)
{
	struct proto_cursor	 c;
	const char		*name;
	const uint8_t		*bin;
	uint64_t		 type, h, conn;
	uint64_t		 deadline = harness_now_ms() + MEMORY_WAIT_MS;
	size_t			 got = 0, len, used;
	uint32_t		 n;
	bool			 ended = false;

	proto_pack_request(&r->pk, 3, PROTO_METHOD_CONNECT, 2);
	msgpack_pack_str_with_body(&r->pk, "127.0.0.1", 9);
	msgpack_pack_uint16(&r->pk, sender.port);
	raw_flush(r);
	/* The log line of the session that could not grow its output. */
	while (!harness_log_contains(&broker, "out of memory") &&
	    harness_now_ms() < deadline)
		harness_sleep_ms(10);
	assert_true(harness_log_contains(&broker, "out of memory"));
	conn = raw_result(r, 3);
	while (!ended) {
		c = raw_next(r, &used);
		assert_int_equal(proto_get_array(&c, &n), 0);
		assert_int_equal(proto_get_uint(&c, &type), 0);
		assert_int_equal(type, PROTO_NOTIFY);
		assert_int_equal(proto_get_str(&c, &name, &len), 0);
		assert_int_equal(proto_get_array(&c, &n), 0);
		assert_int_equal(proto_get_uint(&c, &h), 0);
		assert_int_equal(h, conn);
		if (len == 4 && memcmp(name, "data", 4) == 0) {
			assert_int_equal(proto_get_bin(&c, &bin, &len), 0);
			assert_true(got + len <= MEMORY_SENT);
			assert_memory_equal(bin, pattern + got, len);
			got += len;
			/* Read: granted back, as the library does. */
			proto_pack_note(&r->pk, "credit", 2);
			msgpack_pack_uint32(&r->pk, (uint32_t)conn);
			msgpack_pack_uint32(&r->pk, (uint32_t)len);
			raw_flush(r);
		} else if (len == 3 && memcmp(name, "end", 3) == 0)
			ended = true;
		else
			fail_msg("notification %.*s, %zu bytes in", (int)len,
			    name, got);
		raw_consume(r, used);
	}
	assert_int_equal(got, MEMORY_SENT);
	proto_pack_request(&r->pk, 4, PROTO_METHOD_CLOSE, 1);
	msgpack_pack_uint32(&r->pk, (uint32_t)conn);
	raw_flush(r);
	raw_result(r, 4);
	print_message("%zu bytes through a session whose output could not "
	    "grow\n", got);
}

/* One echo round trip through b. */
static void
round_trip(struct broker_proc *b)
{
	struct tb_error	 err;
	tb_client	*c = harness_client(b);
	tb_handle	 h;
	char		 buf[4];

	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "ping", 4, &err), &err);
	assert_ok(tb_read_exact(c, h, buf, 4, &err), &err);
	assert_memory_equal(buf, "ping", 4);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
}

static void
test_enomem_then_serves(void **state)
{
	struct tb_error	 err;
	struct rlimit	 rl;
	struct raw	 raw;
	tb_client	*c;
	tb_handle	 h[MEMORY_CONNS_MAX];
	uint8_t		*data;
	size_t		 n;
	int		 i, nconn = 0, rc = 0, enomem_at = -1;

	(void)state;
	assert_non_null(data = calloc(1, MEMORY_WRITE));
	c = harness_client(&broker);
	raw_open(&raw);
	rl = limit;

	/*
	 * Each connection's peer never reads: once the kernel's buffers are
	 * full, the broker keeps what the client wrote behind in a buffer of
	 * its send window, until one of those cannot be had.
	 */
	for (i = 0; i < MEMORY_CONNS_MAX && enomem_at == -1; i++) {
		rc = tb_connect(c, "127.0.0.1", silent.port, &h[nconn], &err);
		if (rc == 0) {
			nconn++;
			assert_ok(tb_set_timeout_ms(c, h[nconn - 1],
			    MEMORY_WRITE_MS, &err), &err);
			rc = tb_write(c, h[nconn - 1], data, MEMORY_WRITE, &n,
			    &err);
			/* The error may come just after the write returned. */
			if (rc == 0)
				rc = tb_write(c, h[nconn - 1], data, 1, &n, &err);
		}
		if (rc == TB_ENOMEM)
			enomem_at = i;
		else if (rc != 0 && rc != TB_ETIMEDOUT)
			fail_msg("connection %d: %s (%s)", i, tb_err_name(rc),
			    err.message);
	}
	print_message("ENOMEM at connection %d: %s; broker VmSize %ld kB of "
	    "a limit of %ld kB\n", enomem_at, err.message,
	    harness_status_field(broker.pid, "VmSize:"),
	    (long)(rl.rlim_cur / 1024));
	assert_true(enomem_at >= 0);
	assert_int_equal(kill(broker.pid, 0), 0);

	/* Still short of memory: data waits for its reader, none is lost. */
	raw_receive_short(&raw);
	close(raw.fd);
	msgpack_sbuffer_destroy(&raw.sb);

	/* The memory comes back: the same broker serves a new client. */
	for (i = 0; i < nconn; i++)
		tb_close(c, h[i], &err);
	tb_client_close(c);
	round_trip(&broker);
	assert_false(harness_log_contains(&broker, "fatal"));
	free(data);
}

static int
setup(void **state)
{
	struct harness_options	opts = { 0 };
	long			peak_kb;

	(void)state;
	server_start(&silent, AF_INET, serve_silent, NULL, 0);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + i / 251);
	server_start(&sender, AF_INET, serve_send, pattern, sizeof(pattern));
	/* What a broker maps at most, serving one client. */
	harness_broker_start(&broker, HARNESS_POLICY);
	round_trip(&broker);
	assert_true((peak_kb = harness_status_field(broker.pid, "VmPeak:")) >
	    0);
	harness_broker_stop(&broker);
	limit.rlim_cur = limit.rlim_max = (rlim_t)peak_kb * 1024 +
	    MEMORY_MARGIN;
	opts.address_space = limit.rlim_cur;
	harness_broker_start_opts(&broker, HARNESS_POLICY, &opts);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_broker_stop(&broker);
	server_stop(&silent);
	server_stop(&echo);
	server_stop(&sender);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enomem_then_serves),
	};

#ifdef TB_SANITIZER_BUILD
	fprintf(stderr, "it_memory: skipped under AddressSanitizer, which "
	    "maps more address space than any low RLIMIT_AS allows\n");
	return 77;
#endif
	if (getuid() != 0) {
		fprintf(stderr, "it_memory: prlimit of the broker needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
