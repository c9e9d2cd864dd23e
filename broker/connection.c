/*
 * TCP connections: connecting (through the policy and the resolver),
 * and the read and write calls.  Received bytes are read only while a
 * read call waits, into a buffer of at most LIMIT_CONN_BUFFER bytes
 * charged to the session, so a client that stops reading stops the
 * peer through TCP flow control instead of filling the broker.
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

/* Smallest receive buffer a connection allocates: bytes. */
#define CONN_BUFFER_MIN	4096

/* A read call never waits for more than one full buffer. */
_Static_assert(PROTO_DATA_MAX <= LIMIT_CONN_BUFFER &&
    PROTO_LINE_MAX <= LIMIT_CONN_BUFFER, "reads must fit the buffer");

enum conn_state {
	CONN_RESOLVING,
	CONN_CONNECTING,
	CONN_OPEN
};

struct conn {
	struct loop_io		 io;
	struct session		*session;
	uint32_t		 handle;
	enum conn_state		 state;
	uint32_t		 timeout_ms;
	bool			 eof;		/* the peer sent FIN */
	bool			 read_shut;
	bool			 write_shut;
	int			 error;		/* sticky TB_E* code */
	uint8_t			*buf;		/* received, not yet read */
	size_t			 buflen;
	size_t			 bufcap;
	struct call_queue	 readers;
	struct call_queue	 writers;

	/* The tenant's quota this connection counts in, and its traffic. */
	struct quota		*quota;
	bool			 counted;	/* holds a connection */
	bool			 looking_up;	/* holds a lookup */
	struct timer		 throttle_in;	/* bandwidth used up: wait */
	struct timer		 throttle_out;
	uint64_t		 opened_ms;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	char			 tenant[LIMIT_POLICY_NAME + 1];

	/* While connecting. */
	struct call		*connect;
	uint32_t		 resolve_id;
	struct timer		 resolve_timer;
	char			 host[PROTO_STRING_MAX + 1];	/* as asked */
	char			 name[PROTO_HOST_NAME_MAX + 1];	/* normalised */
	uint16_t		 port;
	struct host_addr	 addrs[LIMIT_RESOLVE_ADDRS];
	unsigned		 naddrs;
	unsigned		 next_addr;
	int			 last_error;
};

static void	conn_event(struct loop_io *io, uint32_t events);
static void	pump_reads(struct conn *conn);
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

static struct conn *
conn_new(struct session *s)
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

	timer_cancel(&conn->resolve_timer);
	timer_cancel(&conn->throttle_in);
	timer_cancel(&conn->throttle_out);
	if (conn->resolve_id != 0)
		resolver_cancel(conn->resolve_id);
	if (conn->looking_up)
		quota_release(conn->quota, QUOTA_LOOKUP);
	if (conn->counted)
		quota_release(conn->quota, QUOTA_CONNECTION);
	if (conn->connect != NULL) {
		if (reply)
			call_fail(conn->connect, TB_ECLOSED, "connect: "
			    "the session closed the connection");
		else
			call_free(conn->connect);
		conn->connect = NULL;
	}
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
	session_handle_free(conn->session, conn->handle);
	if (conn->state == CONN_OPEN) {
		if (sockaddr_text(conn->io.fd, true, peer, sizeof(peer)) != 0)
			snprintf(peer, sizeof(peer), "?");
		audit_close(conn->session, conn->tenant, conn->handle, peer,
		    conn->bytes_in, conn->bytes_out,
		    loop_now() - conn->opened_ms);
	}
	loop_release(&conn->io);
}

struct conn *
conn_accepted(struct session *s, int fd, struct quota *q, const char *tenant)
{
	struct conn	*conn;

	if ((conn = conn_new(s)) == NULL) {
		close(fd);
		return NULL;
	}
	conn->quota = q;
	snprintf(conn->tenant, sizeof(conn->tenant), "%s", tenant);
	conn->opened_ms = loop_now();
	if (loop_add(&conn->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
	    conn_event, conn) == -1) {
		close(fd);
		conn->io.fd = -1;
		conn_destroy(conn, false);
		return NULL;
	}
	conn->state = CONN_OPEN;
	conn->counted = true;		/* the listener took it */
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

/* Connecting. */

static void
connect_done(struct conn *conn)
{
	struct call	*call = conn->connect;
	char		 peer[PROTO_ADDR_STRLEN];

	conn->connect = NULL;
	conn->state = CONN_OPEN;
	conn->opened_ms = loop_now();
	session_handle_publish(conn->session, conn->handle);
	if (sockaddr_text(conn->io.fd, true, peer, sizeof(peer)) != 0)
		snprintf(peer, sizeof(peer), "?");
	log_debug("session %llu: connection %u to %s (%s) open",
	    (unsigned long long)session_id(conn->session), conn->handle,
	    conn->host, peer);
	reply_uint(call->session, call->msgid, conn->handle);
	call_free(call);
}

/* Fails the connect call and frees the connection. */
static void
connect_fail(struct conn *conn, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
connect_fail(struct conn *conn, int code, const char *fmt, ...)
{
	char	message[PROTO_ERROR_MESSAGE_MAX + 1];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_debug("session %llu: connect to %s:%u failed: %s",
	    (unsigned long long)session_id(conn->session), conn->host,
	    conn->port, message);
	call_fail(conn->connect, code, "%s", message);
	conn->connect = NULL;
	conn_destroy(conn, true);
}

static void
connect_next(struct conn *conn)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct host_addr	*addr;
	int			 fd;

	while (conn->next_addr < conn->naddrs) {
		addr = &conn->addrs[conn->next_addr++];
		sslen = host_addr_to_sockaddr(addr, conn->port, &ss);
		fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1) {
			conn->last_error = errno_code(errno);
			continue;
		}
		/* An IPv6 socket never reaches an IPv4 address in disguise. */
		if (addr->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &(int){ 1 }, sizeof(int)) == -1) {
			conn->last_error = errno_code(errno);
			close(fd);
			continue;
		}
		if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 &&
		    errno != EINPROGRESS) {
			conn->last_error = errno_code(errno);
			close(fd);
			continue;
		}
		if (loop_add(&conn->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
		    conn_event, conn) == -1) {
			conn->last_error = errno_code(errno);
			close(fd);
			conn->io.fd = -1;
			continue;
		}
		conn->state = CONN_CONNECTING;
		return;		/* conn_event() sees the outcome */
	}
	connect_fail(conn, conn->last_error ? conn->last_error : TB_EIO,
	    "connect to %s:%u: %s", conn->host, conn->port,
	    proto_err_text(conn->last_error ? conn->last_error : TB_EIO));
}

static void
connect_event(struct conn *conn)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(int), sslen = sizeof(ss);
	int			error = 0;

	if (getsockopt(conn->io.fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error == 0) {
		if (getpeername(conn->io.fd, (struct sockaddr *)&ss,
		    &sslen) == 0) {
			connect_done(conn);
			return;
		}
		if (errno == ENOTCONN)
			return;		/* still in progress */
		error = errno;
	}
	conn->last_error = errno_code(error);
	loop_remove(&conn->io);
	connect_next(conn);
}

/* Logs the decision on a connect that resolves nothing more. */
static void
audit_connect(struct session *s, const struct policy_tenant *tn,
    const char *host, uint16_t port, const struct host_addr *chosen,
    const struct policy_decision *d, const char *failed)
{
	struct audit	a = { 0 };

	a.tenant = tn != NULL ? tn->name : NULL;
	a.action = POLICY_CONNECT;
	a.host = host;
	a.port = port;
	a.chosen = chosen;
	a.decision = d;
	a.failed = failed;
	audit_decision(s, &a);
}

/* Logs a connect to a name that failed before any address was decided. */
static void
audit_unresolved(struct conn *conn, const char *failed)
{
	struct policy_decision	d = { .verdict = POLICY_DENY };

	audit_connect(conn->session, session_tenant(conn->session), conn->host,
	    conn->port, NULL, &d, failed);
}

static void
connect_expire(struct call *call)
{
	struct conn	*conn = call->owner;

	/* Still resolving: no address was decided, so nothing was logged. */
	if (conn->resolve_id != 0)
		audit_unresolved(conn, "timeout");
	connect_fail(conn, TB_ETIMEDOUT, "connect to %s:%u: no connection "
	    "within the timeout", conn->host, conn->port);
}

/*
 * Decides every address a name resolved to, and keeps those allowed, in
 * order; logs one decision for the name.  Returns the kept count.
 */
static unsigned
decide_addresses(struct conn *conn, const struct host_addr *addrs,
    unsigned naddrs, char *why, size_t whylen)
{
	const struct policy_tenant	*tn = session_tenant(conn->session);
	struct policy_resolved		 r;
	struct policy_decision		 none = { .verdict = POLICY_DENY };
	struct audit			 a = { 0 };
	char				 text[PROTO_ADDR_STRLEN], rule[POLICY_EXPLAIN_MAX];
	unsigned			 i;

	policy_decide_resolved(broker.policy, tn, &broker.ctx, conn->name,
	    conn->port, addrs, naddrs, &r);
	for (i = 0; i < r.naddrs; i++)
		if (r.decisions[i].verdict == POLICY_ALLOW)
			conn->addrs[conn->naddrs++] = r.addrs[i];
	if (r.first_denied >= 0) {
		i = (unsigned)r.first_denied;
		policy_explain(broker.policy, &r.decisions[i], &r.addrs[i],
		    rule, sizeof(rule));
		host_format(&r.addrs[i], conn->port, text, sizeof(text));
		textf(why, whylen, "connect to %s (%s) denied by %s",
		    conn->host, text, rule);
	} else
		textf(why, whylen, "connect: %s resolves to an unspecified "
		    "address", conn->host);
	a.tenant = tn != NULL ? tn->name : NULL;
	a.action = POLICY_CONNECT;
	a.host = conn->host;
	a.port = conn->port;
	a.addrs = r.addrs;
	a.naddrs = r.naddrs;
	if (r.first_allowed >= 0) {
		/* The first one tried. */
		a.chosen = &r.addrs[r.first_allowed];
		a.decision = &r.decisions[r.first_allowed];
	} else if (r.first_denied >= 0)
		a.decision = &r.decisions[r.first_denied];
	else {
		a.decision = &none;
		a.failed = "unspecified";
	}
	audit_decision(conn->session, &a);
	return conn->naddrs;
}

static void
resolved(void *arg, int code, const struct host_addr *addrs, unsigned naddrs)
{
	struct conn	*conn = arg;
	char		 why[PROTO_ERROR_MESSAGE_MAX + 1] = "";

	conn->resolve_id = 0;
	timer_cancel(&conn->resolve_timer);
	if (conn->looking_up) {
		quota_release(conn->quota, QUOTA_LOOKUP);
		conn->looking_up = false;
	}
	if (code != 0) {
		audit_unresolved(conn, "dns");
		connect_fail(conn, code, "connect: %s: %s", conn->host,
		    code == TB_ENOTFOUND ? "no such host" :
		    "name resolution failed");
		return;
	}
	/* Connect only to addresses checked here; never resolve again. */
	if (decide_addresses(conn, addrs, naddrs, why, sizeof(why)) == 0) {
		connect_fail(conn, TB_EPOLICY, "%s", why);
		return;
	}
	connect_next(conn);
}

/* The resolver did not answer in time: a DNS server may be down. */
static void
resolve_expire(struct timer *timer)
{
	struct conn	*conn = (struct conn *)((char *)timer -
	    offsetof(struct conn, resolve_timer));

	resolver_cancel(conn->resolve_id);
	conn->resolve_id = 0;
	audit_unresolved(conn, "dns");
	connect_fail(conn, TB_ERESOLVE, "connect: %s: no answer from the "
	    "resolver within %u ms", conn->host, broker.resolve_ms);
}

static void
start_connect(struct request *req, uint32_t timeout_ms)
{
	struct session			*s = req->session;
	const struct proto_arg		*host = &req->args[0];
	const struct policy_tenant	*tn = session_tenant(s);
	struct policy_request		 preq = { POLICY_CONNECT, NULL, NULL,
					    0 };
	struct policy_decision		 d;
	struct host_addr		 addr;
	struct conn			*conn;
	struct quota			*q;
	char				 name[PROTO_HOST_NAME_MAX + 1];
	char				 text[PROTO_STRING_MAX + 1], rule[POLICY_EXPLAIN_MAX];
	char				 why_quota[BROKER_WHY_MAX];
	const char			*p = (const char *)host->ptr, *why;
	size_t				 len = host->len;
	bool				 literal;
	int				 rc;

	memcpy(text, p, len);
	text[len] = '\0';
	preq.port = (uint16_t)req->args[1].u;
	if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
		p++;
		len -= 2;
	}
	literal = host_parse_literal(p, len, &addr) == 0;
	if (literal && host_addr_unspecified(&addr)) {
		reply_error(s, req->msgid, TB_EINVAL, "connect: %s is the "
		    "unspecified address", text);
		return;
	}
	if (literal)
		preq.addr = &addr;
	else if (host_normalize_name(p, len, name, &why) == 0)
		preq.name = name;
	else {
		reply_error(s, req->msgid, TB_EINVAL, "connect: bad host "
		    "\"%s\": %s", text, why);
		return;
	}

	/* A name is checked before any DNS query, so a denial leaks none. */
	policy_decide(broker.policy, tn, &broker.ctx, &preq, &d);
	if (d.verdict == POLICY_DENY) {
		audit_connect(s, tn, text, preq.port, NULL, &d, NULL);
		policy_explain(broker.policy, &d, preq.addr, rule, sizeof(rule));
		reply_error(s, req->msgid, TB_EPOLICY, "connect to %s:%u "
		    "denied by %s", text, preq.port, rule);
		return;
	}

	q = quota_of(tn);
	if ((conn = conn_new(s)) == NULL) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "limit");
		reply_error(s, req->msgid, TB_ELIMIT, "connect: %s",
		    session_handle_full(s, why_quota, sizeof(why_quota)));
		return;
	}
	conn->quota = q;
	snprintf(conn->tenant, sizeof(conn->tenant), "%s", tn->name);
	snprintf(conn->host, sizeof(conn->host), "%s", text);
	if (!literal)
		memcpy(conn->name, name, sizeof(conn->name));
	conn->port = preq.port;
	conn->connect = call_new(req, conn, timeout_ms, connect_expire);
	if (conn->connect == NULL) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "limit");
		conn_destroy(conn, false);
		return;
	}
	if ((rc = quota_acquire(q, QUOTA_CONNECTION, why_quota,
	    sizeof(why_quota))) != 0) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "quota");
		connect_fail(conn, rc, "connect: %s", why_quota);
		return;
	}
	conn->counted = true;
	if (!literal) {
		if ((rc = quota_acquire(q, QUOTA_LOOKUP, why_quota,
		    sizeof(why_quota))) != 0) {
			audit_connect(s, tn, text, preq.port, NULL, &d,
			    "quota");
			connect_fail(conn, rc, "connect: %s", why_quota);
			return;
		}
		conn->looking_up = true;
	}
	/* The rate is checked last, so a connect refused earlier spends none. */
	if ((rc = quota_rate(q, why_quota, sizeof(why_quota))) != 0) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "quota");
		connect_fail(conn, rc, "connect: %s", why_quota);
		return;
	}
	if (literal) {
		audit_connect(s, tn, text, preq.port, &addr, &d, NULL);
		conn->addrs[0] = addr;
		conn->naddrs = 1;
		connect_next(conn);
		return;
	}
	conn->state = CONN_RESOLVING;
	rc = resolver_lookup(name, session_uid(s), resolved, conn,
	    &conn->resolve_id, &why);
	if (rc != 0) {
		audit_connect(s, tn, text, preq.port, NULL, &d,
		    rc == TB_ELIMIT ? "limit" : "dns");
		connect_fail(conn, rc, "connect: %s: %s", text, why);
		return;
	}
	timer_set(&conn->resolve_timer, loop_now() + broker.resolve_ms,
	    resolve_expire);
}

void
method_connect(struct request *req)
{
	start_connect(req, 0);
}

void
method_connect_timeout(struct request *req)
{
	if (req->args[2].u == 0) {
		reply_error(req->session, req->msgid, TB_EINVAL,
		    "connect_timeout: the timeout must be at least 1 ms");
		return;
	}
	start_connect(req, (uint32_t)req->args[2].u);
}

/* Reading. */

/* Makes room for want buffered bytes; -1 when the session is over budget. */
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
		return -1;
	if ((p = realloc(conn->buf, cap)) == NULL) {
		session_charge(conn->session, -(ssize_t)(cap - conn->bufcap));
		return -1;
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

static void
reply_data(struct call *call, const uint8_t *data, size_t len)
{
	msgpack_packer	*pk = reply_begin(call->session, call->msgid);

	msgpack_pack_bin_with_body(pk, data, len);
	reply_end(call->session);
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
		reply_data(call, conn->buf, n);
		if (call->method == PROTO_METHOD_READ)
			buffer_consume(conn, n);
		call_free(call);
		return true;
	case PROTO_METHOD_READ_EXACT:
		if (conn->buflen >= call->count) {
			reply_data(call, conn->buf, call->count);
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
			reply_data(call, conn->buf, end);
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
			reply_data(call, conn->buf, n);
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

/* How many buffered bytes a read call needs before it can complete. */
static size_t
read_want(const struct call *call)
{
	if (call->method == PROTO_METHOD_READ ||
	    call->method == PROTO_METHOD_PEEK)
		return CONN_BUFFER_MIN;
	return call->count;
}

static void
pump_reads(struct conn *conn)
{
	struct call	*call;
	uint64_t	 retry;
	size_t		 want;
	ssize_t		 n;

	while ((call = TAILQ_FIRST(&conn->readers)) != NULL) {
		TAILQ_REMOVE(&conn->readers, call, entry);
		if (try_read(conn, call))
			continue;
		TAILQ_INSERT_HEAD(&conn->readers, call, entry);
		if (buffer_reserve(conn, read_want(call)) != 0) {
			TAILQ_REMOVE(&conn->readers, call, entry);
			call_fail(call, TB_ELIMIT, "%s: the session has %d "
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
		else if (n == -1 && errno != EINTR)
			conn->error = errno_code(errno);
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
	int		 how;

	if ((conn = session_conn(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	switch (req->args[1].u) {
	case PROTO_SHUTDOWN_READ:	how = SHUT_RD; break;
	case PROTO_SHUTDOWN_WRITE:	how = SHUT_WR; break;
	default:			how = SHUT_RDWR; break;
	}
	if (shutdown(conn->io.fd, how) == -1 && errno != ENOTCONN) {
		reply_error(req->session, req->msgid, errno_code(errno),
		    "shutdown: %s", strerror(errno));
		return;
	}
	if (how != SHUT_WR) {
		/* Unread data is dropped; reads now see the end. */
		conn->read_shut = true;
		buffer_release(conn);
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
	pump_reads((struct conn *)((char *)timer -
	    offsetof(struct conn, throttle_in)));
}

static void
throttle_out_expire(struct timer *timer)
{
	pump_writes((struct conn *)((char *)timer -
	    offsetof(struct conn, throttle_out)));
}

static void
conn_event(struct loop_io *io, uint32_t events)
{
	struct conn	*conn = io->owner;

	if (conn->state == CONN_CONNECTING) {
		connect_event(conn);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		pump_reads(conn);
	if (!io->dead && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		pump_writes(conn);
}
