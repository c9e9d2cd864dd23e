/*
 * The measurements of the C paths.  Each runs until its budget of time
 * or of operations is spent, whichever comes first, and returns NAN if
 * the path failed, so that one broken path leaves the others' figures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Echo round trips before the timed ones. */
#define ECHO_WARMUP		100
/* Connections select waits on in the larger case. */
#define SELECT_CONNS		100

static uint8_t	chunk[BENCH_CHUNK];

static bool
spent(const struct budget *b, uint64_t start, unsigned done)
{
	return done >= b->count || now_ns() - start >= b->ms * 1000000ull;
}

static double
per_second(double amount, uint64_t start)
{
	return amount * 1e9 / (double)(now_ns() - start);
}

double
measure_connect_close(struct path *p, const struct servers *s,
    const struct budget *b)
{
	struct conn	c;
	uint64_t	start = now_ns();
	unsigned	n;

	for (n = 0; !spent(b, start, n); n++) {
		if (p->ops->open(p, s->port[SERVER_ECHO], &c) == -1)
			return NAN;
		p->ops->close(p, &c);
	}
	return per_second(n, start);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
echo_once(struct path *p, struct conn *c, uint8_t *msg)
{
	uint8_t	reply[BENCH_ECHO_SIZE];
	size_t	got = 0;
	ssize_t	n;

	if (p->ops->write_all(p, c, msg, BENCH_ECHO_SIZE) == -1)
		return -1;
	while (got < BENCH_ECHO_SIZE) {
		if ((n = p->ops->read(p, c, reply + got,
		    BENCH_ECHO_SIZE - got)) <= 0)
			return -1;
		got += (size_t)n;
	}
	return memcmp(reply, msg, BENCH_ECHO_SIZE) == 0 ? 0 : -1;
}

int
measure_echo(struct path *p, uint16_t port, const struct budget *b,
    double *p50, double *p99)
{
	struct conn	 c;
	uint8_t		 msg[BENCH_ECHO_SIZE];
	uint64_t	*rtt, start, t;
	unsigned	 n, i;
	int		 rc = -1;

	*p50 = *p99 = NAN;
	if ((rtt = calloc(b->count, sizeof(*rtt))) == NULL)
		return -1;
	if (p->ops->open(p, port, &c) == -1) {
		free(rtt);
		return -1;
	}
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	for (i = 0; i < ECHO_WARMUP; i++)
		if (echo_once(p, &c, msg) == -1)
			goto out;
	start = now_ns();
	for (n = 0; !spent(b, start, n); n++) {
		msg[0] = (uint8_t)n;
		t = now_ns();
		if (echo_once(p, &c, msg) == -1)
			goto out;
		rtt[n] = now_ns() - t;
	}
	if (n == 0)
		goto out;
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	*p50 = (double)rtt[n / 2] / 1e3;
	*p99 = (double)rtt[n * 99 / 100] / 1e3;
	rc = 0;
 out:
	p->ops->close(p, &c);
	free(rtt);
	return rc;
}

/* MB/s, 10^6 bytes a second. */
double
measure_bulk_write(struct path *p, const struct servers *s,
    const struct budget *b)
{
	struct conn	c;
	uint64_t	start;
	unsigned	n;

	if (p->ops->open(p, s->port[SERVER_SINK], &c) == -1)
		return NAN;
	start = now_ns();
	for (n = 0; !spent(b, start, n); n++)
		if (p->ops->write_all(p, &c, chunk, sizeof(chunk)) == -1) {
			p->ops->close(p, &c);
			return NAN;
		}
	p->ops->close(p, &c);
	return per_second((double)n * sizeof(chunk), start) / 1e6;
}

double
measure_bulk_read(struct path *p, const struct servers *s,
    const struct budget *b)
{
	struct conn	c;
	uint64_t	start, bytes = 0;
	unsigned	n;
	ssize_t		got;

	if (p->ops->open(p, s->port[SERVER_SOURCE], &c) == -1)
		return NAN;
	start = now_ns();
	for (n = 0; !spent(b, start, n); n++) {
		if ((got = p->ops->read(p, &c, chunk, sizeof(chunk))) <= 0) {
			p->ops->close(p, &c);
			return NAN;
		}
		bytes += (uint64_t)got;
	}
	p->ops->close(p, &c);
	return per_second((double)bytes, start) / 1e6;
}

double
measure_read_line(struct path *p, const struct servers *s,
    const struct budget *b)
{
	struct conn	c;
	char		line[BENCH_LINE_SIZE * 2];
	uint64_t	start;
	unsigned	n;
	size_t		len;

	if (p->ops->open(p, s->port[SERVER_LINES], &c) == -1)
		return NAN;
	start = now_ns();
	for (n = 0; !spent(b, start, n); n++)
		if (p->ops->read_line(p, &c, line, sizeof(line), &len) == -1 ||
		    len != BENCH_LINE_SIZE - 1) {
			p->ops->close(p, &c);
			return NAN;
		}
	p->ops->close(p, &c);
	return per_second(n, start);
}

/*
 * Echo round trips on one of n connections, waiting with select over
 * all n: median microseconds.
 */
static double
select_rtt(struct path *p, struct conn *conns, int nconns,
    const struct budget *b)
{
	uint8_t		 msg[BENCH_ECHO_SIZE] = { 0 }, reply[BENCH_ECHO_SIZE];
	uint64_t	*rtt, start, t;
	unsigned	 i;
	double		 median = NAN;
	size_t		 got;
	ssize_t		 n;
	int		 k;

	if ((rtt = calloc(b->count, sizeof(*rtt))) == NULL)
		return NAN;
	start = now_ns();
	for (i = 0; !spent(b, start, i); i++) {
		k = (int)(i % (unsigned)nconns);
		t = now_ns();
		if (p->ops->write_all(p, &conns[k], msg, sizeof(msg)) == -1)
			goto out;
		for (got = 0; got < sizeof(reply); got += (size_t)n)
			if (p->ops->select(p, conns, nconns, 1000) != k ||
			    (n = p->ops->read(p, &conns[k], reply + got,
			    sizeof(reply) - got)) <= 0)
				goto out;
		rtt[i] = now_ns() - t;
	}
	if (i > 0) {
		qsort(rtt, i, sizeof(*rtt), cmp_u64);
		median = (double)rtt[i / 2] / 1e3;
	}
 out:
	free(rtt);
	return median;
}

/* Round trip waiting on 100 connections over that waiting on one. */
double
measure_select_ratio(struct path *p, const struct servers *s,
    const struct budget *b)
{
	struct conn	conns[SELECT_CONNS];
	double		one = NAN, many = NAN;
	int		i, opened;

	if (p->ops->select == NULL)
		return NAN;
	for (opened = 0; opened < SELECT_CONNS; opened++)
		if (p->ops->open(p, s->port[SERVER_ECHO], &conns[opened]) == -1)
			break;
	if (opened == SELECT_CONNS) {
		one = select_rtt(p, conns, 1, b);
		many = select_rtt(p, conns, SELECT_CONNS, b);
	}
	for (i = 0; i < opened; i++)
		p->ops->close(p, &conns[i]);
	return many / one;
}
