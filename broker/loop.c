/*
 * The event loop: one epoll set, edge-triggered, and a binary heap of
 * timers.  Objects named by events are freed only after the batch that
 * may name them has been handled (loop_release).
 */
#include <sys/epoll.h>

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

/* Events taken from the kernel per turn of the loop. */
#define LOOP_EVENTS_MAX	64

static int		  epfd = -1;
static uint64_t		  now_ms;
static uint64_t		  now_us;
static uint32_t		  busy_poll_us;	/* loop_busy_poll() */
static uint64_t		  last_event_us;
static bool		  stopping;
static struct timer	**heap;
static size_t		  heap_len, heap_cap;
static struct loop_io	 *graveyard;

static uint64_t
clock_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
update_now(void)
{
	now_us = clock_us();
	now_ms = now_us / 1000;
}

void
loop_init(size_t max_timers)
{
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	/* Every timer belongs to a call, so their number is bounded. */
	if ((heap = calloc(max_timers, sizeof(*heap))) == NULL)
		fatal("timer heap");
	heap_cap = max_timers;
	update_now();
}

uint64_t
loop_now(void)
{
	return now_ms;
}

int
loop_add(struct loop_io *io, int fd, uint32_t events,
    void (*cb)(struct loop_io *, uint32_t), void *owner)
{
	struct epoll_event	ev = { 0 };

	io->fd = fd;
	io->dead = false;
	io->cb = cb;
	io->owner = owner;
	io->next_dead = NULL;
	ev.events = events | EPOLLET;
	ev.data.ptr = io;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void
loop_remove(struct loop_io *io)
{
	if (io->fd != -1) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, io->fd, NULL);
		close(io->fd);
		io->fd = -1;
	}
}

void
loop_release(struct loop_io *io)
{
	if (io->dead)
		fatalx("loop_release: released twice");
	loop_remove(io);
	io->dead = true;
	io->next_dead = graveyard;
	graveyard = io;
}

static void
collect(void)
{
	struct loop_io	*io;

	while ((io = graveyard) != NULL) {
		graveyard = io->next_dead;
		free(io->owner);
	}
}

static bool
earlier(size_t a, size_t b)
{
	return heap[a]->when < heap[b]->when;
}

static void
heap_swap(size_t a, size_t b)
{
	struct timer	*t = heap[a];

	heap[a] = heap[b];
	heap[b] = t;
	heap[a]->slot = a + 1;
	heap[b]->slot = b + 1;
}

static void
heap_up(size_t i)
{
	while (i > 0 && earlier(i, (i - 1) / 2)) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(size_t i)
{
	size_t	l, r, m;

	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < heap_len && earlier(l, m))
			m = l;
		if (r < heap_len && earlier(r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

void
timer_set(struct timer *timer, uint64_t when, void (*cb)(struct timer *))
{
	timer_cancel(timer);
	if (heap_len == heap_cap)
		fatalx("timer heap full: more timers than calls");
	timer->when = when;
	timer->cb = cb;
	heap[heap_len] = timer;
	timer->slot = ++heap_len;
	heap_up(heap_len - 1);
}

void
timer_cancel(struct timer *timer)
{
	size_t	i;

	if (timer->slot == 0)
		return;
	i = timer->slot - 1;
	timer->slot = 0;
	if (i == --heap_len)
		return;
	heap[i] = heap[heap_len];
	heap[i]->slot = i + 1;
	heap_up(i);
	heap_down(heap[i]->slot - 1);
}

static void
run_timers(void)
{
	struct timer	*t;

	while (heap_len > 0 && heap[0]->when <= now_ms) {
		t = heap[0];
		timer_cancel(t);
		t->cb(t);
	}
}

static int
next_timeout(void)
{
	uint64_t	wait;

	if (heap_len == 0)
		return -1;
	if (heap[0]->when <= now_ms)
		return 0;
	wait = heap[0]->when - now_ms;
	return wait > 60000 ? 60000 : (int)wait;
}

void
loop_busy_poll(uint32_t us)
{
	busy_poll_us = us;
}

uint32_t
loop_busy_poll_us(void)
{
	return busy_poll_us;
}

/*
 * How long the next turn may wait.  While busy polling, a turn within
 * busy_poll_us of the last event does not sleep: a message that follows
 * soon after another is taken without the wake-up of a sleeping
 * process, the largest part of a relayed round trip on a machine where
 * an idle core halts (HAProxy's busy-polling does the same).  Each poll
 * first yields the CPU, so that a process waiting for this core (the
 * peer that is to answer, on a machine with few cores) runs at once
 * instead of after the broker's time slice: without it the echo's 99th
 * percentile doubled on 2 cores.  Timers are not late for it, as every
 * turn runs those due.
 */
static int
turn_timeout(bool busy)
{
	if (busy)
		return 0;
	if (busy_poll_us > 0 && now_us < last_event_us + busy_poll_us) {
		sched_yield();
		return 0;
	}
	return next_timeout();
}

void
loop_stop(void)
{
	stopping = true;
}

bool
loop_turn(int timeout_ms, bool (*after_batch)(void), int *nevents)
{
	struct epoll_event	 events[LOOP_EVENTS_MAX];
	struct loop_io		*io;
	bool			 busy;
	int			 i, n;

	n = epoll_wait(epfd, events, LOOP_EVENTS_MAX, timeout_ms);
	if (n == -1 && errno != EINTR)
		fatal("epoll_wait");
	update_now();
	for (i = 0; i < n; i++) {
		io = events[i].data.ptr;
		if (!io->dead)
			io->cb(io, events[i].events);
	}
	run_timers();
	busy = after_batch != NULL && after_batch();
	collect();
	/* The window starts once the batch is handled. */
	if (n > 0 && busy_poll_us > 0)
		last_event_us = clock_us();
	if (nevents != NULL)
		*nevents = n > 0 ? n : 0;
	return busy;
}

void
loop_run(bool (*after_batch)(void))
{
	bool	busy = false;

	while (!stopping)
		busy = loop_turn(turn_timeout(busy), after_batch, NULL);
}
