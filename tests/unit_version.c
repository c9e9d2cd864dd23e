/*
 * The client library against a broker older than itself: a peer on a
 * socket pair that speaks protocol version 2 as docs/protocol.md says
 * (hello with 3 is EVERSION; streams; no close notification).  The
 * library must say hello again with 2, stream, and close a connection
 * by the request, which such a broker answers, never by the
 * notification, which would end the session.
 */
#include <sys/socket.h>

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
#define OLD_MESSAGES_MAX	32

struct old_broker {
	int		 fd;
	unsigned	 hellos;	/* hello calls seen */
	unsigned	 version;	/* the one it accepted, 0 if none */
	unsigned	 close_requests;
	unsigned	 close_notes;
	unsigned	 others;
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

/* Answers request msgid with an error, or with what fill packs. */
static void
answer(struct old_broker *b, uint64_t msgid, const char *code,
    void (*fill)(msgpack_packer *))
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint64(&pk, msgid);
	if (code != NULL) {
		msgpack_pack_array(&pk, 2);
		pack_str(&pk, code);
		pack_str(&pk, "this broker speaks protocol versions 1 to 2");
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_nil(&pk);
		fill(&pk);
	}
	if (write(b->fd, sb.data, sb.size) != (ssize_t)sb.size)
		b->others++;	/* no cmocka assert off the test's thread */
	msgpack_sbuffer_destroy(&sb);
}

static void
fill_hello(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	pack_str(pk, "version");
	msgpack_pack_uint8(pk, 2);
	pack_str(pk, "session");
	msgpack_pack_uint8(pk, 7);
}

static void
fill_stream(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	pack_str(pk, "recv_window");
	msgpack_pack_uint32(pk, CLIENT_RECV_WINDOW);
	pack_str(pk, "send_window");
	msgpack_pack_uint32(pk, 128 * 1024);
}

static void
fill_handle(msgpack_packer *pk)
{
	msgpack_pack_uint32(pk, 0x100);
}

static void
fill_nil(msgpack_packer *pk)
{
	msgpack_pack_nil(pk);
}

static void
old_handle(struct old_broker *b, const msgpack_object *m)
{
	const msgpack_object	*a = m->via.array.ptr, *params;
	uint64_t		 msgid;

	if (m->via.array.size == 3 && a[0].via.u64 == 2) {
		if (is_str(&a[1], "close"))
			b->close_notes++;
		else
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
		if (params->via.array.ptr[0].via.u64 > 2)
			answer(b, msgid, "EVERSION", NULL);
		else {
			b->version = 2;
			answer(b, msgid, NULL, fill_hello);
		}
	} else if (is_str(&a[2], "stream"))
		answer(b, msgid, b->version ? NULL : "EPROTO", fill_stream);
	else if (is_str(&a[2], "connect"))
		answer(b, msgid, NULL, fill_handle);
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

static void
test_older_broker(void **state)
{
	struct old_broker	 b = { 0 };
	struct tb_error		 err;
	tb_client		*c;
	tb_handle		 h;
	pthread_t		 t;
	int			 sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	b.fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, old_main, &b), 0);
	if (tb_client_open_fd(&c, sv[0], &err) != 0)
		fail_msg("open: %s", err.message);
	if (tb_connect(c, "127.0.0.1", 9, &h, &err) != 0)
		fail_msg("connect: %s", err.message);
	assert_int_equal(h, 0x100);
	if (tb_close(c, h, &err) != 0)
		fail_msg("close: %s", err.message);
	tb_client_close(c);
	pthread_join(t, NULL);
	close(sv[1]);
	/* Hello with 3, refused; with 2, taken; closed by the request. */
	assert_int_equal(b.hellos, 2);
	assert_int_equal(b.version, 2);
	assert_int_equal(b.close_requests, 1);
	assert_int_equal(b.close_notes, 0);
	assert_int_equal(b.others, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_older_broker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
