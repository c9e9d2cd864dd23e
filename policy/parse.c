/*
 * The policy file parser.  One rule per line:
 *
 *	connect allow api.example.com:80,443
 *	connect deny  10.1.2.3:*
 *	listen  allow 127.0.0.1:0,8000-8099
 *
 * Errors name the file, line and column of the offending token.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

struct token {
	const char	*text;
	size_t		 len;
	unsigned	 line;
	unsigned	 col;
	int		 newline;	/* end of line or of file */
	int		 eof;
};

struct parser {
	const char		*file;
	const char		*text;
	size_t			 len;
	size_t			 off;
	unsigned		 line;
	unsigned		 col;
	struct policy_error	*err;
};

static int __attribute__((format(printf, 4, 5)))
fail(struct parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
	char	what[300];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p->err->line = line;
	p->err->col = col;
	if (line == 0)
		snprintf(p->err->message, sizeof(p->err->message), "%s: %s",
		    p->file, what);
	else
		snprintf(p->err->message, sizeof(p->err->message),
		    "%s:%u:%u: %s", p->file, line, col, what);
	return -1;
}

static int
token_is(const struct token *t, const char *word)
{
	return !t->newline && t->len == strlen(word) &&
	    memcmp(t->text, word, t->len) == 0;
}

/* A printable excerpt of a token for messages. */
static const char *
token_text(const struct token *t, char *buf, size_t cap)
{
	size_t	i, n = 0;

	if (t->eof)
		return "end of file";
	if (t->newline)
		return "end of line";
	for (i = 0; i < t->len && n + 5 < cap; i++) {
		unsigned char c = (unsigned char)t->text[i];
		if (c >= 0x20 && c < 0x7f)
			buf[n++] = (char)c;
		else
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
	}
	if (i < t->len && n + 4 < cap) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

static int
next_token(struct parser *p, struct token *t)
{
	char	c;

	memset(t, 0, sizeof(*t));
	for (;;) {
		if (p->off == p->len) {
			t->line = p->line;
			t->col = p->col;
			t->newline = t->eof = 1;
			return 0;
		}
		c = p->text[p->off];
		if (c == ' ' || c == '\t' || c == '\r') {
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
	if (c == '\n') {
		p->off++;
		p->line++;
		p->col = 1;
		t->newline = 1;
		return 0;
	}
	if (c == '\0')
		return fail(p, p->line, p->col, "NUL byte in the policy file");
	t->text = p->text + p->off;
	while (p->off < p->len) {
		c = p->text[p->off];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '#' || c == '\0')
			break;
		p->off++;
		p->col++;
	}
	t->len = (size_t)(p->text + p->off - t->text);
	if (t->len > LIMIT_POLICY_TOKEN)
		return fail(p, t->line, t->col, "token longer than %d bytes",
		    LIMIT_POLICY_TOKEN);
	return 0;
}

static int
parse_number(const char *s, size_t len, unsigned long *out)
{
	size_t		i;
	unsigned long	v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
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
	unsigned long	 lo, hi;

	if (len == 1 && s[0] == '*') {
		rule->ports[0].lo = 1;
		rule->ports[0].hi = 65535;
		rule->nports = 1;
		return 0;
	}
	for (item = s; ; item = comma + 1) {
		unsigned icol = col + (unsigned)(item - s);

		comma = memchr(item, ',', (size_t)(end - item));
		if (comma == NULL)
			comma = end;
		dash = memchr(item, '-', (size_t)(comma - item));
		if (dash == NULL) {
			if (parse_number(item, (size_t)(comma - item), &lo) != 0)
				goto bad;
			hi = lo;
		} else if (parse_number(item, (size_t)(dash - item), &lo) != 0 ||
		    parse_number(dash + 1, (size_t)(comma - dash - 1), &hi) != 0)
			goto bad;
		if (lo > hi)
			return fail(p, line, icol, "port range %lu-%lu is "
			    "backwards", lo, hi);
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

/* Parses HOST:PORTS, the target of a rule. */
static int
parse_target(struct parser *p, struct policy_rule *rule,
    const struct token *t)
{
	const char	*host = t->text, *ports, *why;
	size_t		 hostlen;
	char		 shown[80];

	if (t->newline)
		return fail(p, t->line, t->col, "expected HOST:PORTS, got %s",
		    token_text(t, shown, sizeof(shown)));
	if (t->text[0] == '[') {
		const char *close = memchr(t->text, ']', t->len);
		if (close == NULL)
			return fail(p, t->line, t->col, "'[' without ']'");
		host = t->text + 1;
		hostlen = (size_t)(close - host);
		ports = close + 1;
		if (host_parse_literal(host, hostlen, &rule->addr) != 0 ||
		    memchr(host, ':', hostlen) == NULL)
			return fail(p, t->line, t->col + 1, "not an IPv6 "
			    "address inside [ ]");
		rule->host = POLICY_HOST_ADDR;
	} else {
		ports = memchr(t->text, ':', t->len);
		if (ports == NULL)
			return fail(p, t->line, t->col, "a rule needs a port: "
			    "write HOST:PORTS (PORTS may be '*')");
		hostlen = (size_t)(ports - host);
		if (memchr(ports + 1, ':', t->len - hostlen - 1) != NULL)
			return fail(p, t->line, t->col, "write an IPv6 address "
			    "in brackets: [addr]:PORTS");
		if (hostlen == 3 && memcmp(host, "any", 3) == 0)
			rule->host = POLICY_HOST_ANY;
		else if (host_parse_literal(host, hostlen, &rule->addr) == 0)
			rule->host = POLICY_HOST_ADDR;
		else if (hostlen > 2 && host[0] == '*' && host[1] == '.') {
			if (host_normalize_name(host + 2, hostlen - 2,
			    rule->name, &why) != 0)
				return fail(p, t->line, t->col + 2, "bad domain "
				    "after '*.': %s", why);
			rule->host = POLICY_HOST_WILDCARD;
		} else {
			if (host_normalize_name(host, hostlen, rule->name,
			    &why) != 0)
				return fail(p, t->line, t->col, "bad host: %s",
				    why);
			rule->host = POLICY_HOST_NAME;
		}
	}
	if (ports == t->text + t->len || ports[0] != ':' ||
	    ports + 1 == t->text + t->len)
		return fail(p, t->line, t->col + (unsigned)(ports - t->text),
		    "a rule needs a port: write HOST:PORTS (PORTS may be '*')");
	if (rule->action == POLICY_LISTEN && (rule->host == POLICY_HOST_NAME ||
	    rule->host == POLICY_HOST_WILDCARD))
		return fail(p, t->line, t->col, "listen rules take an address "
		    "or 'any', not a host name");
	return parse_ports(p, rule, ports + 1,
	    (size_t)(t->text + t->len - ports - 1), t->line,
	    t->col + (unsigned)(ports + 1 - t->text));
}

static int
parse_rule(struct parser *p, struct policy *policy, const struct token *first)
{
	struct policy_rule	*rule;
	struct token		 t;
	char			 shown[80];
	unsigned		 i;

	if (policy->nrules == LIMIT_POLICY_RULES)
		return fail(p, first->line, first->col, "more than %d rules",
		    LIMIT_POLICY_RULES);
	if (policy->nrules == policy->cap) {
		size_t cap = policy->cap ? policy->cap * 2 : 16;
		rule = reallocarray(policy->rules, cap, sizeof(*rule));
		if (rule == NULL)
			return fail(p, first->line, first->col,
			    "out of memory");
		policy->rules = rule;
		policy->cap = cap;
	}
	rule = &policy->rules[policy->nrules];
	memset(rule, 0, sizeof(*rule));
	rule->line = first->line;
	rule->col = first->col;
	if (token_is(first, "connect"))
		rule->action = POLICY_CONNECT;
	else if (token_is(first, "listen"))
		rule->action = POLICY_LISTEN;
	else
		return fail(p, first->line, first->col, "expected 'connect' or "
		    "'listen', got '%s'", token_text(first, shown,
		    sizeof(shown)));

	if (next_token(p, &t) != 0)
		return -1;
	if (token_is(&t, "allow"))
		rule->allow = true;
	else if (!token_is(&t, "deny"))
		return fail(p, t.line, t.col, "expected 'allow' or 'deny', "
		    "got '%s'", token_text(&t, shown, sizeof(shown)));

	if (next_token(p, &t) != 0 || parse_target(p, rule, &t) != 0)
		return -1;
	if (rule->action == POLICY_CONNECT) {
		for (i = 0; i < rule->nports; i++)
			if (rule->ports[i].lo == 0)
				return fail(p, t.line, t.col, "port 0 cannot "
				    "be connected to");
	}

	if (next_token(p, &t) != 0)
		return -1;
	if (!t.newline)
		return fail(p, t.line, t.col, "unexpected '%s' after the rule",
		    token_text(&t, shown, sizeof(shown)));
	policy->nrules++;
	return 0;
}

int
policy_parse(const char *file, const char *text, size_t len,
    struct policy **out, struct policy_error *err)
{
	struct parser	 p = { file, text, len, 0, 1, 1, err };
	struct policy	*policy;
	struct token	 t;

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
	for (;;) {
		if (next_token(&p, &t) != 0)
			goto fail;
		if (t.eof)
			break;
		if (t.newline)
			continue;
		if (parse_rule(&p, policy, &t) != 0)
			goto fail;
	}
	*out = policy;
	return 0;
 fail:
	policy_free(policy);
	return -1;
}

int
policy_load(const char *path, struct policy **out, struct policy_error *err)
{
	struct parser	 p = { path, NULL, 0, 0, 0, 0, err };
	struct stat	 st;
	char		*text;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return fail(&p, 0, 0, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(&p, 0, 0, "not a regular file");
	}
	if ((text = malloc(LIMIT_POLICY_FILE + 1)) == NULL) {
		close(fd);
		return fail(&p, 0, 0, "out of memory");
	}
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
	rc = policy_parse(path, text, len, out, err);
 done:
	free(text);
	close(fd);
	return rc;
}

void
policy_free(struct policy *policy)
{
	if (policy == NULL)
		return;
	free(policy->rules);
	free(policy->file);
	free(policy);
}
