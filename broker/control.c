/*
 * The control socket: an administrator asks the running broker what it
 * serves.  One command a connection, one line: "status", "status json"
 * or "metrics"; the answer follows and the broker closes the
 * connection.  Only root and members of the control group may ask
 * (peer credentials, on top of the socket's mode).  Answers are built
 * into a buffer of at most CONTROL_OUTPUT_MAX bytes.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

/* Longest command line: bytes. */
#define CONTROL_COMMAND_MAX	64
/* Largest answer: bytes; past it the answer says it was cut. */
#define CONTROL_OUTPUT_MAX	(1024 * 1024)
/* Control connections at once: connections. */
#define CONTROL_CLIENTS_MAX	8
/* Time a control client has to send its command: milliseconds. */
#define CONTROL_COMMAND_MS	2000

struct control_client {
	struct loop_io	 io;
	struct timer	 timer;
	char		 command[CONTROL_COMMAND_MAX + 1];
	size_t		 len;
	char		*out;
	size_t		 outlen;
	size_t		 sent;
	bool		 answered;
};

static struct loop_io	listen_io;
static gid_t		control_gid;
static unsigned		nclients;

/* An answer being built. */
struct answer {
	char	*buf;
	size_t	 len;
	bool	 cut;
	bool	 json;
	bool	 first;		/* no element yet in the current array */
};

static void __attribute__((format(printf, 2, 3)))
out(struct answer *a, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (a->cut)
		return;
	va_start(ap, fmt);
	n = vsnprintf(a->buf + a->len, CONTROL_OUTPUT_MAX - a->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= CONTROL_OUTPUT_MAX - a->len) {
		a->cut = true;
		return;
	}
	a->len += (size_t)n;
}

/* A JSON string; every field comes from the broker, bounded. */
static void
out_json_string(struct answer *a, const char *s)
{
	const unsigned char	*p;

	if (s == NULL) {
		out(a, "null");
		return;
	}
	out(a, "\"");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			out(a, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			out(a, "\\u%04x", *p);
		else
			out(a, "%c", *p);
	}
	out(a, "\"");
}

static void
comma(struct answer *a)
{
	if (!a->first)
		out(a, ",");
	a->first = false;
}

static void
status_tenant(void *arg, const struct report_tenant *t)
{
	struct answer	*a = arg;

	if (!a->json) {
		out(a, "  %-20s %6u %6u %6u %12llu %12llu %8llu %8llu %6llu\n",
		    t->name, t->held[QUOTA_CONNECTION], t->held[QUOTA_LISTENER],
		    t->held[QUOTA_LOOKUP], (unsigned long long)t->bytes[QUOTA_IN],
		    (unsigned long long)t->bytes[QUOTA_OUT],
		    (unsigned long long)t->allowed,
		    (unsigned long long)t->denied,
		    (unsigned long long)t->quota_hits);
		return;
	}
	comma(a);
	out(a, "{\"name\":");
	out_json_string(a, t->name);
	out(a, ",\"connections\":%u,\"listeners\":%u,\"lookups\":%u,"
	    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"allowed\":%llu,"
	    "\"denied\":%llu,\"quota_hits\":%llu}", t->held[QUOTA_CONNECTION],
	    t->held[QUOTA_LISTENER], t->held[QUOTA_LOOKUP],
	    (unsigned long long)t->bytes[QUOTA_IN],
	    (unsigned long long)t->bytes[QUOTA_OUT],
	    (unsigned long long)t->allowed, (unsigned long long)t->denied,
	    (unsigned long long)t->quota_hits);
}

static void
status_session(void *arg, const struct report_session *s)
{
	struct answer	*a = arg;

	if (!a->json) {
		out(a, "  %-8llu %10u %8d %8llu %-20s %7u\n",
		    (unsigned long long)s->id, (unsigned)s->uid, (int)s->pid,
		    (unsigned long long)(s->age_ms / 1000), s->tenant != NULL ?
		    s->tenant : "-", s->handles);
		return;
	}
	comma(a);
	out(a, "{\"session\":%llu,\"uid\":%u,\"pid\":%d,\"age_s\":%llu,"
	    "\"tenant\":", (unsigned long long)s->id, (unsigned)s->uid,
	    (int)s->pid, (unsigned long long)(s->age_ms / 1000));
	out_json_string(a, s->tenant);
	out(a, ",\"handles\":%u}", s->handles);
}

static void
status_handle(void *arg, const struct report_handle *h)
{
	struct answer	*a = arg;

	if (!a->json) {
		out(a, "  %-8llu %6u %-11s %-26s %-26s %12llu %12llu %6llu\n",
		    (unsigned long long)h->session, h->handle, h->state,
		    h->local, h->listener ? "-" : h->peer,
		    (unsigned long long)h->bytes_in,
		    (unsigned long long)h->bytes_out,
		    (unsigned long long)(h->age_ms / 1000));
		return;
	}
	comma(a);
	out(a, "{\"session\":%llu,\"handle\":%u,\"kind\":\"%s\",\"state\":",
	    (unsigned long long)h->session, h->handle, h->listener ?
	    "listener" : "connection");
	out_json_string(a, h->state);
	out(a, ",\"local\":");
	out_json_string(a, h->local);
	out(a, ",\"peer\":");
	out_json_string(a, h->listener ? NULL : h->peer);
	out(a, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"age_s\":%llu}",
	    (unsigned long long)h->bytes_in, (unsigned long long)h->bytes_out,
	    (unsigned long long)(h->age_ms / 1000));
}

/* Sessions first, then their handles: two passes, one per list. */
static void
skip_handle(void *arg, const struct report_handle *h)
{
	(void)arg;
	(void)h;
}

static void
skip_session(void *arg, const struct report_session *s)
{
	(void)arg;
	(void)s;
}

static void
status(struct answer *a)
{
	struct report_denial	d[REPORT_DENIALS];
	unsigned		n, i;

	n = audit_recent(d, REPORT_DENIALS);
	if (a->json) {
		out(a, "{\"tenants\":[");
		a->first = true;
		quota_report(status_tenant, a);
		out(a, "],\"sessions\":[");
		a->first = true;
		session_report(status_session, skip_handle, a);
		out(a, "],\"handles\":[");
		a->first = true;
		session_report(skip_session, status_handle, a);
		out(a, "],\"recent_denials\":[");
		for (i = 0; i < n; i++) {
			out(a, "%s{\"time\":\"%s\",\"uid\":%u,\"tenant\":",
			    i > 0 ? "," : "", d[i].time, (unsigned)d[i].uid);
			out_json_string(a, d[i].tenant);
			out(a, ",\"action\":\"%s\",\"host\":", d[i].action);
			out_json_string(a, d[i].host);
			out(a, ",\"port\":%u,\"reason\":", d[i].port);
			out_json_string(a, d[i].reason);
			out(a, "}");
		}
		out(a, "]}\n");
		return;
	}
	out(a, "tenants:\n  %-20s %6s %6s %6s %12s %12s %8s %8s %6s\n", "name",
	    "conns", "lstnrs", "lookup", "bytes in", "bytes out", "allowed",
	    "denied", "quota");
	quota_report(status_tenant, a);
	out(a, "sessions:\n  %-8s %10s %8s %8s %-20s %7s\n", "session", "uid",
	    "pid", "age(s)", "tenant", "handles");
	session_report(status_session, skip_handle, a);
	out(a, "connections and listeners:\n  %-8s %6s %-11s %-26s %-26s "
	    "%12s %12s %6s\n", "session", "handle", "state", "local", "peer",
	    "bytes in", "bytes out", "age(s)");
	session_report(skip_session, status_handle, a);
	out(a, "recent denials:\n");
	for (i = 0; i < n; i++)
		out(a, "  %s uid %u tenant %s: %s %s:%u (%s)\n", d[i].time,
		    (unsigned)d[i].uid, d[i].tenant, d[i].action, d[i].host,
		    d[i].port, d[i].reason);
}

/* The Prometheus text format: prefix tcpbroker_, base units, _total. */
static void
metric_tenant(void *arg, const struct report_tenant *t)
{
	struct answer	*a = arg;

	out(a, "tcpbroker_connections{tenant=\"%s\"} %u\n", t->name,
	    t->held[QUOTA_CONNECTION]);
	out(a, "tcpbroker_listeners{tenant=\"%s\"} %u\n", t->name,
	    t->held[QUOTA_LISTENER]);
	out(a, "tcpbroker_lookups_waiting{tenant=\"%s\"} %u\n", t->name,
	    t->held[QUOTA_LOOKUP]);
	out(a, "tcpbroker_decisions_total{tenant=\"%s\",verdict=\"allow\"} "
	    "%llu\n", t->name, (unsigned long long)t->allowed);
	out(a, "tcpbroker_decisions_total{tenant=\"%s\",verdict=\"deny\"} "
	    "%llu\n", t->name, (unsigned long long)t->denied);
	out(a, "tcpbroker_received_bytes_total{tenant=\"%s\"} %llu\n",
	    t->name, (unsigned long long)t->bytes[QUOTA_IN]);
	out(a, "tcpbroker_sent_bytes_total{tenant=\"%s\"} %llu\n", t->name,
	    (unsigned long long)t->bytes[QUOTA_OUT]);
	out(a, "tcpbroker_quota_hits_total{tenant=\"%s\"} %llu\n", t->name,
	    (unsigned long long)t->quota_hits);
}

static void
count_session(void *arg, const struct report_session *s)
{
	(void)s;
	(*(unsigned *)arg)++;
}

static void
metrics(struct answer *a)
{
	static const uint64_t	le[] = REPORT_LOOKUP_BUCKETS;
	unsigned		nsessions = 0;
	size_t			i;
	int			code;

	session_report(count_session, skip_handle, &nsessions);
	out(a, "# HELP tcpbroker_sessions Client sessions open.\n"
	    "# TYPE tcpbroker_sessions gauge\ntcpbroker_sessions %u\n",
	    nsessions);
	out(a, "# HELP tcpbroker_sessions_opened_total Sessions opened.\n"
	    "# TYPE tcpbroker_sessions_opened_total counter\n"
	    "tcpbroker_sessions_opened_total %llu\n",
	    (unsigned long long)counters.sessions_opened);
	out(a, "# HELP tcpbroker_sessions_refused_total Sessions refused at "
	    "once (limits, shares, the broker's own uid).\n"
	    "# TYPE tcpbroker_sessions_refused_total counter\n"
	    "tcpbroker_sessions_refused_total %llu\n",
	    (unsigned long long)counters.sessions_refused);
	out(a, "# HELP tcpbroker_no_tenant_total Hellos of clients no tenant "
	    "matches.\n# TYPE tcpbroker_no_tenant_total counter\n"
	    "tcpbroker_no_tenant_total %llu\n",
	    (unsigned long long)counters.no_tenant);
	out(a, "# HELP tcpbroker_connections Connections open, by tenant.\n"
	    "# TYPE tcpbroker_connections gauge\n"
	    "# HELP tcpbroker_listeners Listeners open, by tenant.\n"
	    "# TYPE tcpbroker_listeners gauge\n"
	    "# HELP tcpbroker_lookups_waiting Name lookups waiting, by "
	    "tenant.\n# TYPE tcpbroker_lookups_waiting gauge\n"
	    "# HELP tcpbroker_decisions_total Policy decisions, by tenant and "
	    "verdict.\n# TYPE tcpbroker_decisions_total counter\n"
	    "# HELP tcpbroker_received_bytes_total Bytes received from peers, "
	    "by tenant.\n# TYPE tcpbroker_received_bytes_total counter\n"
	    "# HELP tcpbroker_sent_bytes_total Bytes sent to peers, by "
	    "tenant.\n# TYPE tcpbroker_sent_bytes_total counter\n"
	    "# HELP tcpbroker_quota_hits_total Requests refused by a quota, "
	    "by tenant.\n# TYPE tcpbroker_quota_hits_total counter\n");
	quota_report(metric_tenant, a);
	out(a, "# HELP tcpbroker_errors_total Error replies, by code.\n"
	    "# TYPE tcpbroker_errors_total counter\n");
	for (code = 1; code < TB__ERRNO_COUNT; code++)
		if (counters.errors[code] > 0)
			out(a, "tcpbroker_errors_total{code=\"%s\"} %llu\n",
			    proto_err_name(-code),
			    (unsigned long long)counters.errors[code]);
	out(a, "# HELP tcpbroker_lookup_duration_seconds Time of name "
	    "lookups.\n# TYPE tcpbroker_lookup_duration_seconds histogram\n");
	for (i = 0; i < sizeof(le) / sizeof(le[0]); i++)
		out(a, "tcpbroker_lookup_duration_seconds_bucket{le=\"%g\"} "
		    "%llu\n", (double)le[i] / 1000,
		    (unsigned long long)counters.lookup_le[i]);
	out(a, "tcpbroker_lookup_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "tcpbroker_lookup_duration_seconds_sum %.3f\n"
	    "tcpbroker_lookup_duration_seconds_count %llu\n",
	    (unsigned long long)counters.lookups,
	    (double)counters.lookup_ms / 1000,
	    (unsigned long long)counters.lookups);
	/* Last: who reads the answer knows that it has all of it. */
	out(a, "%s", METRICS_END);
}

static void
client_free(struct control_client *c)
{
	timer_cancel(&c->timer);
	free(c->out);
	c->out = NULL;
	nclients--;
	loop_release(&c->io);
}

static void
client_send(struct control_client *c)
{
	ssize_t	n;

	while (c->sent < c->outlen) {
		n = send(c->io.fd, c->out + c->sent, c->outlen - c->sent,
		    MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;		/* EPOLLOUT goes on */
		break;
	}
	client_free(c);
}

static void
answer(struct control_client *c)
{
	struct answer	a = { 0 };

	c->answered = true;
	timer_cancel(&c->timer);
	if ((a.buf = malloc(CONTROL_OUTPUT_MAX)) == NULL) {
		client_free(c);
		return;
	}
	if (strcmp(c->command, "status") == 0)
		status(&a);
	else if (strcmp(c->command, "status json") == 0) {
		a.json = true;
		status(&a);
	} else if (strcmp(c->command, "metrics") == 0)
		metrics(&a);
	else
		out(&a, "error: unknown command; try status, status json or "
		    "metrics\n");
	if (a.cut) {
		a.len = CONTROL_OUTPUT_MAX - 64;
		a.cut = false;
		out(&a, "\n(cut at %d bytes)\n", CONTROL_OUTPUT_MAX);
	}
	c->out = a.buf;
	c->outlen = a.len;
	client_send(c);
}

static void
client_event(struct loop_io *io, uint32_t events)
{
	struct control_client	*c = io->owner;
	char			*nl;
	ssize_t			 n;

	if (c->answered) {
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			client_send(c);
		return;
	}
	for (;;) {
		n = recv(io->fd, c->command + c->len, CONTROL_COMMAND_MAX -
		    c->len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			client_free(c);
			return;
		}
		c->len += (size_t)n;
		c->command[c->len] = '\0';
		if ((nl = memchr(c->command, '\n', c->len)) != NULL) {
			*nl = '\0';
			answer(c);
			return;
		}
		if (c->len == CONTROL_COMMAND_MAX) {
			client_free(c);
			return;
		}
	}
}

static void
client_expire(struct timer *timer)
{
	client_free((struct control_client *)((char *)timer -
	    offsetof(struct control_client, timer)));
}

/* Root, or the control group as its primary or supplementary group. */
static bool
allowed(int fd, uid_t *uid)
{
	static gid_t	groups[NGROUPS_MAX];
	struct ucred	cred;
	socklen_t	len = sizeof(cred);
	size_t		i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return false;
	*uid = cred.uid;
	if (cred.uid == 0 || (control_gid != 0 && cred.gid == control_gid))
		return true;
	len = sizeof(groups);
	if (control_gid == 0 || getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS,
	    groups, &len) == -1)
		return false;
	for (i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == control_gid)
			return true;
	return false;
}

static void
listen_event(struct loop_io *io, uint32_t events)
{
	struct control_client	*c;
	uid_t			 uid = 0;
	int			 fd;

	(void)events;
	for (;;) {
		fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (!allowed(fd, &uid) || nclients == CONTROL_CLIENTS_MAX ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			log_warnx("control: uid %u refused", (unsigned)uid);
			close(fd);
			continue;
		}
		if (loop_add(&c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
		    client_event, c) == -1) {
			close(fd);
			free(c);
			continue;
		}
		nclients++;
		timer_set(&c->timer, loop_now() + CONTROL_COMMAND_MS,
		    client_expire);
	}
}

void
control_listen(int fd, gid_t group)
{
	control_gid = group;
	if (loop_add(&listen_io, fd, EPOLLIN, listen_event, NULL) == -1)
		fatal("control socket");
}
