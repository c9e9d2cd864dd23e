/*
 * The decision log: one JSON object a line for every policy decision
 * and every closed connection, to stderr or the file of --decision-log.
 * Strings are escaped; every field is bounded by a limit elsewhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

/* Longest decision log line: bytes. */
#define AUDIT_LINE_MAX	4096

static int		 audit_fd = STDERR_FILENO;
static const char	*audit_path;	/* --decision-log, or NULL */

void
audit_open(const char *path)
{
	if (path == NULL)
		return;
	if ((audit_fd = open(path, LOG_FILE_FLAGS, LOG_FILE_MODE)) == -1)
		fatal("--decision-log %s", path);
	audit_path = path;
}

int
audit_reopen(int fd)
{
	if (fd == -1)
		return 0;
	if (audit_path == NULL || !log_file_moved(audit_fd, fd)) {
		close(fd);
		return 0;
	}
	close(audit_fd);
	audit_fd = fd;
	return 1;
}

struct line {
	char	buf[AUDIT_LINE_MAX];
	size_t	len;
};

static void __attribute__((format(printf, 2, 3)))
put(struct line *l, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (l->len >= sizeof(l->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n;
}

/* A JSON string, or null. */
static void
put_string(struct line *l, const char *key, const char *s)
{
	const unsigned char	*p;

	if (s == NULL) {
		put(l, ",\"%s\":null", key);
		return;
	}
	put(l, ",\"%s\":\"", key);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			put(l, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			put(l, "\\u%04x", *p);
		else
			put(l, "%c", *p);
	}
	put(l, "\"");
}

static void
put_addr(struct line *l, const struct host_addr *addr)
{
	char	text[PROTO_ADDR_STRLEN];

	host_format_addr(addr, text, sizeof(text));
	put(l, "\"%s\"", text);
}

static void
begin_line(struct line *l, const char *event)
{
	struct timespec	ts;
	struct tm	tm;
	char		stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	l->len = 0;
	put(l, "{\"event\":\"%s\",\"time\":\"%s.%03ldZ\"", event, stamp,
	    ts.tv_nsec / 1000000);
}

static void
begin(struct line *l, const char *event, struct session *s,
    const char *tenant)
{
	begin_line(l, event);
	put_string(l, "tenant", tenant);
	put(l, ",\"uid\":%u,\"pid\":%d,\"session\":%llu",
	    (unsigned)session_uid(s), (int)session_pid(s),
	    (unsigned long long)session_id(s));
}

static void
finish(struct line *l)
{
	ssize_t	n;
	size_t	off = 0;

	if (l->len >= sizeof(l->buf) - 2)
		l->len = sizeof(l->buf) - 2;	/* never: fields are bounded */
	l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	while (off < l->len) {
		n = write(audit_fd, l->buf + off, l->len - off);
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* The last REPORT_DENIALS denials, a ring. */
static struct report_denial	recent[REPORT_DENIALS];
static unsigned			nrecent;

static void
remember_denial(struct session *s, const struct audit *a, const char *action)
{
	struct report_denial	*d = &recent[nrecent++ % REPORT_DENIALS];
	struct timespec		 ts;
	struct tm		 tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(d->time, sizeof(d->time), "%Y-%m-%dT%H:%M:%SZ", &tm);
	d->uid = session_uid(s);
	snprintf(d->tenant, sizeof(d->tenant), "%s", a->tenant != NULL ?
	    a->tenant : "-");
	d->action = a->hello ? "hello" : action;
	snprintf(d->host, sizeof(d->host), "%s", a->host != NULL ? a->host :
	    "");
	d->port = a->port;
	d->reason = a->failed != NULL ? a->failed :
	    policy_reason_code(a->decision->reason);
}

unsigned
audit_recent(struct report_denial *out, unsigned max)
{
	unsigned	n = nrecent < REPORT_DENIALS ? nrecent : REPORT_DENIALS;
	unsigned	i;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		out[i] = recent[(nrecent - n + i) % REPORT_DENIALS];
	return n;
}

void
audit_decision(struct session *s, const struct audit *a)
{
	static const char *const actions[] = { "connect", "listen", "accept" };
	struct line	l;
	char		where[POLICY_EXPLAIN_MAX];
	unsigned	i;
	bool		denied = a->failed != NULL ||
			    a->decision->verdict == POLICY_DENY;

	/* Counted and remembered for the control socket, never limited. */
	if (a->hello)
		counters.no_tenant++;
	else
		quota_count_decision(a->tenant, !denied);
	if (denied)
		remember_denial(s, a, actions[a->action]);
	if (!account_may_log(session_account(s), ACCOUNT_LOG_DECISION))
		return;
	begin(&l, "decision", s, a->tenant);
	put(&l, ",\"action\":\"%s\"", a->hello ? "hello" :
	    actions[a->action]);
	put_string(&l, "host", a->host);
	put(&l, ",\"port\":%u,\"addresses\":[", a->port);
	for (i = 0; i < a->naddrs; i++) {
		if (i > 0)
			put(&l, ",");
		put_addr(&l, &a->addrs[i]);
	}
	put(&l, "],\"address\":");
	if (a->chosen != NULL && a->failed == NULL &&
	    a->decision->verdict != POLICY_DENY)
		put_addr(&l, a->chosen);
	else
		put(&l, "null");
	if (a->failed != NULL) {
		put(&l, ",\"verdict\":\"deny\",\"report\":false,"
		    "\"rule\":null");
		put_string(&l, "reason", a->failed);
	} else {
		policy_where(broker.policy, a->decision, where, sizeof(where));
		put(&l, ",\"verdict\":\"%s\",\"report\":%s",
		    a->decision->verdict == POLICY_DENY ? "deny" : "allow",
		    a->decision->report ? "true" : "false");
		put_string(&l, "rule", a->decision->rule != NULL ? where :
		    NULL);
		put_string(&l, "reason",
		    policy_reason_code(a->decision->reason));
	}
	finish(&l);
}

void
audit_revoke(struct session *s, const struct policy_tenant *tn,
    enum policy_action action, const char *name, const struct host_addr *addr,
    uint16_t port, uint32_t handle, const struct policy_decision *d)
{
	static const char *const actions[] = { "connect", "listen", "accept" };
	struct line	l;
	char		where[POLICY_EXPLAIN_MAX];

	/* Never limited: an administrator asked for these closures. */
	begin(&l, "revoke", s, tn != NULL ? tn->name : NULL);
	put(&l, ",\"handle\":%u,\"action\":\"%s\"", handle,
	    actions[action]);
	put_string(&l, "host", name);
	put(&l, ",\"port\":%u,\"address\":", port);
	put_addr(&l, addr);
	policy_where(broker.policy, d, where, sizeof(where));
	put_string(&l, "rule", d->rule != NULL ? where : NULL);
	put_string(&l, "reason", policy_reason_code(d->reason));
	finish(&l);
}

void
audit_close(struct session *s, const char *tenant, uint32_t handle,
    const char *peer, uint64_t bytes_in, uint64_t bytes_out,
    uint64_t duration_ms)
{
	struct line	l;

	if (!account_may_log(session_account(s), ACCOUNT_LOG_DECISION))
		return;
	begin(&l, "close", s, tenant);
	put(&l, ",\"handle\":%u", handle);
	put_string(&l, "peer", peer);
	put(&l, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu",
	    (unsigned long long)bytes_in, (unsigned long long)bytes_out,
	    (unsigned long long)duration_ms);
	finish(&l);
}

void
audit_suppressed(uid_t uid, unsigned count)
{
	struct line	l;

	begin_line(&l, "suppressed");
	put(&l, ",\"uid\":%u,\"count\":%u", (unsigned)uid, count);
	finish(&l);
}
