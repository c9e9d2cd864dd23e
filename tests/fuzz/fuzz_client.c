/*
 * Fuzz target: the client library against a hostile broker.  The input
 * is a short program of tb_* calls and the broker's side of the session:
 *
 *	count, count call bytes, then the broker's bytes in chunks that
 *	end at each 0xc1 (a byte msgpack never uses as a type)
 *
 * The library runs on one end of a socketpair.  Each time it is about
 * to wait for the broker, the interrupt hook (which the library calls
 * before every wait) drains what it sent and writes the next chunk; when
 * none is left it shuts the broker's side, so that every call ends.
 * Nothing runs in another thread and nothing waits on a clock, so the
 * same input takes the same path.
 */
#include <sys/socket.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "tcpbroker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Chunks of the broker's bytes end at this byte. */
#define FUZZ_CHUNK_END	0xc1
/* Most calls in one program: calls. */
#define FUZZ_CALLS_MAX	32
/* Largest write or read a call makes: bytes. */
#define FUZZ_IO_MAX	300

struct broker_side {
	int		 fd;
	const uint8_t	*p;	/* the broker's bytes not yet written */
	size_t		 left;
	bool		 shut;
};

/* The library is about to wait: the broker speaks once more. */
static bool
broker_turn(void *arg)
{
	struct broker_side	*b = arg;
	uint8_t			 sink[4096];
	const uint8_t		*end;
	size_t			 n;
	bool			 ended;

	while (read(b->fd, sink, sizeof(sink)) > 0)
		;
	if (b->shut)
		return false;
	if (b->left == 0) {
		shutdown(b->fd, SHUT_WR);
		b->shut = true;
		return false;
	}
	end = memchr(b->p, FUZZ_CHUNK_END, b->left);
	n = end != NULL ? (size_t)(end - b->p) : b->left;
	ended = end != NULL && n > 0;
	/* Each turn makes progress: an empty chunk is one byte, the 0xc1. */
	if (n == 0)
		n = 1;
	if (write(b->fd, b->p, n) != (ssize_t)n) {
		shutdown(b->fd, SHUT_WR);
		b->shut = true;
	}
	b->p += n;
	b->left -= n;
	if (ended) {
		b->p++;
		b->left--;
	}
	return false;
}

static void
run_call(tb_client *c, uint8_t op, tb_handle *last)
{
	static const char	 line[FUZZ_IO_MAX] = "GET / HTTP/1.0\r\n";
	struct tb_error		 err;
	tb_handle		 h, got = 0, set[2];
	char			 buf[FUZZ_IO_MAX];
	size_t			 n;
	bool			 ready[2];

	/* The high bits pick a handle: the last one the broker gave, or a guess. */
	h = (op & 0xe0) == 0 ? *last : (tb_handle)(op >> 5);
	switch (op & 0x1f) {
	case 0:
		tb_connect(c, "127.0.0.1", 80, &got, &err);
		break;
	case 1:
		tb_connect_timeout(c, "localhost", 443, 1000, &got, &err);
		break;
	case 2:
		tb_write(c, h, line, sizeof(line), &n, &err);
		break;
	case 3:
		tb_write_all(c, h, line, 16, &err);
		break;
	case 4:
		tb_write_bytes(c, h, line, 1, &n, &err);
		break;
	case 5:
		tb_read(c, h, buf, sizeof(buf), &n, &err);
		break;
	case 6:
		tb_peek(c, h, buf, 8, &n, &err);
		break;
	case 7:
		tb_read_exact(c, h, buf, 10, &err);
		break;
	case 8:
		tb_read_line(c, h, buf, sizeof(buf), &n, &err);
		break;
	case 9:
		tb_read_until(c, h, ':', buf, sizeof(buf), &n, &err);
		break;
	case 10:
		tb_read_all(c, h, buf, sizeof(buf), &n, &err);
		break;
	case 11:
		tb_listen(c, "127.0.0.1:0", &got, &err);
		break;
	case 12:
		tb_accept(c, h, &got, &err);
		break;
	case 13:
		tb_local_addr(c, h, buf, sizeof(buf), &err);
		break;
	case 14:
		tb_peer_addr(c, h, buf, 8, &err);
		break;
	case 15:
		tb_set_timeout_ms(c, h, 50, &err);
		break;
	case 16:
		tb_set_nodelay(c, h, true, &err);
		break;
	case 17:
		tb_set_keepalive(c, h, false, &err);
		break;
	case 18:
		tb_shutdown(c, h, TB_SHUTDOWN_WRITE, &err);
		break;
	case 19:
		tb_shutdown(c, h, TB_SHUTDOWN_READ, &err);
		break;
	case 20:
		tb_close(c, h, &err);
		break;
	case 21:
		set[0] = h;
		set[1] = *last + 1;
		tb_select(c, set, 2, ready, 0, &n, &err);
		break;
	case 22:
		set[0] = h;
		tb_select(c, set, 1, ready, 100, &n, &err);
		break;
	default:
		tb_read(c, h, buf, 1, &n, &err);
		break;
	}
	if (got != 0)
		*last = got;
}

/*
 * Whether the first chunk answers hello (msgid 1) and stream (msgid 2):
 * the library waits for them before the hook is set, so without both
 * the broker's side is shut behind the chunk.
 */
static bool
answers_hello(const uint8_t *p, size_t left)
{
	struct proto_cursor	 cur;
	const char		*why;
	uint64_t		 type, msgid;
	size_t			 len;
	uint32_t		 n;
	bool			 one = false, two = false;
	const uint8_t		*end = memchr(p, FUZZ_CHUNK_END, left);

	if (end != NULL)
		left = (size_t)(end - p);
	while (proto_scan(p, left, &len, &why) == PROTO_SCAN_DONE) {
		cur = (struct proto_cursor){ p, len };
		if (proto_get_array(&cur, &n) == 0 && n == 4 &&
		    proto_get_uint(&cur, &type) == 0 &&
		    type == PROTO_RESPONSE &&
		    proto_get_uint(&cur, &msgid) == 0) {
			one |= msgid == 1;
			two |= msgid == 2;
		}
		p += len;
		left -= len;
	}
	return one && two;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct broker_side	 b;
	struct tb_error		 err;
	tb_client		*c;
	const uint8_t		*calls;
	tb_handle		 last = 1;
	size_t			 ncalls, i;
	int			 sv[2];

	if (size < 1)
		return 0;
	ncalls = data[0] % (FUZZ_CALLS_MAX + 1);
	if (ncalls > size - 1)
		ncalls = size - 1;
	calls = data + 1;
	b.p = data + 1 + ncalls;
	b.left = size - 1 - ncalls;
	b.shut = false;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return 0;
	b.fd = sv[1];
	fcntl(b.fd, F_SETFL, O_NONBLOCK);
	/* hello waits before the hook can be set: its answer goes first. */
	broker_turn(&b);
	if (!answers_hello(data + 1 + ncalls, size - 1 - ncalls)) {
		shutdown(b.fd, SHUT_WR);
		b.shut = true;
	}
	if (tb_client_open_fd(&c, sv[0], &err) == 0) {
		tb_client_set_interrupt(c, broker_turn, &b);
		for (i = 0; i < ncalls; i++)
			run_call(c, calls[i], &last);
		tb_client_close(c);
	}
	close(b.fd);
	return 0;
}
