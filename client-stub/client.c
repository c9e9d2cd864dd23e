/*
 * The client stub: the `tcp` plugin's functions over one msgpack-RPC
 * session with the broker on a Unix socket.
 *
 * The session streams (docs/protocol.md, "Streams"): the broker pushes
 * each connection's received bytes as data notifications, within a
 * receive window granted here, and the reads are served from a buffer
 * per connection.  Writes go out as send notifications within the
 * broker's send window and return at once (write-behind).  The other
 * calls are requests with a response.
 *
 * Several threads may call at once.  A thread that must wait (for its
 * response, or for data) waits on the one session socket: whichever
 * waiting thread finds nobody reading becomes the reader, handles every
 * message it reads, and wakes the others, which look again.  Time-outs
 * are kept by the waiting thread.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"
#include "source.h"
#include "tcpbroker.h"
#include "tls.h"

_Static_assert(TB_DATA_MAX == PROTO_DATA_MAX, "data limit");
_Static_assert(TB_LINE_MAX == PROTO_LINE_MAX, "line limit");
_Static_assert(TB_ADDR_STRLEN >= PROTO_ADDR_STRLEN, "address length");
_Static_assert(TB_ERROR_MESSAGE_MAX >= PROTO_ERROR_MESSAGE_MAX, "messages");
_Static_assert(CLIENT_RECV_WINDOW >= PROTO_RECV_WINDOW_MIN &&
    CLIENT_RECV_WINDOW <= PROTO_RECV_WINDOW_MAX &&
    CLIENT_RECV_WINDOW <= CLIENT_RECV_WINDOW_MAX &&
    CLIENT_RECV_WINDOW_MAX <= PROTO_RECV_WINDOW_GROWN_MAX &&
    CLIENT_RECV_GROWTH_MAX >= CLIENT_RECV_WINDOW_MAX - CLIENT_RECV_WINDOW,
    "receive window");
_Static_assert(CLIENT_READ_BUFFER >= PROTO_MESSAGE_MAX, "read buffer");


struct waiter {
	uint32_t	 msgid;
	bool		 done;
	uint8_t		*inline_buf;	/* CLIENT_RESPONSE_INLINE bytes */
	uint8_t		*response;	/* the whole response message */
	size_t		 len;
	struct waiter	*next;
};

/* A response: waited for, then kept while its result is read. */
struct response {
	struct waiter		 w;
	bool			 registered;
	uint8_t			*heap;	/* when it did not fit inline */
	struct proto_cursor	 result;
	uint8_t			 inline_buf[CLIENT_RESPONSE_INLINE];
};

/* A request being packed, on the caller's stack. */
struct request {
	struct proto_buf	 buf;
	msgpack_packer		 pk;
	uint32_t		 msgid;
	const char		*name;
	uint8_t			 head[CLIENT_REQUEST_HEAD];
};

static int __attribute__((format(printf, 3, 4)))
set_error(struct tb_error *err, int code, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *
tb_err_name(int code)
{
	return proto_err_name(code);
}

const char *
tb_strerror(int code)
{
	return proto_err_text(code);
}

uint64_t
tb_client_session_id(const tb_client *client)
{
	return client->session;
}

/* The monotonic clock: microseconds, and milliseconds. */
static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
now_ms(void)
{
	return now_us() / 1000;
}

/* A deadline ms from now, or 0 (none) for ms 0. */
static uint64_t
deadline_in(uint32_t ms)
{
	return ms == 0 ? 0 : now_ms() + ms;
}

/* With the lock: marks the session unusable and wakes every thread. */
static void
client_break_locked(tb_client *c, int code)
{
	if (c->broken == 0)
		c->broken = code;
	pthread_cond_broadcast(&c->cond);
}

static void
client_break(tb_client *c, int code)
{
	pthread_mutex_lock(&c->lock);
	client_break_locked(c, code);
	pthread_mutex_unlock(&c->lock);
}

/* Data up to this size is copied behind its head and sent in one call. */
#define SEND_COPY_MAX	4096

static int
send_bytes(tb_client *c, const uint8_t *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Sends a whole message: head, then data when there is any.  send()
 * only: a command `tcpbroker run` confines may not use sendmsg().
 */
static int
send_message(tb_client *c, const uint8_t *head, size_t headlen,
    const void *data, size_t datalen)
{
	uint8_t	 one[CLIENT_REQUEST_HEAD + SEND_COPY_MAX];
	int	 rc;

	pthread_mutex_lock(&c->send_lock);
	if (datalen == 0)
		rc = send_bytes(c, head, headlen);
	else if (headlen + datalen <= sizeof(one)) {
		memcpy(one, head, headlen);
		memcpy(one + headlen, data, datalen);
		rc = send_bytes(c, one, headlen + datalen);
	} else if ((rc = send_bytes(c, head, headlen)) == 0)
		rc = send_bytes(c, data, datalen);
	pthread_mutex_unlock(&c->send_lock);
	if (rc != 0)
		client_break(c, TB_EBROKER);
	return rc;
}

/* Streams. */

/* The open connection (or listener) h, or NULL. */
struct stream *
stream_of(tb_client *c, tb_handle h)
{
	struct stream	*e = &c->streams[STREAM_SLOT(h)];

	return e->handle == h && e->open ? e : NULL;
}

/*
 * Whether this session had h and closed it: its slot holds h closed,
 * or a later handle (the broker issues the handles of one slot in
 * increasing order, and a closed handle is never valid again).
 */
static bool
closed_here(tb_client *c, tb_handle h)
{
	struct stream	*e = &c->streams[STREAM_SLOT(h)];

	return h != 0 && e->handle != 0 &&
	    (e->handle == h ? !e->open : h < e->handle);
}

/*
 * The stream of a handle the broker just named: a new one when it was
 * not known yet.  NULL when it is closed here, or when its slot holds
 * another open handle (the broker broke its promise).
 */
static struct stream *
stream_claim(tb_client *c, tb_handle h, bool *bad)
{
	struct stream	*e = &c->streams[STREAM_SLOT(h)];

	*bad = false;
	if (e->handle == h)
		return e->open ? e : NULL;
	if (e->handle != 0 && e->open) {
		*bad = true;
		return NULL;
	}
	free(e->buf);
	tls_free(e->tls);
	memset(e, 0, sizeof(*e));
	e->handle = h;
	e->open = true;
	e->send_window = c->send_window;
	e->recv_window = CLIENT_RECV_WINDOW;
	return e;
}

static void
stream_drop(struct stream *e)
{
	free(e->buf);
	e->buf = NULL;
	tls_free(e->tls);
	e->tls = NULL;
	e->off = e->len = e->cap = 0;
}

int
stream_reserve(struct stream *e, size_t n)
{
	size_t	 cap;
	uint8_t	*p;

	if (e->len + n > e->recv_window)
		return -1;
	if (n == 0)
		return 0;	/* and no buffer is made for nothing */
	if (e->off + e->len + n > e->cap && e->off > 0) {
		memmove(e->buf, e->buf + e->off, e->len);
		e->off = 0;
	}
	if (e->len + n > e->cap) {
		cap = e->cap ? e->cap : STREAM_BUFFER_MIN;
		while (cap < e->len + n)
			cap *= 2;
		if (cap > e->recv_window)
			cap = e->recv_window;
		if ((p = realloc(e->buf, cap)) == NULL)
			return -1;
		e->buf = p;
		e->cap = cap;
	}
	return 0;
}

/* Takes n received bytes; -1 when they are past the window. */
static int
stream_append(struct stream *e, const uint8_t *data, size_t n)
{
	if (e->read_shut || e->listener)
		return e->listener ? -1 : 0;	/* dropped, as shut down */
	if (e->len + e->owed + n > e->recv_window)
		return -1;
	if (n == 0)
		return 0;	/* and no buffer is made for nothing */
	if (stream_reserve(e, n) != 0)
		return -1;
	memcpy(e->buf + e->off + e->len, data, n);
	e->len += n;
	return 0;
}

static void
stream_consume(struct stream *e, size_t n)
{
	e->off += n;
	e->len -= n;
	if (e->tls == NULL)	/* else credit counts the TLS records */
		e->owed += n;
	if (e->len == 0)
		e->off = 0;
}

/* Sends [2, name, [h]] or [2, name, [h, n]]: 0, or the send failed. */
static int
send_note(tb_client *c, enum proto_client_note note, tb_handle h,
    const uint32_t *n)
{
	uint8_t			head[64];
	struct proto_buf	buf = { head, 0, sizeof(head), sizeof(head),
				    false };
	msgpack_packer		pk;

	proto_packer_init(&pk, &buf);
	proto_pack_note(&pk, proto_client_notes[note].name, n != NULL ? 2 : 1);
	msgpack_pack_uint32(&pk, h);
	if (n != NULL)
		msgpack_pack_uint32(&pk, *n);
	return send_message(c, buf.data, buf.len, NULL, 0);
}

static void
send_credit(tb_client *c, tb_handle h, size_t n)
{
	uint32_t	n32 = (uint32_t)n;

	(void)send_note(c, PROTO_CNOTE_CREDIT, h, &n32);
}

/*
 * With the lock, before waiting for acks: asks for the one the broker
 * may hold back for data to ride with (LIMIT_ACK_DELAY_MS) by a credit,
 * of what is owed or of 0.  The lock is let go while sending.
 */
static void
stream_ask_ack(tb_client *c, struct stream *e)
{
	tb_handle	h = e->handle;
	size_t		n = 0;

	if (e->wout == 0 || c->version < PROTO_VERSION_CLOSE_NOTE)
		return;
	if (!e->eof && e->error == 0 && !e->read_shut) {
		n = e->owed;
		e->owed = 0;
	}
	pthread_mutex_unlock(&c->lock);
	send_credit(c, h, n);
	pthread_mutex_lock(&c->lock);
}

/* Without the lock: closes streamed connection h, answered by nothing. */
static int
send_close(tb_client *c, tb_handle h, struct tb_error *err)
{
	int	broken;

	pthread_mutex_lock(&c->lock);
	broken = c->broken;
	pthread_mutex_unlock(&c->lock);
	if (broken == 0 && send_note(c, PROTO_CNOTE_CLOSE, h, NULL) == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	broken = c->broken;
	pthread_mutex_unlock(&c->lock);
	return set_error(err, broken, "close: the broker session is "
	    "unusable: %s", proto_err_text(broken));
}

/*
 * With the lock: gives the broker back what was read, once it is
 * CLIENT_GRANT_BATCH, or CLIENT_GRANT_BEFORE_WAIT when about to wait
 * for more (wait).  Less than that stays owed: a read waits for at most
 * PROTO_LINE_MAX, which the broker's credit still holds, and a request
 * and its answer cost no credit message each.  The lock is let go while
 * sending: true when it was, and the caller looks again at what another
 * thread may have received meanwhile before it waits.
 */
_Static_assert(CLIENT_RECV_WINDOW - CLIENT_GRANT_BEFORE_WAIT >
    PROTO_LINE_MAX + PROTO_DATA_MAX, "a wait leaves credit for a payload");

/*
 * With the lock, as credit is given back: by how much e's window grows
 * (version 5).  A reader with nothing left unread has caught up with
 * what comes, and may be held back by the window: it doubles then, up
 * to CLIENT_RECV_WINDOW_MAX, as TCP grows its receive buffer for a
 * reader that drains it, within what the session's windows may grow by
 * together (CLIENT_RECV_GROWTH_MAX).  So any bulk reader that catches
 * up now and then grows it, a slow one too; one that never empties its
 * buffer does not, nor does a TLS connection, whose credit counts
 * records.
 */
static size_t
stream_grow(tb_client *c, struct stream *e)
{
	size_t	grow = e->recv_window;

	if (e->len > 0 || e->tls != NULL ||
	    c->version < PROTO_VERSION_RECV_GROWTH)
		return 0;
	if (grow > CLIENT_RECV_WINDOW_MAX - e->recv_window)
		grow = CLIENT_RECV_WINDOW_MAX - e->recv_window;
	if (grow > CLIENT_RECV_GROWTH_MAX - c->recv_grown)
		grow = CLIENT_RECV_GROWTH_MAX - c->recv_grown;
	e->recv_window += grow;
	c->recv_grown += grow;
	return grow;
}

bool
stream_grant(tb_client *c, struct stream *e, bool wait)
{
	tb_handle	h = e->handle;
	size_t		n = e->owed;

	if (n < (wait ? CLIENT_GRANT_BEFORE_WAIT : CLIENT_GRANT_BATCH) ||
	    n == 0 || e->eof || e->error != 0 || e->read_shut)
		return false;
	n += stream_grow(c, e);
	e->owed = 0;
	pthread_mutex_unlock(&c->lock);
	send_credit(c, h, n);
	pthread_mutex_lock(&c->lock);
	return true;
}

/* Messages from the broker. */

/* Hands one response to its waiter; with the lock. */
static int
deliver_response(tb_client *c, const uint8_t *msg, size_t len,
    struct proto_cursor *cur)
{
	struct waiter	*w;
	uint64_t	 msgid;

	if (proto_get_uint(cur, &msgid) != 0)
		return -1;
	for (w = c->waiters; w != NULL; w = w->next)
		if (w->msgid == msgid && !w->done)
			break;
	if (w == NULL)
		return 0;
	if (len <= CLIENT_RESPONSE_INLINE)
		w->response = w->inline_buf;
	else if ((w->response = malloc(len)) == NULL) {
		client_break_locked(c, TB_ENOMEM);
		return 0;
	}
	memcpy(w->response, msg, len);
	w->len = len;
	w->done = true;
	return 0;
}

/* Applies one notification; with the lock.  -1 when it is malformed. */
static int
deliver_note(tb_client *c, struct proto_cursor *cur)
{
	struct stream	*e;
	const char	*name;
	const uint8_t	*data;
	size_t		 len;
	uint64_t	 h, v;
	uint32_t	 n;
	int		 note, code;
	bool		 bad;

	if (proto_get_str(cur, &name, &len) != 0 ||
	    proto_get_array(cur, &n) != 0 || n < 1 ||
	    proto_get_uint(cur, &h) != 0 || h == 0 || h > UINT32_MAX)
		return -1;
	note = proto_table_lookup(proto_broker_notes, PROTO_BNOTE_COUNT, name,
	    len);
	if (note < 0 || n != strlen(proto_broker_notes[note].params))
		return -1;
	e = stream_claim(c, (tb_handle)h, &bad);
	if (bad)
		return -1;
	switch (note) {
	case PROTO_BNOTE_DATA:
		if (proto_get_bin(cur, &data, &len) != 0)
			return -1;
		if (e != NULL && (e->tls != NULL ? tls_recv(e, data, len) :
		    stream_append(e, data, len)) != 0)
			return -1;
		return 0;
	case PROTO_BNOTE_END:
		if (e != NULL && e->tls != NULL)
			tls_end(e);
		else if (e != NULL)
			e->eof = true;
		return 0;
	case PROTO_BNOTE_ERROR:
		if (proto_get_error(cur, &code, NULL, 0) != 0 || code == 0)
			return -1;
		if (e != NULL && e->error == 0) {
			e->error = code;
			e->write_lost = e->wout > 0;
		}
		return 0;
	case PROTO_BNOTE_ACK:
		if (proto_get_uint(cur, &v) != 0)
			return -1;
		if (e != NULL) {
			if (v > e->wout)
				return -1;
			e->wout -= (size_t)v;
		}
		return 0;
	case PROTO_BNOTE_ACCEPTABLE:
		if (e != NULL)
			e->acceptable = true;
		return 0;
	case PROTO_BNOTE_WINDOW:
		/* Windows only grow, within the protocol's bound. */
		if (proto_get_uint(cur, &v) != 0 ||
		    c->version < PROTO_VERSION_WINDOW ||
		    v > PROTO_SEND_WINDOW_MAX)
			return -1;
		if (e != NULL) {
			if (v < e->send_window)
				return -1;
			e->send_window = (size_t)v;
		}
		return 0;
	}
	return -1;
}

/* Handles one whole message; with the lock. */
static void
deliver(tb_client *c, const uint8_t *msg, size_t len)
{
	struct proto_cursor	cur = { msg, len };
	uint64_t		type;
	uint32_t		n;
	int			rc = -1;

	if (proto_get_array(&cur, &n) == 0 &&
	    proto_get_uint(&cur, &type) == 0) {
		if (type == PROTO_RESPONSE && n == 4)
			rc = deliver_response(c, msg, len, &cur);
		else if (type == PROTO_NOTIFY && n == 3)
			rc = deliver_note(c, &cur);
	}
	if (rc != 0)
		client_break_locked(c, TB_EPROTO);
}

/* What the session's receives below return when no byte came. */
#define NOTHING_CAME	((ssize_t)-2)

/*
 * Asks the interrupt hook, if any: true when a signal came that wants
 * the waiting call to end.
 */
static bool
interrupt_wanted(tb_client *c)
{
	bool	(*wanted)(void *) = c->interrupt;

	return wanted != NULL && wanted(c->interrupt_arg);
}

/*
 * The signals held around the look before an interruptible sleep: all
 * but those a fault raises, which must reach their handler at once.
 */
static void
held_signals(sigset_t *set)
{
	sigfillset(set);
	sigdelset(set, SIGSEGV);
	sigdelset(set, SIGBUS);
	sigdelset(set, SIGFPE);
	sigdelset(set, SIGILL);
	sigdelset(set, SIGTRAP);
	sigdelset(set, SIGSYS);
}

/*
 * Busy polling, when the broker busy-polls (hello's busy_poll_us): looks
 * at the session socket without sleeping, yielding the CPU between
 * looks, for up to busy_poll_us, not past deadline (0: none) nor, when
 * interruptible, a signal that wants control.  An answer that comes
 * within it is taken without the wake-up of a sleeping process.  What
 * recv() returned, or NOTHING_CAME.
 */
static ssize_t
recv_polling(tb_client *c, uint64_t deadline, bool interruptible)
{
	uint64_t	until = now_us() + c->busy_poll_us;
	ssize_t		n;

	if (deadline != 0 && deadline * 1000 < until)
		until = deadline * 1000;
	for (;;) {
		n = recv(c->fd, c->in + c->inlen, CLIENT_READ_BUFFER - c->inlen,
		    MSG_DONTWAIT);
		if (n != -1 || (errno != EAGAIN && errno != EINTR))
			return n;
		/* A signal is for recv_waiting to look at. */
		if (errno == EINTR || now_us() >= until)
			return NOTHING_CAME;
		/* The hook is asked at every look; heeded if interruptible. */
		if (interrupt_wanted(c) && interruptible)
			return NOTHING_CAME;
		/* The peer that is to answer may be waiting for this core. */
		sched_yield();
	}
}

/*
 * ppoll() for input on the session socket until deadline (0: none),
 * with mask as the signal mask while asleep (NULL: the thread's own).
 */
static int
session_ppoll(tb_client *c, uint64_t deadline, const sigset_t *mask)
{
	struct pollfd	 pfd = { c->fd, POLLIN, 0 };
	struct timespec	 left, *timeout = NULL;
	uint64_t	 now, ms;

	if (deadline != 0) {
		now = now_ms();
		ms = deadline <= now ? 0 : deadline - now;
		left.tv_sec = (time_t)(ms / 1000);
		left.tv_nsec = (long)(ms % 1000) * 1000000;
		timeout = &left;
	}
	return ppoll(&pfd, 1, timeout, mask);
}

/*
 * The sleep of a wait that signals may interrupt, until the session
 * socket has something or deadline (0: none).  What ppoll() returned,
 * with *interrupted true when the hook, asked again, wants control.
 *
 * A signal that comes between the look at the hook and the sleep would
 * go unseen until the sleep ends.  So the wait first sleeps at most
 * CLIENT_INTERRUPT_LOOK_MS and looks again; past that it holds signals,
 * looks again and sleeps letting them in, atomically.  Holding and
 * letting go costs two system calls, paid only by waits that long.
 */
static int
sleep_interruptible(tb_client *c, uint64_t deadline, bool *interrupted)
{
	sigset_t	held, old;
	uint64_t	look = now_ms() + CLIENT_INTERRUPT_LOOK_MS;
	int		rc, saved;

	if (deadline != 0 && deadline <= look) {
		if ((rc = session_ppoll(c, deadline, NULL)) == 0)
			*interrupted = interrupt_wanted(c);
		return rc;
	}
	if ((rc = session_ppoll(c, look, NULL)) != 0)
		return rc;
	held_signals(&held);
	if (pthread_sigmask(SIG_BLOCK, &held, &old) != 0)
		return session_ppoll(c, deadline, NULL);
	if (!(*interrupted = interrupt_wanted(c)))
		rc = session_ppoll(c, deadline, &old);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return rc;
}

/*
 * Sleeps until the session socket has something, deadline (0: none)
 * has passed or, when interruptible, a signal came that wants control,
 * and reads.  What recv() returned, or NOTHING_CAME, with *interrupted
 * true when such a signal came.  The interrupt hook is asked before
 * every wait; a wait that may not be interrupted (a connect, a close
 * handing over what was written behind) does not heed it, and reads on.
 *
 * The sleep is always in ppoll(), never in a blocking recv().  A thread
 * asleep in recv() on a Unix stream socket is woken each time the
 * broker reads what this side sent, since the kernel wakes all of a
 * socket's waiters when its send buffer drains, and goes back to sleep:
 * one wake-up for nothing per request.  ppoll() for input is woken for
 * input only.  And it returns on a signal even under SA_RESTART, where
 * recv() may not.
 */
static ssize_t
recv_waiting(tb_client *c, uint64_t deadline, bool interruptible,
    bool *interrupted)
{
	ssize_t	n;
	int	rc;

	/*
	 * A signal that came just before the wait counts too.  The hook is
	 * asked before every wait, heeded or not (a hook may do its work
	 * there: the fuzz harness plays the broker in it).
	 */
	if (interrupt_wanted(c) && interruptible) {
		*interrupted = true;
		return NOTHING_CAME;
	}
	/* What is there already costs no ppoll(). */
	n = recv(c->fd, c->in + c->inlen, CLIENT_READ_BUFFER - c->inlen,
	    MSG_DONTWAIT);
	if (n != -1 || (errno != EAGAIN && errno != EINTR))
		return n;
	if (interruptible && c->interrupt != NULL)
		rc = sleep_interruptible(c, deadline, interrupted);
	else
		rc = session_ppoll(c, deadline, NULL);
	if (*interrupted)
		return NOTHING_CAME;
	if (rc == -1 && errno == EINTR) {
		*interrupted = interruptible && interrupt_wanted(c);
		return NOTHING_CAME;
	}
	if (rc <= 0)
		return NOTHING_CAME;	/* the caller looks at the time */
	n = recv(c->fd, c->in + c->inlen, CLIENT_READ_BUFFER - c->inlen,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN)) {
		*interrupted = errno == EINTR && interruptible &&
		    interrupt_wanted(c);
		return NOTHING_CAME;
	}
	return n;
}

/*
 * The reader: waits for the session socket until deadline (0: no
 * deadline), reads what is there and handles every whole message in it.
 * True when, interruptible, a signal that wants control interrupted the
 * wait.
 */
static bool
read_messages(tb_client *c, uint64_t deadline, bool interruptible)
{
	const char	*why;
	size_t		 len, off = 0;
	ssize_t		 n = NOTHING_CAME;
	bool		 interrupted = false;

	if (c->busy_poll_us > 0)
		n = recv_polling(c, deadline, interruptible);
	if (n == NOTHING_CAME)
		n = recv_waiting(c, deadline, interruptible, &interrupted);
	if (n == NOTHING_CAME)
		return interrupted;
	if (n <= 0) {
		client_break(c, TB_EBROKER);
		return false;
	}
	c->inlen += (size_t)n;
	pthread_mutex_lock(&c->lock);
	while (c->broken == 0) {
		enum proto_scan r = proto_scan(c->in + off, c->inlen - off,
		    &len, &why);
		if (r == PROTO_SCAN_MORE)
			break;
		if (r == PROTO_SCAN_BAD) {
			client_break_locked(c, TB_EPROTO);
			break;
		}
		deliver(c, c->in + off, len);
		off += len;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return false;
}

/*
 * With the lock: waits until more messages were handled, deadline (0:
 * none) has passed, or the session broke.  The caller looks again.
 * True when, interruptible, a signal that wants control interrupted the
 * wait (only the thread reading for the session sees it); never when
 * not.
 */
bool
client_wait(tb_client *c, uint64_t deadline, bool interruptible)
{
	struct timespec	ts;
	bool		interrupted;

	if (c->broken != 0)
		return false;
	if (c->reading) {
		if (deadline == 0) {
			pthread_cond_wait(&c->cond, &c->lock);
			return false;
		}
		ts.tv_sec = (time_t)(deadline / 1000);
		ts.tv_nsec = (long)(deadline % 1000) * 1000000;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		return false;
	}
	c->reading = true;
	pthread_mutex_unlock(&c->lock);
	interrupted = read_messages(c, deadline, interruptible);
	pthread_mutex_lock(&c->lock);
	c->reading = false;
	pthread_cond_broadcast(&c->cond);
	return interrupted;
}

#define INTERRUPTED_TEXT	"interrupted by a signal; the session is still usable"

void
tb_client_set_interrupt(tb_client *c, bool (*wanted)(void *), void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->interrupt = wanted;
	c->interrupt_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

/* Requests. */

static void
request_begin(tb_client *c, struct request *req, enum proto_method method,
    uint32_t nparams)
{
	pthread_mutex_lock(&c->lock);
	req->msgid = ++c->next_msgid;
	pthread_mutex_unlock(&c->lock);
	req->name = proto_methods[method].name;
	req->buf = (struct proto_buf){ req->head, 0, sizeof(req->head),
	    sizeof(req->head), false };
	proto_packer_init(&req->pk, &req->buf);
	proto_pack_request(&req->pk, req->msgid, method, nparams);
}

static void
response_free(struct response *resp)
{
	free(resp->heap);
	resp->heap = NULL;
}

/*
 * Registers resp as the waiter of req and sends req; then request_wait()
 * must follow, even when this fails, unless it returns an error before
 * registering (a broken session or an oversized request).
 */
static int
request_send(tb_client *c, struct request *req, struct response *resp,
    struct tb_error *err)
{
	int	broken;

	resp->heap = NULL;
	resp->registered = false;
	if (req->buf.failed)
		return set_error(err, TB_ENOMEM, "%s: request too large",
		    req->name);
	resp->w.msgid = req->msgid;
	resp->w.done = false;
	resp->w.inline_buf = resp->inline_buf;
	resp->w.response = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->broken != 0) {
		broken = c->broken;
		pthread_mutex_unlock(&c->lock);
		return set_error(err, broken, "%s: the broker session is "
		    "unusable: %s", req->name, proto_err_text(broken));
	}
	resp->w.next = c->waiters;
	c->waiters = &resp->w;
	resp->registered = true;
	pthread_mutex_unlock(&c->lock);

	send_message(c, req->buf.data, req->buf.len, NULL, 0);
	return 0;
}

/*
 * Waits for the response of a request sent by request_send().  On
 * success resp holds the result until response_free(); on failure err
 * is filled.
 */
static int
request_wait(tb_client *c, struct request *req, struct response *resp,
    struct tb_error *err)
{
	struct waiter	**wp;
	struct proto_cursor cur;
	char		  message[TB_ERROR_MESSAGE_MAX + 1];
	uint64_t	  v;
	uint32_t	  n;
	int		  code, broken;

	pthread_mutex_lock(&c->lock);
	while (!resp->w.done && c->broken == 0)
		client_wait(c, 0, WAIT_UNINTERRUPTED);
	for (wp = &c->waiters; *wp != &resp->w; wp = &(*wp)->next)
		;
	*wp = resp->w.next;
	resp->registered = false;
	broken = c->broken;
	pthread_mutex_unlock(&c->lock);

	if (!resp->w.done)
		return set_error(err, broken, "%s: the broker session failed: "
		    "%s", req->name, proto_err_text(broken));
	if (resp->w.response != resp->inline_buf)
		resp->heap = resp->w.response;
	/* Decoded once, here: [1, msgid, error, result]. */
	cur = (struct proto_cursor){ resp->w.response, resp->w.len };
	if (proto_get_array(&cur, &n) != 0 || proto_get_uint(&cur, &v) != 0 ||
	    proto_get_uint(&cur, &v) != 0 ||
	    proto_get_error(&cur, &code, message, sizeof(message)) != 0) {
		response_free(resp);
		return set_error(err, TB_EPROTO, "%s: malformed response",
		    req->name);
	}
	if (code != 0) {
		response_free(resp);
		return set_error(err, code, "%s", message);
	}
	resp->result = cur;
	return 0;
}

/* Sends the request and waits for its response. */
static int
request_call(tb_client *c, struct request *req, struct response *resp,
    struct tb_error *err)
{
	int	rc;

	if ((rc = request_send(c, req, resp, err)) != 0)
		return rc;
	return request_wait(c, req, resp, err);
}

/* Result readers: each checks the type the method table promises. */

static int
result_nil(struct response *resp, const char *name, struct tb_error *err)
{
	int	ok = proto_get_nil(&resp->result) == 0;

	response_free(resp);
	return ok ? set_error(err, 0, "ok") :
	    set_error(err, TB_EPROTO, "%s: expected no result", name);
}

static int
result_uint(struct response *resp, const char *name, uint64_t max,
    uint64_t *out, struct tb_error *err)
{
	uint64_t	v;
	int		ok;

	/* Always written, so that no caller reads an unset value. */
	ok = proto_get_uint(&resp->result, &v) == 0 && v <= max;
	*out = ok ? v : 0;
	response_free(resp);
	return ok ? set_error(err, 0, "ok") :
	    set_error(err, TB_EPROTO, "%s: expected an integer result", name);
}

static int
result_str(struct response *resp, const char *name, char *buf, size_t cap,
    struct tb_error *err)
{
	const char	*ptr;
	size_t		 n;

	if (proto_get_str(&resp->result, &ptr, &n) != 0 || n >= cap) {
		response_free(resp);
		return set_error(err, TB_EPROTO, "%s: expected a string of "
		    "less than %zu bytes", name, cap);
	}
	memcpy(buf, ptr, n);
	buf[n] = '\0';
	response_free(resp);
	return set_error(err, 0, "ok");
}

/* The unsigned value of key in a map result. */
static int
result_map_uint(struct response *resp, const char *name, const char *key,
    size_t *out, struct tb_error *err)
{
	const char	*k;
	size_t		 klen;
	uint64_t	 v;
	uint32_t	 n, i;
	bool		 found = false;

	if (proto_get_map(&resp->result, &n) != 0)
		goto bad;
	for (i = 0; i < n; i++) {
		if (proto_get_str(&resp->result, &k, &klen) != 0 ||
		    proto_get_uint(&resp->result, &v) != 0)
			goto bad;
		if (klen == strlen(key) && memcmp(k, key, klen) == 0) {
			*out = (size_t)v;
			found = true;
		}
	}
	if (!found)
		goto bad;
	response_free(resp);
	return set_error(err, 0, "ok");
 bad:
	response_free(resp);
	return set_error(err, TB_EPROTO, "%s: expected a map with %s", name,
	    key);
}

/* Opening and closing. */

static bool
key_is(const msgpack_object *key, const char *name)
{
	return key->via.str.size == strlen(name) &&
	    memcmp(key->via.str.ptr, name, key->via.str.size) == 0;
}

/*
 * hello, and stream right behind it without waiting: one round trip
 * opens a streaming session.
 */
static int
hello_as(tb_client *c, uint32_t version, struct tb_error *err)
{
	struct request		 req, sreq;
	struct response		 resp, sresp;
	struct tb_error		 serr;
	msgpack_unpacked	 unpacked;
	const msgpack_object	*result;
	const msgpack_object_kv	*kv;
	uint32_t		 i;
	int			 rc, src;

	request_begin(c, &req, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&req.pk, version);
	request_begin(c, &sreq, PROTO_METHOD_STREAM, 1);
	msgpack_pack_uint32(&sreq.pk, CLIENT_RECV_WINDOW);
	if ((rc = request_send(c, &req, &resp, err)) != 0)
		return rc;
	src = request_send(c, &sreq, &sresp, &serr);
	rc = request_wait(c, &req, &resp, err);
	if (src == 0)
		src = request_wait(c, &sreq, &sresp, &serr);
	if (rc != 0) {
		if (src == 0)
			response_free(&sresp);
		return rc;
	}
	msgpack_unpacked_init(&unpacked);
	if (msgpack_unpack_next(&unpacked, (const char *)resp.result.p,
	    resp.result.len, NULL) != MSGPACK_UNPACK_SUCCESS ||
	    unpacked.data.type != MSGPACK_OBJECT_MAP) {
		msgpack_unpacked_destroy(&unpacked);
		response_free(&resp);
		if (src == 0)
			response_free(&sresp);
		return set_error(err, TB_EPROTO, "hello: expected a map");
	}
	result = &unpacked.data;
	for (i = 0; i < result->via.map.size; i++) {
		kv = &result->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			continue;
		if (key_is(&kv->key, "session"))
			c->session = kv->val.via.u64;
		else if (key_is(&kv->key, "busy_poll_us"))
			c->busy_poll_us = (uint32_t)(kv->val.via.u64 <
			    CLIENT_BUSY_POLL_US_MAX ? kv->val.via.u64 :
			    CLIENT_BUSY_POLL_US_MAX);
	}
	msgpack_unpacked_destroy(&unpacked);
	response_free(&resp);

	if (src != 0) {
		if (err != NULL)
			*err = serr;
		return src;
	}
	rc = result_map_uint(&sresp, sreq.name, "send_window",
	    &c->send_window, err);
	if (rc == 0 && (c->send_window < TB_DATA_MAX ||
	    c->send_window > PROTO_SEND_WINDOW_MAX))
		rc = set_error(err, TB_EPROTO, "stream: a send window of %zu "
		    "bytes", c->send_window);
	if (rc == 0)
		c->version = version;
	return rc;
}

/*
 * A broker older than the library still streams: hello again with each
 * older version down to the first that streams.
 */
static int
hello(tb_client *c, struct tb_error *err)
{
	uint32_t	v = PROTO_VERSION;
	int		rc;

	while ((rc = hello_as(c, v, err)) == TB_EVERSION &&
	    v > PROTO_VERSION_STREAM)
		v--;
	return rc;
}

int
tb_client_open_fd(tb_client **out, int fd, struct tb_error *err)
{
	pthread_condattr_t	 attr;
	tb_client		*c;
	int			 type = 0, rc;
	socklen_t		 len = sizeof(type);

	*out = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		close(fd);
		if (type == SOCK_SEQPACKET)
			return set_error(err, TB_EBROKER, "descriptor %d is a "
			    "session source, not a session: tb_client_open "
			    "asks it for one", fd);
		return set_error(err, TB_EBROKER, "descriptor %d is not a "
		    "stream socket", fd);
	}
	/*
	 * The session is this process's: a command it runs opens its own.
	 * Its calls wait on the socket, which may come non-blocking (from
	 * the session source).
	 */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = malloc(CLIENT_READ_BUFFER)) == NULL) {
		free(c);
		close(fd);
		return set_error(err, TB_ENOMEM, "out of memory");
	}
	c->fd = fd;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	c->send_window = LIMIT_SEND_WINDOW;
	/* Time-outs are deadlines on the monotonic clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	if ((rc = hello(c, err)) != 0) {
		tb_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
tb_client_open_path(tb_client **out, const char *path, struct tb_error *err)
{
	struct sockaddr_un	sun;
	int			fd;

	*out = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return set_error(err, TB_EINVAL, "socket path too long: %s",
		    path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return set_error(err, TB_EBROKER, "socket: %s",
		    strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int error = errno;
		close(fd);
		return set_error(err, TB_EBROKER, "cannot reach the broker at "
		    "%s: %s", path, strerror(error));
	}
	return tb_client_open_fd(out, fd, err);
}

/*
 * The descriptor named by TCPBROKER_FD: a session source (under
 * tcpbroker run), asked for a session of this process's own and kept
 * open for the processes it starts; or a session handed over, which
 * serves this process alone.
 */
static int
open_inherited(tb_client **out, int fd, struct tb_error *err)
{
	socklen_t	len = sizeof(int);
	int		type, session, rc;

	*out = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return set_error(err, TB_EBROKER, "TCPBROKER_FD=%d: %s; a "
		    "session is not inherited: a child needs the session "
		    "source of tcpbroker run, or TCPBROKER_SOCKET", fd,
		    errno == EBADF ? "no such descriptor" : "not a socket");
	if (type == SOCK_SEQPACKET) {
		if ((rc = tb__source_session(fd, &session, err)) != 0)
			return rc;
		return tb_client_open_fd(out, session, err);
	}
	if (type != SOCK_STREAM)
		return set_error(err, TB_EBROKER, "TCPBROKER_FD=%d is neither "
		    "a session source nor a session", fd);
	return tb_client_open_fd(out, fd, err);
}

int
tb_client_open(tb_client **out, struct tb_error *err)
{
	const char	*env;
	char		*end;
	long		 fd;

	if ((env = getenv("TCPBROKER_FD")) != NULL && *env != '\0') {
		errno = 0;
		fd = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || fd < 0 || fd > 65535) {
			*out = NULL;
			return set_error(err, TB_EBROKER, "TCPBROKER_FD=%s is "
			    "not a descriptor number", env);
		}
		return open_inherited(out, (int)fd, err);
	}
	if ((env = getenv("TCPBROKER_SOCKET")) != NULL && *env != '\0')
		return tb_client_open_path(out, env, err);
	return tb_client_open_path(out, TB_DEFAULT_SOCKET, err);
}

/*
 * How long a close waits for what was written behind: the connection's
 * timeout, or LIMIT_CLOSE_LINGER_MS without one (as SO_LINGER bounds
 * close(2)), so a peer that never reads cannot hold it forever.
 */
static uint64_t
close_deadline(const struct stream *e)
{
	return deadline_in(e->timeout_ms != 0 ? e->timeout_ms :
	    LIMIT_CLOSE_LINGER_MS);
}

/*
 * Waits until every byte written behind on the session is out of the
 * broker, as tb_close does for one connection: a process that closes
 * its session right after a write loses nothing to a slow peer.
 */
static void
client_flush(tb_client *c)
{
	struct stream	*e;
	uint64_t	 deadline;
	unsigned	 i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < STREAM_SLOTS; i++) {
		e = &c->streams[i];
		if (!e->open || e->listener)
			continue;
		deadline = close_deadline(e);
		stream_ask_ack(c, e);
		while (e->open && e->wout > 0 && e->error == 0 &&
		    c->broken == 0 &&
		    (deadline == 0 || now_ms() < deadline))
			client_wait(c, deadline, WAIT_UNINTERRUPTED);
	}
	pthread_mutex_unlock(&c->lock);
}

void
tb_client_close(tb_client *c)
{
	unsigned	i;

	if (c == NULL)
		return;
	client_flush(c);
	close(c->fd);
	for (i = 0; i < STREAM_SLOTS; i++)
		stream_drop(&c->streams[i]);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->in);
	free(c);
}

/* The plugin's functions. */

static void
call_handle(tb_client *c, enum proto_method method, tb_handle h,
    struct request *req)
{
	request_begin(c, req, method, (uint32_t)strlen(
	    proto_methods[method].params));
	msgpack_pack_uint32(&req->pk, h);
}

/* Makes the stream of a handle the broker returned; with the lock. */
static int
adopt(tb_client *c, tb_handle h, bool listener, const char *name,
    struct tb_error *err)
{
	struct stream	*e;
	bool		 bad;

	pthread_mutex_lock(&c->lock);
	e = stream_claim(c, h, &bad);
	if (e != NULL)
		e->listener = listener;
	else
		client_break_locked(c, TB_EPROTO);
	pthread_mutex_unlock(&c->lock);
	return e != NULL ? 0 : set_error(err, TB_EPROTO, "%s: handle %u is "
	    "in use", name, h);
}

static int
do_connect(tb_client *c, const char *host, uint16_t port, uint32_t ms,
    bool timed, tb_handle *out, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	h = 0;
	size_t		len = host != NULL ? strlen(host) : 0;
	int		rc;

	if (len == 0 || len > PROTO_STRING_MAX)
		return set_error(err, TB_EINVAL, "connect: the host must be 1 "
		    "to %d bytes", PROTO_STRING_MAX);
	request_begin(c, &req, timed ? PROTO_METHOD_CONNECT_TIMEOUT :
	    PROTO_METHOD_CONNECT, timed ? 3 : 2);
	msgpack_pack_str_with_body(&req.pk, host, len);
	msgpack_pack_uint16(&req.pk, port);
	if (timed)
		msgpack_pack_uint32(&req.pk, ms);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) != 0 ||
	    (rc = adopt(c, (tb_handle)h, false, req.name, err)) != 0)
		return rc;
	*out = (tb_handle)h;
	return 0;
}

int
tb_connect(tb_client *c, const char *host, uint16_t port, tb_handle *out,
    struct tb_error *err)
{
	return do_connect(c, host, port, 0, false, out, err);
}

int
tb_connect_timeout(tb_client *c, const char *host, uint16_t port,
    uint32_t ms, tb_handle *out, struct tb_error *err)
{
	return do_connect(c, host, port, ms, true, out, err);
}

/* Sends [2, "send", [h, data]]. */
int
send_behind(tb_client *c, tb_handle h, const uint8_t *data, size_t len)
{
	uint8_t			head[64];
	struct proto_buf	buf = { head, 0, sizeof(head), sizeof(head),
				    false };
	msgpack_packer		pk;

	proto_packer_init(&pk, &buf);
	proto_pack_note(&pk, proto_client_notes[PROTO_CNOTE_SEND].name, 2);
	msgpack_pack_uint32(&pk, h);
	msgpack_pack_bin(&pk, len);
	return send_message(c, buf.data, buf.len, data, len);
}

/*
 * Writes behind: each piece goes out as soon as the send window has
 * room for it, and the call returns once all are sent, as write(2)
 * returns once the kernel has the data.  An error the broker met since
 * is returned here; a time-out waiting for room gives a short count
 * (write and write_bytes) or ETIMEDOUT (write_all).
 */
static int
write_behind(tb_client *c, tb_handle h, const char *name, bool all,
    const void *data, size_t len, size_t *written, struct tb_error *err)
{
	const uint8_t	*p = data, *out;
	struct stream	*e;
	uint64_t	 deadline;
	size_t		 done = 0, chunk, room, outlen;
	int		 rc = 0;
	bool		 tls = false;
	uint8_t		 sealed[CLIENT_TLS_SEALED_MAX];

	if (written != NULL)
		*written = 0;
	if (len > 0 && data == NULL)
		return set_error(err, TB_EINVAL, "%s: no data", name);
	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, h)) == NULL || e->listener) {
		pthread_mutex_unlock(&c->lock);
		return set_error(err, TB_EBADHANDLE, "%s: %u is not an open "
		    "connection of this session", name, h);
	}
	deadline = deadline_in(e->timeout_ms);
	if (e->tls != NULL) {
		/* One writer at a time: TLS records go out in order. */
		if ((rc = tls_write_begin(c, h, name, deadline,
		    WAIT_INTERRUPTIBLE, err)) != 0) {
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
		e = stream_of(c, h);
		tls = true;
	}
	do {
		if (e->error != 0) {
			e->error_reported = true;
			if (done == 0)
				rc = set_error(err, e->error, "%s: %s (the broker "
				    "met it on bytes written before); none of "
				    "the %zu bytes of this call were sent", name,
				    proto_err_text(e->error), len);
			else
				rc = set_error(err, e->error, "%s: %s after %zu "
				    "of the %zu bytes of this call were sent",
				    name, proto_err_text(e->error), done, len);
			break;
		}
		if (e->write_shut) {
			rc = set_error(err, TB_EPIPE, "%s: the write side was "
			    "shut down", name);
			break;
		}
		chunk = len - done > TB_DATA_MAX ? TB_DATA_MAX : len - done;
		room = e->send_window - e->wout;
		if (e->tls != NULL)
			tls_fit(e->tls, &chunk, &room);
		if (room < chunk && room < e->send_window / 4) {
			if (c->broken != 0) {
				rc = set_error(err, c->broken, "%s: the broker "
				    "session failed: %s", name,
				    proto_err_text(c->broken));
				break;
			}
			if (deadline != 0 && now_ms() >= deadline) {
				rc = set_error(err, TB_ETIMEDOUT, "%s: timed out "
				    "after %zu of %zu bytes", name, done, len);
				break;
			}
			if (client_wait(c, deadline, WAIT_INTERRUPTIBLE)) {
				rc = set_error(err, TB_EINTR, "%s: %s, after %zu "
				    "of %zu bytes", name, INTERRUPTED_TEXT, done,
				    len);
				break;
			}
			if ((e = stream_of(c, h)) == NULL) {
				rc = set_error(err, TB_ECLOSED, "%s: the "
				    "connection was closed", name);
				break;
			}
			continue;
		}
		if (chunk > room)
			chunk = room;
		out = p + done;
		outlen = chunk;
		if (e->tls != NULL && (rc = tls_seal(e, name, &out, &outlen,
		    sealed, err)) != 0)
			break;
		e->wout += outlen;
		pthread_mutex_unlock(&c->lock);
		if (send_behind(c, h, out, outlen) == 0)
			done += chunk;
		pthread_mutex_lock(&c->lock);
		if ((e = stream_of(c, h)) == NULL && done < len) {
			rc = set_error(err, TB_ECLOSED, "%s: the connection was "
			    "closed", name);
			break;
		}
	} while (done < len);
	if (tls)
		tls_write_end(c, h);
	pthread_mutex_unlock(&c->lock);
	/* A short write is no error, as write(2) has, but for write_all. */
	if (rc != 0 && done > 0 && !all &&
	    (rc == TB_ETIMEDOUT || rc == TB_EINTR))
		rc = 0;
	if (written != NULL)
		*written = done;
	return rc != 0 ? rc : set_error(err, 0, "ok");
}

int
tb_write(tb_client *c, tb_handle conn, const void *data, size_t len,
    size_t *written, struct tb_error *err)
{
	return write_behind(c, conn, "write", false, data, len, written, err);
}

int
tb_write_bytes(tb_client *c, tb_handle conn, const void *data, size_t len,
    size_t *written, struct tb_error *err)
{
	return write_behind(c, conn, "write_bytes", false, data, len, written,
	    err);
}

int
tb_write_all(tb_client *c, tb_handle conn, const void *data, size_t len,
    struct tb_error *err)
{
	return write_behind(c, conn, "write_all", true, data, len, NULL, err);
}

/* Reading, from the stream's buffer. */

enum read_op {
	READ_SOME,
	READ_PEEK,
	READ_EXACT,
	READ_LINE,
	READ_UNTIL
};

struct read_want {
	enum read_op	 op;
	const char	*name;
	uint8_t		 delim;
	size_t		 count;		/* max, exact n, or line max */
	uint8_t		*buf;
	size_t		*len;
};

/* The stream has ended: by an error, or at its end. */
static int
read_ended(struct stream *e, const struct read_want *w, struct tb_error *err)
{
	if (e->error != 0 && !e->read_shut) {
		e->error_reported = true;
		return set_error(err, e->error, "%s: %s", w->name,
		    proto_err_text(e->error));
	}
	return set_error(err, TB_EOF, "%s: end of stream", w->name);
}

static int
read_done(struct stream *e, const struct read_want *w, size_t n,
    size_t consume, struct tb_error *err)
{
	if (n > 0)
		memcpy(w->buf, e->buf + e->off, n);
	*w->len = n;
	if (consume > 0)
		stream_consume(e, consume);
	return set_error(err, 0, "ok");
}

/*
 * Serves a read from what the stream holds, as the broker used to:
 * returns 1 with *rc set when it is answered, 0 when it needs more.
 */
static int
read_serve(struct stream *e, const struct read_want *w, int *rc,
    struct tb_error *err)
{
	bool		 ended = e->eof || e->read_shut || e->error != 0;
	/* No buffer until data came: NULL plus 0 is undefined. */
	const uint8_t	*p = e->buf != NULL ? e->buf + e->off : NULL, *nl;
	size_t		 n, limit, end;

	switch (w->op) {
	case READ_SOME:
	case READ_PEEK:
		if (e->len == 0 && w->count > 0) {
			if (!ended)
				return 0;
			if (e->error != 0 && !e->read_shut) {
				*rc = read_ended(e, w, err);
				return 1;
			}
		}
		n = e->len < w->count ? e->len : w->count;
		*rc = read_done(e, w, n, w->op == READ_SOME ? n : 0, err);
		return 1;
	case READ_EXACT:
		if (e->len >= w->count) {
			*rc = read_done(e, w, w->count, w->count, err);
			return 1;
		}
		if (!ended)
			return 0;
		if (e->error == 0 || e->read_shut)
			*rc = set_error(err, TB_EOF, "read_exact: the stream "
			    "ended after %zu of %zu bytes", e->len, w->count);
		else
			*rc = read_ended(e, w, err);
		return 1;
	case READ_LINE:
	case READ_UNTIL:
		limit = e->len < w->count ? e->len : w->count;
		if (limit > 0 &&
		    (nl = memchr(p, w->delim, limit)) != NULL) {
			n = (size_t)(nl - p) + 1;
			end = n;
			if (w->op == READ_LINE) {
				end--;
				if (end > 0 && p[end - 1] == '\r')
					end--;
			}
			*rc = read_done(e, w, end, n, err);
			return 1;
		}
		if (e->len >= w->count) {
			*rc = set_error(err, TB_ELIMIT, "%s: no delimiter within "
			    "%zu bytes; the data is left unread", w->name,
			    w->count);
			return 1;
		}
		if (!ended)
			return 0;
		if (e->len > 0) {
			/* The last line, without its delimiter. */
			n = e->len;
			if (w->op == READ_LINE && p[n - 1] == '\r')
				n--;
			*rc = read_done(e, w, n, e->len, err);
			return 1;
		}
		*rc = read_ended(e, w, err);
		return 1;
	}
	return 0;
}

/* The time-out of a read, saying what did come, which stays unread. */
static int
read_timed_out(const struct stream *e, const struct read_want *w,
    struct tb_error *err)
{
	if (e->len == 0)
		return set_error(err, TB_ETIMEDOUT, "%s: no data within the "
		    "timeout; the connection is still usable", w->name);
	if (w->op == READ_EXACT)
		return set_error(err, TB_ETIMEDOUT, "%s: only %zu of %zu bytes "
		    "came within the timeout; they are left unread and the "
		    "connection is still usable", w->name, e->len, w->count);
	return set_error(err, TB_ETIMEDOUT, "%s: no %s within the timeout, "
	    "only %zu bytes without it, which are left unread; the "
	    "connection is still usable", w->name, w->op == READ_LINE ?
	    "complete line" : "delimiter", e->len);
}

/*
 * A read of the connection h: served from its buffer, waiting for the
 * broker's data only when it must, for at most the handle's time-out.
 */
static int
stream_read(tb_client *c, tb_handle h, const struct read_want *w,
    struct tb_error *err)
{
	struct stream	*e;
	uint64_t	 deadline;
	int		 rc;

	*w->len = 0;
	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, h)) == NULL || e->listener) {
		pthread_mutex_unlock(&c->lock);
		return set_error(err, TB_EBADHANDLE, "%s: %u is not an open "
		    "connection of this session", w->name, h);
	}
	deadline = deadline_in(e->timeout_ms);
	for (;;) {
		if (e->tls != NULL && (rc = tls_pump(e, w->name, err)) != 0)
			break;
		if (read_serve(e, w, &rc, err))
			break;
		if (c->broken != 0) {
			rc = set_error(err, c->broken, "%s: the broker session "
			    "failed: %s", w->name, proto_err_text(c->broken));
			break;
		}
		if (deadline != 0 && now_ms() >= deadline) {
			rc = read_timed_out(e, w, err);
			break;
		}
		if (stream_grant(c, e, true)) {
			if ((e = stream_of(c, h)) == NULL) {
				rc = set_error(err, TB_ECLOSED, "%s: the "
				    "connection was closed", w->name);
				break;
			}
			continue;	/* the lock was let go: look again */
		}
		if (client_wait(c, deadline, WAIT_INTERRUPTIBLE)) {
			rc = set_error(err, TB_EINTR, "%s: %s", w->name,
			    INTERRUPTED_TEXT);
			e = stream_of(c, h);
			break;
		}
		if ((e = stream_of(c, h)) == NULL) {
			rc = set_error(err, TB_ECLOSED, "%s: the connection "
			    "was closed", w->name);
			break;
		}
	}
	if (e != NULL)
		stream_grant(c, e, false);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
tb_read(tb_client *c, tb_handle conn, void *buf, size_t max, size_t *len,
    struct tb_error *err)
{
	struct read_want w = { READ_SOME, "read", 0, max, buf, len };

	if (max > TB_DATA_MAX)
		w.count = TB_DATA_MAX;
	return stream_read(c, conn, &w, err);
}

int
tb_peek(tb_client *c, tb_handle conn, void *buf, size_t max, size_t *len,
    struct tb_error *err)
{
	struct read_want w = { READ_PEEK, "peek", 0, max, buf, len };

	if (max > TB_DATA_MAX)
		w.count = TB_DATA_MAX;
	return stream_read(c, conn, &w, err);
}

int
tb_read_exact(tb_client *c, tb_handle conn, void *buf, size_t n,
    struct tb_error *err)
{
	struct read_want w = { READ_EXACT, "read_exact", 0, 0, NULL, NULL };
	uint8_t		*p = buf;
	size_t		 done = 0, got;
	int		 rc;

	w.len = &got;
	while (done < n) {
		w.count = n - done > TB_DATA_MAX ? TB_DATA_MAX : n - done;
		w.buf = p + done;
		rc = stream_read(c, conn, &w, err);
		if (rc != 0 && done > 0 && err != NULL) {
			size_t len = strlen(err->message);
			snprintf(err->message + len, sizeof(err->message) - len,
			    " (%zu bytes before it were read and are lost)",
			    done);
		}
		if (rc != 0)
			return rc;
		done += got;
	}
	return set_error(err, 0, "ok");
}

int
tb_read_all(tb_client *c, tb_handle conn, void *buf, size_t cap,
    size_t *len, struct tb_error *err)
{
	struct read_want w = { READ_SOME, "read_all", 0, 0, NULL, NULL };
	uint8_t		 more;
	size_t		 got;
	int		 rc;

	*len = 0;
	if (buf == NULL && cap > 0)
		return set_error(err, TB_EINVAL, "read_all: no buffer");
	w.len = &got;
	for (;;) {
		w.count = cap - *len > TB_DATA_MAX ? TB_DATA_MAX : cap - *len;
		w.buf = (uint8_t *)buf + *len;
		if (w.count == 0) {
			/* Full: the end must come next. */
			w.op = READ_PEEK;
			w.count = 1;
			w.buf = &more;
		}
		if ((rc = stream_read(c, conn, &w, err)) != 0) {
			if (*len > 0 && err != NULL) {
				size_t n = strlen(err->message);
				snprintf(err->message + n, sizeof(err->message) -
				    n, " (after %zu bytes, which are in the "
				    "buffer)", *len);
			}
			return rc;
		}
		if (got == 0)
			return set_error(err, 0, "ok");
		if (w.op == READ_PEEK)
			return set_error(err, TB_ELIMIT, "read_all: the stream "
			    "goes on past %zu bytes; the rest is unread", cap);
		*len += got;
	}
}

int
tb_read_line(tb_client *c, tb_handle conn, char *buf, size_t cap,
    size_t *len, struct tb_error *err)
{
	struct read_want w = { READ_LINE, "read_line", '\n', 0,
			     (uint8_t *)buf, len };
	int		 rc;

	*len = 0;
	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "read_line: no buffer");
	/* The line with its "\n" fits in count, so the line and a NUL fit. */
	w.count = cap > TB_LINE_MAX ? TB_LINE_MAX : cap;
	rc = stream_read(c, conn, &w, err);
	buf[rc == 0 ? *len : 0] = '\0';
	return rc;
}

int
tb_read_until(tb_client *c, tb_handle conn, uint8_t delim, void *buf,
    size_t cap, size_t *len, struct tb_error *err)
{
	struct read_want w = { READ_UNTIL, "read_until", delim, 0, buf, len };

	*len = 0;
	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "read_until: no buffer");
	w.count = cap > TB_LINE_MAX ? TB_LINE_MAX : cap;
	return stream_read(c, conn, &w, err);
}

static int
simple_call(tb_client *c, struct request *req, struct tb_error *err)
{
	struct response	resp;
	int		rc;

	if ((rc = request_call(c, req, &resp, err)) != 0)
		return rc;
	return result_nil(&resp, req->name, err);
}

int
tb_addr_split(const char *addr, char *host, size_t cap, uint16_t *port,
    struct tb_error *err)
{
	const char	*start, *end, *colon;
	char		*stop;
	unsigned long	 v;
	size_t		 n;

	if (addr == NULL || host == NULL || cap < 1 || port == NULL)
		return set_error(err, TB_EINVAL, "addr_split: no buffer");
	host[0] = '\0';
	if ((colon = strrchr(addr, ':')) == NULL)
		goto bad;
	start = addr;
	end = colon;
	if (addr[0] == '[') {
		if (colon == addr || colon[-1] != ']')
			goto bad;
		start = addr + 1;
		end = colon - 1;
	} else if (memchr(addr, ':', (size_t)(colon - addr)) != NULL)
		goto bad;		/* IPv6 without brackets */
	n = (size_t)(end - start);
	if (n == 0 || n >= cap || colon[1] < '0' || colon[1] > '9')
		goto bad;
	errno = 0;
	v = strtoul(colon + 1, &stop, 10);
	if (errno != 0 || *stop != '\0' || v > 65535)
		goto bad;
	memcpy(host, start, n);
	host[n] = '\0';
	*port = (uint16_t)v;
	return set_error(err, 0, "ok");
 bad:
	return set_error(err, TB_EINVAL, "addr_split: \"%.64s\" is not "
	    "\"ip:port\" or \"[v6]:port\"", addr);
}

int
tb_set_timeout_ms(tb_client *c, tb_handle h, uint32_t ms,
    struct tb_error *err)
{
	struct request	 req;
	struct stream	*e;
	int		 rc;

	call_handle(c, PROTO_METHOD_SET_TIMEOUT_MS, h, &req);
	msgpack_pack_uint32(&req.pk, ms);
	if ((rc = simple_call(c, &req, err)) != 0)
		return rc;
	/* Reads wait here, so their time-out is kept here too. */
	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, h)) != NULL)
		e->timeout_ms = ms;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int
tb_set_nodelay(tb_client *c, tb_handle conn, bool on, struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_SET_NODELAY, conn, &req);
	on ? msgpack_pack_true(&req.pk) : msgpack_pack_false(&req.pk);
	return simple_call(c, &req, err);
}

int
tb_set_keepalive(tb_client *c, tb_handle conn, bool on, struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_SET_KEEPALIVE, conn, &req);
	on ? msgpack_pack_true(&req.pk) : msgpack_pack_false(&req.pk);
	return simple_call(c, &req, err);
}

int
tb_shutdown(tb_client *c, tb_handle conn, tb_shutdown_how how,
    struct tb_error *err)
{
	static const char *const names[] = {
		[TB_SHUTDOWN_READ] = "read",
		[TB_SHUTDOWN_WRITE] = "write",
		[TB_SHUTDOWN_BOTH] = "both",
	};
	struct request	 req;
	struct stream	*e;
	int		 rc;

	if ((unsigned)how > TB_SHUTDOWN_BOTH)
		return set_error(err, TB_EINVAL, "shutdown: bad mode");
	pthread_mutex_lock(&c->lock);
	if (how != TB_SHUTDOWN_READ && (e = stream_of(c, conn)) != NULL &&
	    e->tls != NULL)
		tls_close_notify(c, conn);
	pthread_mutex_unlock(&c->lock);
	call_handle(c, PROTO_METHOD_SHUTDOWN, conn, &req);
	msgpack_pack_str_with_body(&req.pk, names[how], strlen(names[how]));
	if ((rc = simple_call(c, &req, err)) != 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, conn)) != NULL) {
		if (how != TB_SHUTDOWN_WRITE) {
			/* Unread data is dropped; reads now see the end. */
			e->read_shut = true;
			e->off = e->len = 0;
		}
		if (how != TB_SHUTDOWN_READ)
			e->write_shut = true;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int
tb_close(tb_client *c, tb_handle h, struct tb_error *err)
{
	struct request	 req;
	struct stream	*e;
	uint64_t	 deadline;
	size_t		 unsent = 0;
	int		 lost = 0, rc;
	bool		 behind = false, known = false;

	pthread_mutex_lock(&c->lock);
	if (closed_here(c, h)) {
		pthread_mutex_unlock(&c->lock);
		return set_error(err, 0, "ok");
	}
	if ((e = stream_of(c, h)) != NULL && e->tls != NULL)
		tls_close_notify(c, h);
	/* What was written behind reaches the socket first, as close(2). */
	if ((e = stream_of(c, h)) != NULL) {
		deadline = close_deadline(e);
		stream_ask_ack(c, e);
		while ((e = stream_of(c, h)) != NULL && e->wout > 0 &&
		    e->error == 0 && c->broken == 0) {
			if (deadline != 0 && now_ms() >= deadline) {
				unsent = e->wout;
				break;
			}
			client_wait(c, deadline, WAIT_UNINTERRUPTED);
		}
		/* Another thread closed it meanwhile: closing again is a no-op. */
		if (e == NULL && closed_here(c, h)) {
			pthread_mutex_unlock(&c->lock);
			return set_error(err, 0, "ok");
		}
	}
	/* Calls waiting on it fail now; what is still pushed is dropped. */
	if (e != NULL) {
		if (e->write_lost && !e->error_reported)
			lost = e->error;
		e->open = false;
		/* Its window's growth is the session's again. */
		c->recv_grown -= e->recv_window - CLIENT_RECV_WINDOW;
		e->recv_window = CLIENT_RECV_WINDOW;
		/* A thread reading the session wakes by the close's answer. */
		behind = !e->listener && !c->reading &&
		    c->version >= PROTO_VERSION_CLOSE_NOTE;
		known = true;
		stream_drop(e);
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	/*
	 * A connection closes without a round trip, as close(2) does; a
	 * listener's close is answered once its waiting accepts have failed.
	 */
	if (behind)
		rc = send_close(c, h, err);
	else {
		call_handle(c, PROTO_METHOD_CLOSE, h, &req);
		rc = simple_call(c, &req, err);
		/* One the broker closed itself (revoked) is closed. */
		if (rc == TB_EBADHANDLE && known)
			rc = set_error(err, 0, "ok");
	}
	if (rc != 0)
		return rc;
	if (lost != 0)
		return set_error(err, lost, "close: %s: data written before "
		    "was not all sent; the connection is closed",
		    proto_err_text(lost));
	if (unsent != 0)
		return set_error(err, TB_ETIMEDOUT, "close: %zu bytes written "
		    "before were not sent within the timeout; the connection "
		    "is closed", unsent);
	return 0;
}

int
tb_listen(tb_client *c, const char *addr, tb_handle *out,
    struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	h = 0;
	size_t		len = addr != NULL ? strlen(addr) : 0;
	int		rc;

	if (len == 0 || len > PROTO_STRING_MAX)
		return set_error(err, TB_EINVAL, "listen: the address must be "
		    "1 to %d bytes", PROTO_STRING_MAX);
	request_begin(c, &req, PROTO_METHOD_LISTEN, 1);
	msgpack_pack_str_with_body(&req.pk, addr, len);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) != 0 ||
	    (rc = adopt(c, (tb_handle)h, true, req.name, err)) != 0)
		return rc;
	*out = (tb_handle)h;
	return 0;
}

int
tb_accept(tb_client *c, tb_handle listener, tb_handle *out,
    struct tb_error *err)
{
	struct request	 req;
	struct response	 resp;
	struct stream	*e;
	uint64_t	 h = 0, deadline;
	int		 rc;

	pthread_mutex_lock(&c->lock);
	/*
	 * Interruptible: wait here until the broker says a connection is
	 * there, so that the call below does not wait (but when a reloaded
	 * policy refuses that peer meanwhile).
	 */
	if (c->interrupt != NULL && (e = stream_of(c, listener)) != NULL &&
	    e->listener) {
		deadline = deadline_in(e->timeout_ms);
		while (!e->acceptable && c->broken == 0) {
			if (deadline != 0 && now_ms() >= deadline) {
				pthread_mutex_unlock(&c->lock);
				return set_error(err, TB_ETIMEDOUT, "accept: no "
				    "connection within the timeout; the "
				    "listener is still usable");
			}
			if (client_wait(c, deadline, WAIT_INTERRUPTIBLE)) {
				pthread_mutex_unlock(&c->lock);
				return set_error(err, TB_EINTR, "accept: %s",
				    INTERRUPTED_TEXT);
			}
			if ((e = stream_of(c, listener)) == NULL)
				break;
		}
	}
	/* The broker says again when one more connection waits. */
	if ((e = stream_of(c, listener)) != NULL)
		e->acceptable = false;
	pthread_mutex_unlock(&c->lock);
	call_handle(c, PROTO_METHOD_ACCEPT, listener, &req);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) != 0 ||
	    (rc = adopt(c, (tb_handle)h, false, req.name, err)) != 0)
		return rc;
	*out = (tb_handle)h;
	return 0;
}

static int
addr_call(tb_client *c, enum proto_method method, tb_handle h, char *buf,
    size_t cap, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	int		rc;

	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "no buffer");
	buf[0] = '\0';
	call_handle(c, method, h, &req);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	return result_str(&resp, req.name, buf, cap, err);
}

int
tb_local_addr(tb_client *c, tb_handle h, char *buf, size_t cap,
    struct tb_error *err)
{
	return addr_call(c, PROTO_METHOD_LOCAL_ADDR, h, buf, cap, err);
}

int
tb_peer_addr(tb_client *c, tb_handle conn, char *buf, size_t cap,
    struct tb_error *err)
{
	return addr_call(c, PROTO_METHOD_PEER_ADDR, conn, buf, cap, err);
}

/* Waiting on many. */

/* Whether a read (or accept) on e would not wait; with the lock. */
static bool
stream_ready(const struct stream *e)
{
	if (e->listener)
		return e->acceptable;
	return e->len > 0 || e->eof || e->read_shut || e->error != 0;
}

int
tb_select(tb_client *c, const tb_handle *handles, size_t n, bool *ready,
    int timeout_ms, size_t *nready, struct tb_error *err)
{
	struct stream	*e;
	uint64_t	 deadline = 0;
	size_t		 i, count;
	int		 rc = 0;

	*nready = 0;
	if (n > 0 && (handles == NULL || ready == NULL))
		return set_error(err, TB_EINVAL, "select: no handles");
	if (timeout_ms > 0)
		deadline = now_ms() + (uint64_t)timeout_ms;
	pthread_mutex_lock(&c->lock);
	/* What has come already counts: look without waiting first. */
	if (!c->reading && c->broken == 0)
		client_wait(c, now_ms(), WAIT_UNINTERRUPTED);
	for (;;) {
		for (i = 0, count = 0; i < n; i++) {
			if ((e = stream_of(c, handles[i])) == NULL) {
				rc = set_error(err, TB_EBADHANDLE, "select: %u "
				    "is not an open handle of this session",
				    handles[i]);
				goto out;
			}
			if (e->tls != NULL)
				tls_pump(e, NULL, NULL);
			ready[i] = stream_ready(e);
			count += ready[i];
		}
		if (count > 0 || timeout_ms == 0 ||
		    (deadline != 0 && now_ms() >= deadline))
			break;
		if (c->broken != 0) {
			rc = set_error(err, c->broken, "select: the broker "
			    "session failed: %s", proto_err_text(c->broken));
			goto out;
		}
		if (client_wait(c, deadline, WAIT_INTERRUPTIBLE)) {
			rc = set_error(err, TB_EINTR, "select: %s",
			    INTERRUPTED_TEXT);
			goto out;
		}
	}
	*nready = count;
	set_error(err, 0, "ok");
 out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}
