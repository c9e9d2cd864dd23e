/*
 * A flood: a thousand sessions of many uids at once, each sending
 * garbage, an oversized declared length or deeply nested msgpack, while
 * one well-behaved client does echo round trips.  The broker stays
 * under a stated memory ceiling and keeps answering the good client;
 * its p99 is recorded.
 */
#include <sys/socket.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tb_limits.h"

/* Hostile sessions opened, and the uids they come from. */
#define FLOOD_SESSIONS		1000
#define FLOOD_UIDS		40
#define FLOOD_FIRST_UID		8000
/* The broker's resident memory may not pass this: kilobytes. */
#define FLOOD_RSS_MAX_KB	(256 * 1024)
/* Echo round trips of the good client, at most. */
#define FLOOD_ECHOES		100000

static struct broker_proc	broker;
static struct test_server	echo;
static atomic_bool		stop;
static uint64_t			rtt_us[FLOOD_ECHOES];
static int			nrtt;

static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* 63 bytes and a newline. */
static const char	line64[64] =
    "012345678901234567890123456789012345678901234567890123456789012\n";

static void *
good_client(void *arg)
{
	tb_client	*c = arg;
	struct tb_error	 err;
	tb_handle	 h;
	char		 line[80];
	size_t		 n;
	uint64_t	 t0;

	if (tb_connect(c, "127.0.0.1", echo.port, &h, &err) != 0)
		return NULL;
	tb_set_nodelay(c, h, true, &err);
	while (!atomic_load(&stop) && nrtt < FLOOD_ECHOES) {
		t0 = now_us();
		if (tb_write_all(c, h, line64, sizeof(line64), &err) != 0 ||
		    tb_read_line(c, h, line, sizeof(line), &n, &err) != 0)
			break;
		rtt_us[nrtt++] = now_us() - t0;
	}
	return NULL;
}

static int
compare(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One of the hostile messages, by number. */
static size_t
hostile(unsigned i, uint8_t *buf, size_t cap)
{
	size_t	n = 0, k;

	switch (i % 3) {
	case 0:		/* garbage */
		for (k = 0; k < cap; k++)
			buf[k] = (uint8_t)(k * 131 + i);
		buf[0] = 0xc1;		/* never used by msgpack */
		return cap;
	case 1:		/* a request whose data claims 4 GiB */
		memcpy(buf, "\x94\x00\x01\xa5write\x92\x01\xc6\xff\xff\xff\xff",
		    16);
		return 16;
	default:	/* nested arrays, far past PROTO_DEPTH_MAX */
		for (n = 0; n < cap; n++)
			buf[n] = 0x91;
		return n;
	}
}

static void
test_flood(void **state)
{
	static int	 fds[FLOOD_SESSIONS];
	tb_client	*good = harness_client(&broker);
	pthread_t	 t;
	uint8_t		 buf[512];
	long		 rss, peak;
	unsigned	 i, refused = 0;
	size_t		 len;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, good_client, good), 0);
	for (i = 0; i < FLOOD_SESSIONS; i++) {
		fds[i] = harness_connect_as(&broker, FLOOD_FIRST_UID +
		    i % FLOOD_UIDS);
		if (fds[i] == -1) {
			refused++;
			continue;
		}
		len = hostile(i, buf, sizeof(buf));
		if (send(fds[i], buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			refused++;
	}
	rss = harness_status_field(broker.pid, "VmRSS:");
	peak = harness_status_field(broker.pid, "VmHWM:");
	for (i = 0; i < FLOOD_SESSIONS; i++)
		if (fds[i] != -1)
			close(fds[i]);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	tb_client_close(good);
	assert_true(nrtt > 10);
	qsort(rtt_us, (size_t)nrtt, sizeof(rtt_us[0]), compare);
	print_message("flood: %d hostile sessions (%u refused or cut at once); "
	    "broker RSS %ld KiB, peak %ld KiB; the good client's %d echoes: "
	    "p50 %llu us, p99 %llu us\n", FLOOD_SESSIONS, refused, rss, peak,
	    nrtt, (unsigned long long)rtt_us[nrtt / 2],
	    (unsigned long long)rtt_us[nrtt * 99 / 100]);
	assert_true(peak > 0 && peak < FLOOD_RSS_MAX_KB);
	/* Still serving everyone. */
	good = harness_client(&broker);
	tb_client_close(good);
}

static int
setup(void **state)
{
	struct harness_options	opts = { .args = { "--socket-mode", "0666",
				    "--log-level", "warn" } };

	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	harness_broker_start_opts(&broker, HARNESS_POLICY, &opts);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood),
	};

	if (getuid() != 0) {
		fprintf(stderr, "it_flood runs as root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
