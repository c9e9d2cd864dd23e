/*
 * Sessions: the clients on the Unix socket.  A session's bytes are
 * framed by proto_scan(), decoded, checked against the method table and
 * dispatched; whatever a client sends, the worst outcome is the end of
 * that client's session, logged once.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

struct slot {
	uint32_t	 gen;
	bool		 published;
	struct conn	*conn;
	struct listener	*listener;
};

struct session {
	struct loop_io		 io;
	TAILQ_ENTRY(session)	 entry;
	struct session		*next_doomed;
	uint64_t		 id;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	uint32_t		 groups[LIMIT_PEER_GROUPS];	/* supplementary */
	unsigned		 ngroups;
	struct account		*acct;
	struct timer		 hello_timer;
	struct timer		 ack_timer;	/* see session_ack_later() */
	uint64_t		 opened_ms;
	bool			 hello;
	bool			 from_source;	/* of tcpbroker run's source */
	bool			 settled;	/* said hello, or never will */
	unsigned		 version;	/* the client's, from hello */
	bool			 ending;	/* answer what came, then end */
	bool			 doomed;
	bool			 in_input;
	bool			 paused;	/* stopped reading: slow reader */
	bool			 out_short;	/* its output could not grow once */
	bool			 read_eof;	/* the client sent FIN */
	bool			 ready;		/* on the ready list */
	TAILQ_ENTRY(session)	 ready_entry;
	bool			 pushed;	/* notifications to send */
	TAILQ_ENTRY(session)	 pushed_entry;
	uint32_t		 recv_window;	/* streaming when not 0 */
	size_t			 window_grown;	/* of WINDOW_GROWTH, lent */
	struct push_waiters	 push_waiters;	/* for output room */
	const char		*doom_reason;
	uint8_t			*in;
	size_t			 inlen;
	/*
	 * Output: out.data[out_head .. out.len) is still to send.  What was
	 * sent is dropped by moving the rest down only when that costs no
	 * more than what was sent, or room is needed (session_out_room).
	 */
	struct proto_buf	 out;
	size_t			 out_head;
	size_t			 reply_mark;	/* where the reply began */
	uint32_t		 reply_msgid;	/* whom it answers */
	msgpack_packer		 pk;
	msgpack_unpacked	 unpacked;
	unsigned		 ncalls;
	size_t			 buffered;
	struct slot		 slots[LIMIT_HANDLES_PER_SESSION];
};

TAILQ_HEAD(session_list, session);

static struct session_list	 sessions = TAILQ_HEAD_INITIALIZER(sessions);
static unsigned			 nsessions;
static unsigned			 nhandles;	/* of all sessions */
static struct session		*doomed;
/* Sessions with input to handle next turn: over budget, or resumed. */
static struct session_list	 ready = TAILQ_HEAD_INITIALIZER(ready);
/* Sessions with notifications pushed this turn, sent after the batch. */
static struct session_list	 pushed = TAILQ_HEAD_INITIALIZER(pushed);
static struct loop_io		 listen_io;
static int			 reserve_fd = -1;

/*
 * A session's output may pass LIMIT_SESSION_OUTPUT by the replies of
 * the calls it already has in flight, and by one more; never by more.
 */
#define SESSION_OUTPUT_MAX						\
	(LIMIT_SESSION_OUTPUT +						\
	 (LIMIT_CALLS_PER_SESSION + 1) * (size_t)PROTO_MESSAGE_MAX)

static void	session_input(struct session *s, bool edge);
static void	session_flush(struct session *s);

/* Output not sent yet: bytes. */
static size_t
session_pending(const struct session *s)
{
	return s->out.len - s->out_head;
}

/* Drops what was sent, moving the rest to the start. */
static void
session_out_compact(struct session *s)
{
	if (s->out_head == 0)
		return;
	memmove(s->out.data, s->out.data + s->out_head, session_pending(s));
	s->out.len -= s->out_head;
	s->out_head = 0;
}

/* Makes room at the end of the output for need bytes, if it can. */
static void
session_out_room(struct session *s, size_t need)
{
	if (s->out_head > 0 && need > s->out.max - s->out.len)
		session_out_compact(s);
}

static void
session_ready(struct session *s)
{
	if (!s->ready && !s->doomed) {
		s->ready = true;
		TAILQ_INSERT_TAIL(&ready, s, ready_entry);
	}
}

/* Handles are (generation << 8 | slot index), never 0. */
#define HANDLE_SLOT(h)	((h) & 0xff)
#define HANDLE_GEN(h)	((h) >> 8)
#define HANDLE_GEN_MAX	0xffffffu
_Static_assert(LIMIT_HANDLES_PER_SESSION <= 256, "slot index is 8 bits");

static void
session_doom(struct session *s, const char *reason)
{
	if (s->doomed)
		return;
	s->doomed = true;
	s->doom_reason = reason;
	s->next_doomed = doomed;
	doomed = s;
}

static void
session_destroy(struct session *s)
{
	unsigned	i;

	for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++) {
		if (s->slots[i].conn != NULL)
			conn_destroy(s->slots[i].conn, false);
		else if (s->slots[i].listener != NULL)
			listener_destroy(s->slots[i].listener, false);
	}
	if (s->ncalls != 0 || s->buffered != 0 || s->window_grown != 0)
		fatalx("session %llu: %u calls, %zu bytes and %zu bytes of "
		    "send window left at close", (unsigned long long)s->id,
		    s->ncalls, s->buffered, s->window_grown);
	if (s->ready)
		TAILQ_REMOVE(&ready, s, ready_entry);
	if (s->pushed)
		TAILQ_REMOVE(&pushed, s, pushed_entry);
	if (!TAILQ_EMPTY(&s->push_waiters))
		fatalx("session %llu: connections wait for output at close",
		    (unsigned long long)s->id);
	timer_cancel(&s->hello_timer);
	timer_cancel(&s->ack_timer);
	account_log(s->acct, LOG_LEVEL_INFO, "session %llu closed: %s",
	    (unsigned long long)s->id, s->doom_reason);
	account_add(s->acct, -1, 0);
	msgpack_unpacked_destroy(&s->unpacked);
	free(s->in);
	proto_buf_free(&s->out);
	TAILQ_REMOVE(&sessions, s, entry);
	nsessions--;
	loop_release(&s->io);
	if (s->from_source && !s->settled)
		source_settled();
	/* A broker of the launcher lives while the command may use it. */
	if (broker.private && nsessions == 0 && !source_alive())
		loop_stop();
}

bool
session_reap(void)
{
	struct session_list	 now = TAILQ_HEAD_INITIALIZER(now);
	struct session		*s;

	/* Everything a batch of events pushed goes out in one send. */
	TAILQ_CONCAT(&now, &pushed, pushed_entry);
	while ((s = TAILQ_FIRST(&now)) != NULL) {
		TAILQ_REMOVE(&now, s, pushed_entry);
		s->pushed = false;
		if (!s->doomed)
			session_flush(s);
	}

	/*
	 * Input is resumed here, never from inside another callback, and
	 * each session gets one more batch: the ones that still have work
	 * go on the list for the next turn.
	 */
	TAILQ_CONCAT(&now, &ready, ready_entry);
	while ((s = TAILQ_FIRST(&now)) != NULL) {
		TAILQ_REMOVE(&now, s, ready_entry);
		s->ready = false;
		if (!s->doomed)
			session_input(s, false);
	}
	while ((s = doomed) != NULL) {
		doomed = s->next_doomed;
		session_destroy(s);
	}
	return !TAILQ_EMPTY(&ready) || !TAILQ_EMPTY(&pushed);
}

void
session_close_all(void)
{
	struct session	*s;

	TAILQ_FOREACH(s, &sessions, entry)
		session_doom(s, "broker shutting down");
	session_reap();
}

unsigned
session_count(void)
{
	return nsessions;
}

uint64_t
session_id(const struct session *s)
{
	return s->id;
}

uid_t
session_uid(const struct session *s)
{
	return s->uid;
}

pid_t
session_pid(const struct session *s)
{
	return s->pid;
}

/*
 * Found again for every decision, so that a reload decides new requests
 * by the new policy.
 */
const struct policy_tenant *
session_tenant(struct session *s)
{
	/* Root launched the command for a tenant it named. */
	if (broker.tenant != NULL)
		return policy_tenant_named(broker.policy, broker.tenant);
	struct policy_client	client = { (uint32_t)s->uid, (uint32_t)s->gid,
				    s->groups, s->ngroups };

	return policy_tenant_of(broker.policy, &client);
}

struct account *
session_account(const struct session *s)
{
	return s->acct;
}

unsigned
session_revoke(void)
{
	struct session	*s;
	unsigned	 i, n = 0;

	TAILQ_FOREACH(s, &sessions, entry) {
		if (s->doomed)
			continue;
		for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++) {
			if (!s->slots[i].published)
				continue;
			if (s->slots[i].conn != NULL)
				n += conn_revoke(s->slots[i].conn);
			else if (s->slots[i].listener != NULL)
				n += listener_revoke(s->slots[i].listener);
		}
	}
	return n;
}

void
session_report(void (*fn)(void *, const struct report_session *),
    void (*handle)(void *, const struct report_handle *), void *arg)
{
	const struct policy_tenant	*tn;
	struct report_session		 r;
	struct report_handle		 h;
	struct session			*s;
	unsigned			 i;

	TAILQ_FOREACH(s, &sessions, entry) {
		memset(&r, 0, sizeof(r));
		r.id = s->id;
		r.uid = s->uid;
		r.pid = s->pid;
		r.age_ms = loop_now() - s->opened_ms;
		r.tenant = s->hello && (tn = session_tenant(s)) != NULL ?
		    tn->name : NULL;
		for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++)
			if (s->slots[i].conn != NULL ||
			    s->slots[i].listener != NULL)
				r.handles++;
		fn(arg, &r);
		for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++) {
			if (!s->slots[i].published)
				continue;
			memset(&h, 0, sizeof(h));
			h.session = s->id;
			if (s->slots[i].conn != NULL)
				conn_report(s->slots[i].conn, &h);
			else if (s->slots[i].listener != NULL)
				listener_report(s->slots[i].listener, &h);
			else
				continue;
			handle(arg, &h);
		}
	}
}

int
session_charge(struct session *s, ssize_t n)
{
	if (n > 0 && (size_t)n > LIMIT_SESSION_BUFFERED - s->buffered)
		return -1;
	s->buffered = (size_t)((ssize_t)s->buffered + n);
	return 0;
}

/* Streaming: notifications pushed to the client unasked. */

uint32_t
session_recv_window(const struct session *s)
{
	return s->recv_window;
}

unsigned
session_version(const struct session *s)
{
	return s->version;
}

size_t
session_window_take(struct session *s, size_t want)
{
	size_t	room = LIMIT_SESSION_WINDOW_GROWTH - s->window_grown;

	if (want > room)
		want = room;
	s->window_grown += want;
	return want;
}

void
session_window_give(struct session *s, size_t n)
{
	if (n > s->window_grown)
		fatalx("session %llu gives back %zu bytes of send window, "
		    "%zu lent", (unsigned long long)s->id, n, s->window_grown);
	s->window_grown -= n;
}

size_t
session_push_room(const struct session *s)
{
	if (s->doomed || session_pending(s) >= LIMIT_SESSION_OUTPUT)
		return 0;
	return LIMIT_SESSION_OUTPUT - session_pending(s);
}

uint8_t *
session_push_reserve(struct session *s, size_t min, size_t *len)
{
	uint8_t	*p;
	size_t	 spare;

	if (*len > session_push_room(s))
		fatalx("session %llu: pushing %zu bytes past the output limit",
		    (unsigned long long)s->id, *len);
	session_out_room(s, *len);
	if ((p = proto_buf_reserve(&s->out, *len)) != NULL)
		return p;
	if (!s->out_short)
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: out of "
		    "memory: its output grows no more, its data waits for it "
		    "to read", (unsigned long long)s->id);
	s->out_short = true;
	/*
	 * Out of memory: the buffer grows no more, and data waits for the
	 * client to read.  It never has less than LIMIT_SESSION_OUTPUT_KEEP,
	 * so when nothing is pending there is room, and when something is
	 * the client's reading makes room and resumes the waiting
	 * connections.
	 */
	session_out_compact(s);
	spare = s->out.cap - s->out.len;
	if (spare < min + NOTE_SMALL_MAX)
		return NULL;
	*len = spare - NOTE_SMALL_MAX;
	return s->out.data + s->out.len;
}

void
session_push_commit(struct session *s, size_t len)
{
	s->out.len += len;
	if (!s->pushed) {
		s->pushed = true;
		TAILQ_INSERT_TAIL(&pushed, s, pushed_entry);
	}
}

msgpack_packer *
note_begin(struct session *s, enum proto_broker_note note, uint32_t nparams)
{
	if (session_push_room(s) < NOTE_SMALL_MAX)
		fatalx("session %llu: notification without room",
		    (unsigned long long)s->id);
	session_out_room(s, PROTO_MESSAGE_MAX);
	proto_pack_note(&s->pk, proto_broker_notes[note].name, nparams);
	return &s->pk;
}

void
note_end(struct session *s)
{
	if (s->out.failed) {
		log_warnx("session %llu: output buffer overflow",
		    (unsigned long long)s->id);
		session_doom(s, "output buffer overflow");
		return;
	}
	session_push_commit(s, 0);
}

void
session_push_wait(struct session *s, struct push_waiter *w)
{
	if (!w->queued) {
		w->queued = true;
		TAILQ_INSERT_TAIL(&s->push_waiters, w, entry);
	}
}

void
session_push_cancel(struct session *s, struct push_waiter *w)
{
	if (w->queued) {
		w->queued = false;
		TAILQ_REMOVE(&s->push_waiters, w, entry);
	}
}

/* Output has drained to half the limit: the waiters push again. */
static void
session_push_resume(struct session *s)
{
	struct push_waiters	 now = TAILQ_HEAD_INITIALIZER(now);
	struct push_waiter	*w;

	if (s->doomed || session_pending(s) > LIMIT_SESSION_OUTPUT / 2)
		return;
	TAILQ_CONCAT(&now, &s->push_waiters, entry);
	while ((w = TAILQ_FIRST(&now)) != NULL) {
		TAILQ_REMOVE(&now, w, entry);
		w->queued = false;
		w->resume(w);
	}
}

/* Whether the uid or the broker as a whole holds all it may. */
static bool
handles_exhausted(struct session *s)
{
	return nhandles >= broker.limits.handles ||
	    account_handles(s->acct) >= broker.limits.handles_per_uid;
}

bool
session_handle_extra(struct session *s, int delta)
{
	if (delta > 0 && handles_exhausted(s))
		return false;
	nhandles = (unsigned)((int)nhandles + delta);
	account_add(s->acct, 0, delta);
	return true;
}

const char *
session_handle_full(struct session *s, char *buf, size_t cap)
{
	if (account_handles(s->acct) >= broker.limits.handles_per_uid)
		textf(buf, cap, "uid %u has %u connections and listeners open, "
		    "its limit", (unsigned)s->uid, account_handles(s->acct));
	else if (nhandles >= broker.limits.handles)
		textf(buf, cap, "the broker has %u connections and listeners "
		    "open, its limit", nhandles);
	else
		textf(buf, cap, "more than %d handles in this session",
		    LIMIT_HANDLES_PER_SESSION);
	return buf;
}

uint32_t
session_handle_new(struct session *s, struct conn *conn,
    struct listener *listener)
{
	struct slot	*slot;
	unsigned	 i;

	if (handles_exhausted(s))
		return 0;
	for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++) {
		slot = &s->slots[i];
		if (slot->conn != NULL || slot->listener != NULL)
			continue;
		/*
		 * A new generation, so a closed handle is never valid again;
		 * a slot whose generations are used up is retired.
		 */
		if (slot->gen == HANDLE_GEN_MAX)
			continue;
		slot->gen++;
		slot->conn = conn;
		slot->listener = listener;
		slot->published = false;
		nhandles++;
		account_add(s->acct, 0, 1);
		return slot->gen << 8 | i;
	}
	return 0;
}

void
session_handle_publish(struct session *s, uint32_t handle)
{
	s->slots[HANDLE_SLOT(handle)].published = true;
}

void
session_handle_free(struct session *s, uint32_t handle)
{
	struct slot	*slot = &s->slots[HANDLE_SLOT(handle)];

	if (HANDLE_SLOT(handle) >= LIMIT_HANDLES_PER_SESSION ||
	    slot->gen != HANDLE_GEN(handle))
		fatalx("session %llu: freeing unknown handle %u",
		    (unsigned long long)s->id, handle);
	slot->conn = NULL;
	slot->listener = NULL;
	slot->published = false;
	nhandles--;
	account_add(s->acct, 0, -1);
}

static struct slot *
lookup(struct session *s, uint32_t handle)
{
	struct slot	*slot;

	if (HANDLE_SLOT(handle) >= LIMIT_HANDLES_PER_SESSION)
		return NULL;
	slot = &s->slots[HANDLE_SLOT(handle)];
	if (slot->gen != HANDLE_GEN(handle) || !slot->published)
		return NULL;
	return slot;
}

struct conn *
session_conn(struct request *req, uint32_t handle)
{
	struct slot	*slot = lookup(req->session, handle);

	if (slot == NULL || slot->conn == NULL) {
		reply_error(req->session, req->msgid, TB_EBADHANDLE,
		    "%s: %u is not an open connection of this session",
		    proto_methods[req->method].name, handle);
		return NULL;
	}
	return slot->conn;
}

struct listener *
session_listener(struct request *req, uint32_t handle)
{
	struct slot	*slot = lookup(req->session, handle);

	if (slot == NULL || slot->listener == NULL) {
		reply_error(req->session, req->msgid, TB_EBADHANDLE,
		    "%s: %u is not an open listener of this session",
		    proto_methods[req->method].name, handle);
		return NULL;
	}
	return slot->listener;
}

/* Replies. */

/* A reply begins here: reply_data_end can take it back. */
static void
reply_mark(struct session *s, uint32_t msgid)
{
	session_out_room(s, PROTO_MESSAGE_MAX);
	s->reply_mark = s->out.len;
	s->reply_msgid = msgid;
}

void
reply_error(struct session *s, uint32_t msgid, int code, const char *fmt, ...)
{
	char	message[PROTO_ERROR_MESSAGE_MAX + 1];
	va_list	ap;

	if (s->doomed)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_debug("session %llu: msgid %u: %s: %s",
	    (unsigned long long)s->id, msgid, proto_err_name(code), message);
	if (code < 0 && -code < TB__ERRNO_COUNT)
		counters.errors[-code]++;
	reply_mark(s, msgid);
	proto_pack_error(&s->pk, msgid, code, message);
	reply_end(s);
}

msgpack_packer *
reply_begin(struct session *s, uint32_t msgid)
{
	reply_mark(s, msgid);
	proto_pack_result(&s->pk, msgid);
	return &s->pk;
}

/*
 * Sends the reply packed since reply_begin.  The bound on the output
 * keeps it under its maximum, so a reply that could not be packed ran
 * out of memory part way.  Most replies stand for something already
 * done (a connection made, bytes written): taking one back would leave
 * the client unaware of it, so the session ends.
 */
void
reply_end(struct session *s)
{
	if (s->out.failed) {
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: msgid %u: "
		    "out of memory for a reply", (unsigned long long)s->id,
		    s->reply_msgid);
		session_doom(s, "out of memory for a reply");
		return;
	}
	if (!s->in_input)
		session_flush(s);
}

/*
 * reply_end for a reply that only carries bytes the caller still holds
 * (a read's).  One that could not be packed is taken back and the call
 * answered ENOMEM instead, in the room the output already has; false
 * then, and the caller keeps the bytes for the next call.  Only when
 * even that answer does not fit does the session end.
 */
bool
reply_data_end(struct session *s)
{
	if (!s->out.failed) {
		reply_end(s);
		return true;
	}
	s->out.len = s->reply_mark;
	s->out.failed = false;
	account_log(s->acct, LOG_LEVEL_WARN, "session %llu: msgid %u: out of "
	    "memory for a reply, answered ENOMEM", (unsigned long long)s->id,
	    s->reply_msgid);
	counters.errors[-TB_ENOMEM]++;
	proto_pack_error(&s->pk, s->reply_msgid, TB_ENOMEM,
	    "out of memory for the reply");
	reply_end(s);
	return false;
}

void
reply_nil(struct session *s, uint32_t msgid)
{
	msgpack_pack_nil(reply_begin(s, msgid));
	reply_end(s);
}

void
reply_uint(struct session *s, uint32_t msgid, uint64_t value)
{
	msgpack_pack_uint64(reply_begin(s, msgid), value);
	reply_end(s);
}

void
reply_str(struct session *s, uint32_t msgid, const char *str)
{
	msgpack_pack_str_with_body(reply_begin(s, msgid), str, strlen(str));
	reply_end(s);
}

/* Calls that wait. */

static void
call_timer(struct timer *timer)
{
	struct call	*call = (struct call *)((char *)timer -
	    offsetof(struct call, timer));

	call->expire(call);
}

struct call *
call_new(struct request *req, void *owner, uint32_t timeout_ms,
    void (*expire)(struct call *))
{
	struct call	*call;

	/* Only calls that wait count: close and the like always run. */
	if (req->session->ncalls >= LIMIT_CALLS_PER_SESSION) {
		reply_error(req->session, req->msgid, TB_ELIMIT, "%s: more "
		    "than %d calls waiting", proto_methods[req->method].name,
		    LIMIT_CALLS_PER_SESSION);
		return NULL;
	}
	if ((call = calloc(1, sizeof(*call))) == NULL) {
		reply_error(req->session, req->msgid, TB_ENOMEM,
		    "%s: out of memory", proto_methods[req->method].name);
		return NULL;
	}
	call->session = req->session;
	call->owner = owner;
	call->msgid = req->msgid;
	call->method = req->method;
	call->expire = expire;
	if (timeout_ms > 0)
		timer_set(&call->timer, loop_now() + timeout_ms, call_timer);
	req->session->ncalls++;
	return call;
}

void
call_free(struct call *call)
{
	timer_cancel(&call->timer);
	call->session->ncalls--;
	if (call->charged > 0)
		session_charge(call->session, -(ssize_t)call->charged);
	free(call->data);
	free(call);
}

void
call_fail(struct call *call, int code, const char *fmt, ...)
{
	char	message[PROTO_ERROR_MESSAGE_MAX + 1];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	reply_error(call->session, call->msgid, code, "%s", message);
	call_free(call);
}

void
call_queue_drop(struct call_queue *q)
{
	struct call	*call;

	while ((call = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, call, entry);
		call_free(call);
	}
}

void
call_queue_fail(struct call_queue *q, int code, const char *msg)
{
	struct call	*call;

	while ((call = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, call, entry);
		call_fail(call, code, "%s: %s", proto_methods[call->method].name,
		    msg);
	}
}

/* Methods that concern the session or either kind of handle. */

void
method_hello(struct request *req)
{
	struct session			*s = req->session;
	const struct policy_tenant	*tn;
	struct policy_decision		 d;
	struct audit			 a = { .hello = true, .decision = &d };
	msgpack_packer			*pk;

	if (s->hello) {
		reply_error(s, req->msgid, TB_EPROTO, "hello: already called");
		return;
	}
	if (req->args[0].u < PROTO_VERSION_MIN ||
	    req->args[0].u > PROTO_VERSION) {
		reply_error(s, req->msgid, TB_EVERSION, "hello: this broker "
		    "speaks protocol versions %d to %d, not %llu",
		    PROTO_VERSION_MIN, PROTO_VERSION,
		    (unsigned long long)req->args[0].u);
		return;
	}
	/* A client in no tenant gets this error, and the session ends. */
	if ((tn = session_tenant(s)) == NULL) {
		memset(&d, 0, sizeof(d));
		d.verdict = POLICY_DENY;
		d.reason = POLICY_BY_NO_TENANT;
		audit_decision(s, &a);
		if (broker.tenant != NULL)
			reply_error(s, req->msgid, TB_EPOLICY, "hello: the "
			    "policy has no tenant \"%s\"", broker.tenant);
		else
			reply_error(s, req->msgid, TB_EPOLICY, "hello: no "
			    "tenant of the policy matches uid %u gid %u",
			    (unsigned)s->uid, (unsigned)s->gid);
		s->ending = true;
		return;
	}
	s->hello = true;
	s->version = (unsigned)req->args[0].u;
	timer_cancel(&s->hello_timer);
	if (s->from_source && !s->settled) {
		s->settled = true;
		source_settled();
	}
	pk = reply_begin(s, req->msgid);
	msgpack_pack_map(pk, 9);
	msgpack_pack_str_with_body(pk, "tenant", 6);
	msgpack_pack_str_with_body(pk, tn->name, strlen(tn->name));
	msgpack_pack_str_with_body(pk, "version", 7);
	msgpack_pack_uint32(pk, s->version);
	msgpack_pack_str_with_body(pk, "session", 7);
	msgpack_pack_uint64(pk, s->id);
	msgpack_pack_str_with_body(pk, "uid", 3);
	msgpack_pack_uint32(pk, (uint32_t)s->uid);
	msgpack_pack_str_with_body(pk, "gid", 3);
	msgpack_pack_uint32(pk, (uint32_t)s->gid);
	msgpack_pack_str_with_body(pk, "pid", 3);
	msgpack_pack_uint32(pk, (uint32_t)s->pid);
	msgpack_pack_str_with_body(pk, "data_max", 8);
	msgpack_pack_uint32(pk, PROTO_DATA_MAX);
	msgpack_pack_str_with_body(pk, "line_max", 8);
	msgpack_pack_uint32(pk, PROTO_LINE_MAX);
	/* The client may poll as long for its answers (docs/protocol.md). */
	msgpack_pack_str_with_body(pk, "busy_poll_us", 12);
	msgpack_pack_uint32(pk, loop_busy_poll_us());
	reply_end(s);
}

void
method_stream(struct request *req)
{
	struct session	*s = req->session;
	uint64_t	 window = req->args[0].u;
	msgpack_packer	*pk;
	unsigned	 i;

	if (s->version < PROTO_VERSION_STREAM || s->recv_window != 0) {
		reply_error(s, req->msgid, TB_EPROTO, "stream: %s",
		    s->version < PROTO_VERSION_STREAM ? "the session said "
		    "hello with version 1" : "already called");
		return;
	}
	for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++)
		if (s->slots[i].conn != NULL || s->slots[i].listener != NULL) {
			reply_error(s, req->msgid, TB_EPROTO, "stream: call it "
			    "before any connection or listener is opened");
			return;
		}
	if (window < PROTO_RECV_WINDOW_MIN || window > PROTO_RECV_WINDOW_MAX) {
		reply_error(s, req->msgid, TB_EINVAL, "stream: the window must "
		    "be %d to %d bytes", PROTO_RECV_WINDOW_MIN,
		    PROTO_RECV_WINDOW_MAX);
		return;
	}
	s->recv_window = (uint32_t)window;
	pk = reply_begin(s, req->msgid);
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "recv_window", 11);
	msgpack_pack_uint32(pk, s->recv_window);
	msgpack_pack_str_with_body(pk, "send_window", 11);
	msgpack_pack_uint32(pk, LIMIT_SEND_WINDOW);
	reply_end(s);
}

void
method_close(struct request *req)
{
	struct slot	*slot = lookup(req->session, (uint32_t)req->args[0].u);

	if (slot == NULL) {
		reply_error(req->session, req->msgid, TB_EBADHANDLE,
		    "close: %llu is not an open handle of this session",
		    (unsigned long long)req->args[0].u);
		return;
	}
	if (slot->conn != NULL)
		conn_destroy(slot->conn, true);
	else
		listener_destroy(slot->listener, true);
	reply_nil(req->session, req->msgid);
}

/*
 * close as a notification (version 3): a streamed connection closed
 * without a round trip, as close(2) on a socket.  Nothing answers it, so
 * a handle that is not an open connection (one the broker closed
 * meanwhile, a listener) is ignored, as a credit for it is.
 */
void
note_close(struct session *s, const struct proto_arg *args)
{
	struct conn	*conn;

	if (s->version < PROTO_VERSION_CLOSE_NOTE) {
		session_protocol_error(s, "close notification before "
		    "protocol version 3");
		return;
	}
	if ((conn = session_note_conn(s, (uint32_t)args[0].u)) != NULL)
		conn_destroy(conn, true);
}

void
method_set_timeout_ms(struct request *req)
{
	struct slot	*slot = lookup(req->session, (uint32_t)req->args[0].u);

	if (slot == NULL) {
		reply_error(req->session, req->msgid, TB_EBADHANDLE,
		    "set_timeout_ms: %llu is not an open handle of this "
		    "session", (unsigned long long)req->args[0].u);
		return;
	}
	if (slot->conn != NULL)
		conn_set_timeout(slot->conn, (uint32_t)req->args[1].u);
	else
		listener_set_timeout(slot->listener, (uint32_t)req->args[1].u);
	reply_nil(req->session, req->msgid);
}

void
method_local_addr(struct request *req)
{
	struct slot	*slot = lookup(req->session, (uint32_t)req->args[0].u);
	char		 text[PROTO_ADDR_STRLEN];
	int		 rc;

	if (slot == NULL) {
		reply_error(req->session, req->msgid, TB_EBADHANDLE,
		    "local_addr: %llu is not an open handle of this session",
		    (unsigned long long)req->args[0].u);
		return;
	}
	if (slot->conn != NULL)
		rc = conn_local_addr(slot->conn, text, sizeof(text));
	else
		rc = listener_local_addr(slot->listener, text, sizeof(text));
	if (rc != 0)
		reply_error(req->session, req->msgid, rc, "local_addr: %s",
		    proto_err_text(rc));
	else
		reply_str(req->session, req->msgid, text);
}

/* Framing and dispatch. */

typedef void (*method_handler)(struct request *);

static const method_handler handlers[PROTO_METHOD_COUNT] = {
#define HANDLER(id, name, params) [PROTO_METHOD_##id] = method_##name,
	PROTO_METHODS(HANDLER)
#undef HANDLER
};

static void
dispatch(struct session *s, const struct proto_msg *msg)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	struct request		req = { s, msg->msgid, 0, args };
	char			why[PROTO_ERROR_MESSAGE_MAX + 1];
	int			method, rc;

	method = proto_method_lookup(msg->method, msg->method_len);
	if (method < 0) {
		reply_error(s, msg->msgid, TB_ENOMETHOD, "no method \"%.*s\"",
		    (int)(msg->method_len > 64 ? 64 : msg->method_len),
		    msg->method);
		return;
	}
	req.method = (enum proto_method)method;
	if (!s->hello && req.method != PROTO_METHOD_HELLO) {
		reply_error(s, msg->msgid, TB_EPROTO, "%s: call hello first",
		    proto_methods[method].name);
		return;
	}
	rc = proto_check_args(req.method, msg->params, msg->nparams, args, why,
	    sizeof(why));
	if (rc != 0) {
		reply_error(s, msg->msgid, rc, "%s", why);
		return;
	}
	handlers[method](&req);
}

typedef void (*note_handler)(struct session *, const struct proto_arg *);

static const note_handler note_handlers[PROTO_CNOTE_COUNT] = {
#define HANDLER(id, name, params) [PROTO_CNOTE_##id] = note_##name,
	PROTO_CLIENT_NOTES(HANDLER)
#undef HANDLER
};

/* A notification has nobody to answer: a bad one ends the session. */
static void
dispatch_note(struct session *s, const struct proto_msg *msg)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[PROTO_ERROR_MESSAGE_MAX + 1];
	int			note;

	note = proto_table_lookup(proto_client_notes, PROTO_CNOTE_COUNT,
	    msg->method, msg->method_len);
	if (note < 0 || s->recv_window == 0) {
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: bad "
		    "notification%s", (unsigned long long)s->id,
		    s->recv_window == 0 ? " before stream" : "");
		session_doom(s, "protocol error");
		return;
	}
	if (proto_check_params(&proto_client_notes[note], msg->params,
	    msg->nparams, args, why, sizeof(why)) != 0) {
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: bad "
		    "notification: %s", (unsigned long long)s->id, why);
		session_doom(s, "protocol error");
		return;
	}
	note_handlers[note](s, args);
}

/* The connection handle of a notification, or NULL: it may be closed. */
struct conn *
session_note_conn(struct session *s, uint32_t handle)
{
	struct slot	*slot = lookup(s, handle);

	return slot != NULL ? slot->conn : NULL;
}

void
session_protocol_error(struct session *s, const char *why)
{
	account_log(s->acct, LOG_LEVEL_WARN, "session %llu: %s",
	    (unsigned long long)s->id, why);
	session_doom(s, "protocol error");
}

/*
 * Handles the complete messages in s->in, at most *budget of them;
 * returns the bytes used.
 */
static size_t
session_process(struct session *s, unsigned *budget)
{
	struct proto_msg	 msg;
	size_t			 off = 0, len;
	const char		*why;

	while (off < s->inlen && !s->doomed && !s->ending && *budget > 0 &&
	    session_pending(s) <= LIMIT_SESSION_OUTPUT) {
		switch (proto_scan(s->in + off, s->inlen - off, &len, &why)) {
		case PROTO_SCAN_MORE:
			return off;
		case PROTO_SCAN_BAD:
			account_log(s->acct, LOG_LEVEL_WARN, "session %llu: bad "
			    "message: %s", (unsigned long long)s->id, why);
			session_doom(s, "protocol error");
			return off;
		case PROTO_SCAN_DONE:
			break;
		}
		if (proto_decode(&s->unpacked, s->in + off, len, &msg,
		    &why) != 0 || msg.type == PROTO_RESPONSE) {
			account_log(s->acct, LOG_LEVEL_WARN, "session %llu: bad "
			    "message: %s", (unsigned long long)s->id,
			    msg.type == PROTO_RESPONSE ? "not a request" : why);
			session_doom(s, "protocol error");
			return off;
		}
		if (msg.type == PROTO_NOTIFY)
			dispatch_note(s, &msg);
		else
			dispatch(s, &msg);
		off += len;
		(*budget)--;
	}
	return off;
}

/* Sends what the socket takes now; the rest waits for EPOLLOUT. */
static void
session_send(struct session *s)
{
	ssize_t	n;

	while (session_pending(s) > 0 && !s->doomed) {
		n = send(s->io.fd, s->out.data + s->out_head, session_pending(s),
		    MSG_NOSIGNAL);
		if (n > 0) {
			s->out_head += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			session_doom(s, "write error on the session");
		break;
	}
	if (session_pending(s) == 0)
		s->out.len = s->out_head = 0;
	else if (s->out_head >= session_pending(s))
		session_out_compact(s);
	/* A client that shut down its side gets its answers, then the end. */
	if (s->read_eof && session_pending(s) == 0)
		session_doom(s, "client closed the session");
	if (s->ending && session_pending(s) == 0)
		session_doom(s, "no tenant of the policy matches it");
}

/*
 * Reads and handles requests until the socket is empty, at most
 * LIMIT_SESSION_BATCH of them: a busy client waits for the next turn
 * instead of holding up everyone else.  For an input event that
 * reported no hang-up and no urgent byte (edge), a short read is taken
 * as empty, as in stream_fill(): the next input is an event of its own.
 * (A client that sends descriptors, which stop a read short, stalls its
 * own session until it sends more; nobody else's.)
 */
static void
session_input(struct session *s, bool edge)
{
	unsigned	budget = LIMIT_SESSION_BATCH;
	size_t		used, want;
	ssize_t		n;
	bool		empty = false;

	if (s->in_input)
		return;
	s->in_input = true;
	while (!s->doomed) {
		used = session_process(s, &budget);
		if (used > 0) {
			memmove(s->in, s->in + used, s->inlen - used);
			s->inlen -= used;
		}
		if (s->doomed)
			break;
		if (budget == 0) {
			session_ready(s);
			break;
		}
		if (session_pending(s) > LIMIT_SESSION_OUTPUT) {
			/* A slow reader: stop taking requests until it reads. */
			session_send(s);
			if (session_pending(s) > LIMIT_SESSION_OUTPUT) {
				s->paused = true;	/* see session_flush() */
				break;
			}
			continue;
		}
		if (s->read_eof || s->ending || empty)
			break;
		want = PROTO_MESSAGE_MAX - s->inlen;
		n = recv(s->io.fd, s->in + s->inlen, want, 0);
		if (n > 0) {
			s->inlen += (size_t)n;
			empty = edge && (size_t)n < want;
			continue;
		}
		if (n == 0) {
			s->read_eof = true;	/* handle what came, then end */
			continue;
		}
		if (errno == EINTR)
			continue;
		else if (errno != EAGAIN)
			session_doom(s, "read error on the session");
		break;
	}
	s->in_input = false;
	session_send(s);
}

static void
session_flush(struct session *s)
{
	session_send(s);
	if (!TAILQ_EMPTY(&s->push_waiters))
		session_push_resume(s);
	if (s->paused && session_pending(s) <= LIMIT_SESSION_OUTPUT &&
	    !s->doomed) {
		s->paused = false;
		session_ready(s);
	}
}

static void
session_event(struct loop_io *io, uint32_t events)
{
	struct session	*s = io->owner;

	if (events & EPOLLOUT)
		session_flush(s);
	if (!s->doomed && (events & ~EPOLLOUT))
		session_input(s, !(events & SOCKET_EVENTS_DRAIN));
}

/* New sessions. */

/*
 * Out of descriptors, a waiting client would stay in the backlog and,
 * with edge-triggered events, stall those behind it.  Free the reserve
 * descriptor, accept the client and close it at once.
 */
static bool
refuse_with_reserve(int listen_fd)
{
	int	fd;

	if (reserve_fd == -1)
		return false;
	close(reserve_fd);
	if ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		close(fd);
	reserve_fd = eventfd(0, EFD_CLOEXEC);
	return fd != -1;
}

/*
 * The supplementary groups of the peer, for `match gid`; past
 * LIMIT_PEER_GROUPS they do not count, and the log says so.
 */
static void
session_peer_groups(struct session *s, int fd)
{
	static gid_t	all[NGROUPS_MAX];
	socklen_t	len = sizeof(all);
	size_t		n, i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == -1) {
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: "
		    "SO_PEERGROUPS: %s; only its primary gid counts",
		    (unsigned long long)s->id, strerror(errno));
		return;
	}
	n = len / sizeof(gid_t);
	if (n > LIMIT_PEER_GROUPS) {
		account_log(s->acct, LOG_LEVEL_WARN, "session %llu: uid %u has "
		    "%zu groups; the first %d count", (unsigned long long)s->id,
		    (unsigned)s->uid, n, LIMIT_PEER_GROUPS);
		n = LIMIT_PEER_GROUPS;
	}
	for (i = 0; i < n; i++)
		s->groups[i] = (uint32_t)all[i];
	s->ngroups = (unsigned)n;
}

/* A session of the launch: the groups of whoever launched the command. */
static void
session_given_groups(struct session *s)
{
	unsigned	i;

	s->ngroups = broker.launched_ngroups;
	for (i = 0; i < s->ngroups; i++)
		s->groups[i] = broker.launched_groups[i];
}

static void
ack_expire(struct timer *timer)
{
	struct session	*s = (struct session *)((char *)timer -
	    offsetof(struct session, ack_timer));
	unsigned	 i;

	for (i = 0; i < LIMIT_HANDLES_PER_SESSION; i++)
		if (s->slots[i].conn != NULL)
			conn_ack(s->slots[i].conn);
}

void
session_ack_later(struct session *s)
{
	if (s->ack_timer.slot == 0)
		timer_set(&s->ack_timer, loop_now() + LIMIT_ACK_DELAY_MS,
		    ack_expire);
}

/* A session that never said hello holds a slot for nothing. */
static void
hello_expire(struct timer *timer)
{
	struct session	*s = (struct session *)((char *)timer -
	    offsetof(struct session, hello_timer));

	session_doom(s, "no hello in time");
}

/*
 * Why a session of this uid may not open now, or NULL.  One uid never
 * takes more than its share, and the last LIMIT_SESSIONS_RESERVE slots
 * go only to uids that have none, so another uid can always connect.
 */
static const char *
session_refusal(const struct ucred *cred, struct account *acct)
{
	const struct broker_limits	*l = &broker.limits;

	if (acct == NULL)
		return "too many uids have sessions or log lines";
	if (!broker.private && cred->uid == broker.uid)
		return "it is the broker's own uid";
	if (nsessions >= l->sessions)
		return "the broker has all the sessions it may";
	if (account_sessions(acct) >= l->sessions_per_uid)
		return "its uid has all the sessions it may";
	if (account_sessions(acct) > 0 &&
	    nsessions >= l->sessions - l->sessions_reserve)
		return "the slots left are for uids with no session";
	return NULL;
}

/*
 * A new session on fd, of the peer SO_PEERCRED names or, given, of the
 * launch.  Returns 0, or -1 with fd closed and *why set.
 */
static int
session_new(int fd, const struct ucred *given, const char **why)
{
	struct session	*s;
	struct account	*acct;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);

	if (given != NULL)
		cred = *given;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warnx("session refused: SO_PEERCRED: %s", strerror(errno));
		close(fd);
		*why = "its credentials are unknown";
		return -1;
	}
	acct = account_get(cred.uid);
	if ((*why = session_refusal(&cred, acct)) != NULL) {
		counters.sessions_refused++;
		account_log(acct, LOG_LEVEL_WARN, "session of uid %u pid %d "
		    "refused: %s (%u open, %u of this uid)", (unsigned)cred.uid,
		    (int)cred.pid, *why, nsessions,
		    acct != NULL ? account_sessions(acct) : 0);
		close(fd);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->in = malloc(PROTO_MESSAGE_MAX)) == NULL) {
		log_warnx("session refused: out of memory");
		if (s != NULL)
			free(s);
		close(fd);
		*why = "the broker is out of memory";
		return -1;
	}
	s->id = ++broker.next_session_id;
	s->uid = cred.uid;
	s->gid = cred.gid;
	s->pid = cred.pid;
	s->acct = acct;
	s->opened_ms = loop_now();
	counters.sessions_opened++;
	if (given != NULL) {
		s->from_source = true;
		session_given_groups(s);
	} else
		session_peer_groups(s, fd);
	TAILQ_INIT(&s->push_waiters);
	s->acct = acct;
	proto_buf_init(&s->out, SESSION_OUTPUT_MAX);
	if (proto_buf_reserve(&s->out, LIMIT_SESSION_OUTPUT_KEEP) == NULL) {
		log_warnx("session refused: out of memory");
		free(s->in);
		free(s);
		close(fd);
		return -1;
	}
	proto_packer_init(&s->pk, &s->out);
	msgpack_unpacked_init(&s->unpacked);
	/*
	 * A larger socket buffer toward the client means fewer wake-ups per
	 * byte streamed to it; the kernel caps it at net.core.wmem_max, and
	 * a session works with whatever it got.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF,
	    &(int){ LIMIT_SESSION_SOCKET_BUFFER }, sizeof(int)) == -1)
		log_debug("session %llu: SO_SNDBUF: %s",
		    (unsigned long long)s->id, strerror(errno));
	if (loop_add(&s->io, fd, SOCKET_EVENTS, session_event, s) == -1) {
		log_warnx("session refused: epoll: %s", strerror(errno));
		msgpack_unpacked_destroy(&s->unpacked);
		proto_buf_free(&s->out);
		free(s->in);
		free(s);
		close(fd);
		*why = "the broker cannot watch it";
		return -1;
	}
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	nsessions++;
	account_add(acct, 1, 0);
	/*
	 * The launched command's may wait in the source's queue until a
	 * process takes it (source.c).
	 */
	if (given == NULL)
		timer_set(&s->hello_timer, loop_now() + LIMIT_HELLO_MS,
		    hello_expire);
	account_log(acct, LOG_LEVEL_INFO, "session %llu opened: uid %u gid %u "
	    "pid %d", (unsigned long long)s->id, (unsigned)s->uid,
	    (unsigned)s->gid, (int)s->pid);
	session_input(s, false);
	return 0;
}

static void
listen_event(struct loop_io *io, uint32_t events)
{
	const char	*why;
	int		 fd;

	(void)events;
	for (;;) {
		fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			session_new(fd, NULL, &why);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE) {
			log_warnx("session refused: out of descriptors");
			if (refuse_with_reserve(io->fd))
				continue;
			return;
		}
		if (errno != EAGAIN)
			log_warnx("accept on the broker socket: %s",
			    strerror(errno));
		return;
	}
}

int
session_open(int fd, const struct ucred *cred, const char **why)
{
	return session_new(fd, cred, why);
}

void
session_listen_socket(int fd)
{
	if ((reserve_fd = eventfd(0, EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	if (loop_add(&listen_io, fd, EPOLLIN, listen_event, NULL) == -1)
		fatal("epoll_ctl");
}
