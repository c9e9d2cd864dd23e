/*
 * TCP connections once open: the stream of bytes each way, the read and
 * write calls, options, shutdown and close.  connect.c opens them.
 *
 * A streaming session's connections are read as data comes, within the
 * receive window the client granted, straight into the session's output
 * as data notifications: the broker keeps no receive buffer for them.
 * Without credit, or with the session's output full, the connection is
 * not read, and TCP flow control slows the peer.
 *
 * Otherwise received bytes are read only while a read call waits, into
 * a buffer of at most LIMIT_CONN_BUFFER bytes charged to the session,
 * so a client that stops reading stops the peer in the same way.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "connection.h"

/* Smallest receive buffer a connection allocates: bytes. */
#define CONN_BUFFER_MIN	4096

/*
 * A client waiting for window always gets an ack: see behind_ack().  A
 * window that grew (behind_grow()) holds this the more.
 */
_Static_assert(LIMIT_SEND_WINDOW - PROTO_DATA_MAX >= LIMIT_SEND_WINDOW / 4,
    "the send window holds a payload and a quarter window");
_Static_assert(PROTO_SEND_WINDOW_MAX >= LIMIT_SEND_WINDOW &&
    PROTO_SEND_WINDOW_MAX <= UINT32_MAX, "send window sizes");
/* A read call never waits for more than one full buffer. */
_Static_assert(PROTO_DATA_MAX <= LIMIT_CONN_BUFFER &&
    PROTO_LINE_MAX <= LIMIT_CONN_BUFFER, "reads must fit the buffer");

static void	pump_reads(struct conn *conn);
static void	stream_pump(struct conn *conn);
static void	pump_writes(struct conn *conn);
static void	throttle_in_expire(struct timer *timer);
static void	throttle_out_expire(struct timer *timer);

int
errno_code(int error)
{
	switch (error) {
	case ECONNREFUSED:	return TB_ECONNREFUSED;
	case ECONNRESET:	return TB_ECONNRESET;
	case ECONNABORTED:	return TB_ECONNRESET;
	case EPIPE:		return TB_EPIPE;
	case EHOSTUNREACH:	return TB_EHOSTUNREACH;
	case EHOSTDOWN:		return TB_EHOSTUNREACH;
	case ENETUNREACH:	return TB_ENETUNREACH;
	case ENETDOWN:		return TB_ENETUNREACH;
	case ETIMEDOUT:		return TB_ETIMEDOUT;
	case EADDRINUSE:	return TB_EADDRINUSE;
	case EADDRNOTAVAIL:	return TB_EADDRNOTAVAIL;
	case ENOMEM:		return TB_ENOMEM;
	case ENOBUFS:		return TB_ENOMEM;
	case EMFILE:		return TB_ELIMIT;
	case ENFILE:		return TB_ELIMIT;
	}
	return TB_EIO;
}

int
sockaddr_text(int fd, bool peer, char *buf, size_t cap)
{
	struct sockaddr_storage	 ss;
	struct host_addr	 addr = { 0 };
	socklen_t		 len = sizeof(ss);
	uint16_t		 port;

	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
	    getsockname(fd, (struct sockaddr *)&ss, &len)) == -1)
		return errno == ENOTCONN ? TB_EPIPE : errno_code(errno);
	if (host_addr_from_sockaddr(&ss, &addr, &port) != 0)
		return TB_EIO;
	host_format(&addr, port, buf, cap);
	return 0;
}

struct conn *
conn__new(struct session *s)
{
	struct conn	*conn;

	if ((conn = calloc(1, sizeof(*conn))) == NULL)
		return NULL;
	if ((conn->handle = session_handle_new(s, conn, NULL)) == 0) {
		free(conn);
		return NULL;
	}
	conn->session = s;
	conn->io.fd = -1;
	conn->io.owner = conn;
	TAILQ_INIT(&conn->readers);
	TAILQ_INIT(&conn->writers);
	return conn;
}

static bool	stream_tell(struct conn *conn);

bool
conn_revoke(struct conn *conn)
{
	const struct policy_tenant	*tn = session_tenant(conn->session);
	struct sockaddr_storage		 ss;
	struct policy_request		 req = { conn->accepted ? POLICY_ACCEPT :
					    POLICY_CONNECT, NULL, NULL, 0 };
	struct policy_decision		 d;
	struct host_addr		 addr;
	socklen_t			 len = sizeof(ss);

	/* One still dialing is decided as it goes; one that failed, is. */
	if (conn->state != CONN_OPEN || getpeername(conn->io.fd,
	    (struct sockaddr *)&ss, &len) == -1 ||
	    host_addr_from_sockaddr(&ss, &addr, &req.port) != 0)
		return false;
	host_addr_normalize(&addr);
	req.addr = &addr;
	req.name = conn->accepted ? NULL : conn->name;
	policy_decide(broker.policy, tn, &broker.ctx, &req, &d);
	if (d.verdict != POLICY_DENY)
		return false;
	audit_revoke(conn->session, tn, req.action, conn->name, &addr,
	    req.port, conn->handle, &d);
	/* A streaming client hears it now, not at its next call. */
	if (conn->streaming) {
		conn->error = TB_EPOLICY;
		stream_tell(conn);
	}
	conn_destroy(conn, true);
	return true;
}

void
conn_report(struct conn *conn, struct report_handle *r)
{
	r->handle = conn->handle;
	r->state = conn->state != CONN_OPEN ? "connecting" :
	    conn->error != 0 ? "failed" : conn->eof ? "peer closed" : "open";
	if (conn->state == CONN_OPEN) {
		if (sockaddr_text(conn->io.fd, false, r->local,
		    sizeof(r->local)) != 0)
			snprintf(r->local, sizeof(r->local), "?");
		if (sockaddr_text(conn->io.fd, true, r->peer,
		    sizeof(r->peer)) != 0)
			snprintf(r->peer, sizeof(r->peer), "?");
	}
	r->bytes_in = conn->bytes_in;
	r->bytes_out = conn->bytes_out;
	r->age_ms = conn->state == CONN_OPEN ? loop_now() - conn->opened_ms : 0;
}

uint32_t
conn_handle(const struct conn *conn)
{
	return conn->handle;
}

static void
buffer_release(struct conn *conn)
{
	if (conn->bufcap > 0)
		session_charge(conn->session, -(ssize_t)conn->bufcap);
	free(conn->buf);
	conn->buf = NULL;
	conn->buflen = conn->bufcap = 0;
}

/*
 * Frees a connection.  With reply, its waiting calls fail with ECLOSED;
 * without, the session is going away and nobody is left to answer.
 */
void
conn_destroy(struct conn *conn, bool reply)
{
	char	peer[PROTO_ADDR_STRLEN];

	timer_cancel(&conn->throttle_in);
	timer_cancel(&conn->throttle_out);
	free(conn->name);
	conn->name = NULL;
	if (conn->dial != NULL)
		connect__abandon(conn, reply);
	if (conn->looking_up)
		quota_release(conn->quota, QUOTA_LOOKUP);
	if (conn->counted)
		quota_release(conn->quota, QUOTA_CONNECTION);
	if (conn->window > LIMIT_SEND_WINDOW)
		session_window_give(conn->session,
		    conn->window - LIMIT_SEND_WINDOW);
	if (reply) {
		call_queue_fail(&conn->readers, TB_ECLOSED,
		    "the connection was closed");
		call_queue_fail(&conn->writers, TB_ECLOSED,
		    "the connection was closed");
	} else {
		call_queue_drop(&conn->readers);
		call_queue_drop(&conn->writers);
	}
	buffer_release(conn);
	free(conn->wbuf);
	session_push_cancel(conn->session, &conn->push_wait);
	session_handle_free(conn->session, conn->handle);
	if (conn->state == CONN_OPEN) {
		if (sockaddr_text(conn->io.fd, true, peer, sizeof(peer)) != 0)
			snprintf(peer, sizeof(peer), "?");
		audit_close(conn->session, quota_name(conn->quota),
		    conn->handle, peer,
		    conn->bytes_in, conn->bytes_out,
		    loop_now() - conn->opened_ms);
	}
	loop_release(&conn->io);
}

struct conn *
conn_accepted(struct session *s, int fd, struct quota *q)
{
	struct conn	*conn;

	if ((conn = conn__new(s)) == NULL) {
		close(fd);
		return NULL;
	}
	conn->quota = q;
	conn->opened_ms = loop_now();
	if (loop_add(&conn->io, fd, SOCKET_EVENTS, conn__event, conn) == -1) {
		close(fd);
		conn->io.fd = -1;
		conn_destroy(conn, false);
		return NULL;
	}
	conn->state = CONN_OPEN;
	conn->counted = true;		/* the listener took it */
	conn->accepted = true;
	session_handle_publish(s, conn->handle);
	return conn;
}

void
conn_set_timeout(struct conn *conn, uint32_t ms)
{
	conn->timeout_ms = ms;
}

int
conn_local_addr(struct conn *conn, char *buf, size_t cap)
{
	return sockaddr_text(conn->io.fd, false, buf, cap);
}

/* Streaming. */

/*
 * A data notification as the broker packs it, so that bytes are read
 * straight behind it: [2, "data", [handle as uint32, bin32 of n]].
 */
#define DATA_HEAD	18

static void
pack_data_head(uint8_t *p, uint32_t handle, uint32_t n)
{
	static const uint8_t	fixed[] = { 0x93, PROTO_NOTIFY, 0xa4, 'd',
				    'a', 't', 'a', 0x92, 0xce };
	unsigned		i;

	_Static_assert(sizeof(fixed) + 4 + 1 + 4 == DATA_HEAD, "data head");
	memcpy(p, fixed, sizeof(fixed));
	p += sizeof(fixed);
	for (i = 0; i < 4; i++)
		*p++ = (uint8_t)(handle >> (24 - 8 * i));
	*p++ = 0xc6;
	for (i = 0; i < 4; i++)
		*p++ = (uint8_t)(n >> (24 - 8 * i));
}

/*
 * Pushes the error of the connection once, and the end of its stream
 * once: an error that comes after the end (a write's) is told too.
 * False when there is no room yet.
 */
static bool
stream_tell(struct conn *conn)
{
	struct session	*s = conn->session;
	msgpack_packer	*pk;
	const char	*name, *text;

	if (conn->error != 0 && !conn->error_told) {
		if (session_push_room(s) < NOTE_SMALL_MAX)
			return false;
		name = proto_err_name(conn->error);
		text = proto_err_text(conn->error);
		pk = note_begin(s, PROTO_BNOTE_ERROR, 2);
		msgpack_pack_uint32(pk, conn->handle);
		msgpack_pack_array(pk, 2);
		msgpack_pack_str_with_body(pk, name, strlen(name));
		msgpack_pack_str_with_body(pk, text, strlen(text));
		note_end(s);
		conn->error_told = conn->ended = true;
	}
	if (!conn->ended && (conn->eof || conn->read_shut)) {
		if (session_push_room(s) < NOTE_SMALL_MAX)
			return false;
		pk = note_begin(s, PROTO_BNOTE_END, 1);
		msgpack_pack_uint32(pk, conn->handle);
		note_end(s);
		conn->ended = true;
	}
	return true;
}

/*
 * Reads what the peer sent, within the client's credit and the room in
 * the session's output, into data notifications.  Called for an input
 * event that reported no hang-up (edge), it stops at a short read: the
 * socket is empty then, and what comes next is an event of its own
 * (edge-triggered).  Any other caller reads on to EAGAIN or the end,
 * which an earlier event may have reported.
 */
static void
stream_fill(struct conn *conn, bool edge)
{
	struct session	*s = conn->session;
	uint64_t	 retry;
	size_t		 want, room, len;
	uint8_t		*p;
	ssize_t		 n;

	for (;;) {
		if (conn->ended || conn->eof || conn->read_shut ||
		    conn->error != 0) {
			conn_ack(conn);		/* no data comes to ride with */
			if (!stream_tell(conn))
				session_push_wait(s, &conn->push_wait);
			return;
		}
		if (conn->credit == 0 || conn->throttle_in.slot != 0)
			return;		/* note_credit() or the timer pumps */
		room = session_push_room(s);
		if (room < DATA_HEAD + NOTE_SMALL_MAX) {
			session_push_wait(s, &conn->push_wait);
			return;
		}
		want = room - DATA_HEAD;
		if (want > conn->credit)
			want = conn->credit;
		if (want > PROTO_DATA_MAX)
			want = PROTO_DATA_MAX;
		want = quota_bytes(conn->quota, QUOTA_IN, want, &retry);
		if (want == 0) {
			timer_set(&conn->throttle_in, retry,
			    throttle_in_expire);
			return;
		}
		len = DATA_HEAD + want;
		if ((p = session_push_reserve(s, DATA_HEAD + 1, &len)) ==
		    NULL) {
			session_push_wait(s, &conn->push_wait);
			return;
		}
		want = len - DATA_HEAD;
		n = recv(conn->io.fd, p + DATA_HEAD, want, 0);
		if (n > 0) {
			pack_data_head(p, conn->handle, (uint32_t)n);
			session_push_commit(s, DATA_HEAD + (size_t)n);
			conn->credit -= (uint32_t)n;
			conn->bytes_in += (uint64_t)n;
			quota_spend(conn->quota, QUOTA_IN, (size_t)n);
			/* A waiting ack rides with the data (behind_ack()). */
			if (conn->unacked > 0)
				conn_ack(conn);
			if (edge && (size_t)n < want)
				return;
		} else if (n == 0)
			conn->eof = true;
		else if (errno == EAGAIN)
			return;
		else if (errno != EINTR)
			conn->error = errno_code(errno);
	}
}

static void
stream_pump(struct conn *conn)
{
	stream_fill(conn, false);
}

static void	behind_ack(struct conn *conn);

static void
stream_resume(struct push_waiter *w)
{
	struct conn	*conn = (struct conn *)((char *)w -
	    offsetof(struct conn, push_wait));

	stream_pump(conn);
	conn_ack(conn);		/* it waited for room already */
}

void
conn_stream_start(struct conn *conn, bool readable)
{
	if ((conn->credit = session_recv_window(conn->session)) == 0)
		return;
	conn->streaming = true;
	conn->window = LIMIT_SEND_WINDOW;
	conn->push_wait.resume = stream_resume;
	if (readable)
		stream_pump(conn);
}

/*
 * The most credit a connection may hold: the window the client asked
 * for, which from version 5 it may grow (docs/protocol.md, "Growing
 * receive windows").  The broker's memory does not depend on it: a
 * session's output is bounded by LIMIT_SESSION_OUTPUT however much it
 * is granted.
 */
static uint32_t
recv_window_max(const struct session *s)
{
	return session_version(s) >= PROTO_VERSION_RECV_GROWTH ?
	    PROTO_RECV_WINDOW_GROWN_MAX : session_recv_window(s);
}

void
note_credit(struct session *s, const struct proto_arg *args)
{
	struct conn	*conn = session_note_conn(s, (uint32_t)args[0].u);

	if (conn == NULL)
		return;		/* closed meanwhile */
	if (!conn->streaming || args[1].u > recv_window_max(s) - conn->credit) {
		session_protocol_error(s, "credit past the receive window");
		return;
	}
	conn->credit += (uint32_t)args[1].u;
	if (!conn->ended)
		stream_pump(conn);
	/*
	 * A client about to wait for acks sends a credit (0 if need be):
	 * what the socket took is acked now, the rest as soon as it is.
	 */
	if (conn->wout > 0)
		conn->ack_asked = true;
	conn_ack(conn);
}

/*
 * Write-behind: the client sends data notifications of its own within
 * the connection's send window and goes on; what the socket does not
 * take at once waits in wbuf, at most the window.  Acks give the
 * window back once bytes are in the socket: every quarter window, and
 * once wbuf has drained, so a client that waits for them (to send
 * more, or to close) always gets one.  The ack of a drained connection
 * under a quarter window waits up to LIMIT_ACK_DELAY_MS for the
 * connection's next data, which it rides with (stream_fill()): a
 * request and its answer then wake the client once, not twice.
 */
static void
behind_ack(struct conn *conn)
{
	if (conn->unacked == 0 ||
	    (conn->unacked < conn->window / 4 && conn->wlen > 0))
		return;
	/*
	 * Wait only where data may come to ride with, and only for a
	 * client that can ask for the ack (a credit, version 3).
	 */
	if (conn->unacked < conn->window / 4 && conn->error == 0 &&
	    !conn->write_shut && !conn->eof && !conn->ended &&
	    !conn->read_shut && conn->credit > 0 && !conn->ack_asked &&
	    session_version(conn->session) >= PROTO_VERSION_CLOSE_NOTE) {
		session_ack_later(conn->session);
		return;
	}
	conn_ack(conn);
}

/*
 * Send windows grow (version 4), as TCP's buffers autotune: once the
 * socket has taken half a window straight from the client's sends
 * (behind_taken()) since the window last grew, the window doubles, up
 * to PROTO_SEND_WINDOW_MAX and within what is left of the session's
 * LIMIT_SESSION_WINDOW_GROWTH; the next ack carries it.  Bytes held
 * back in wbuf start the count again, and bytes sent from wbuf later do
 * not count.  "Straight" is the socket's view: a fresh TCP socket's own
 * buffer takes a good deal before a peer that does not read shows, so
 * such a peer's window may grow too; what the broker then holds stays
 * within the session's growth.  A window never shrinks; what it grew by
 * goes back to the session when the connection is destroyed.
 */
static void
behind_taken(struct conn *conn, size_t n)
{
	if (n > conn->window - conn->grow_taken)
		conn->grow_taken = conn->window;
	else
		conn->grow_taken += (uint32_t)n;
}

static void
behind_grow(struct conn *conn)
{
	struct session	*s = conn->session;
	msgpack_packer	*pk;
	size_t		 add;

	if (conn->grow_taken < conn->window / 2 || conn->wbuf != NULL ||
	    conn->error != 0 || conn->write_shut ||
	    conn->window >= PROTO_SEND_WINDOW_MAX ||
	    session_version(s) < PROTO_VERSION_WINDOW ||
	    session_push_room(s) < NOTE_SMALL_MAX)
		return;			/* the next ack looks again */
	add = conn->window;
	if (add > PROTO_SEND_WINDOW_MAX - conn->window)
		add = PROTO_SEND_WINDOW_MAX - conn->window;
	if ((add = session_window_take(s, add)) == 0)
		return;
	conn->window += (uint32_t)add;
	conn->grow_taken = 0;
	pk = note_begin(s, PROTO_BNOTE_WINDOW, 2);
	msgpack_pack_uint32(pk, conn->handle);
	msgpack_pack_uint32(pk, conn->window);
	note_end(s);
}

/* Acks what the socket took, now (or once the output has room). */
void
conn_ack(struct conn *conn)
{
	struct session	*s = conn->session;
	msgpack_packer	*pk;
	uint32_t	 acked = conn->unacked;

	if (acked == 0)
		return;
	if (session_push_room(s) < NOTE_SMALL_MAX) {
		session_push_wait(s, &conn->push_wait);
		return;
	}
	pk = note_begin(s, PROTO_BNOTE_ACK, 2);
	msgpack_pack_uint32(pk, conn->handle);
	msgpack_pack_uint32(pk, acked);
	note_end(s);
	conn->wout -= acked;
	conn->unacked = 0;
	if (conn->wout == 0)
		conn->ack_asked = false;	/* all it sent is acked */
	behind_grow(conn);
}

/* A write failed: the rest is dropped and the client told. */
static void
behind_fail(struct conn *conn, int code)
{
	if (conn->error == 0)
		conn->error = code;
	free(conn->wbuf);
	conn->wbuf = NULL;
	conn->woff = conn->wlen = 0;
	stream_pump(conn);
}

/* Writes from p; returns the bytes the socket took. */
static size_t
behind_send(struct conn *conn, const uint8_t *p, size_t len)
{
	uint64_t	retry;
	size_t		done = 0, want;
	ssize_t		n;

	while (done < len && conn->error == 0) {
		if (conn->throttle_out.slot != 0)
			break;		/* throttle_out_expire() pumps again */
		want = quota_bytes(conn->quota, QUOTA_OUT, len - done, &retry);
		if (want == 0) {
			timer_set(&conn->throttle_out, retry,
			    throttle_out_expire);
			break;
		}
		n = send(conn->io.fd, p + done, want, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			conn->bytes_out += (uint64_t)n;
			quota_spend(conn->quota, QUOTA_OUT, (size_t)n);
		} else if (n == -1 && errno == EAGAIN)
			break;
		else if (n == -1 && errno != EINTR)
			behind_fail(conn, errno_code(errno));
	}
	conn->unacked += done;
	return done;
}

static void
behind_pump(struct conn *conn)
{
	size_t	n;

	if (conn->wlen > 0) {
		n = behind_send(conn, conn->wbuf + conn->woff, conn->wlen);
		/* A failure part way dropped the buffer (behind_fail). */
		if (n <= conn->wlen) {
			conn->woff += n;
			conn->wlen -= n;
		}
		if (conn->wlen == 0 && conn->wbuf != NULL) {
			free(conn->wbuf);
			conn->wbuf = NULL;
			conn->woff = 0;
		}
	}
	if (conn->wlen == 0 && conn->shut_pending && conn->error == 0) {
		conn->shut_pending = false;
		if (shutdown(conn->io.fd, SHUT_WR) == -1 && errno != ENOTCONN)
			behind_fail(conn, errno_code(errno));
	}
	behind_ack(conn);
}

void
note_send(struct session *s, const struct proto_arg *args)
{
	struct conn	*conn = session_note_conn(s, (uint32_t)args[0].u);
	const uint8_t	*p = args[1].ptr;
	size_t		 len = args[1].len, n;

	if (conn == NULL)
		return;		/* closed meanwhile */
	if (!conn->streaming || len > conn->window - conn->wout) {
		session_protocol_error(s, "send past the send window");
		return;
	}
	conn->wout += len;
	if (conn->error != 0 || conn->write_shut) {
		conn->unacked += len;	/* dropped; the client knows why */
		behind_ack(conn);
		return;
	}
	if (conn->wlen == 0) {
		n = behind_send(conn, p, len);
		behind_taken(conn, n);
		p += n;
		len -= n;
	}
	if (len > 0 && conn->error == 0) {
		/* A window grows only while wbuf is NULL: it fits. */
		if (conn->wbuf == NULL &&
		    (conn->wbuf = malloc(conn->window)) == NULL) {
			behind_fail(conn, TB_ENOMEM);
			return;
		}
		conn->grow_taken = 0;
		if (conn->woff + conn->wlen + len > conn->window) {
			memmove(conn->wbuf, conn->wbuf + conn->woff,
			    conn->wlen);
			conn->woff = 0;
		}
		memcpy(conn->wbuf + conn->woff + conn->wlen, p, len);
		conn->wlen += len;
	}
	behind_ack(conn);
}

/* Reading. */

/*
 * Makes room for want buffered bytes: 0, TB_ELIMIT when the session is
 * over budget, or TB_ENOMEM.
 */
static int
buffer_reserve(struct conn *conn, size_t want)
{
	size_t	 cap = conn->bufcap ? conn->bufcap : CONN_BUFFER_MIN;
	uint8_t	*p;

	if (want > LIMIT_CONN_BUFFER)
		want = LIMIT_CONN_BUFFER;
	if (want <= conn->bufcap)
		return 0;
	while (cap < want)
		cap *= 2;
	if (cap > LIMIT_CONN_BUFFER)
		cap = LIMIT_CONN_BUFFER;
	if (session_charge(conn->session, (ssize_t)(cap - conn->bufcap)) != 0)
		return TB_ELIMIT;
	if ((p = realloc(conn->buf, cap)) == NULL) {
		session_charge(conn->session, -(ssize_t)(cap - conn->bufcap));
		return TB_ENOMEM;
	}
	conn->buf = p;
	conn->bufcap = cap;
	return 0;
}

static void
buffer_consume(struct conn *conn, size_t n)
{
	if (n == 0)
		return;
	memmove(conn->buf, conn->buf + n, conn->buflen - n);
	conn->buflen -= n;
}

/* Whether the data went out; if not, the call got ENOMEM instead. */
static bool
reply_data(struct call *call, const uint8_t *data, size_t len)
{
	msgpack_packer	*pk = reply_begin(call->session, call->msgid);

	msgpack_pack_bin_with_body(pk, data, len);
	return reply_data_end(call->session);
}

/* End of stream, or the error that ended it, for calls that need more. */
static void
fail_ended(struct conn *conn, struct call *call, const char *what)
{
	if (conn->error != 0 && !conn->read_shut)
		call_fail(call, conn->error, "%s: %s", what,
		    proto_err_text(conn->error));
	else
		call_fail(call, TB_EOF, "%s: end of stream", what);
}

/*
 * Completes call from the buffer if it can.  Returns true when the call
 * was answered (and freed), false when it needs more bytes.
 */
static bool
try_read(struct conn *conn, struct call *call)
{
	const char	*name = proto_methods[call->method].name;
	bool		 ended = conn->eof || conn->read_shut || conn->error;
	uint8_t		*nl;
	size_t		 n, limit, end;

	switch (call->method) {
	case PROTO_METHOD_READ:
	case PROTO_METHOD_PEEK:
		if (conn->buflen == 0 && call->count > 0) {
			if (!ended)
				return false;
			if (conn->error != 0 && !conn->read_shut) {
				fail_ended(conn, call, name);
				return true;
			}
		}
		n = conn->buflen < call->count ? conn->buflen : call->count;
		if (reply_data(call, conn->buf, n) &&
		    call->method == PROTO_METHOD_READ)
			buffer_consume(conn, n);
		call_free(call);
		return true;
	case PROTO_METHOD_READ_EXACT:
		if (conn->buflen >= call->count) {
			if (reply_data(call, conn->buf, call->count))
				buffer_consume(conn, call->count);
			call_free(call);
			return true;
		}
		if (!ended)
			return false;
		if (conn->error == 0 || conn->read_shut)
			call_fail(call, TB_EOF, "read_exact: the stream ended "
			    "after %zu of %zu bytes", conn->buflen, call->count);
		else
			fail_ended(conn, call, name);
		return true;
	case PROTO_METHOD_READ_LINE:
	case PROTO_METHOD_READ_UNTIL:
		limit = conn->buflen < call->count ? conn->buflen : call->count;
		nl = NULL;
		if (limit > call->scanned)
			nl = memchr(conn->buf + call->scanned, call->delim,
			    limit - call->scanned);
		call->scanned = limit;
		if (nl != NULL) {
			n = (size_t)(nl - conn->buf) + 1;
			end = n;
			if (call->method == PROTO_METHOD_READ_LINE) {
				end--;
				if (end > 0 && conn->buf[end - 1] == '\r')
					end--;
			}
			if (reply_data(call, conn->buf, end))
				buffer_consume(conn, n);
			call_free(call);
			return true;
		}
		if (conn->buflen >= call->count) {
			call_fail(call, TB_ELIMIT, "%s: no delimiter within %zu "
			    "bytes; the data is left unread", name,
			    call->count);
			return true;
		}
		if (!ended)
			return false;
		if (conn->buflen > 0) {
			/* The last line, without its delimiter. */
			n = conn->buflen;
			if (call->method == PROTO_METHOD_READ_LINE &&
			    conn->buf[n - 1] == '\r')
				n--;
			if (reply_data(call, conn->buf, n))
				buffer_consume(conn, conn->buflen);
			call_free(call);
			return true;
		}
		fail_ended(conn, call, name);
		return true;
	default:
		fatalx("try_read: %s is not a read", name);
	}
}

/*
 * How large the buffer should be for the call to make progress.  A line
 * grows it a step at a time as bytes come, so that a session charges
 * what it holds, not the longest line it might.
 */
static size_t
read_want(const struct conn *conn, const struct call *call)
{
	size_t	want;

	switch (call->method) {
	case PROTO_METHOD_READ:
	case PROTO_METHOD_PEEK:
		return CONN_BUFFER_MIN;
	case PROTO_METHOD_READ_LINE:
	case PROTO_METHOD_READ_UNTIL:
		want = conn->buflen + CONN_BUFFER_MIN;
		return want < call->count ? want : call->count;
	default:
		return call->count;
	}
}

static void
pump_reads(struct conn *conn)
{
	struct call	*call;
	uint64_t	 retry;
	size_t		 want;
	ssize_t		 n;
	int		 rc;

	while ((call = TAILQ_FIRST(&conn->readers)) != NULL) {
		TAILQ_REMOVE(&conn->readers, call, entry);
		if (try_read(conn, call))
			continue;
		TAILQ_INSERT_HEAD(&conn->readers, call, entry);
		if ((rc = buffer_reserve(conn, read_want(conn, call))) != 0) {
			TAILQ_REMOVE(&conn->readers, call, entry);
			if (rc == TB_ENOMEM)
				call_fail(call, rc, "%s: out of memory",
				    proto_methods[call->method].name);
			else
				call_fail(call, rc, "%s: the session has %d "
				    "bytes buffered already",
				    proto_methods[call->method].name,
				    LIMIT_SESSION_BUFFERED);
			continue;
		}
		/* The tenant's bandwidth: wait for it rather than read. */
		if (conn->throttle_in.slot != 0)
			return;		/* throttle_in_expire() pumps again */
		want = quota_bytes(conn->quota, QUOTA_IN,
		    conn->bufcap - conn->buflen, &retry);
		if (want == 0) {
			timer_set(&conn->throttle_in, retry,
			    throttle_in_expire);
			return;
		}
		n = recv(conn->io.fd, conn->buf + conn->buflen, want, 0);
		if (n > 0) {
			conn->buflen += (size_t)n;
			conn->bytes_in += (uint64_t)n;
			quota_spend(conn->quota, QUOTA_IN, (size_t)n);
		}
		else if (n == 0)
			conn->eof = true;
		else if (errno == EAGAIN)
			return;
		else if (errno != EINTR)
			conn->error = errno_code(errno);
	}
	if (conn->buflen == 0)
		buffer_release(conn);
}

static void
read_expire(struct call *call)
{
	struct conn	*conn = call->owner;

	TAILQ_REMOVE(&conn->readers, call, entry);
	call_fail(call, TB_ETIMEDOUT, "%s: no data within the timeout; the "
	    "connection is still usable", proto_methods[call->method].name);
	pump_reads(conn);
}

static void
start_read(struct request *req, size_t count, uint8_t delim)
{
	struct conn	*conn;
	struct call	*call;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	if (conn->streaming) {
		reply_error(req->session, req->msgid, TB_EPROTO, "%s: "
		    "connection %u streams; its data comes as notifications",
		    proto_methods[req->method].name, conn->handle);
		return;
	}
	if ((call = call_new(req, conn, conn->timeout_ms, read_expire)) == NULL)
		return;
	call->count = count;
	call->delim = delim;
	TAILQ_INSERT_TAIL(&conn->readers, call, entry);
	if (TAILQ_FIRST(&conn->readers) == call)
		pump_reads(conn);
}

void
method_read(struct request *req)
{
	start_read(req, req->args[1].u, 0);
}

void
method_peek(struct request *req)
{
	start_read(req, req->args[1].u, 0);
}

void
method_read_exact(struct request *req)
{
	start_read(req, req->args[1].u, 0);
}

void
method_read_line(struct request *req)
{
	if (req->args[1].u == 0) {
		reply_error(req->session, req->msgid, TB_EINVAL,
		    "read_line: the maximum length must be at least 1");
		return;
	}
	start_read(req, req->args[1].u, '\n');
}

void
method_read_until(struct request *req)
{
	if (req->args[2].u == 0) {
		reply_error(req->session, req->msgid, TB_EINVAL,
		    "read_until: the maximum length must be at least 1");
		return;
	}
	start_read(req, req->args[2].u, (uint8_t)req->args[1].u);
}

/* Writing. */

static void
write_done(struct call *call)
{
	if (call->method == PROTO_METHOD_WRITE_ALL)
		reply_nil(call->session, call->msgid);
	else
		reply_uint(call->session, call->msgid, call->done);
	call_free(call);
}

/*
 * Sends what the socket takes; true when the call is finished.  data
 * holds the call's bytes from offset base on.
 */
static bool
try_write(struct conn *conn, struct call *call, const uint8_t *data,
    size_t base)
{
	const char	*name = proto_methods[call->method].name;
	uint64_t	 retry;
	size_t		 want;
	ssize_t		 n;

	if (conn->write_shut) {
		call_fail(call, TB_EPIPE, "%s: the write side was shut down",
		    name);
		return true;
	}
	while (call->done < call->len) {
		if (conn->error != 0) {
			call_fail(call, conn->error, "%s: %s after %zu of %zu "
			    "bytes", name, proto_err_text(conn->error),
			    call->done, call->len);
			return true;
		}
		if (conn->throttle_out.slot != 0)
			return false;	/* throttle_out_expire() pumps again */
		want = quota_bytes(conn->quota, QUOTA_OUT,
		    call->len - call->done, &retry);
		if (want == 0) {
			timer_set(&conn->throttle_out, retry,
			    throttle_out_expire);
			return false;
		}
		n = send(conn->io.fd, data + (call->done - base), want,
		    MSG_NOSIGNAL);
		if (n > 0) {
			call->done += (size_t)n;
			conn->bytes_out += (uint64_t)n;
			quota_spend(conn->quota, QUOTA_OUT, (size_t)n);
		}
		else if (n == -1 && errno == EAGAIN)
			return false;
		else if (n == -1 && errno != EINTR) {
			conn->error = errno_code(errno);
			if (conn->streaming)
				stream_pump(conn);
		}
	}
	write_done(call);
	return true;
}

static void
pump_writes(struct conn *conn)
{
	struct call	*call;

	while ((call = TAILQ_FIRST(&conn->writers)) != NULL) {
		TAILQ_REMOVE(&conn->writers, call, entry);
		if (!try_write(conn, call, call->data, call->base)) {
			TAILQ_INSERT_HEAD(&conn->writers, call, entry);
			return;
		}
	}
}

static void
write_expire(struct call *call)
{
	struct conn	*conn = call->owner;

	TAILQ_REMOVE(&conn->writers, call, entry);
	if (call->done > 0 && call->method != PROTO_METHOD_WRITE_ALL)
		write_done(call);	/* a short write, as write(2) has */
	else
		call_fail(call, TB_ETIMEDOUT, "%s: timed out after %zu of %zu "
		    "bytes", proto_methods[call->method].name, call->done,
		    call->len);
	pump_writes(conn);
}

static void
start_write(struct request *req)
{
	const struct proto_arg	*data = &req->args[1];
	struct conn		*conn;
	struct call		*call;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	/* One path per direction: bytes sent behind keep their order. */
	if (conn->streaming) {
		reply_error(req->session, req->msgid, TB_EPROTO, "%s: "
		    "connection %u streams; send its data as notifications",
		    proto_methods[req->method].name, conn->handle);
		return;
	}
	if ((call = call_new(req, conn, conn->timeout_ms, write_expire)) == NULL)
		return;
	call->len = data->len;
	/* Send straight from the request; copy only what must wait. */
	if (TAILQ_EMPTY(&conn->writers) && try_write(conn, call, data->ptr, 0))
		return;
	/* The copy is charged to the session like received data. */
	if (session_charge(req->session, (ssize_t)(call->len - call->done)) !=
	    0) {
		call_fail(call, TB_ELIMIT, "%s: the session has %d bytes "
		    "buffered already", proto_methods[req->method].name,
		    LIMIT_SESSION_BUFFERED);
		return;
	}
	call->charged = call->len - call->done;
	if ((call->data = malloc(call->charged)) == NULL) {
		call_fail(call, TB_ENOMEM, "%s: out of memory",
		    proto_methods[req->method].name);
		return;
	}
	memcpy(call->data, data->ptr + call->done, call->len - call->done);
	call->base = call->done;
	TAILQ_INSERT_TAIL(&conn->writers, call, entry);
}

void
method_write(struct request *req)
{
	start_write(req);
}

void
method_write_bytes(struct request *req)
{
	start_write(req);
}

void
method_write_all(struct request *req)
{
	start_write(req);
}

/* Options and shutdown. */

static void
set_option(struct request *req, int level, int option, const char *name)
{
	struct conn	*conn;
	int		 on = req->args[1].b;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	if (setsockopt(conn->io.fd, level, option, &on, sizeof(on)) == -1) {
		reply_error(req->session, req->msgid, errno_code(errno),
		    "%s: %s", name, strerror(errno));
		return;
	}
	reply_nil(req->session, req->msgid);
}

void
method_set_nodelay(struct request *req)
{
	set_option(req, IPPROTO_TCP, TCP_NODELAY, "set_nodelay");
}

void
method_set_keepalive(struct request *req)
{
	set_option(req, SOL_SOCKET, SO_KEEPALIVE, "set_keepalive");
}

void
method_shutdown(struct request *req)
{
	struct conn	*conn;
	int		 how, sys_how;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	switch (req->args[1].u) {
	case PROTO_SHUTDOWN_READ:	how = SHUT_RD; break;
	case PROTO_SHUTDOWN_WRITE:	how = SHUT_WR; break;
	default:			how = SHUT_RDWR; break;
	}
	/* Data sent behind goes first: the write side shuts once it is out. */
	sys_how = how;
	if (how != SHUT_RD && conn->wlen > 0) {
		conn->shut_pending = true;
		sys_how = how == SHUT_RDWR ? SHUT_RD : -1;
	}
	if (sys_how != -1 && shutdown(conn->io.fd, sys_how) == -1 &&
	    errno != ENOTCONN) {
		reply_error(req->session, req->msgid, errno_code(errno),
		    "shutdown: %s", strerror(errno));
		return;
	}
	if (how != SHUT_WR) {
		/* Unread data is dropped; reads now see the end. */
		conn->read_shut = true;
		buffer_release(conn);
		if (conn->streaming)
			stream_pump(conn);
		else
			pump_reads(conn);
	}
	if (how != SHUT_RD) {
		conn->write_shut = true;
		call_queue_fail(&conn->writers, TB_EPIPE,
		    "the write side was shut down");
	}
	reply_nil(req->session, req->msgid);
}

void
method_peer_addr(struct request *req)
{
	struct conn	*conn;
	char		 text[PROTO_ADDR_STRLEN];
	int		 rc;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	if ((rc = sockaddr_text(conn->io.fd, true, text, sizeof(text))) != 0)
		reply_error(req->session, req->msgid, rc, "peer_addr: %s",
		    proto_err_text(rc));
	else
		reply_str(req->session, req->msgid, text);
}

/* The tenant's bandwidth has come back: go on reading, or writing. */
static void
throttle_in_expire(struct timer *timer)
{
	struct conn	*conn = (struct conn *)((char *)timer -
	    offsetof(struct conn, throttle_in));

	if (conn->streaming)
		stream_pump(conn);
	else
		pump_reads(conn);
}

static void
throttle_out_expire(struct timer *timer)
{
	struct conn	*conn = (struct conn *)((char *)timer -
	    offsetof(struct conn, throttle_out));

	pump_writes(conn);
	behind_pump(conn);
}

void
conn__event(struct loop_io *io, uint32_t events)
{
	struct conn	*conn = io->owner;

	if (conn->state == CONN_CONNECTING) {
		connect__event(conn, events);
		return;
	}
	if (events & (EPOLLIN | SOCKET_EVENTS_DRAIN)) {
		if (conn->streaming)
			stream_fill(conn, !(events & SOCKET_EVENTS_DRAIN));
		else
			pump_reads(conn);
	}
	if (!io->dead && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
		pump_writes(conn);
		if (conn->wlen > 0 || conn->shut_pending)
			behind_pump(conn);
	}
}
