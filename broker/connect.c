/*
 * Opening TCP connections: the policy decides a literal address, or a
 * name before and each of its addresses after the resolver's answer;
 * the allowed addresses are dialed in order.  connection.c takes over
 * once the connection is open.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "connection.h"

/* Longest "host:port" target text, with brackets and its NUL: bytes. */
#define TARGET_TEXT_MAX		(PROTO_STRING_MAX + sizeof("[]:65535"))

/* "host:port" for messages; an IPv6 literal in brackets: "[::1]:443". */
static const char *
target_text(const char *host, uint16_t port, char *buf, size_t cap)
{
	bool	bracket = strchr(host, ':') != NULL && host[0] != '[';

	snprintf(buf, cap, bracket ? "[%s]:%u" : "%s:%u", host, port);
	return buf;
}

/* The connection is made; readable when its event said there is input. */
static void
connect_done(struct conn *conn, bool readable)
{
	struct call	*call = conn->dial->connect;
	char		 peer[PROTO_ADDR_STRLEN];

	conn->dial->connect = NULL;
	conn->state = CONN_OPEN;
	conn->opened_ms = loop_now();
	/* A reload that revokes decides it again, by the name it asked. */
	if (broker.revoke && conn->dial->name[0] != '\0')
		conn->name = strdup(conn->dial->name);
	session_handle_publish(conn->session, conn->handle);
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		if (sockaddr_text(conn->io.fd, true, peer, sizeof(peer)) != 0)
			snprintf(peer, sizeof(peer), "?");
		log_debug("session %llu: connection %u to %s (%s) open",
		    (unsigned long long)session_id(conn->session),
		    conn->handle, conn->dial->host, peer);
	}
	connect__abandon(conn, false);
	reply_uint(call->session, call->msgid, conn->handle);
	call_free(call);
	conn_stream_start(conn, readable);
}

void
connect__abandon(struct conn *conn, bool reply)
{
	struct dial	*dial = conn->dial;

	timer_cancel(&dial->resolve_timer);
	if (dial->resolve_id != 0)
		resolver_cancel(dial->resolve_id);
	if (dial->connect != NULL) {
		if (reply)
			call_fail(dial->connect, TB_ECLOSED, "connect: "
			    "the session closed the connection");
		else
			call_free(dial->connect);
	}
	free(dial);
	conn->dial = NULL;
}

/* Fails the connect call and frees the connection. */
static void
connect_fail(struct conn *conn, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
connect_fail(struct conn *conn, int code, const char *fmt, ...)
{
	char	message[PROTO_ERROR_MESSAGE_MAX + 1];
	char	target[TARGET_TEXT_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_debug("session %llu: connect to %s failed: %s",
	    (unsigned long long)session_id(conn->session),
	    target_text(conn->dial->host, conn->dial->port, target,
	    sizeof(target)), message);
	call_fail(conn->dial->connect, code, "%s", message);
	conn->dial->connect = NULL;
	conn_destroy(conn, true);
}

static void
connect_next(struct conn *conn)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct host_addr	*addr;
	char			 target[TARGET_TEXT_MAX];
	int			 fd, code;

	while (conn->dial->next_addr < conn->dial->naddrs) {
		addr = &conn->dial->addrs[conn->dial->next_addr++];
		sslen = host_addr_to_sockaddr(addr, conn->dial->port, &ss);
		fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1) {
			conn->dial->last_error = errno_code(errno);
			continue;
		}
		/* An IPv6 socket never reaches an IPv4 address in disguise. */
		if (addr->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &(int){ 1 }, sizeof(int)) == -1) {
			conn->dial->last_error = errno_code(errno);
			close(fd);
			continue;
		}
		if (connect(fd, (struct sockaddr *)&ss, sslen) == -1 &&
		    errno != EINPROGRESS) {
			conn->dial->last_error = errno_code(errno);
			close(fd);
			continue;
		}
		if (loop_add(&conn->io, fd, SOCKET_EVENTS, conn__event,
		    conn) == -1) {
			conn->dial->last_error = errno_code(errno);
			close(fd);
			conn->io.fd = -1;
			continue;
		}
		conn->state = CONN_CONNECTING;
		return;		/* conn__event() sees the outcome */
	}
	code = conn->dial->last_error ? conn->dial->last_error : TB_EIO;
	connect_fail(conn, code, "connect to %s: %s", target_text(
	    conn->dial->host, conn->dial->port, target, sizeof(target)),
	    proto_err_text(code));
}

void
connect__event(struct conn *conn, uint32_t events)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(int), sslen = sizeof(ss);
	int			error = 0;
	bool			made;

	if (getsockopt(conn->io.fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error == 0) {
		/* Writable with no error and no hang-up: it is connected. */
		made = (events & EPOLLOUT) && !(events & (EPOLLHUP | EPOLLERR));
		if (made || getpeername(conn->io.fd, (struct sockaddr *)&ss,
		    &sslen) == 0) {
			connect_done(conn,
			    (events & (EPOLLIN | SOCKET_EVENTS_DRAIN)) != 0);
			return;
		}
		if (errno == ENOTCONN)
			return;		/* still in progress */
		error = errno;
	}
	conn->dial->last_error = errno_code(error);
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

	audit_connect(conn->session, session_tenant(conn->session),
	    conn->dial->host, conn->dial->port, NULL, &d, failed);
}

static void
connect_expire(struct call *call)
{
	struct conn	*conn = call->owner;
	char		 target[TARGET_TEXT_MAX];

	/* Still resolving: no address was decided, so nothing was logged. */
	if (conn->dial->resolve_id != 0)
		audit_unresolved(conn, "timeout");
	connect_fail(conn, TB_ETIMEDOUT, "connect to %s: no connection "
	    "within the timeout", target_text(conn->dial->host,
	    conn->dial->port, target, sizeof(target)));
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

	policy_decide_resolved(broker.policy, tn, &broker.ctx, conn->dial->name,
	    conn->dial->port, addrs, naddrs, &r);
	for (i = 0; i < r.naddrs; i++)
		if (r.decisions[i].verdict == POLICY_ALLOW)
			conn->dial->addrs[conn->dial->naddrs++] = r.addrs[i];
	if (r.first_denied >= 0) {
		i = (unsigned)r.first_denied;
		policy_explain(broker.policy, &r.decisions[i], &r.addrs[i],
		    rule, sizeof(rule));
		host_format(&r.addrs[i], conn->dial->port, text, sizeof(text));
		textf(why, whylen, "connect to %s (%s) denied by %s",
		    conn->dial->host, text, rule);
	} else
		textf(why, whylen, "connect: %s resolves to an unspecified "
		    "address", conn->dial->host);
	a.tenant = tn != NULL ? tn->name : NULL;
	a.action = POLICY_CONNECT;
	a.host = conn->dial->host;
	a.port = conn->dial->port;
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
	return conn->dial->naddrs;
}

static void
resolved(void *arg, int code, const struct host_addr *addrs, unsigned naddrs)
{
	struct conn	*conn = arg;
	char		 why[PROTO_ERROR_MESSAGE_MAX + 1] = "";

	conn->dial->resolve_id = 0;
	timer_cancel(&conn->dial->resolve_timer);
	if (conn->looking_up) {
		quota_release(conn->quota, QUOTA_LOOKUP);
		conn->looking_up = false;
	}
	if (code != 0) {
		audit_unresolved(conn, "dns");
		connect_fail(conn, code, "connect: %s: %s", conn->dial->host,
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
	struct conn	*conn = ((struct dial *)((char *)timer -
	    offsetof(struct dial, resolve_timer)))->conn;

	resolver_cancel(conn->dial->resolve_id);
	conn->dial->resolve_id = 0;
	audit_unresolved(conn, "dns");
	connect_fail(conn, TB_ERESOLVE, "connect: %s: no answer from the "
	    "resolver within %u ms", conn->dial->host, broker.resolve_ms);
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
	char				 target[TARGET_TEXT_MAX];
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
		reply_error(s, req->msgid, TB_EPOLICY, "connect to %s "
		    "denied by %s", target_text(text, preq.port, target,
		    sizeof(target)), rule);
		return;
	}

	if ((q = quota_of(tn)) == NULL && tn != NULL) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "error");
		reply_error(s, req->msgid, TB_ENOMEM, "connect: out of memory");
		return;
	}
	if ((conn = conn__new(s)) == NULL) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "limit");
		reply_error(s, req->msgid, TB_ELIMIT, "connect: %s",
		    session_handle_full(s, why_quota, sizeof(why_quota)));
		return;
	}
	if ((conn->dial = calloc(1, sizeof(*conn->dial))) == NULL) {
		audit_connect(s, tn, text, preq.port, NULL, &d, "error");
		reply_error(s, req->msgid, TB_ENOMEM, "connect: out of memory");
		conn_destroy(conn, false);
		return;
	}
	conn->dial->conn = conn;
	conn->quota = q;
	snprintf(conn->dial->host, sizeof(conn->dial->host), "%s", text);
	if (!literal)
		memcpy(conn->dial->name, name, sizeof(conn->dial->name));
	conn->dial->port = preq.port;
	conn->dial->connect = call_new(req, conn, timeout_ms, connect_expire);
	if (conn->dial->connect == NULL) {
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
		conn->dial->addrs[0] = addr;
		conn->dial->naddrs = 1;
		connect_next(conn);
		return;
	}
	conn->state = CONN_RESOLVING;
	rc = resolver_lookup(name, session_uid(s), resolved, conn,
	    &conn->dial->resolve_id, &why);
	if (rc != 0) {
		audit_connect(s, tn, text, preq.port, NULL, &d,
		    rc == TB_ELIMIT ? "limit" : "dns");
		connect_fail(conn, rc, "connect: %s: %s", text, why);
		return;
	}
	timer_set(&conn->dial->resolve_timer, loop_now() + broker.resolve_ms,
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
