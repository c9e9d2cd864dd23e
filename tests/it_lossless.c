/*
 * Nothing lost: many connections at once through the broker to a real
 * echo server, each a stream of pseudo-random bytes written with random
 * sizes and every write call, read back with random sizes and every
 * read call, and compared byte by byte with what was sent, in order.
 */
#include <sys/socket.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Connections at once, and the sessions they share. */
#define LOSSLESS_CONNS		50
#define LOSSLESS_SESSIONS	5
/* Bytes each way in all: 1 GiB, less in sanitizer builds (slower). */
#ifdef TB_LOSSLESS_SMALL
#define LOSSLESS_TOTAL		(64ULL * 1024 * 1024)
#else
#define LOSSLESS_TOTAL		(1024ULL * 1024 * 1024)
#endif
#define LOSSLESS_PER_CONN	(LOSSLESS_TOTAL / LOSSLESS_CONNS)
/* Largest single write or read: bytes. */
#define LOSSLESS_CHUNK		(200 * 1024)

static struct broker_proc	broker;
static struct test_server	echo;

struct stream {
	tb_client	*client;
	tb_handle	 h;
	uint64_t	 seed;
	uint64_t	 sent;
	uint64_t	 received;
	uint64_t	 rng;		/* sizes and methods */
	char		 failure[TB_ERROR_MESSAGE_MAX + 64];
	atomic_bool	 done;
};

static struct stream	streams[LOSSLESS_CONNS];

static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte i of a stream: its own, never '\r' (read_line drops a "\r\n"). */
static uint8_t
byte_at(uint64_t seed, uint64_t i)
{
	uint8_t	b = (uint8_t)(mix(seed ^ (i / 8)) >> (8 * (i % 8)));

	if (b == '\r')
		b = 'R';
	/* A newline now and then, for the line readers. */
	if ((mix(seed + i) & 0x3ff) == 0)
		b = '\n';
	return b;
}

static size_t
pick(uint64_t *rng, size_t max)
{
	*rng = mix(*rng);
	return 1 + (size_t)(*rng % max);
}

static void *
writer(void *arg)
{
	struct stream	*s = arg;
	struct tb_error	 err;
	uint8_t		*buf = malloc(LOSSLESS_CHUNK);
	uint64_t	 rng = s->seed * 7 + 1;
	size_t		 len, n, i;
	int		 rc = 0;

	while (buf != NULL && s->sent < LOSSLESS_PER_CONN && rc == 0) {
		len = pick(&rng, LOSSLESS_CHUNK);
		if (len > LOSSLESS_PER_CONN - s->sent)
			len = (size_t)(LOSSLESS_PER_CONN - s->sent);
		for (i = 0; i < len; i++)
			buf[i] = byte_at(s->seed, s->sent + i);
		switch (rng % 3) {
		case 0:
			rc = tb_write_all(s->client, s->h, buf, len, &err);
			n = len;
			break;
		case 1:
			rc = tb_write(s->client, s->h, buf, len, &n, &err);
			break;
		default:
			rc = tb_write_bytes(s->client, s->h, buf, len, &n, &err);
			break;
		}
		if (rc == 0)
			s->sent += n;
	}
	if (rc == 0)
		rc = tb_shutdown(s->client, s->h, TB_SHUTDOWN_WRITE, &err);
	if (rc != 0)
		snprintf(s->failure, sizeof(s->failure), "write at %llu: %s",
		    (unsigned long long)s->sent, err.message);
	free(buf);
	return NULL;
}

/* Checks got against the stream from s->received on; false on a mismatch. */
static bool
check(struct stream *s, const uint8_t *got, size_t n, const char *how)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (got[i] != byte_at(s->seed, s->received + i)) {
			snprintf(s->failure, sizeof(s->failure), "%s: byte %llu "
			    "differs", how, (unsigned long long)(s->received +
			    i));
			return false;
		}
	s->received += n;
	return true;
}

static void *
reader(void *arg)
{
	struct stream	*s = arg;
	struct tb_error	 err;
	uint8_t		*buf = malloc(TB_LINE_MAX + 1), peeked[64];
	uint64_t	 rng = s->seed * 13 + 5;
	size_t		 max, n = 0, p;
	int		 rc = 0;

	while (buf != NULL && s->received < LOSSLESS_PER_CONN) {
		max = pick(&rng, TB_DATA_MAX);
		if (max > LOSSLESS_PER_CONN - s->received)
			max = (size_t)(LOSSLESS_PER_CONN - s->received);
		switch (rng % 6) {
		case 0:
		case 1:
			rc = tb_read(s->client, s->h, buf, max, &n, &err);
			if (rc == 0 && n == 0)
				goto short_stream;
			if (rc == 0 && !check(s, buf, n, "read"))
				goto out;
			break;
		case 2:
			rc = tb_read_exact(s->client, s->h, buf, max, &err);
			if (rc == 0 && !check(s, buf, max, "read_exact"))
				goto out;
			break;
		case 3:
			rc = tb_read_line(s->client, s->h, (char *)buf,
			    TB_LINE_MAX + 1, &n, &err);
			if (rc == TB_ELIMIT) {
				/* No newline within a line's length: read on. */
				rc = tb_read(s->client, s->h, buf, max, &n,
				    &err);
				if (rc == 0 && !check(s, buf, n, "read"))
					goto out;
				break;
			}
			if (rc == 0 && (!check(s, buf, n, "read_line") ||
			    (s->received < LOSSLESS_PER_CONN &&
			    !check(s, (const uint8_t *)"\n", 1, "read_line"))))
				goto out;
			break;
		case 4:
			rc = tb_read_until(s->client, s->h, '\n', buf,
			    TB_LINE_MAX, &n, &err);
			if (rc == TB_ELIMIT) {
				rc = tb_read(s->client, s->h, buf, max, &n,
				    &err);
				if (rc == 0 && !check(s, buf, n, "read"))
					goto out;
				break;
			}
			if (rc == 0 && !check(s, buf, n, "read_until"))
				goto out;
			break;
		default:
			/* peek shows what the next read takes. */
			rc = tb_peek(s->client, s->h, peeked, sizeof(peeked),
			    &p, &err);
			if (rc != 0 || p == 0)
				break;
			rc = tb_read(s->client, s->h, buf, p, &n, &err);
			if (rc == 0 && (n != p || memcmp(buf, peeked, p) != 0)) {
				snprintf(s->failure, sizeof(s->failure),
				    "read after peek differs");
				goto out;
			}
			if (rc == 0 && !check(s, buf, n, "peek+read"))
				goto out;
			break;
		}
		if (rc != 0) {
			snprintf(s->failure, sizeof(s->failure), "read at %llu: "
			    "%s", (unsigned long long)s->received, err.message);
			goto out;
		}
	}
	/* Then the end of the stream, and nothing after it. */
	if (buf != NULL && tb_read(s->client, s->h, buf, 1, &n, &err) == 0 &&
	    n != 0)
		snprintf(s->failure, sizeof(s->failure), "bytes past the end");
	goto out;
 short_stream:
	snprintf(s->failure, sizeof(s->failure), "the stream ended after %llu "
	    "bytes", (unsigned long long)s->received);
 out:
	free(buf);
	atomic_store(&s->done, true);
	return NULL;
}

static int
setup(void **state)
{
	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	harness_broker_start(&broker, HARNESS_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_broker_stop(&broker);
	server_stop(&echo);
	return 0;
}

static void
test_nothing_lost(void **state)
{
	tb_client	*clients[LOSSLESS_SESSIONS];
	pthread_t	 w[LOSSLESS_CONNS], r[LOSSLESS_CONNS];
	struct tb_error	 err;
	uint64_t	 t0 = harness_now_ms(), total = 0;
	int		 i;

	(void)state;
	for (i = 0; i < LOSSLESS_SESSIONS; i++)
		clients[i] = harness_client(&broker);
	for (i = 0; i < LOSSLESS_CONNS; i++) {
		streams[i].client = clients[i % LOSSLESS_SESSIONS];
		streams[i].seed = mix((uint64_t)i + 1);
		assert_ok(tb_connect(streams[i].client, "127.0.0.1", echo.port,
		    &streams[i].h, &err), &err);
		assert_ok(tb_set_timeout_ms(streams[i].client, streams[i].h,
		    60000, &err), &err);
	}
	for (i = 0; i < LOSSLESS_CONNS; i++) {
		assert_int_equal(pthread_create(&w[i], NULL, writer,
		    &streams[i]), 0);
		assert_int_equal(pthread_create(&r[i], NULL, reader,
		    &streams[i]), 0);
	}
	for (i = 0; i < LOSSLESS_CONNS; i++) {
		pthread_join(w[i], NULL);
		pthread_join(r[i], NULL);
	}
	for (i = 0; i < LOSSLESS_CONNS; i++) {
		if (streams[i].failure[0] != '\0')
			fail_msg("stream %d: %s", i, streams[i].failure);
		assert_true(streams[i].sent == LOSSLESS_PER_CONN);
		assert_true(streams[i].received == LOSSLESS_PER_CONN);
		total += streams[i].received;
	}
	print_message("nothing lost: %llu bytes each way over %d connections "
	    "in %llu ms\n", (unsigned long long)total, LOSSLESS_CONNS,
	    (unsigned long long)(harness_now_ms() - t0));
	for (i = 0; i < LOSSLESS_SESSIONS; i++)
		tb_client_close(clients[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_lost),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
