/*
 * TCP listeners.  Each accepted connection becomes a connection handle
 * of the listener's session; the client never holds a descriptor.
 *
 * For a streaming session a listener with no accept call waiting takes
 * one connection ahead (pending_fd) and tells the client with an
 * acceptable notification, so that a client can wait on listeners and
 * connections together.  The next accept call gets that connection.
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

struct listener {
	struct loop_io		 io;
	struct session		*session;
	uint32_t		 handle;
	uint32_t		 timeout_ms;
	struct call_queue	 accepters;
	struct quota		*quota;
	bool			 counted;	/* holds a listener */
	uint16_t		 asked_port;	/* as the request named it */
	int			 pending_fd;	/* taken ahead, or -1 */
	bool			 told;		/* acceptable pushed for it */
	struct push_waiter	 push_wait;
};

static void	pump_accepts(struct listener *l);
static void	accept_ahead(struct listener *l);

void
listener_destroy(struct listener *l, bool reply)
{
	if (reply)
		call_queue_fail(&l->accepters, TB_ECLOSED,
		    "the listener was closed");
	else
		call_queue_drop(&l->accepters);
	if (l->counted)
		quota_release(l->quota, QUOTA_LISTENER);
	if (l->pending_fd != -1) {
		close(l->pending_fd);
		session_handle_extra(l->session, -1);
	}
	session_push_cancel(l->session, &l->push_wait);
	session_handle_free(l->session, l->handle);
	log_debug("session %llu: listener %u closed",
	    (unsigned long long)session_id(l->session), l->handle);
	loop_release(&l->io);
}

void
listener_set_timeout(struct listener *l, uint32_t ms)
{
	l->timeout_ms = ms;
}

bool
listener_revoke(struct listener *l)
{
	const struct policy_tenant	*tn = session_tenant(l->session);
	struct sockaddr_storage		 ss;
	struct policy_request		 req = { POLICY_LISTEN, NULL, NULL, 0 };
	struct policy_decision		 d;
	const struct policy_rule	*deny;
	struct host_addr		 addr;
	socklen_t			 len = sizeof(ss);
	uint16_t			 port;

	if (getsockname(l->io.fd, (struct sockaddr *)&ss, &len) == -1 ||
	    host_addr_from_sockaddr(&ss, &addr, &port) != 0)
		return false;
	req.addr = &addr;
	/* As it was asked (port 0 too), then its port against the denials. */
	req.port = l->asked_port;
	policy_decide(broker.policy, tn, &broker.ctx, &req, &d);
	if (d.verdict != POLICY_DENY && l->asked_port == 0) {
		req.port = port;
		if ((deny = policy_deny_rule(tn, &req)) != NULL &&
		    tn->mode != POLICY_REPORT) {
			d.verdict = POLICY_DENY;
			d.reason = POLICY_BY_RULE;
			d.rule = deny;
		}
	}
	if (d.verdict != POLICY_DENY)
		return false;
	audit_revoke(l->session, tn, POLICY_LISTEN, NULL, &addr, port,
	    l->handle, &d);
	listener_destroy(l, true);
	return true;
}

void
listener_report(struct listener *l, struct report_handle *r)
{
	r->handle = l->handle;
	r->listener = true;
	r->state = "listening";
	if (listener_local_addr(l, r->local, sizeof(r->local)) != 0)
		snprintf(r->local, sizeof(r->local), "?");
}

int
listener_local_addr(struct listener *l, char *buf, size_t cap)
{
	return sockaddr_text(l->io.fd, false, buf, cap);
}

/* The port the listener is bound to. */
static int
listener_port(struct listener *l, uint16_t *port)
{
	struct sockaddr_storage	ss;
	struct host_addr	addr;
	socklen_t		len = sizeof(ss);

	if (getsockname(l->io.fd, (struct sockaddr *)&ss, &len) == -1 ||
	    host_addr_from_sockaddr(&ss, &addr, port) != 0)
		return -1;
	return 0;
}

static void
listener_event(struct loop_io *io, uint32_t events)
{
	(void)events;
	pump_accepts(io->owner);
}

/* Opens the socket; returns the descriptor or a negative TB_E* code. */
static int
open_listener(const struct host_addr *addr, uint16_t port, char *why,
    size_t whylen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, on = 1;

	sslen = host_addr_to_sockaddr(addr, port, &ss);
	fd = socket(addr->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	/* [::] means IPv6 only; IPv4 needs its own rule and listener. */
	if (addr->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1 ||
	    listen(fd, LIMIT_LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
 fail:
	snprintf(why, whylen, "%s", strerror(errno));
	if (fd != -1) {
		int code = errno_code(errno);
		close(fd);
		return code;
	}
	return errno_code(errno);
}

void
method_listen(struct request *req)
{
	struct session			*s = req->session;
	const struct proto_arg		*arg = &req->args[0];
	const struct policy_tenant	*tn = session_tenant(s);
	struct policy_request		 preq = { POLICY_LISTEN, NULL, NULL,
					    0 };
	struct policy_decision		 d;
	const struct policy_rule	*deny;
	struct audit			 a = { 0 };
	struct host_addr		 addr;
	struct listener			*l;
	char				 text[PROTO_STRING_MAX + 1], rule[POLICY_EXPLAIN_MAX];
	char				 why[BROKER_WHY_MAX], local[PROTO_ADDR_STRLEN];
	const char			*bad;
	int				 fd, rc;

	memcpy(text, arg->ptr, arg->len);
	text[arg->len] = '\0';
	if (host_parse_addr_port(text, arg->len, &addr, &preq.port,
	    &bad) != 0) {
		reply_error(s, req->msgid, TB_EINVAL, "listen: bad address "
		    "\"%s\": %s", text, bad);
		return;
	}
	preq.addr = &addr;
	policy_decide(broker.policy, tn, &broker.ctx, &preq, &d);
	a.tenant = tn != NULL ? tn->name : NULL;
	a.action = POLICY_LISTEN;
	a.host = text;
	a.port = preq.port;
	a.chosen = &addr;
	a.decision = &d;
	if (d.verdict != POLICY_ALLOW) {
		audit_decision(s, &a);
		policy_explain(broker.policy, &d, &addr, rule, sizeof(rule));
		reply_error(s, req->msgid, TB_EPOLICY, "listen on %s denied "
		    "by %s", text, rule);
		return;
	}
	/* Never past the filter, whatever a reload let through. */
	if (broker.sandboxed && !broker.may_listen) {
		a.failed = "sandbox";
		audit_decision(s, &a);
		reply_error(s, req->msgid, TB_EPOLICY, "listen on %s: this "
		    "broker started without listening; restart it", text);
		return;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		a.failed = "error";
		audit_decision(s, &a);
		reply_error(s, req->msgid, TB_ENOMEM, "listen: out of memory");
		return;
	}
	l->pending_fd = -1;
	if ((l->handle = session_handle_new(s, NULL, l)) == 0) {
		free(l);
		a.failed = "limit";
		audit_decision(s, &a);
		reply_error(s, req->msgid, TB_ELIMIT, "listen: %s",
		    session_handle_full(s, why, sizeof(why)));
		return;
	}
	l->session = s;
	l->asked_port = preq.port;
	TAILQ_INIT(&l->accepters);
	l->io.fd = -1;
	l->io.owner = l;
	if ((l->quota = quota_of(tn)) == NULL && tn != NULL) {
		rc = TB_ENOMEM;
		textf(why, sizeof(why), "out of memory");
	} else
		rc = quota_acquire(l->quota, QUOTA_LISTENER, why, sizeof(why));
	if (rc != 0) {
		a.failed = rc == TB_ENOMEM ? "error" : "quota";
		audit_decision(s, &a);
		reply_error(s, req->msgid, rc, "listen: %s", why);
		listener_destroy(l, false);
		return;
	}
	l->counted = true;
	if ((fd = open_listener(&addr, preq.port, why, sizeof(why))) < 0) {
		a.failed = "error";
		audit_decision(s, &a);
		reply_error(s, req->msgid, fd, "listen on %s: %s", text, why);
		listener_destroy(l, false);
		return;
	}
	if (loop_add(&l->io, fd, EPOLLIN, listener_event, l) == -1) {
		a.failed = "error";
		audit_decision(s, &a);
		reply_error(s, req->msgid, errno_code(errno), "listen: %s",
		    strerror(errno));
		close(fd);
		l->io.fd = -1;
		listener_destroy(l, false);
		return;
	}
	if (listener_local_addr(l, local, sizeof(local)) != 0)
		snprintf(local, sizeof(local), "?");
	/* Port 0: the deny rules judge the port the kernel chose. */
	if (preq.port == 0) {
		if (listener_port(l, &preq.port) != 0) {
			a.failed = "error";
			audit_decision(s, &a);
			reply_error(s, req->msgid, errno_code(errno), "listen: "
			    "no port: %s", strerror(errno));
			listener_destroy(l, false);
			return;
		}
		a.port = preq.port;
		if ((deny = policy_deny_rule(tn, &preq)) != NULL) {
			d.rule = deny;
			d.reason = POLICY_BY_RULE;
			if (tn->mode == POLICY_REPORT)
				d.report = true;
			else {
				d.verdict = POLICY_DENY;
				d.report = false;
			}
		}
		if (d.verdict == POLICY_DENY) {
			audit_decision(s, &a);
			policy_explain(broker.policy, &d, &addr, rule,
			    sizeof(rule));
			reply_error(s, req->msgid, TB_EPOLICY, "listen on %s got "
			    "%s, denied by %s", text, local, rule);
			listener_destroy(l, false);
			return;
		}
	}
	audit_decision(s, &a);
	session_handle_publish(s, l->handle);
	log_info("session %llu: listener %u on %s", (unsigned long long)
	    session_id(s), l->handle, local);
	reply_uint(s, req->msgid, l->handle);
}

/*
 * Decides whether the peer of an accepted connection is handed over
 * (the tenant's accept rules).  Fills the audit record for the caller
 * to log once it knows the outcome.
 */
static bool
peer_allowed(int fd, const struct policy_tenant *tn, struct audit *a,
    struct policy_decision *d, struct host_addr *addr, char *text,
    size_t cap)
{
	struct sockaddr_storage	 ss;
	struct policy_request	 req = { POLICY_ACCEPT, NULL, NULL, 0 };
	socklen_t		 len = sizeof(ss);

	memset(a, 0, sizeof(*a));
	memset(d, 0, sizeof(*d));
	d->verdict = POLICY_DENY;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    host_addr_from_sockaddr(&ss, addr, &req.port) != 0)
		return false;
	host_addr_normalize(addr);
	req.addr = addr;
	policy_decide(broker.policy, tn, &broker.ctx, &req, d);
	host_format_addr(addr, text, cap);
	a->tenant = tn != NULL ? tn->name : NULL;
	a->action = POLICY_ACCEPT;
	a->host = text;
	a->port = req.port;
	a->chosen = addr;
	a->decision = d;
	return d->verdict == POLICY_ALLOW;
}

static void
accept_expire(struct call *call)
{
	struct listener	*l = call->owner;

	TAILQ_REMOVE(&l->accepters, call, entry);
	call_fail(call, TB_ETIMEDOUT, "accept: no connection within the "
	    "timeout");
}

static void
pump_accepts(struct listener *l)
{
	const struct policy_tenant	*tn;
	struct policy_decision		 d;
	struct audit			 a;
	struct host_addr		 peer;
	struct call			*call;
	struct conn			*conn;
	struct quota			*q;
	char				 why[BROKER_WHY_MAX], text[PROTO_ADDR_STRLEN];
	int				 fd, rc;

	while ((call = TAILQ_FIRST(&l->accepters)) != NULL) {
		if ((fd = l->pending_fd) != -1) {
			/* It becomes a connection with a handle of its own. */
			l->pending_fd = -1;
			l->told = false;
			session_handle_extra(l->session, -1);
		} else
			fd = accept4(l->io.fd, NULL, NULL,
			    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			TAILQ_REMOVE(&l->accepters, call, entry);
			call_fail(call, errno_code(errno), "accept: %s",
			    strerror(errno));
			continue;
		}
		/* A peer the accept rules refuse is closed; the call waits on. */
		tn = session_tenant(l->session);
		if (!peer_allowed(fd, tn, &a, &d, &peer, text, sizeof(text))) {
			if (a.decision != NULL)
				audit_decision(l->session, &a);
			close(fd);
			continue;
		}
		TAILQ_REMOVE(&l->accepters, call, entry);
		/* The rate last, so that a refused peer spends none. */
		if ((q = quota_of(tn)) == NULL && tn != NULL) {
			rc = TB_ENOMEM;
			textf(why, sizeof(why), "out of memory");
		} else if ((rc = quota_acquire(q, QUOTA_CONNECTION, why,
		    sizeof(why))) == 0 &&
		    (rc = quota_rate(q, why, sizeof(why))) != 0)
			quota_release(q, QUOTA_CONNECTION);
		if (rc != 0) {
			a.failed = rc == TB_ENOMEM ? "error" : "quota";
			audit_decision(l->session, &a);
			close(fd);
			call_fail(call, rc, "accept: %s", why);
			continue;
		}
		if ((conn = conn_accepted(l->session, fd, q)) == NULL) {
			quota_release(q, QUOTA_CONNECTION);
			a.failed = "limit";
			audit_decision(l->session, &a);
			call_fail(call, TB_ELIMIT, "accept: %s",
			    session_handle_full(l->session, why, sizeof(why)));
			continue;
		}
		audit_decision(l->session, &a);
		log_debug("session %llu: listener %u accepted connection %u",
		    (unsigned long long)session_id(l->session), l->handle,
		    conn_handle(conn));
		reply_uint(call->session, call->msgid, conn_handle(conn));
		call_free(call);
		conn_stream_start(conn, true);
	}
	accept_ahead(l);
}

/* Pushes acceptable for the connection taken ahead, when there is room. */
static void
tell_acceptable(struct listener *l)
{
	msgpack_packer	*pk;

	if (l->told || l->pending_fd == -1)
		return;
	if (session_push_room(l->session) < NOTE_SMALL_MAX) {
		session_push_wait(l->session, &l->push_wait);
		return;
	}
	pk = note_begin(l->session, PROTO_BNOTE_ACCEPTABLE, 1);
	msgpack_pack_uint32(pk, l->handle);
	note_end(l->session);
	l->told = true;
}

static void
tell_resume(struct push_waiter *w)
{
	tell_acceptable((struct listener *)((char *)w -
	    offsetof(struct listener, push_wait)));
}

/*
 * With no accept call waiting, takes one connection whose peer the
 * accept rules allow (refused peers are logged and closed, as accept
 * does), and says so.  The rules are asked again when it is accepted.
 */
static void
accept_ahead(struct listener *l)
{
	const struct policy_tenant	*tn;
	struct policy_decision		 d;
	struct audit			 a;
	struct host_addr		 peer;
	char				 text[PROTO_ADDR_STRLEN];
	int				 fd;

	if (session_recv_window(l->session) == 0 || l->pending_fd != -1 ||
	    !TAILQ_EMPTY(&l->accepters))
		return;
	/* The connection taken ahead is counted like a handle, or waits. */
	if (!session_handle_extra(l->session, 1))
		return;
	l->push_wait.resume = tell_resume;
	for (;;) {
		fd = accept4(l->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			session_handle_extra(l->session, -1);
			return;		/* the next event, or accept, says */
		}
		tn = session_tenant(l->session);
		if (peer_allowed(fd, tn, &a, &d, &peer, text, sizeof(text)))
			break;
		if (a.decision != NULL)
			audit_decision(l->session, &a);
		close(fd);
	}
	l->pending_fd = fd;
	tell_acceptable(l);
}

void
method_accept(struct request *req)
{
	struct listener	*l;
	struct call	*call;

	if ((l = session_listener(req, (uint32_t)req->args[0].u)) == NULL)
		return;
	if ((call = call_new(req, l, l->timeout_ms, accept_expire)) == NULL)
		return;
	TAILQ_INSERT_TAIL(&l->accepters, call, entry);
	if (TAILQ_FIRST(&l->accepters) == call)
		pump_accepts(l);
}
