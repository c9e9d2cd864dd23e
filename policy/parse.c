/*
 * The policy file parser.  Statements are lines; tenants are blocks:
 *
 *	tenant "builds" {
 *	    match uid 2000-2999
 *	    connect allow *.example.com:443
 *	    connect deny  10.20.9.9:*
 *	    listen  allow 127.0.0.1:8000-8099
 *	    limit connections 64
 *	    mode enforce
 *	}
 *
 * Errors name the file, line and column of the offending token.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "policy.h"

enum token_kind {
	T_WORD,
	T_STRING,
	T_OPEN,		/* { */
	T_CLOSE,	/* } */
	T_NEWLINE,	/* end of line */
	T_EOF
};

struct token {
	enum token_kind	 kind;
	const char	*text;
	size_t		 len;
	unsigned	 line;
	unsigned	 col;
};

struct parser {
	const char		*file;
	const char		*text;
	size_t			 len;
	size_t			 off;
	unsigned		 line;
	unsigned		 col;
	struct policy_error	*err;
	struct token		 peeked;
	bool			 has_peeked;
	bool			 fatal;		/* the lexer is stuck: stop */
	enum token_kind		 last;		/* of the last token taken */
	const struct policy_names *names;	/* or NULL: getpwnam, getgrnam */
};

/*
 * Records an error; the first is the one the broker reports, --check
 * reports them all.  Returns -1.
 */
static int __attribute__((format(printf, 4, 5)))
fail(struct parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	struct policy_error	*e = p->err;
	char			 what[300], *msg;
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (e->count < LIMIT_POLICY_ERRORS) {
		msg = e->all[e->count];
		if (line == 0)
			snprintf(msg, POLICY_ERROR_MAX, "%s: %s", p->file, what);
		else
			snprintf(msg, POLICY_ERROR_MAX, "%s:%u:%u: %s",
			    p->file, line, col, what);
		if (e->count == 0) {
			memcpy(e->message, msg, POLICY_ERROR_MAX);
			e->line = line;
			e->col = col;
		}
	}
	e->count++;
	return -1;
}

/* A lexer error: the same place would fail again, so parsing stops. */
static int __attribute__((format(printf, 4, 5)))
fail_lex(struct parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	char	what[300];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p->fatal = true;
	return fail(p, line, col, "%s", what);
}

static bool
is(const struct token *t, const char *word)
{
	return t->kind == T_WORD && t->len == strlen(word) &&
	    memcmp(t->text, word, t->len) == 0;
}

/* A printable excerpt of a token for messages. */
static const char *
shown(const struct token *t, char *buf, size_t cap)
{
	size_t	i, n = 0;

	switch (t->kind) {
	case T_EOF:	return "end of file";
	case T_NEWLINE:	return "end of line";
	case T_OPEN:	return "'{'";
	case T_CLOSE:	return "'}'";
	default:	break;
	}
	buf[n++] = '\'';
	for (i = 0; i < t->len && n + 8 < cap; i++) {
		unsigned char c = (unsigned char)t->text[i];
		if (c >= 0x20 && c < 0x7f)
			buf[n++] = (char)c;
		else
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
	}
	if (i < t->len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool
ends_word(char c)
{
	return is_space(c) || c == '\n' || c == '#' || c == '{' || c == '}' ||
	    c == '"' || c == '\0';
}

static int
lex(struct parser *p, struct token *t)
{
	char	c;

	memset(t, 0, sizeof(*t));
	for (;;) {
		if (p->off == p->len) {
			t->kind = T_EOF;
			t->line = p->line;
			t->col = p->col;
			return 0;
		}
		c = p->text[p->off];
		if (is_space(c)) {
			p->off++;
			p->col++;
		} else if (c == '#') {
			while (p->off < p->len && p->text[p->off] != '\n')
				p->off++;
		} else
			break;
	}
	t->line = p->line;
	t->col = p->col;
	t->text = p->text + p->off;
	if (c == '\0')
		return fail_lex(p, p->line, p->col, "NUL byte in the policy file");
	if (c == '\n' || c == '{' || c == '}') {
		t->kind = c == '\n' ? T_NEWLINE : c == '{' ? T_OPEN : T_CLOSE;
		t->len = 1;
		p->off++;
		if (c == '\n') {
			p->line++;
			p->col = 1;
		} else
			p->col++;
		return 0;
	}
	if (c == '"') {
		t->kind = T_STRING;
		t->text++;
		for (p->off++, p->col++; ; p->off++, p->col++) {
			if (p->off == p->len || p->text[p->off] == '\n')
				return fail_lex(p, t->line, t->col,
				    "string without its closing '\"'");
			if (p->text[p->off] == '"')
				break;
			if (p->text[p->off] == '\0')
				return fail_lex(p, p->line, p->col,
				    "NUL byte in the policy file");
		}
		t->len = (size_t)(p->text + p->off - t->text);
		p->off++;
		p->col++;
	} else {
		t->kind = T_WORD;
		while (p->off < p->len && !ends_word(p->text[p->off])) {
			p->off++;
			p->col++;
		}
		t->len = (size_t)(p->text + p->off - t->text);
	}
	if (t->len > LIMIT_POLICY_TOKEN)
		return fail_lex(p, t->line, t->col, "token longer than %d bytes",
		    LIMIT_POLICY_TOKEN);
	return 0;
}

static int
next(struct parser *p, struct token *t)
{
	int	rc = 0;

	if (p->has_peeked) {
		*t = p->peeked;
		p->has_peeked = false;
	} else
		rc = lex(p, t);
	p->last = t->kind;
	return rc;
}

/*
 * After an error in a statement: skips to the end of its line, so the
 * next statement is parsed (a '}' or the end of the file is left for
 * the caller).  Returns -1 when parsing cannot go on.
 */
static int
recover(struct parser *p)
{
	struct token	t;
	size_t		i;

	if (p->fatal || p->err->count >= LIMIT_POLICY_ERRORS)
		return -1;
	/* The error was at the end of the line: the next line is whole. */
	if (p->last == T_NEWLINE && !p->has_peeked)
		return 0;
	for (i = 0; i <= LIMIT_POLICY_FILE; i++) {
		if (next(p, &t) != 0)
			return -1;
		if (t.kind == T_NEWLINE)
			return 0;
		if (t.kind == T_EOF || t.kind == T_CLOSE) {
			p->peeked = t;
			p->has_peeked = true;
			return 0;
		}
	}
	return -1;
}

/* The next token must end the statement. */
static int
end_of_statement(struct parser *p)
{
	struct token	t;
	char		buf[80];

	if (next(p, &t) != 0)
		return -1;
	if (t.kind == T_NEWLINE || t.kind == T_EOF) {
		if (t.kind == T_EOF) {
			p->peeked = t;
			p->has_peeked = true;
		}
		return 0;
	}
	return fail(p, t.line, t.col, "unexpected %s after the statement",
	    shown(&t, buf, sizeof(buf)));
}

/* A decimal number in [lo, hi] from s (len bytes). */
static int
number(const char *s, size_t len, uint64_t hi, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Parses "*" or "N", "A-B" and lists of them, starting at column col. */
static int
parse_ports(struct parser *p, struct policy_rule *rule, const char *s,
    size_t len, unsigned line, unsigned col)
{
	const char	*item, *end = s + len, *comma, *dash;
	uint64_t	 lo, hi;

	if (len == 1 && s[0] == '*') {
		rule->ports[0].lo = 1;
		rule->ports[0].hi = 65535;
		rule->nports = 1;
		rule->any_port = true;
		return 0;
	}
	for (item = s; ; item = comma + 1) {
		unsigned icol = col + (unsigned)(item - s);

		comma = memchr(item, ',', (size_t)(end - item));
		if (comma == NULL)
			comma = end;
		dash = memchr(item, '-', (size_t)(comma - item));
		if (dash == NULL) {
			if (number(item, (size_t)(comma - item), 65535, &lo))
				goto bad;
			hi = lo;
		} else if (number(item, (size_t)(dash - item), 65535, &lo) ||
		    number(dash + 1, (size_t)(comma - dash - 1), 65535, &hi))
			goto bad;
		if (lo > hi)
			return fail(p, line, icol, "port range %llu-%llu is "
			    "backwards", (unsigned long long)lo,
			    (unsigned long long)hi);
		if (rule->nports == LIMIT_POLICY_PORTS)
			return fail(p, line, icol, "more than %d port ranges "
			    "in one rule", LIMIT_POLICY_PORTS);
		rule->ports[rule->nports].lo = (uint16_t)lo;
		rule->ports[rule->nports].hi = (uint16_t)hi;
		rule->nports++;
		if (comma == end)
			return 0;
		continue;
 bad:
		return fail(p, line, icol, "expected a port 0-65535, a range "
		    "A-B, a list of them separated by ',', or '*'");
	}
}

/* Parses the "/len" of a CIDR, at most max; returns -1 if malformed. */
static int
parse_prefix(const char *s, size_t len, unsigned max, unsigned *out)
{
	uint64_t	v;

	if (number(s, len, max, &v) != 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Sets rule->addr and rule->prefix from an address and its prefix text. */
static int
parse_cidr(struct parser *p, struct policy_rule *rule, const char *addr,
    size_t addrlen, const char *prefix, size_t prefixlen, bool v6,
    const struct token *t)
{
	unsigned	bits, i;
	bool		mapped;

	if (host_parse_literal(addr, addrlen, &rule->addr) != 0 ||
	    (memchr(addr, ':', addrlen) != NULL) != v6)
		return fail(p, t->line, t->col, v6 ? "not an IPv6 address "
		    "inside [ ]" : "not an IPv4 address (write IPv6 as "
		    "[addr] or [addr]/len)");
	mapped = v6 && rule->addr.family == AF_INET;
	bits = rule->addr.family == AF_INET ? 32 : 128;
	rule->prefix = bits;
	if (prefix != NULL) {
		if (parse_prefix(prefix, prefixlen, v6 ? 128 : 32,
		    &rule->prefix) != 0)
			return fail(p, t->line, t->col, "expected a prefix "
			    "length 0-%d after '/'", v6 ? 128 : 32);
		if (mapped) {
			if (rule->prefix < 96)
				return fail(p, t->line, t->col, "an IPv4-mapped "
				    "range needs a prefix of at least 96");
			rule->prefix -= 96;
		}
	}
	for (i = rule->prefix; i < bits; i++) {
		if (rule->addr.bytes[i / 8] & (0x80 >> (i % 8))) {
			char	text[INET6_ADDRSTRLEN];

			host_format_addr(&rule->addr, text, sizeof(text));
			return fail(p, t->line, t->col, "%s/%u has bits set "
			    "past the prefix", text, rule->prefix);
		}
	}
	rule->host = POLICY_HOST_CIDR;
	return 0;
}

/* Parses HOST:PORTS, the target of a rule. */
static int
parse_target(struct parser *p, struct policy_rule *rule,
    const struct token *t)
{
	const char	*s = t->text, *end, *ports;
	const char	*slash, *why, *close;
	size_t		 hostlen;
	char		 buf[80];

	if (t->kind != T_WORD)
		return fail(p, t->line, t->col, "expected HOST:PORTS, got %s",
		    shown(t, buf, sizeof(buf)));
	end = t->text + t->len;
	if (s[0] == '[') {
		if ((close = memchr(s, ']', t->len)) == NULL)
			return fail(p, t->line, t->col, "'[' without ']'");
		ports = memchr(close, ':', (size_t)(end - close));
		slash = close + 1 < end && close[1] == '/' ? close + 2 : NULL;
		if (ports == NULL)
			goto noport;
		if (slash != NULL && slash > ports)
			slash = NULL;
		if (slash == NULL && ports != close + 1)
			return fail(p, t->line, t->col + (unsigned)(close + 1 -
			    s), "expected ':' or '/' after ']'");
		if (parse_cidr(p, rule, s + 1, (size_t)(close - s - 1), slash,
		    slash != NULL ? (size_t)(ports - slash) : 0, true, t) != 0)
			return -1;
	} else {
		if ((ports = memchr(s, ':', t->len)) == NULL)
			goto noport;
		hostlen = (size_t)(ports - s);
		if (memchr(ports + 1, ':', (size_t)(end - ports - 1)) != NULL)
			return fail(p, t->line, t->col, "write an IPv6 address "
			    "in brackets: [addr]:PORTS");
		slash = memchr(s, '/', hostlen);
		if (hostlen == 3 && strncasecmp(s, "any", 3) == 0)
			rule->host = POLICY_HOST_ANY;
		else if (slash != NULL) {
			if (parse_cidr(p, rule, s, (size_t)(slash - s),
			    slash + 1, (size_t)(ports - slash - 1), false,
			    t) != 0)
				return -1;
		} else if (host_parse_literal(s, hostlen, &rule->addr) == 0) {
			rule->host = POLICY_HOST_CIDR;
			rule->prefix = 32;
		} else if (hostlen > 2 && s[0] == '*' && s[1] == '.') {
			if (host_normalize_name(s + 2, hostlen - 2,
			    rule->name, &why) != 0)
				return fail(p, t->line, t->col + 2, "bad domain "
				    "after '*.': %s", why);
			rule->host = POLICY_HOST_WILDCARD;
		} else {
			if (host_normalize_name(s, hostlen, rule->name,
			    &why) != 0)
				return fail(p, t->line, t->col, "bad host: %s",
				    why);
			rule->host = POLICY_HOST_NAME;
		}
	}
	if (ports + 1 == end)
		goto noport;
	if (rule->action != POLICY_CONNECT && (rule->host ==
	    POLICY_HOST_NAME || rule->host == POLICY_HOST_WILDCARD))
		return fail(p, t->line, t->col, "%s rules take an address, a "
		    "range or 'any', not a host name", rule->action ==
		    POLICY_LISTEN ? "listen" : "accept");
	return parse_ports(p, rule, ports + 1, (size_t)(end - ports - 1),
	    t->line, t->col + (unsigned)(ports + 1 - s));
 noport:
	return fail(p, t->line, t->col + (unsigned)t->len, "a rule needs a "
	    "port: write HOST:PORTS (PORTS may be '*')");
}

static int
add_rule(struct parser *p, struct policy *policy, struct policy_tenant *tn,
    const struct token *first)
{
	struct policy_rule	*rule;
	struct token		 t;
	char			 buf[80];
	unsigned		 i;

	if (policy->nrules == LIMIT_POLICY_RULES)
		return fail(p, first->line, first->col, "more than %d rules",
		    LIMIT_POLICY_RULES);
	if (tn->nrules == tn->cap) {
		size_t cap = tn->cap ? tn->cap * 2 : 16;
		if ((rule = reallocarray(tn->rules, cap, sizeof(*rule))) ==
		    NULL)
			return fail(p, first->line, first->col,
			    "out of memory");
		tn->rules = rule;
		tn->cap = cap;
	}
	rule = &tn->rules[tn->nrules];
	memset(rule, 0, sizeof(*rule));
	rule->line = first->line;
	rule->col = first->col;
	rule->every = tn->every;
	rule->action = is(first, "connect") ? POLICY_CONNECT :
	    is(first, "listen") ? POLICY_LISTEN : POLICY_ACCEPT;
	if (next(p, &t) != 0)
		return -1;
	if (is(&t, "allow"))
		rule->allow = true;
	else if (!is(&t, "deny"))
		return fail(p, t.line, t.col, "expected 'allow' or 'deny', "
		    "got %s", shown(&t, buf, sizeof(buf)));
	if (next(p, &t) != 0 || parse_target(p, rule, &t) != 0)
		return -1;
	if (rule->action == POLICY_CONNECT) {
		for (i = 0; i < rule->nports; i++)
			if (rule->ports[i].lo == 0)
				return fail(p, t.line, t.col, "port 0 cannot "
				    "be connected to");
	}
	if (end_of_statement(p) != 0)
		return -1;
	tn->nrules++;
	/* The every-tenant block's count as each tenant's (add_every). */
	if (!tn->every)
		policy->nrules++;
	return 0;
}

/*
 * A user or group name in a match list: its id, from /etc/passwd or
 * /etc/group (the broker reads only those, at load and at reload).
 * Returns 0, 1 when item is no name (a number or a range), or -1.
 */
static int
name_id(struct parser *p, bool group, const char *item, size_t len,
    unsigned line, unsigned col, uint64_t *id)
{
	char		 name[LIMIT_POLICY_ID_NAME + 1];
	struct passwd	*pw;
	struct group	*gr;
	size_t		 i;

	if (len == 0 || (item[0] >= '0' && item[0] <= '9') || item[0] == '*')
		return 1;
	for (i = 0; i < len; i++)
		if (!((item[i] >= 'a' && item[i] <= 'z') ||
		    (item[i] >= 'A' && item[i] <= 'Z') ||
		    (item[i] >= '0' && item[i] <= '9') || item[i] == '_' ||
		    item[i] == '.' || (item[i] == '-' && i > 0)))
			return 1;
	if (len > LIMIT_POLICY_ID_NAME)
		return fail(p, line, col, "a %s name has at most %d characters",
		    group ? "group" : "user", LIMIT_POLICY_ID_NAME);
	memcpy(name, item, len);
	name[len] = '\0';
	if (p->names != NULL) {
		if (p->names->lookup(p->names->arg, group, name, id) != 0)
			return fail(p, line, col, "no %s called \"%s\"",
			    group ? "group" : "user", name);
	} else if (group) {
		if ((gr = getgrnam(name)) == NULL)
			return fail(p, line, col, "no group called \"%s\"",
			    name);
		*id = gr->gr_gid;
	} else {
		if ((pw = getpwnam(name)) == NULL)
			return fail(p, line, col, "no user called \"%s\"",
			    name);
		*id = pw->pw_uid;
	}
	return 0;
}

/*
 * match uid|gid IDS, where IDS is "*" or a list of N, A-B and user or
 * group names.
 */
static int
parse_match(struct parser *p, struct policy_tenant *tn)
{
	struct policy_ids	*ids;
	struct token		 t;
	const char		*item, *end, *comma, *dash;
	unsigned		*n;
	uint64_t		 lo = 0, hi = 0;
	char			 buf[80];
	bool			 group;
	int			 rc;

	if (next(p, &t) != 0)
		return -1;
	if (is(&t, "uid")) {
		ids = tn->uids;
		n = &tn->nuids;
		group = false;
	} else if (is(&t, "gid")) {
		ids = tn->gids;
		n = &tn->ngids;
		group = true;
	} else
		return fail(p, t.line, t.col, "expected 'uid' or 'gid', got %s",
		    shown(&t, buf, sizeof(buf)));
	if (next(p, &t) != 0)
		return -1;
	if (t.kind != T_WORD)
		return fail(p, t.line, t.col, "expected ids (N, A-B, a list, "
		    "or '*'), got %s", shown(&t, buf, sizeof(buf)));
	if (t.len == 1 && t.text[0] == '*') {
		if (*n == LIMIT_POLICY_IDS)
			goto toomany;
		ids[(*n)++] = (struct policy_ids){ 0, UINT32_MAX - 1 };
		return end_of_statement(p);
	}
	end = t.text + t.len;
	for (item = t.text; ; item = comma + 1) {
		unsigned icol = t.col + (unsigned)(item - t.text);

		comma = memchr(item, ',', (size_t)(end - item));
		if (comma == NULL)
			comma = end;
		rc = name_id(p, group, item, (size_t)(comma - item), t.line,
		    icol, &lo);
		if (rc < 0)
			return -1;
		dash = memchr(item, '-', (size_t)(comma - item));
		if (rc == 0)
			hi = lo;
		else if (dash == NULL) {
			if (number(item, (size_t)(comma - item), UINT32_MAX - 1,
			    &lo) != 0)
				goto bad;
			hi = lo;
		} else if (number(item, (size_t)(dash - item), UINT32_MAX - 1,
		    &lo) != 0 || number(dash + 1, (size_t)(comma - dash - 1),
		    UINT32_MAX - 1, &hi) != 0)
			goto bad;
		if (lo > hi)
			return fail(p, t.line, icol, "id range %llu-%llu is "
			    "backwards", (unsigned long long)lo,
			    (unsigned long long)hi);
		if (*n == LIMIT_POLICY_IDS)
			goto toomany;
		ids[(*n)++] = (struct policy_ids){ (uint32_t)lo, (uint32_t)hi };
		if (comma == end)
			return end_of_statement(p);
		continue;
 bad:
		return fail(p, t.line, icol, "expected an id 0-4294967294, a "
		    "range A-B, a user or group name, a list of them separated "
		    "by ',', or '*'");
	}
 toomany:
	return fail(p, t.line, t.col, "more than %d id ranges in one tenant",
	    LIMIT_POLICY_IDS);
}

/* The largest bandwidth limit: bytes a second. */
#define POLICY_BANDWIDTH_MAX	(1024ULL * 1024 * 1024 * 1024)

/* Parses "10MiB/s" and the like into bytes a second. */
static int
parse_bandwidth(const char *s, size_t len, uint64_t *out)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "B", 1 }, { "kB", 1000 }, { "KiB", 1024 },
		{ "MB", 1000000 }, { "MiB", 1024 * 1024 },
		{ "GB", 1000000000 }, { "GiB", 1024 * 1024 * 1024 },
	};
	size_t		i, digits = 0, ulen;
	uint64_t	v;

	if (len < 3 || memcmp(s + len - 2, "/s", 2) != 0)
		return -1;
	len -= 2;
	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (number(s, digits, 1000000000, &v) != 0 || v == 0)
		return -1;
	ulen = len - digits;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strlen(units[i].unit) == ulen &&
		    memcmp(s + digits, units[i].unit, ulen) == 0) {
			*out = v * units[i].mult;
			return 0;
		}
	}
	return -1;
}

static int
parse_limit(struct parser *p, struct policy_tenant *tn)
{
	struct policy_limits	*l = &tn->limits;
	struct token		 what, t;
	uint32_t		*slot = NULL;
	uint64_t		 v;
	char			 buf[80];

	if (next(p, &what) != 0 || next(p, &t) != 0)
		return -1;
	if (is(&what, "connections"))
		slot = &l->connections;
	else if (is(&what, "listeners"))
		slot = &l->listeners;
	else if (is(&what, "lookups"))
		slot = &l->lookups;
	else if (is(&what, "rate"))
		slot = &l->rate;
	else if (!is(&what, "bandwidth"))
		return fail(p, what.line, what.col, "expected connections, "
		    "listeners, rate, bandwidth or lookups, got %s",
		    shown(&what, buf, sizeof(buf)));
	if (t.kind != T_WORD)
		return fail(p, t.line, t.col, "expected a value, got %s",
		    shown(&t, buf, sizeof(buf)));
	if (slot == NULL) {
		if (l->bandwidth != 0)
			goto twice;
		if (parse_bandwidth(t.text, t.len, &l->bandwidth) != 0 ||
		    l->bandwidth > POLICY_BANDWIDTH_MAX)
			return fail(p, t.line, t.col, "expected a bandwidth "
			    "such as 512KiB/s or 10MiB/s (B, kB, KiB, MB, MiB, "
			    "GB, GiB), at most 1024GiB/s");
		return end_of_statement(p);
	}
	if (*slot != 0)
		goto twice;
	if (slot == &l->rate) {
		if (t.len < 3 || memcmp(t.text + t.len - 2, "/s", 2) != 0 ||
		    number(t.text, t.len - 2, 1000000, &v) != 0 || v == 0)
			return fail(p, t.line, t.col, "expected a rate such as "
			    "20/s (1 to 1000000 a second)");
	} else if (number(t.text, t.len, 1000000, &v) != 0 || v == 0)
		return fail(p, t.line, t.col, "expected a number from 1 to "
		    "1000000");
	*slot = (uint32_t)v;
	return end_of_statement(p);
 twice:
	return fail(p, what.line, what.col, "this limit is already set in "
	    "the tenant");
}

/* One statement of a tenant's block, its first token in t. */
static int
parse_statement(struct parser *p, struct policy *policy,
    struct policy_tenant *tn, const struct token *t, bool *moded)
{
	struct token	m;
	char		buf[80];

	if (is(t, "match") && !tn->every)
		return parse_match(p, tn);
	if (is(t, "connect") || is(t, "listen") || is(t, "accept"))
		return add_rule(p, policy, tn, t);
	if (tn->every)
		return fail(p, t->line, t->col, "the every-tenant block takes "
		    "connect, listen and accept rules only, not %s",
		    shown(t, buf, sizeof(buf)));
	if (is(t, "limit"))
		return parse_limit(p, tn);
	if (!is(t, "mode"))
		return fail(p, t->line, t->col, "expected match, connect, "
		    "listen, accept, limit, mode or '}', got %s",
		    shown(t, buf, sizeof(buf)));
	if (*moded)
		return fail(p, t->line, t->col, "the mode is already set in the "
		    "tenant");
	*moded = true;
	if (next(p, &m) != 0)
		return -1;
	if (is(&m, "report"))
		tn->mode = POLICY_REPORT;
	else if (!is(&m, "enforce"))
		return fail(p, m.line, m.col, "expected 'enforce' or 'report', "
		    "got %s", shown(&m, buf, sizeof(buf)));
	return end_of_statement(p);
}

/* A new tenant called by the token name, or NULL with the error noted. */
static struct policy_tenant *
new_tenant(struct parser *p, struct policy *policy, const struct token *kw,
    const struct token *name)
{
	struct policy_tenant	*tn;
	char			 buf[80];
	size_t			 i;

	if ((name->kind != T_WORD && name->kind != T_STRING) ||
	    name->len == 0 || name->len > LIMIT_POLICY_NAME) {
		fail(p, name->line, name->col, "expected a tenant name of 1 to "
		    "%d characters, got %s", LIMIT_POLICY_NAME,
		    shown(name, buf, sizeof(buf)));
		return NULL;
	}
	/* It goes into logs and replies: printable ASCII only. */
	for (i = 0; i < name->len; i++)
		if (name->text[i] < 0x20 || name->text[i] > 0x7e ||
		    name->text[i] == '"' || name->text[i] == '\\') {
			fail(p, name->line, name->col + (unsigned)i, "a tenant "
			    "name has printable ASCII only, without '\"' or "
			    "'\\'");
			return NULL;
		}
	for (i = 0; i < policy->ntenants; i++)
		if (strlen(policy->tenants[i].name) == name->len &&
		    memcmp(policy->tenants[i].name, name->text, name->len) ==
		    0) {
			fail(p, name->line, name->col, "tenant \"%.*s\" is "
			    "already defined at line %u", (int)name->len,
			    name->text, policy->tenants[i].line);
			return NULL;
		}
	if (policy->ntenants == LIMIT_POLICY_TENANTS) {
		fail(p, kw->line, kw->col, "more than %d tenants",
		    LIMIT_POLICY_TENANTS);
		return NULL;
	}
	if (policy->ntenants == policy->cap) {
		size_t cap = policy->cap ? policy->cap * 2 : 4;
		if ((tn = reallocarray(policy->tenants, cap, sizeof(*tn))) ==
		    NULL) {
			fail(p, kw->line, kw->col, "out of memory");
			return NULL;
		}
		policy->tenants = tn;
		policy->cap = cap;
	}
	tn = &policy->tenants[policy->ntenants++];
	memset(tn, 0, sizeof(*tn));
	memcpy(tn->name, name->text, name->len);
	return tn;
}

/*
 * tenant NAME { ... }, or every { ... }: the rules every tenant has.
 * A statement's error is noted and the next line parsed; an error in
 * the block's frame stops the parse.
 */
static int
parse_tenant(struct parser *p, struct policy *policy, const struct token *kw)
{
	struct policy_tenant	*tn;
	struct token		 name, t;
	char			 buf[80];
	bool			 moded = false;

	if (is(kw, "every")) {
		if (policy->every != NULL)
			return fail(p, kw->line, kw->col, "the every-tenant "
			    "block is already defined at line %u",
			    policy->every->line);
		if ((tn = calloc(1, sizeof(*tn))) == NULL)
			return fail(p, kw->line, kw->col, "out of memory");
		policy->every = tn;
		snprintf(tn->name, sizeof(tn->name), "(every tenant)");
		tn->every = true;
	} else {
		if (next(p, &name) != 0)
			return -1;
		if ((tn = new_tenant(p, policy, kw, &name)) == NULL)
			return -1;
	}
	tn->line = kw->line;
	tn->col = kw->col;

	if (next(p, &t) != 0)
		return -1;
	if (t.kind != T_OPEN)
		return fail(p, t.line, t.col, "expected '{' after the tenant's "
		    "name, got %s", shown(&t, buf, sizeof(buf)));
	if (end_of_statement(p) != 0)
		return -1;
	for (;;) {
		if (next(p, &t) != 0)
			return -1;
		if (t.kind == T_NEWLINE)
			continue;
		if (t.kind == T_EOF)
			return fail(p, kw->line, kw->col, "tenant \"%s\" has no "
			    "closing '}'", tn->name);
		if (t.kind == T_CLOSE)
			break;
		if (is(&t, "tenant"))
			return fail(p, t.line, t.col, "tenants do not nest: "
			    "close \"%s\" with '}' first", tn->name);
		/* A statement's error is noted; the next line goes on. */
		if (parse_statement(p, policy, tn, &t, &moded) != 0 &&
		    recover(p) != 0)
			return -1;
	}
	if (tn->nuids == 0 && tn->ngids == 0 && !tn->every)
		fail(p, kw->line, kw->col, "tenant \"%s\" has no match "
		    "line: say which uids or gids it is for", tn->name);
	return end_of_statement(p);
}

/* Every tenant gets the rules of the every-tenant block, after its own. */
static int
add_every(struct parser *p, struct policy *policy)
{
	struct policy_tenant	*tn, *every = policy->every;
	struct policy_rule	*rules;
	size_t			 i, n;

	if (every == NULL || every->nrules == 0)
		return 0;
	for (i = 0; i < policy->ntenants; i++) {
		tn = &policy->tenants[i];
		if (policy->nrules + every->nrules > LIMIT_POLICY_RULES)
			return fail(p, every->line, every->col, "the every-tenant "
			    "rules make more than %d rules in all",
			    LIMIT_POLICY_RULES);
		n = tn->nrules + every->nrules;
		if (n > tn->cap) {
			if ((rules = reallocarray(tn->rules, n,
			    sizeof(*rules))) == NULL)
				return fail(p, every->line, every->col,
				    "out of memory");
			tn->rules = rules;
			tn->cap = n;
		}
		memcpy(tn->rules + tn->nrules, every->rules,
		    every->nrules * sizeof(*rules));
		tn->nrules = n;
		policy->nrules += every->nrules;
	}
	return 0;
}

int
policy_parse(const char *file, const char *text, size_t len,
    struct policy **out, struct policy_error *err)
{
	return policy_parse_names(file, text, len, NULL, out, err);
}

int
policy_parse_names(const char *file, const char *text, size_t len,
    const struct policy_names *names, struct policy **out,
    struct policy_error *err)
{
	struct parser	 p = { .file = file, .text = text, .len = len,
			    .line = 1, .col = 1, .err = err, .names = names };
	struct policy	*policy;
	struct token	 t;
	char		 buf[80];

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (len > LIMIT_POLICY_FILE)
		return fail(&p, 1, 1, "file larger than %d bytes",
		    LIMIT_POLICY_FILE);
	if ((policy = calloc(1, sizeof(*policy))) == NULL ||
	    (policy->file = strdup(file)) == NULL) {
		policy_free(policy);
		return fail(&p, 1, 1, "out of memory");
	}
	/* A UTF-8 byte-order mark is no part of the first token. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		policy->bom = true;
		p.off = 3;
	}
	for (;;) {
		if (next(&p, &t) != 0)
			goto fail;
		if (t.kind == T_EOF)
			break;
		if (t.kind == T_NEWLINE)
			continue;
		if (is(&t, "tenant") || is(&t, "every")) {
			if (parse_tenant(&p, policy, &t) != 0)
				goto fail;
			continue;
		}
		if (is(&t, "connect") || is(&t, "listen") ||
		    is(&t, "accept") || is(&t, "match") || is(&t, "limit") ||
		    is(&t, "mode"))
			fail(&p, t.line, t.col, "%s belongs in a tenant block: "
			    "tenant NAME { ... }", shown(&t, buf, sizeof(buf)));
		else
			fail(&p, t.line, t.col, "expected 'tenant' or 'every', "
			    "got %s", shown(&t, buf, sizeof(buf)));
		if (recover(&p) != 0)
			goto fail;
	}
	if (err->count > 0 || add_every(&p, policy) != 0)
		goto fail;
	*out = policy;
	return 0;
 fail:
	policy_free(policy);
	return -1;
}

int
policy_load(const char *path, struct policy **out, struct policy_error *err)
{
	struct parser	 p = { .file = path, .err = err };
	int		 fd, rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return fail(&p, 0, 0, "cannot open: %s", strerror(errno));
	rc = policy_read(fd, path, NULL, out, err);
	close(fd);
	return rc;
}

int
policy_read(int fd, const char *path, const struct policy_names *names,
    struct policy **out, struct policy_error *err)
{
	struct parser	 p = { .file = path, .err = err };
	struct stat	 st;
	char		*text;
	ssize_t		 n;
	size_t		 len = 0;
	int		 rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return fail(&p, 0, 0, "not a regular file");
	if ((text = malloc(LIMIT_POLICY_FILE + 1)) == NULL)
		return fail(&p, 0, 0, "out of memory");
	while (len <= LIMIT_POLICY_FILE) {
		n = read(fd, text + len, LIMIT_POLICY_FILE + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = fail(&p, 0, 0, "read: %s", strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = policy_parse_names(path, text, len, names, out, err);
 done:
	free(text);
	return rc;
}

void
policy_free(struct policy *policy)
{
	size_t	i;

	if (policy == NULL)
		return;
	for (i = 0; i < policy->ntenants; i++)
		free(policy->tenants[i].rules);
	if (policy->every != NULL)
		free(policy->every->rules);
	free(policy->every);
	free(policy->tenants);
	free(policy->file);
	free(policy);
}
