/*
 * A reply that cannot be packed for lack of memory: the call gets
 * ENOMEM, what the reply would have carried stays with the broker, and
 * the session goes on.  The broker's session, connection and policy
 * code run in this process on a real Unix socket pair and a real
 * loopback connection; the only thing made up is the failure: realloc
 * is wrapped (-Wl,--wrap=realloc) and, while armed, refuses anything
 * larger than a small message, as an exhausted address space would.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "tcpbroker.h"

/* What main.c defines for the daemon. */
struct broker		broker;
struct broker_counters	counters;

/* Armed, realloc refuses more than this: bytes. */
#define REPLY_SMALL		1024
/* Bytes the peer sends, and a count beyond them: bytes. */
#define REPLY_SENT		64000
#define REPLY_BEYOND		65000
/*
 * Where its first line ends, and what read_exact takes next: each more
 * than the output has room for after the reply before (8 KiB, then
 * 16 KiB, and what read has left then more than 32 KiB).
 */
#define REPLY_LINE		9000
#define REPLY_EXACT		17000
/* How long the read beyond what was sent waits: ms. */
#define REPLY_TIMEOUT_MS	100
/* Turns of the loop one step may take: turns. */
#define REPLY_TURNS_MAX		200
/* How long the peer's send may wait: ms. */
#define REPLY_WAIT_MS		5000

void	*__real_realloc(void *, size_t);
void	*__wrap_realloc(void *, size_t);

static bool	armed;
static int	refused;

void *
__wrap_realloc(void *p, size_t size)
{
	if (armed && size > REPLY_SMALL) {
		refused++;
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, size);
}

static const char policy_text[] =
    "tenant t {\n"
    "    match uid *\n"
    "    connect allow 127.0.0.1:1-65535\n"
    "}\n";

struct fixture {
	int		 client;	/* the client's end of the session */
	int		 listener;
	int		 peer;		/* the connection's far end */
	uint16_t	 port;
	uint8_t		 in[2 * PROTO_MESSAGE_MAX];
	size_t		 inlen;
	uint32_t	 msgid;
	uint64_t	 handle;
	uint8_t		 pattern[REPLY_SENT];
};

static void
send_request(struct fixture *f, enum proto_method method, uint32_t nparams,
    const void *arg, size_t arglen, uint64_t count)
{
	msgpack_sbuffer	sb;
	msgpack_packer	pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_request(&pk, ++f->msgid, method, nparams);
	if (method == PROTO_METHOD_HELLO)
		msgpack_pack_uint32(&pk, PROTO_VERSION);
	else if (method == PROTO_METHOD_CONNECT) {
		msgpack_pack_str_with_body(&pk, arg, arglen);
		msgpack_pack_uint16(&pk, (uint16_t)count);
	} else {
		msgpack_pack_uint64(&pk, f->handle);
		if (nparams > 1)
			msgpack_pack_uint64(&pk, count);
	}
	assert_int_equal(send(f->client, sb.data, sb.size, MSG_NOSIGNAL),
	    (ssize_t)sb.size);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * Runs the broker's loop until the response to the last request is
 * whole, and returns a cursor on its error and result; fails the test
 * if the session ends instead.
 */
static struct proto_cursor
response(struct fixture *f, size_t *used)
{
	struct proto_cursor	 c;
	const char		*why;
	uint64_t		 type, id;
	uint32_t		 n;
	size_t			 len;
	ssize_t			 got;
	int			 turn, busy;

	for (turn = 0; turn < REPLY_TURNS_MAX; turn++) {
		if (proto_scan(f->in, f->inlen, &len, &why) ==
		    PROTO_SCAN_DONE) {
			c = (struct proto_cursor){ f->in, len };
			assert_int_equal(proto_get_array(&c, &n), 0);
			assert_int_equal(proto_get_uint(&c, &type), 0);
			assert_int_equal(type, PROTO_RESPONSE);
			assert_int_equal(proto_get_uint(&c, &id), 0);
			assert_int_equal(id, f->msgid);
			*used = len;
			return c;
		}
		loop_turn(turn == 0 ? 0 : 10, session_reap, &busy);
		got = recv(f->client, f->in + f->inlen,
		    sizeof(f->in) - f->inlen, MSG_DONTWAIT);
		if (got == 0)
			fail_msg("the broker ended the session");
		if (got > 0)
			f->inlen += (size_t)got;
	}
	fail_msg("no response to msgid %u", f->msgid);
	return (struct proto_cursor){ NULL, 0 };
}

static void
consume(struct fixture *f, size_t used)
{
	memmove(f->in, f->in + used, f->inlen - used);
	f->inlen -= used;
}

/* The response's error code, 0 when it has none; its message in last. */
static char	last[256];

static int
response_error(struct proto_cursor *c)
{
	int	code;

	assert_int_equal(proto_get_error(c, &code, last, sizeof(last)), 0);
	return code;
}

static int
setup(void **state)
{
	static struct fixture	 f;
	struct policy_error	 err;
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	socklen_t		 slen = sizeof(sin);
	struct proto_cursor	 c;
	const char		*why;
	size_t			 used;
	struct timeval		 wait = { REPLY_WAIT_MS / 1000, 0 };
	int			 sv[2], one = 1;

	log_init(LOG_LEVEL_WARN);
	audit_open("/dev/null");
	assert_int_equal(policy_parse("unit_reply", policy_text,
	    strlen(policy_text), &broker.policy, &err), 0);
	broker.policy_path = "unit_reply";
	broker.resolve_ms = LIMIT_RESOLVE_MS;
	broker.limits = (struct broker_limits){ LIMIT_SESSIONS,
	    LIMIT_SESSIONS_PER_UID, LIMIT_SESSIONS_RESERVE, LIMIT_HANDLES,
	    LIMIT_HANDLES_PER_UID };
	broker.ctx.own = broker.own;
	broker.uid = (uid_t)-2;
	broker.may_listen = policy_may_listen(broker.policy);
	loop_init(64);

	for (size_t i = 0; i < sizeof(f.pattern); i++)
		f.pattern[i] = (uint8_t)('a' + i % 26);
	f.pattern[REPLY_LINE] = '\n';
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((f.listener = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	setsockopt(f.listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(f.listener, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
	assert_int_equal(listen(f.listener, 1), 0);
	assert_int_equal(getsockname(f.listener, (struct sockaddr *)&sin,
	    &slen), 0);
	f.port = ntohs(sin.sin_port);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	f.client = sv[1];
	assert_int_equal(session_open(sv[0], NULL, &why), 0);
	send_request(&f, PROTO_METHOD_HELLO, 1, NULL, 0, 0);
	c = response(&f, &used);
	assert_int_equal(response_error(&c), 0);
	consume(&f, used);
	send_request(&f, PROTO_METHOD_CONNECT, 2, "127.0.0.1", 9, f.port);
	c = response(&f, &used);
	assert_int_equal(response_error(&c), 0);
	assert_int_equal(proto_get_uint(&c, &f.handle), 0);
	consume(&f, used);
	assert_true((f.peer = accept(f.listener, NULL, NULL)) != -1);
	assert_int_equal(setsockopt(f.peer, SOL_SOCKET, SO_SNDTIMEO, &wait,
	    sizeof(wait)), 0);
	assert_int_equal(send(f.peer, f.pattern, sizeof(f.pattern), 0),
	    (ssize_t)sizeof(f.pattern));
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	int		 busy;

	close(f->client);
	for (int turn = 0; turn < REPLY_TURNS_MAX; turn++)
		if (!loop_turn(0, session_reap, &busy) && busy == 0)
			break;
	close(f->peer);
	close(f->listener);
	return 0;
}

/*
 * One call armed, then the same call unarmed: the first gets ENOMEM,
 * the second the bytes the first would have had.
 */
static void
refused_then_served(struct fixture *f, enum proto_method method,
    uint64_t count, size_t *off, size_t expect)
{
	struct proto_cursor	 c;
	const uint8_t		*bin;
	size_t			 used, len;
	int			 before = refused;

	send_request(f, method, 2, NULL, 0, count);
	armed = true;
	c = response(f, &used);
	armed = false;
	assert_true(refused > before);
	/* From the reply, not from a buffer that could not grow. */
	assert_int_equal(response_error(&c), TB_ENOMEM);
	assert_string_equal(last, "out of memory for the reply");
	consume(f, used);

	send_request(f, method, 2, NULL, 0, count);
	c = response(f, &used);
	assert_int_equal(response_error(&c), 0);
	assert_int_equal(proto_get_bin(&c, &bin, &len), 0);
	assert_int_equal(len, expect);
	assert_memory_equal(bin, f->pattern + *off, len);
	consume(f, used);
	*off += expect + (method == PROTO_METHOD_READ_LINE);
}

/* A request whose response carries no data and no error. */
static void
plain(struct fixture *f, enum proto_method method, uint64_t count,
    int expect)
{
	struct proto_cursor	 c;
	size_t			 used;

	send_request(f, method, 2, NULL, 0, count);
	c = response(f, &used);
	assert_int_equal(response_error(&c), expect);
	consume(f, used);
}

/*
 * The session's output starts with LIMIT_SESSION_OUTPUT_KEEP and grows
 * by doubling; each reply refused is larger than it has grown to so far,
 * so that it must grow: a line, then more with read_exact, then the rest
 * with read.  First, unarmed, a read_exact for more than was sent times
 * out, which leaves the connection's buffer grown and holding all of it.
 */
static void
test_reply_out_of_memory(void **state)
{
	struct fixture	*f = *state;
	size_t		 off = 0;

	plain(f, PROTO_METHOD_SET_TIMEOUT_MS, REPLY_TIMEOUT_MS, 0);
	plain(f, PROTO_METHOD_READ_EXACT, REPLY_BEYOND, TB_ETIMEDOUT);
	refused_then_served(f, PROTO_METHOD_READ_LINE, PROTO_LINE_MAX, &off,
	    REPLY_LINE);
	assert_true(REPLY_LINE > LIMIT_SESSION_OUTPUT_KEEP);
	refused_then_served(f, PROTO_METHOD_READ_EXACT, REPLY_EXACT, &off,
	    REPLY_EXACT);
	refused_then_served(f, PROTO_METHOD_READ, PROTO_DATA_MAX, &off,
	    REPLY_SENT - off);
	assert_int_equal(off, REPLY_SENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reply_out_of_memory,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
