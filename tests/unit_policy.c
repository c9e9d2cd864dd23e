/*
 * The policy parser and matcher, driven mostly by the files under
 * tests/policy.
 *
 * A file in bad/ starts with "# error: LINE:COL: text": it must be
 * refused there, with a message holding text.
 *
 * A file in good/ must load, and its comment lines say what to expect:
 *
 *   # own: ADDR...
 *	Addresses of the host itself, for the decisions' context (they
 *	count as internal).  Any number of such lines, anywhere.
 *   # warning: LINE:COL: text
 *	policy_check() gives exactly these warnings, in this order, each
 *	"FILE:LINE:COL: warning: text".  No such line: no warning.
 *   # expect-tenant: [uid=N] [gid=N] NAME
 *	policy_tenant() picks the tenant NAME (the rest of the line, so it
 *	may hold spaces), or none for "-".
 *   # expect: [uid=N] [gid=N] REQUEST VERDICT WHERE
 *	How a client with that uid and gid is answered.  REQUEST is
 *	"connect HOST PORT" (HOST a name, decided before DNS, or an
 *	address), "connect-resolved NAME ADDR PORT" (the decision for
 *	one address NAME resolved to), "listen ADDR PORT" or "accept
 *	ADDR PORT" (ADDR the peer).  VERDICT is deny, allow or resolve,
 *	or report-allow or report-resolve for a denial that report mode
 *	turned into that.  WHERE is the line of the deciding rule, or
 *	the reason code when no rule decided: default, internal, unnamed
 *	or no-tenant.  uid and gid are 1000 unless given.
 *   # explain: text
 *	The policy_explain() text of the expectation on the line above;
 *	"{file}" stands for the file's path.
 *
 * Every rule of every good file also goes through policy_rule_text(),
 * whose text must parse back to the same rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

#define GOOD_DIR	TB_TEST_DATA "/policy/good"
#define BAD_DIR		TB_TEST_DATA "/policy/bad"
/* Fewer files than this means the data went missing. */
#define GOOD_MIN	23
#define BAD_MIN		190
#define FILES_MAX	512
#define LINES_MAX	10000
#define LINE_MAX_LEN	1024
#define TOKENS_MAX	8
#define OWN_MAX		16
#define WARNINGS_MAX	64
#define DEFAULT_ID	1000
#define TEXT_MAX	(PATH_MAX + 512)
#define RULE_TEXT_MAX	2048
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Stands for "not written" in *out before a call that must fail. */
static struct policy	not_set;

struct file_list {
	char	*names[FILES_MAX];
	size_t	 n;
};

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files in dir, sorted; -1 if it cannot be read. */
static int
list_conf(const char *dir, struct file_list *list)
{
	struct dirent	*de;
	DIR		*d;
	size_t		 len;

	memset(list, 0, sizeof(*list));
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && list->n < FILES_MAX) {
		len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		if (asprintf(&list->names[list->n], "%s/%s", dir,
		    de->d_name) == -1) {
			closedir(d);
			return -1;
		}
		list->n++;
	}
	closedir(d);
	qsort(list->names, list->n, sizeof(list->names[0]), compare_names);
	return 0;
}

static void
free_list(struct file_list *list)
{
	size_t	i;

	for (i = 0; i < list->n; i++)
		free(list->names[i]);
	list->n = 0;
}

static void
chomp(char *s)
{
	size_t	len = strlen(s);

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
	    s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
}

/* Parses a decimal number no larger than max; -1 if s is not one. */
static long long
number(const char *s, unsigned long long max)
{
	unsigned long long	 v;
	char			*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	return (long long)v;
}

static const char *
verdict_name(enum policy_verdict v)
{
	switch (v) {
	case POLICY_DENY:	return "deny";
	case POLICY_ALLOW:	return "allow";
	case POLICY_RESOLVE:	return "resolve";
	}
	return "?";
}

static int
parse_verdict(const char *s, enum policy_verdict *v)
{
	if (strcmp(s, "deny") == 0)
		*v = POLICY_DENY;
	else if (strcmp(s, "allow") == 0)
		*v = POLICY_ALLOW;
	else if (strcmp(s, "resolve") == 0)
		*v = POLICY_RESOLVE;
	else
		return -1;
	return 0;
}

/* The reason whose code is s, other than "rule"; -1 if none. */
static int
parse_reason(const char *s, enum policy_reason *reason)
{
	static const enum policy_reason reasons[] = {
		POLICY_BY_DEFAULT, POLICY_BY_INTERNAL, POLICY_BY_UNNAMED,
		POLICY_BY_NO_TENANT
	};
	size_t	i;

	for (i = 0; i < NELEM(reasons); i++)
		if (strcmp(s, policy_reason_code(reasons[i])) == 0) {
			*reason = reasons[i];
			return 0;
		}
	return -1;
}

/* Splits s at blanks into at most max words; max + 1 means more. */
static size_t
split(char *s, char **words, size_t max)
{
	char	*save = NULL, *w;
	size_t	 n;

	for (n = 0; n <= max; n++) {
		if ((w = strtok_r(n == 0 ? s : NULL, " \t", &save)) == NULL)
			break;
		if (n < max)
			words[n] = w;
	}
	return n;
}

/*
 * Takes the leading "uid=N" and "gid=N" words off *p into uid and gid;
 * fails the test on a bad number.
 */
static void
take_ids(char **p, uint32_t *uid, uint32_t *gid, const char *path,
    unsigned lineno)
{
	char		*s = *p, *end, save;
	long long	 v;
	int		 k;

	for (k = 0; k < 2; k++) {
		s += strspn(s, " \t");
		if (strncmp(s, "uid=", 4) != 0 && strncmp(s, "gid=", 4) != 0)
			break;
		end = s + strcspn(s, " \t");
		save = *end;
		*end = '\0';
		if ((v = number(s + 4, UINT32_MAX)) < 0)
			fail_msg("%s:%u: bad id \"%s\"", path, lineno, s);
		if (s[0] == 'u')
			*uid = (uint32_t)v;
		else
			*gid = (uint32_t)v;
		*end = save;
		s = end;
	}
	*p = s + strspn(s, " \t");
}

/* Copies in to out with "{file}" replaced by path. */
static void
expand_file(const char *in, const char *path, char *out, size_t cap)
{
	size_t	i = 0, n = 0, len;

	while (in[i] != '\0' && n + 1 < cap) {
		if (strncmp(in + i, "{file}", 6) == 0) {
			len = strlen(path);
			if (len > cap - n - 1)
				len = cap - n - 1;
			memcpy(out + n, path, len);
			n += len;
			i += 6;
		} else
			out[n++] = in[i++];
	}
	out[n] = '\0';
}

/* What policy_check() said. */
struct warnings {
	char	*text[WARNINGS_MAX];
	size_t	 n;
	size_t	 calls;
};

static void
collect_warning(void *arg, const char *message)
{
	struct warnings	*w = arg;

	w->calls++;
	if (w->n < WARNINGS_MAX && (w->text[w->n] = strdup(message)) != NULL)
		w->n++;
}

static void
free_warnings(struct warnings *w)
{
	size_t	i;

	for (i = 0; i < w->n; i++)
		free(w->text[i]);
	w->n = 0;
}

/* Runs policy_check(); its count agrees with the calls. */
static void
run_check(const struct policy *policy, struct warnings *w)
{
	int	n;

	memset(w, 0, sizeof(*w));
	n = policy_check(policy, collect_warning, w);
	assert_true(n >= 0);
	assert_int_equal((size_t)n, w->calls);
	assert_int_equal(w->n, w->calls);
}

/* Compares the warnings with want, then frees them. */
static void
expect_warnings(const char *where, struct warnings *w,
    const char *const *want, size_t nwant)
{
	size_t	i;
	bool	same = w->n == nwant;

	for (i = 0; same && i < nwant; i++)
		same = strcmp(w->text[i], want[i]) == 0;
	if (!same) {
		for (i = 0; i < w->n; i++)
			print_error("%s: got  %s\n", where, w->text[i]);
		for (i = 0; i < nwant; i++)
			print_error("%s: want %s\n", where, want[i]);
		free_warnings(w);
		fail_msg("%s: %zu warnings, want %zu as listed", where,
		    w->calls, nwant);
	}
	free_warnings(w);
}

static bool
same_rule(const struct policy_rule *a, const struct policy_rule *b)
{
	unsigned	i;

	if (a->action != b->action || a->allow != b->allow ||
	    a->host != b->host || a->nports != b->nports ||
	    a->any_port != b->any_port || a->nports > LIMIT_POLICY_PORTS)
		return false;
	for (i = 0; i < a->nports; i++)
		if (a->ports[i].lo != b->ports[i].lo ||
		    a->ports[i].hi != b->ports[i].hi)
			return false;
	switch (a->host) {
	case POLICY_HOST_NAME:
	case POLICY_HOST_WILDCARD:
		return strcmp(a->name, b->name) == 0;
	case POLICY_HOST_CIDR:
		return a->prefix == b->prefix &&
		    host_addr_equal(&a->addr, &b->addr);
	case POLICY_HOST_ANY:
		break;
	}
	return true;
}

/*
 * The text of rule parses back to the same rule, whose text is the same
 * again.
 */
static void
check_round_trip(const struct policy_rule *rule, const char *where)
{
	struct policy		*back = NULL;
	struct policy_error	 err;
	char			 text[RULE_TEXT_MAX], again[RULE_TEXT_MAX];
	char			 file[RULE_TEXT_MAX + 64];
	bool			 same;
	int			 len;

	policy_rule_text(rule, text, sizeof(text));
	len = snprintf(file, sizeof(file), "tenant t {\nmatch uid 1\n%s\n}\n",
	    text);
	assert_true(len > 0 && (size_t)len < sizeof(file));
	if (policy_parse("round-trip.conf", file, (size_t)len, &back,
	    &err) != 0)
		fail_msg("%s: the text \"%s\" does not parse back: %s", where,
		    text, err.message);
	assert_int_equal(back->ntenants, 1);
	assert_int_equal(back->tenants[0].nrules, 1);
	same = same_rule(rule, &back->tenants[0].rules[0]);
	policy_rule_text(&back->tenants[0].rules[0], again, sizeof(again));
	policy_free(back);
	if (!same)
		fail_msg("%s: the text \"%s\" parses back to another rule",
		    where, text);
	assert_string_equal(again, text);
}

/* A good file being checked. */
struct good {
	const char		*path;
	struct policy		*policy;
	struct host_addr	 own[OWN_MAX];
	size_t			 nown;
	/* The explanation of the last expectation, for "# explain:". */
	unsigned		 explained_line;
	char			 explained[TEXT_MAX];
};

static void
add_own(struct good *g, unsigned lineno, char *text)
{
	char	*words[TOKENS_MAX];
	size_t	 i, n;

	n = split(text, words, TOKENS_MAX);
	if (n == 0 || n > TOKENS_MAX)
		fail_msg("%s:%u: bad \"# own:\" line", g->path, lineno);
	for (i = 0; i < n; i++) {
		if (g->nown == OWN_MAX)
			fail_msg("%s:%u: more than %d own addresses", g->path,
			    lineno, OWN_MAX);
		if (host_parse_literal(words[i], strlen(words[i]),
		    &g->own[g->nown]) != 0)
			fail_msg("%s:%u: bad address %s", g->path, lineno,
			    words[i]);
		g->nown++;
	}
}

/* "# warning: L:C: text" as the message policy_check() gives. */
static char *
expected_warning(const struct good *g, unsigned lineno, const char *text)
{
	unsigned long	 line, col;
	char		*end, *out;

	line = strtoul(text, &end, 10);
	if (end == text || *end != ':')
		goto bad;
	text = end + 1;
	col = strtoul(text, &end, 10);
	if (end == text || strncmp(end, ": ", 2) != 0 || end[2] == '\0')
		goto bad;
	if (asprintf(&out, "%s:%lu:%lu: warning: %s", g->path, line, col,
	    end + 2) == -1)
		fail_msg("out of memory");
	return out;
 bad:
	fail_msg("%s:%u: bad \"# warning:\" line", g->path, lineno);
	return NULL;
}

/*
 * Checks what policy_explain() and policy_where() say of a decision;
 * keeps the explanation for a "# explain:" line.
 */
static void
check_explanation(struct good *g, unsigned lineno, const char *shown,
    const struct policy_decision *dec, const struct host_addr *addr)
{
	static const char	 internal_head[] = "the internal range ";
	static const char	 internal_tail[] =
	    " (no address rule allows it)";
	char			 want[TEXT_MAX], where[TEXT_MAX];
	char			*explain = g->explained;
	size_t			 len;

	policy_explain(g->policy, dec, addr, explain, sizeof(g->explained));
	g->explained_line = lineno;
	policy_where(g->policy, dec, where, sizeof(where));
	if (dec->rule != NULL)
		snprintf(want, sizeof(want), "%s:%u", g->path, dec->rule->line);
	else
		snprintf(want, sizeof(want), "%s",
		    policy_reason_code(dec->reason));
	if (strcmp(where, want) != 0)
		fail_msg("%s:%u: \"%s\": policy_where() says \"%s\"", g->path,
		    lineno, shown, where);

	want[0] = '\0';
	switch (dec->reason) {
	case POLICY_BY_RULE:
		snprintf(want, sizeof(want), "rule %s:%u", g->path,
		    dec->rule->line);
		break;
	case POLICY_BY_DEFAULT:
		/* An accept allowed for want of accept rules says so. */
		if (dec->verdict == POLICY_DENY || dec->report)
			snprintf(want, sizeof(want), "the default (no "
			    "rule of %s allows it)", g->path);
		break;
	case POLICY_BY_INTERNAL:
		len = strlen(explain);
		if (strncmp(explain, internal_head,
		    strlen(internal_head)) != 0 ||
		    len < strlen(internal_tail) + strlen(internal_head) ||
		    strcmp(explain + len - strlen(internal_tail),
		    internal_tail) != 0)
			fail_msg("%s:%u: \"%s\": explained as \"%s\"", g->path,
			    lineno, shown, explain);
		break;
	case POLICY_BY_UNNAMED:
		snprintf(want, sizeof(want), "the default (a wildcard address, "
		    "port 0 or a port below 1024 needs a rule that names it)");
		break;
	case POLICY_BY_NO_TENANT:
		snprintf(want, sizeof(want), "the default (no tenant of %s "
		    "matches the client)", g->path);
		break;
	}
	if (want[0] != '\0' && strcmp(explain, want) != 0)
		fail_msg("%s:%u: \"%s\": explained as \"%s\", want \"%s\"",
		    g->path, lineno, shown, explain, want);
}

/* Checks one "# expect:" line. */
static void
check_expectation(struct good *g, unsigned lineno, char *text)
{
	const struct policy_tenant	*tn;
	struct policy_context		 ctx = { g->own, g->nown };
	struct policy_request		 req;
	struct policy_decision		 dec;
	struct host_addr		 addr;
	enum policy_verdict		 want = POLICY_DENY;
	enum policy_reason		 want_reason = POLICY_BY_RULE;
	char				 shown[LINE_MAX_LEN];
	char				 name[PROTO_HOST_NAME_MAX + 1];
	char				*tok[TOKENS_MAX], *verdict;
	const char			*why, *host;
	uint32_t			 uid = DEFAULT_ID, gid = DEFAULT_ID;
	long long			 port, want_line = 0;
	size_t				 ntok, nargs;
	bool				 resolved = false;
	bool				 want_report = false;

	snprintf(shown, sizeof(shown), "%s", text);
	take_ids(&text, &uid, &gid, g->path, lineno);
	ntok = split(text, tok, TOKENS_MAX);
	if (ntok == 0 || ntok > TOKENS_MAX)
		fail_msg("%s:%u: bad expectation \"%s\"", g->path, lineno,
		    shown);
	memset(&req, 0, sizeof(req));
	nargs = 2;
	if (strcmp(tok[0], "connect") == 0)
		req.action = POLICY_CONNECT;
	else if (strcmp(tok[0], "connect-resolved") == 0) {
		req.action = POLICY_CONNECT;
		resolved = true;
		nargs = 3;
	} else if (strcmp(tok[0], "listen") == 0)
		req.action = POLICY_LISTEN;
	else if (strcmp(tok[0], "accept") == 0)
		req.action = POLICY_ACCEPT;
	else
		fail_msg("%s:%u: bad request in \"%s\"", g->path, lineno,
		    shown);
	if (ntok != 1 + nargs + 2)
		fail_msg("%s:%u: bad expectation \"%s\"", g->path, lineno,
		    shown);

	host = tok[1];
	if (resolved || (req.action == POLICY_CONNECT &&
	    host_parse_literal(host, strlen(host), &addr) != 0)) {
		/* as the broker does: names are normalised first */
		if (host_normalize_name(host, strlen(host), name, &why) != 0)
			fail_msg("%s:%u: bad name %s: %s", g->path, lineno,
			    host, why);
		req.name = name;
	}
	if (resolved)
		host = tok[2];
	if (req.name == NULL || resolved) {
		if (host_parse_literal(host, strlen(host), &addr) != 0)
			fail_msg("%s:%u: bad address %s", g->path, lineno,
			    host);
		req.addr = &addr;
	}
	port = number(tok[ntok - 3], 65535);
	verdict = tok[ntok - 2];
	if (strncmp(verdict, "report-", 7) == 0) {
		want_report = true;
		verdict += 7;
	}
	if (port < 0 || parse_verdict(verdict, &want) != 0 ||
	    (want_report && want == POLICY_DENY))
		fail_msg("%s:%u: bad expectation \"%s\"", g->path, lineno,
		    shown);
	req.port = (uint16_t)port;
	if (parse_reason(tok[ntok - 1], &want_reason) != 0 &&
	    (want_line = number(tok[ntok - 1], UINT32_MAX)) <= 0)
		fail_msg("%s:%u: bad rule line or reason in \"%s\"", g->path,
		    lineno, shown);

	tn = policy_tenant(g->policy, uid, gid);
	policy_decide(g->policy, tn, &ctx, &req, &dec);
	if (dec.verdict != want || dec.report != want_report ||
	    (want_line == 0 && (dec.rule != NULL ||
	    dec.reason != want_reason)) ||
	    (want_line != 0 && (dec.rule == NULL ||
	    dec.reason != POLICY_BY_RULE ||
	    dec.rule->line != (unsigned)want_line)))
		fail_msg("%s:%u: \"%s\": got %s%s by %s, rule line %u",
		    g->path, lineno, shown, dec.report ? "report-" : "",
		    verdict_name(dec.verdict), policy_reason_code(dec.reason),
		    dec.rule ? dec.rule->line : 0);

	/* The decision agrees with itself. */
	assert_int_equal(tn == NULL, dec.reason == POLICY_BY_NO_TENANT);
	if (dec.report) {
		assert_non_null(tn);
		assert_int_equal(tn->mode, POLICY_REPORT);
		assert_int_not_equal(dec.verdict, POLICY_DENY);
	}
	if (dec.verdict == POLICY_RESOLVE)
		assert_true(req.action == POLICY_CONNECT && req.addr == NULL);
	if (dec.rule != NULL) {
		/* a rule of the client's tenant, of the request's action */
		assert_non_null(tn);
		assert_true(dec.rule >= tn->rules &&
		    dec.rule < tn->rules + tn->nrules);
		assert_int_equal(dec.rule->action, req.action);
		assert_int_equal(dec.rule->allow,
		    dec.verdict != POLICY_DENY && !dec.report);
	}
	check_explanation(g, lineno, shown, &dec, req.addr);
}

static void
check_explain_line(struct good *g, unsigned lineno, const char *text)
{
	char	want[TEXT_MAX];

	if (g->explained_line == 0 || g->explained_line + 1 != lineno)
		fail_msg("%s:%u: \"# explain:\" must follow \"# expect:\"",
		    g->path, lineno);
	expand_file(text, g->path, want, sizeof(want));
	if (strcmp(g->explained, want) != 0)
		fail_msg("%s:%u: explained as \"%s\", want \"%s\"", g->path,
		    lineno, g->explained, want);
}

static void
check_expect_tenant(const struct good *g, unsigned lineno, char *text)
{
	const struct policy_tenant	*tn;
	uint32_t			 uid = DEFAULT_ID, gid = DEFAULT_ID;

	take_ids(&text, &uid, &gid, g->path, lineno);
	if (*text == '\0')
		fail_msg("%s:%u: no tenant name", g->path, lineno);
	tn = policy_tenant(g->policy, uid, gid);
	if (strcmp(text, "-") == 0 ? tn != NULL :
	    tn == NULL || strcmp(tn->name, text) != 0)
		fail_msg("%s:%u: uid %u gid %u: got tenant %s, want %s",
		    g->path, lineno, uid, gid, tn ? tn->name : "-", text);
}

static void
check_good_file(const char *path)
{
	struct good		*g;
	struct policy_error	 err;
	struct warnings		 got;
	char			*want[WARNINGS_MAX];
	char			 line[LINE_MAX_LEN], where[TEXT_MAX];
	FILE			*fp;
	size_t			 i, j, nwant = 0;
	unsigned		 lineno, checked = 0;

	assert_non_null(g = calloc(1, sizeof(*g)));
	g->path = path;
	if (policy_load(path, &g->policy, &err) != 0)
		fail_msg("%s refused: %s", path, err.message);
	assert_non_null(g->policy);
	assert_string_equal(g->policy->file, path);
	assert_non_null(fp = fopen(path, "r"));

	/* The context and the warnings, wherever their lines are. */
	for (lineno = 1; lineno <= LINES_MAX &&
	    fgets(line, sizeof(line), fp) != NULL; lineno++) {
		chomp(line);
		if (strncmp(line, "# own:", 6) == 0)
			add_own(g, lineno, line + 6);
		else if (strncmp(line, "# warning: ", 11) == 0) {
			if (nwant == WARNINGS_MAX)
				fail_msg("%s: too many warnings", path);
			want[nwant++] = expected_warning(g, lineno, line + 11);
		}
	}
	run_check(g->policy, &got);
	expect_warnings(path, &got, (const char *const *)want, nwant);
	for (i = 0; i < nwant; i++)
		free(want[i]);

	for (i = 0; i < g->policy->ntenants; i++)
		for (j = 0; j < g->policy->tenants[i].nrules; j++) {
			snprintf(where, sizeof(where), "%s:%u", path,
			    g->policy->tenants[i].rules[j].line);
			check_round_trip(&g->policy->tenants[i].rules[j],
			    where);
		}

	rewind(fp);
	for (lineno = 1; lineno <= LINES_MAX &&
	    fgets(line, sizeof(line), fp) != NULL; lineno++) {
		chomp(line);
		if (strncmp(line, "# expect: ", 10) == 0) {
			check_expectation(g, lineno, line + 10);
			checked++;
		} else if (strncmp(line, "# explain: ", 11) == 0)
			check_explain_line(g, lineno, line + 11);
		else if (strncmp(line, "# expect-tenant: ", 17) == 0) {
			check_expect_tenant(g, lineno, line + 17);
			checked++;
		} else if (strncmp(line, "# expect", 8) == 0 ||
		    strncmp(line, "# explain", 9) == 0)
			fail_msg("%s:%u: misspelt \"%s\"", path, lineno, line);
	}
	fclose(fp);
	policy_free(g->policy);
	free(g);
	if (checked == 0)
		fail_msg("%s has no \"# expect:\" lines", path);
}

static void
check_bad_file(const char *path)
{
	struct policy		*policy = &not_set;
	struct policy_error	 err;
	char			 line[LINE_MAX_LEN], prefix[PATH_MAX + 32];
	char			*p, *want;
	unsigned long		 want_line, want_col;
	FILE			*fp;

	assert_non_null(fp = fopen(path, "r"));
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	chomp(line);
	if (strncmp(line, "# error: ", 9) != 0)
		fail_msg("%s: no \"# error:\" line", path);
	want_line = strtoul(line + 9, &p, 10);
	if (*p != ':')
		fail_msg("%s: bad \"# error:\" line", path);
	want_col = strtoul(p + 1, &p, 10);
	if (strncmp(p, ": ", 2) != 0 || p[2] == '\0' || want_line < 2 ||
	    want_col < 1)
		fail_msg("%s: bad \"# error:\" line", path);
	want = p + 2;

	if (policy_load(path, &policy, &err) != -1)
		fail_msg("%s accepted", path);
	assert_null(policy);
	snprintf(prefix, sizeof(prefix), "%s:%lu:%lu: ", path, want_line,
	    want_col);
	if (err.line != want_line || err.col != want_col ||
	    strncmp(err.message, prefix, strlen(prefix)) != 0 ||
	    strstr(err.message + strlen(prefix), want) == NULL)
		fail_msg("%s: got %u:%u \"%s\", want %lu:%lu \"%s\"", path,
		    err.line, err.col, err.message, want_line, want_col, want);
}

static void
test_good_file(void **state)
{
	check_good_file(*state);
}

static void
test_bad_file(void **state)
{
	check_bad_file(*state);
}

static void
test_data_present(void **state)
{
	struct file_list	list;

	(void)state;
	assert_int_equal(list_conf(GOOD_DIR, &list), 0);
	assert_true(list.n >= GOOD_MIN);
	assert_true(list.n < FILES_MAX);
	free_list(&list);
	assert_int_equal(list_conf(BAD_DIR, &list), 0);
	assert_true(list.n >= BAD_MIN);
	assert_true(list.n < FILES_MAX);
	free_list(&list);
}

static struct policy *
parse_ok(const char *text, size_t len)
{
	struct policy		*policy = NULL;
	struct policy_error	 err;

	if (policy_parse("t.conf", text, len, &policy, &err) != 0)
		fail_msg("refused: %s", err.message);
	assert_non_null(policy);
	return policy;
}

static struct policy *
parse_str(const char *text)
{
	return parse_ok(text, strlen(text));
}

/* Asserts text is refused at line:col with message. */
static void
parse_bad(const char *text, size_t len, unsigned line, unsigned col,
    const char *message)
{
	struct policy		*policy = &not_set;
	struct policy_error	 err;

	assert_int_equal(policy_parse("t.conf", text, len, &policy, &err), -1);
	assert_null(policy);
	if (err.line != line || err.col != col ||
	    strstr(err.message, message) == NULL)
		fail_msg("got %u:%u \"%.200s\", want %u:%u \"%s\"", err.line,
		    err.col, err.message, line, col, message);
}

/*
 * Decides a request of the client whose uid and gid are id.  addr_text
 * NULL is a name before DNS; the address is parsed into *addr.
 */
static void
decide_for(const struct policy *policy, uint32_t id,
    const struct policy_context *ctx, enum policy_action action,
    const char *name, const char *addr_text, uint16_t port,
    struct host_addr *addr, struct policy_decision *dec)
{
	struct policy_request	req;

	memset(&req, 0, sizeof(req));
	req.action = action;
	req.name = name;
	req.port = port;
	if (addr_text != NULL) {
		assert_int_equal(host_parse_literal(addr_text,
		    strlen(addr_text), addr), 0);
		req.addr = addr;
	}
	policy_decide(policy, policy_tenant(policy, id, id), ctx, &req, dec);
}

static void
test_rule_fields(void **state)
{
	static const char	 text[] =
	    "tenant t {\n"
	    "    match uid 1000\n"
	    "connect allow API.Example.COM.:80,443,8000-8099\n"
	    "  listen deny [::1]:*\n"
	    "connect allow *.Example.org:1\n"
	    "\tconnect deny any:22 # ssh\n"
	    "listen allow [::ffff:10.0.0.1]:0\n"
	    "connect allow 192.168.0.1:00443\n"
	    "    connect allow 10.20.0.0/16:443\n"
	    "    accept deny [FD00::]/8:1024-65535\n"
	    "    connect allow [::ffff:192.168.7.0]/120:25\n"
	    "    accept allow 0.0.0.0/0:0\n"
	    "}\n";
	struct policy		*policy;
	const struct policy_rule *r;
	struct host_addr	 addr;

	(void)state;
	policy = parse_str(text);
	assert_string_equal(policy->file, "t.conf");
	assert_int_equal(policy->ntenants, 1);
	assert_int_equal(policy->nrules, 10);
	assert_int_equal(policy->tenants[0].nrules, 10);

	r = &policy->tenants[0].rules[0];
	assert_int_equal(r->action, POLICY_CONNECT);
	assert_true(r->allow);
	assert_int_equal(r->host, POLICY_HOST_NAME);
	assert_string_equal(r->name, "api.example.com");
	assert_int_equal(r->nports, 3);
	assert_int_equal(r->ports[0].lo, 80);
	assert_int_equal(r->ports[0].hi, 80);
	assert_int_equal(r->ports[1].lo, 443);
	assert_int_equal(r->ports[2].lo, 8000);
	assert_int_equal(r->ports[2].hi, 8099);
	assert_false(r->any_port);
	assert_int_equal(r->line, 3);
	assert_int_equal(r->col, 1);

	r = &policy->tenants[0].rules[1];
	assert_int_equal(r->action, POLICY_LISTEN);
	assert_false(r->allow);
	assert_int_equal(r->host, POLICY_HOST_CIDR);
	assert_int_equal(r->prefix, 128);
	assert_int_equal(host_parse_literal("::1", 3, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->nports, 1);
	assert_int_equal(r->ports[0].lo, 1);
	assert_int_equal(r->ports[0].hi, 65535);
	assert_true(r->any_port);
	assert_int_equal(r->line, 4);
	assert_int_equal(r->col, 3);

	r = &policy->tenants[0].rules[2];
	assert_int_equal(r->host, POLICY_HOST_WILDCARD);
	assert_string_equal(r->name, "example.org");

	r = &policy->tenants[0].rules[3];
	assert_false(r->allow);
	assert_int_equal(r->host, POLICY_HOST_ANY);
	assert_int_equal(r->line, 6);
	assert_int_equal(r->col, 2);

	r = &policy->tenants[0].rules[4];
	assert_int_equal(r->host, POLICY_HOST_CIDR);
	assert_int_equal(r->addr.family, AF_INET);
	assert_int_equal(r->prefix, 32);
	assert_int_equal(host_parse_literal("10.0.0.1", 8, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->ports[0].lo, 0);
	assert_int_equal(r->ports[0].hi, 0);

	r = &policy->tenants[0].rules[5];
	assert_int_equal(r->ports[0].lo, 443);
	assert_int_equal(r->prefix, 32);

	r = &policy->tenants[0].rules[6];
	assert_int_equal(r->host, POLICY_HOST_CIDR);
	assert_int_equal(r->addr.family, AF_INET);
	assert_int_equal(r->prefix, 16);
	assert_int_equal(host_parse_literal("10.20.0.0", 9, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->col, 5);

	r = &policy->tenants[0].rules[7];
	assert_int_equal(r->action, POLICY_ACCEPT);
	assert_false(r->allow);
	assert_int_equal(r->addr.family, AF_INET6);
	assert_int_equal(r->prefix, 8);
	assert_int_equal(host_parse_literal("fd00::", 6, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->ports[0].lo, 1024);
	assert_int_equal(r->ports[0].hi, 65535);
	assert_false(r->any_port);

	/* an IPv4-mapped range is the IPv4 range */
	r = &policy->tenants[0].rules[8];
	assert_int_equal(r->addr.family, AF_INET);
	assert_int_equal(r->prefix, 24);
	assert_int_equal(host_parse_literal("192.168.7.0", 11, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));

	r = &policy->tenants[0].rules[9];
	assert_int_equal(r->action, POLICY_ACCEPT);
	assert_int_equal(r->prefix, 0);
	assert_int_equal(r->ports[0].lo, 0);
	policy_free(policy);
	policy_free(NULL);
}

/* --check's parse reports every statement's error, each once. */
static void
test_every_error_reported(void **state)
{
	static const char	 text[] =
	    "tenant a {\n"
	    "    match uid 1\n"
	    "    connect allow\n"			/* 3: ends at the line */
	    "    connect bogus 1.2.3.4:5\n"		/* 4 */
	    "    listen allow\n"			/* 5 */
	    "    mode wrong\n"				/* 6 */
	    "    connect allow 10.0.0.1:80\n"
	    "}\n"
	    "bogus\n";					/* 9 */
	static const unsigned	 lines[] = { 3, 4, 5, 6, 9 };
	struct policy		*policy;
	struct policy_error	 err;
	size_t			 i;
	char			 want[32];

	(void)state;
	assert_int_equal(policy_parse("m.conf", text, strlen(text), &policy,
	    &err), -1);
	assert_int_equal(err.count, NELEM(lines));
	for (i = 0; i < NELEM(lines); i++) {
		snprintf(want, sizeof(want), "m.conf:%u:", lines[i]);
		assert_true(strncmp(err.all[i], want, strlen(want)) == 0);
	}
	assert_string_equal(err.message, err.all[0]);
}

/* match gid takes the primary gid or any supplementary group. */
static void
test_tenant_by_groups(void **state)
{
	static const char	 text[] =
	    "tenant a {\nmatch uid 1000\n}\n"
	    "tenant b {\nmatch gid 50,60-69\n}\n";
	static const uint32_t	 in_b[] = { 7, 65 }, none[] = { 7, 8 };
	struct policy_client	 c = { 2000, 2000, NULL, 0 };
	struct policy		*policy = parse_str(text);

	(void)state;
	assert_null(policy_tenant_of(policy, &c));
	c.groups = none;
	c.ngroups = 2;
	assert_null(policy_tenant_of(policy, &c));
	c.groups = in_b;
	assert_string_equal(policy_tenant_of(policy, &c)->name, "b");
	c.gid = 50;
	c.ngroups = 0;
	assert_string_equal(policy_tenant_of(policy, &c)->name, "b");
	/* The first tenant that takes the client, by uid or by group. */
	c.uid = 1000;
	c.groups = in_b;
	c.ngroups = 2;
	assert_string_equal(policy_tenant_of(policy, &c)->name, "a");
	policy_free(policy);
}

static void
test_tenant_fields(void **state)
{
	static const char	 text[] =
	    "# four tenants\n"
	    "tenant \"build farm\" {\n"
	    "    match uid 2000-2999,3005\n"
	    "    match gid 50\n"
	    "    match uid 0\n"
	    "    limit connections 64\n"
	    "    limit listeners 4\n"
	    "    limit lookups 8\n"
	    "    limit rate 20/s\n"
	    "    limit bandwidth 10MiB/s\n"
	    "    mode report\n"
	    "    connect allow a.example.com:443\n"
	    "}\n"
	    "\n"
	    "  tenant plain{\n"
	    "\tmatch gid *\n"
	    "}   # done\n"
	    "tenant \"#{x} y\" {\n"
	    "match uid 7 # comment\n"
	    "mode enforce\n"
	    "}\n"
	    "tenant connect {\n"
	    "match uid 0-4294967294\n"
	    "listen allow 127.0.0.1:8080\n"
	    "}";
	struct policy			*policy;
	const struct policy_tenant	*tn;

	(void)state;
	policy = parse_str(text);
	assert_int_equal(policy->ntenants, 4);
	assert_int_equal(policy->nrules, 2);

	tn = &policy->tenants[0];
	assert_string_equal(tn->name, "build farm");
	assert_int_equal(tn->line, 2);
	assert_int_equal(tn->nuids, 3);
	assert_int_equal(tn->uids[0].lo, 2000);
	assert_int_equal(tn->uids[0].hi, 2999);
	assert_int_equal(tn->uids[1].lo, 3005);
	assert_int_equal(tn->uids[1].hi, 3005);
	assert_int_equal(tn->uids[2].lo, 0);
	assert_int_equal(tn->uids[2].hi, 0);
	assert_int_equal(tn->ngids, 1);
	assert_int_equal(tn->gids[0].lo, 50);
	assert_int_equal(tn->gids[0].hi, 50);
	assert_int_equal(tn->limits.connections, 64);
	assert_int_equal(tn->limits.listeners, 4);
	assert_int_equal(tn->limits.lookups, 8);
	assert_int_equal(tn->limits.rate, 20);
	assert_int_equal(tn->limits.bandwidth, 10 * 1024 * 1024);
	assert_int_equal(tn->mode, POLICY_REPORT);
	assert_int_equal(tn->nrules, 1);
	assert_int_equal(tn->rules[0].line, 12);

	tn = &policy->tenants[1];
	assert_string_equal(tn->name, "plain");
	assert_int_equal(tn->line, 15);
	assert_int_equal(tn->nuids, 0);
	assert_int_equal(tn->ngids, 1);
	assert_int_equal(tn->gids[0].lo, 0);
	assert_int_equal(tn->gids[0].hi, UINT32_MAX - 1);
	assert_int_equal(tn->limits.connections, 0);
	assert_int_equal(tn->limits.listeners, 0);
	assert_int_equal(tn->limits.lookups, 0);
	assert_int_equal(tn->limits.rate, 0);
	assert_int_equal(tn->limits.bandwidth, 0);
	assert_int_equal(tn->mode, POLICY_ENFORCE);
	assert_int_equal(tn->nrules, 0);

	tn = &policy->tenants[2];
	assert_string_equal(tn->name, "#{x} y");
	assert_int_equal(tn->line, 18);
	assert_int_equal(tn->mode, POLICY_ENFORCE);

	/* a keyword is a name like any other */
	tn = &policy->tenants[3];
	assert_string_equal(tn->name, "connect");
	assert_int_equal(tn->uids[0].hi, UINT32_MAX - 1);
	assert_int_equal(tn->rules[0].line, 24);
	policy_free(policy);
}

/* The longest tenant name and the most id ranges are taken. */
static void
test_tenant_name_and_ids_limits(void **state)
{
	char		 text[2048], name[LIMIT_POLICY_NAME + 2];
	struct policy	*policy;
	size_t		 n = 0;
	unsigned	 i;

	(void)state;
	memset(name, 'n', sizeof(name));
	name[LIMIT_POLICY_NAME] = '\0';
	n = (size_t)snprintf(text, sizeof(text), "tenant %s {\nmatch uid ",
	    name);
	for (i = 0; i < LIMIT_POLICY_IDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%u",
		    i ? "," : "", i * 10);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "\nmatch gid ");
	for (i = 0; i < LIMIT_POLICY_IDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%u-%u",
		    i ? "," : "", i * 10, i * 10 + 5);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "\n}\n");
	assert_true(n < sizeof(text));
	policy = parse_ok(text, n);
	assert_int_equal(strlen(policy->tenants[0].name), LIMIT_POLICY_NAME);
	assert_int_equal(policy->tenants[0].nuids, LIMIT_POLICY_IDS);
	assert_int_equal(policy->tenants[0].ngids, LIMIT_POLICY_IDS);
	assert_int_equal(policy->tenants[0].uids[63].lo, 630);
	assert_int_equal(policy->tenants[0].gids[63].hi, 635);
	policy_free(policy);

	/* one more on another line of the tenant */
	n -= 2;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	    "match uid 9999\n}\n");
	parse_bad(text, n, 4, 11, "more than 64 id ranges in one tenant");

	/* a name one longer */
	name[LIMIT_POLICY_NAME] = 'n';
	name[LIMIT_POLICY_NAME + 1] = '\0';
	n = (size_t)snprintf(text, sizeof(text), "tenant \"%s\" {\nmatch uid 1"
	    "\n}\n", name);
	parse_bad(text, n, 1, 8, "expected a tenant name of 1 to 63 "
	    "characters, got 'nnnn");
}

static void
test_limit_values(void **state)
{
	static const struct {
		const char	*statement;
		uint64_t	 connections, listeners, lookups, rate;
		uint64_t	 bandwidth;
	} cases[] = {
		{ "limit connections 1", 1, 0, 0, 0, 0 },
		{ "limit connections 1000000", 1000000, 0, 0, 0, 0 },
		{ "limit connections 0064", 64, 0, 0, 0, 0 },
		{ "limit listeners 3", 0, 3, 0, 0, 0 },
		{ "limit lookups 1000000", 0, 0, 1000000, 0, 0 },
		{ "limit rate 1/s", 0, 0, 0, 1, 0 },
		{ "limit rate 1000000/s", 0, 0, 0, 1000000, 0 },
		{ "limit bandwidth 1B/s", 0, 0, 0, 0, 1 },
		{ "limit bandwidth 2kB/s", 0, 0, 0, 0, 2000 },
		{ "limit bandwidth 512KiB/s", 0, 0, 0, 0, 512 * 1024 },
		{ "limit bandwidth 3MB/s", 0, 0, 0, 0, 3000000 },
		{ "limit bandwidth 10MiB/s", 0, 0, 0, 0, 10485760 },
		{ "limit bandwidth 2GB/s", 0, 0, 0, 0, 2000000000 },
		{ "limit bandwidth 1GiB/s", 0, 0, 0, 0, 1073741824 },
		{ "limit bandwidth 1024GiB/s", 0, 0, 0, 0,
		    1024ULL * 1073741824ULL },
	};
	const struct policy_limits	*l;
	struct policy			*policy;
	char				 text[200];
	size_t				 i;
	int				 n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		n = snprintf(text, sizeof(text), "tenant t {\nmatch uid 1\n"
		    "%s\n}\n", cases[i].statement);
		policy = parse_ok(text, (size_t)n);
		l = &policy->tenants[0].limits;
		if (l->connections != cases[i].connections ||
		    l->listeners != cases[i].listeners ||
		    l->lookups != cases[i].lookups ||
		    l->rate != cases[i].rate ||
		    l->bandwidth != cases[i].bandwidth) {
			policy_free(policy);
			fail_msg("\"%s\" read wrong", cases[i].statement);
		}
		policy_free(policy);
	}
}

/* Bad limit values, each refused at the value. */
static void
test_limit_errors(void **state)
{
	static const struct {
		const char	*statement;
		unsigned	 col;
		const char	*message;
	} cases[] = {
		{ "limit connections 0", 19, "expected a number from 1 to "
		    "1000000" },
		{ "limit connections 1000001", 19, "expected a number" },
		{ "limit listeners -1", 17, "expected a number" },
		{ "limit lookups 10/s", 15, "expected a number" },
		{ "limit lookups many", 15, "expected a number" },
		{ "limit connections \"5\"", 19, "expected a value, got '5'" },
		{ "limit connections", 18, "expected a value, got end of "
		    "line" },
		{ "limit rate 20", 12, "expected a rate such as 20/s" },
		{ "limit rate 0/s", 12, "expected a rate" },
		{ "limit rate 1000001/s", 12, "expected a rate" },
		{ "limit rate /s", 12, "expected a rate" },
		{ "limit rate 20/m", 12, "expected a rate" },
		{ "limit rate 20/S", 12, "expected a rate" },
		{ "limit bandwidth 10mib/s", 17, "expected a bandwidth such "
		    "as 512KiB/s" },
		{ "limit bandwidth 10MiB", 17, "expected a bandwidth" },
		{ "limit bandwidth 10/s", 17, "expected a bandwidth" },
		{ "limit bandwidth 0MiB/s", 17, "expected a bandwidth" },
		{ "limit bandwidth MiB/s", 17, "expected a bandwidth" },
		{ "limit bandwidth 10TiB/s", 17, "expected a bandwidth" },
		{ "limit bandwidth 1025GiB/s", 17, "at most 1024GiB/s" },
		{ "limit bandwidth 1099511627777B/s", 17, "at most 1024GiB/s" },
		{ "limit bandwidth 10MiB/sec", 17, "expected a bandwidth" },
		{ "limit bandwidth 1000000001B/s", 17, "expected a bandwidth" },
		{ "limit bandwidth 10 MiB/s", 17, "expected a bandwidth" },
		{ "limit bandwidth -5MiB/s", 17, "expected a bandwidth" },
		{ "limit connection 5", 7, "expected connections, listeners, "
		    "rate, bandwidth or lookups, got 'connection'" },
		{ "limit", 6, "expected connections, listeners, rate, "
		    "bandwidth or lookups, got end of line" },
		{ "limit connections 5 6", 21, "unexpected '6' after the "
		    "statement" },
		{ "limit rate 5/s # comment }", 0, NULL },
	};
	struct policy	*policy;
	char		 text[200];
	size_t		 i;
	int		 n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		n = snprintf(text, sizeof(text), "tenant t {\nmatch uid 1\n"
		    "%s\n}\n", cases[i].statement);
		if (cases[i].message == NULL) {
			policy = parse_ok(text, (size_t)n);
			policy_free(policy);
			continue;
		}
		parse_bad(text, (size_t)n, 3, cases[i].col, cases[i].message);
	}
}

static void
test_policy_tenant(void **state)
{
	static const char	 text[] =
	    "tenant a {\nmatch uid 10-19,30\n}\n"
	    "tenant b {\nmatch gid 100\n}\n"
	    "tenant c {\nmatch uid 15\nmatch gid 200\n}\n"
	    "tenant all {\nmatch uid *\n}\n";
	static const struct {
		uint32_t	 uid, gid;
		const char	*tenant;
	} cases[] = {
		{ 10, 0, "a" }, { 19, 0, "a" }, { 30, 0, "a" },
		{ 20, 0, "all" }, { 29, 0, "all" }, { 9, 0, "all" },
		{ 30, 100, "a" }, { 20, 100, "b" }, { 15, 200, "a" },
		{ 20, 200, "c" }, { 0, 0, "all" },
		{ UINT32_MAX - 1, 0, "all" },
		{ UINT32_MAX, 100, "b" },
		{ UINT32_MAX, UINT32_MAX, NULL },
	};
	const struct policy_tenant	*tn;
	struct policy			*policy;
	size_t				 i;

	(void)state;
	policy = parse_str(text);
	for (i = 0; i < NELEM(cases); i++) {
		tn = policy_tenant(policy, cases[i].uid, cases[i].gid);
		if (cases[i].tenant == NULL ? tn != NULL : tn == NULL ||
		    strcmp(tn->name, cases[i].tenant) != 0)
			fail_msg("uid %u gid %u: got %s, want %s", cases[i].uid,
			    cases[i].gid, tn ? tn->name : "none",
			    cases[i].tenant ? cases[i].tenant : "none");
	}
	policy_free(policy);

	policy = parse_str("");
	assert_null(policy_tenant(policy, 0, 0));
	assert_null(policy_tenant(policy, 1000, 1000));
	policy_free(policy);
}

static void
test_may_listen(void **state)
{
	static const struct {
		const char	*text;
		bool		 may;
	} cases[] = {
		{ "", false },
		{ "tenant a {\nmatch uid 1\n}\n", false },
		{ "tenant a {\nmatch uid 1\nconnect allow any:*\n"
		    "accept allow any:*\n}\n", false },
		{ "tenant a {\nmatch uid 1\nlisten deny any:*\n}\n", false },
		{ "tenant a {\nmatch uid 1\nlisten allow 127.0.0.1:0\n}\n",
		    true },
		{ "tenant a {\nmatch uid 1\nconnect allow any:*\n}\n"
		    "tenant b {\nmatch gid 1\nlisten deny any:*\n"
		    "listen allow [::1]:8080\n}\n", true },
		{ "tenant a {\nmatch uid 1\nmode report\n}\n", true },
	};
	struct policy	*policy;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		policy = parse_str(cases[i].text);
		if (policy_may_listen(policy) != cases[i].may) {
			policy_free(policy);
			fail_msg("case %zu: policy_may_listen() is not %d", i,
			    cases[i].may);
		}
		policy_free(policy);
	}
}

/* policy_internal() on its own, with and without own addresses. */
static void
test_internal(void **state)
{
	static const struct {
		const char	*addr;
		bool		 internal;
	} cases[] = {
		{ "127.0.0.1", true }, { "10.0.0.1", true },
		{ "169.254.169.254", true }, { "100.64.0.0", true },
		{ "0.0.0.0", true }, { "224.0.0.251", true },
		{ "255.255.255.255", true }, { "::", true }, { "::1", true },
		{ "::ffff:192.168.1.1", true }, { "fd00::1", true },
		{ "fe80::1", true }, { "ff02::fb", true },
		{ "64:ff9b::10.0.0.1", true }, { "2002:c000:204::1", true },
		{ "2001:0:4136:e378::1", true }, { "2001:db8::1", true },
		{ "3fff::1", false }, { "3fff:fff:ffff:ffff::1", false },
		{ "3fff::9", false },
	};
	struct host_addr	addr, own[2];
	struct policy_context	none = { NULL, 0 }, ctx = { own, 2 };
	size_t			i;

	(void)state;
	assert_int_equal(host_parse_literal("3fff::9", 7, &own[0]), 0);
	assert_int_equal(host_parse_literal("10.9.9.9", 8, &own[1]), 0);
	for (i = 0; i < NELEM(cases); i++) {
		assert_int_equal(host_parse_literal(cases[i].addr,
		    strlen(cases[i].addr), &addr), 0);
		if (policy_internal(NULL, &addr) != cases[i].internal ||
		    policy_internal(&none, &addr) != cases[i].internal)
			fail_msg("%s: internal is not %d", cases[i].addr,
			    cases[i].internal);
		if (policy_internal(&ctx, &addr) != (cases[i].internal ||
		    strcmp(cases[i].addr, "3fff::9") == 0))
			fail_msg("%s with own addresses", cases[i].addr);
	}
}

static void
test_reason_codes(void **state)
{
	(void)state;
	assert_string_equal(policy_reason_code(POLICY_BY_RULE), "rule");
	assert_string_equal(policy_reason_code(POLICY_BY_DEFAULT), "default");
	assert_string_equal(policy_reason_code(POLICY_BY_INTERNAL),
	    "internal");
	assert_string_equal(policy_reason_code(POLICY_BY_UNNAMED), "unnamed");
	assert_string_equal(policy_reason_code(POLICY_BY_NO_TENANT),
	    "no-tenant");
	assert_string_equal(policy_reason_code((enum policy_reason)99), "?");
}

static const char	explain_text[] =
    "tenant t {\n"
    "    match uid 1\n"
    "    connect allow 10.0.0.1:80\n"
    "    listen allow 127.0.0.1:8080\n"
    "    accept allow 10.0.0.0/8:*\n"
    "    connect deny 10.0.0.66:*\n"
    "}\n"
    "tenant r {\n"
    "    match uid 2\n"
    "    mode report\n"
    "    connect deny 10.0.0.66:*\n"
    "}\n";

/* policy_explain() and policy_where() for every reason. */
static void
test_explain_and_where(void **state)
{
	static const struct {
		uint32_t		 uid;
		enum policy_action	 action;
		const char		*name, *addr;
		uint16_t		 port;
		enum policy_verdict	 verdict;
		const char		*explain, *where;
	} cases[] = {
		{ 1, POLICY_CONNECT, NULL, "10.0.0.1", 80, POLICY_ALLOW,
		    "rule t.conf:3", "t.conf:3" },
		{ 1, POLICY_CONNECT, NULL, "10.0.0.66", 80, POLICY_DENY,
		    "rule t.conf:6", "t.conf:6" },
		{ 1, POLICY_CONNECT, "a.example.com", NULL, 80, POLICY_DENY,
		    "the default (no rule of t.conf allows it)", "default" },
		{ 1, POLICY_CONNECT, NULL, "3fff::5", 80, POLICY_DENY,
		    "the default (no rule of t.conf allows it)", "default" },
		{ 1, POLICY_CONNECT, NULL, "10.0.0.2", 80, POLICY_DENY,
		    "the internal range 10.0.0.0/8 (private) (no address "
		    "rule allows it)", "internal" },
		{ 1, POLICY_CONNECT, "a.example.com", "169.254.169.254", 80,
		    POLICY_DENY, "the internal range 169.254.169.254 (cloud "
		    "metadata) (no address rule allows it)", "internal" },
		{ 1, POLICY_CONNECT, NULL, "3fff::1", 80, POLICY_DENY,
		    "the internal range of this host's own addresses (no "
		    "address rule allows it)", "internal" },
		{ 1, POLICY_LISTEN, NULL, "0.0.0.0", 8080, POLICY_DENY,
		    "the default (a wildcard address, port 0 or a port below "
		    "1024 needs a rule that names it)", "unnamed" },
		{ 1, POLICY_LISTEN, NULL, "127.0.0.1", 0, POLICY_DENY,
		    "the default (a wildcard address, port 0 or a port below "
		    "1024 needs a rule that names it)", "unnamed" },
		{ 1, POLICY_LISTEN, NULL, "127.0.0.1", 8080, POLICY_ALLOW,
		    "rule t.conf:4", "t.conf:4" },
		{ 1, POLICY_LISTEN, NULL, "127.0.0.1", 8081, POLICY_DENY,
		    "the default (no rule of t.conf allows it)", "default" },
		{ 1, POLICY_ACCEPT, NULL, "10.9.8.7", 1, POLICY_ALLOW,
		    "rule t.conf:5", "t.conf:5" },
		{ 1, POLICY_ACCEPT, NULL, "192.168.0.1", 1, POLICY_DENY,
		    "the default (no rule of t.conf allows it)", "default" },
		{ 3, POLICY_CONNECT, "a.example.com", NULL, 80, POLICY_DENY,
		    "the default (no tenant of t.conf matches the client)",
		    "no-tenant" },
		{ 3, POLICY_ACCEPT, NULL, "10.0.0.1", 80, POLICY_DENY,
		    "the default (no tenant of t.conf matches the client)",
		    "no-tenant" },
		/* report mode: allowed, explained by what would deny */
		{ 2, POLICY_CONNECT, NULL, "10.0.0.66", 80, POLICY_ALLOW,
		    "rule t.conf:11", "t.conf:11" },
		{ 2, POLICY_CONNECT, "a.example.com", NULL, 80,
		    POLICY_RESOLVE, "the default (no rule of t.conf allows "
		    "it)", "default" },
		/* report mode leaves the internal ranges closed */
		{ 2, POLICY_CONNECT, NULL, "127.0.0.1", 80, POLICY_DENY,
		    "the internal range 127.0.0.0/8 (loopback) (no address "
		    "rule allows it)", "internal" },
	};
	struct policy		*policy;
	struct policy_decision	 dec;
	struct host_addr	 addr, own;
	struct policy_context	 ctx = { &own, 1 };
	char			 buf[256];
	size_t			 i;

	(void)state;
	assert_int_equal(host_parse_literal("3fff::1", 7, &own), 0);
	policy = parse_str(explain_text);
	for (i = 0; i < NELEM(cases); i++) {
		decide_for(policy, cases[i].uid, &ctx, cases[i].action,
		    cases[i].name, cases[i].addr, cases[i].port, &addr, &dec);
		if (dec.verdict != cases[i].verdict)
			fail_msg("case %zu: verdict %s", i,
			    verdict_name(dec.verdict));
		assert_int_equal(dec.report, cases[i].uid == 2 &&
		    cases[i].verdict != POLICY_DENY);
		policy_explain(policy, &dec, cases[i].addr ? &addr : NULL, buf,
		    sizeof(buf));
		if (strcmp(buf, cases[i].explain) != 0)
			fail_msg("case %zu: explained as \"%s\"", i, buf);
		policy_where(policy, &dec, buf, sizeof(buf));
		if (strcmp(buf, cases[i].where) != 0)
			fail_msg("case %zu: where \"%s\"", i, buf);
	}
	policy_free(policy);
}

/* Explanations are cut to the buffer; an internal one without address. */
static void
test_explain_edges(void **state)
{
	struct policy		*policy;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	char			 buf[128], small[8];

	(void)state;
	policy = parse_str(explain_text);
	decide_for(policy, 1, NULL, POLICY_CONNECT, NULL, "10.0.0.1", 80,
	    &addr, &dec);
	assert_int_equal(dec.verdict, POLICY_ALLOW);
	memset(small, 'x', sizeof(small));
	policy_explain(policy, &dec, &addr, small, sizeof(small));
	assert_string_equal(small, "rule t.");
	memset(small, 'x', sizeof(small));
	policy_where(policy, &dec, small, 4);
	assert_string_equal(small, "t.c");
	policy_explain(policy, &dec, &addr, small, 1);
	assert_string_equal(small, "");

	decide_for(policy, 1, NULL, POLICY_CONNECT, NULL, "10.0.0.2", 80,
	    &addr, &dec);
	assert_int_equal(dec.reason, POLICY_BY_INTERNAL);
	/* without the address, the range cannot be named */
	policy_explain(policy, &dec, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "the internal range of this host's own "
	    "addresses (no address rule allows it)");
	policy_where(policy, &dec, small, sizeof(small));
	assert_string_equal(small, "interna");
	policy_free(policy);
}

/* Rules as policy_rule_text() writes them. */
static void
test_rule_text(void **state)
{
	static const struct {
		const char	*rule, *text;
	} cases[] = {
		{ "connect allow API.Example.COM.:80,443,8000-8099",
		    "connect allow api.example.com:80,443,8000-8099" },
		{ "connect deny *.Example.org:*",
		    "connect deny *.example.org:*" },
		{ "connect deny any:1-65535", "connect deny any:1-65535" },
		{ "listen allow any:0", "listen allow any:0" },
		{ "listen deny 0.0.0.0:0,1-1023",
		    "listen deny 0.0.0.0:0,1-1023" },
		{ "connect allow 10.20.0.0/16:443",
		    "connect allow 10.20.0.0/16:443" },
		{ "connect allow 10.1.2.3/32:22", "connect allow 10.1.2.3:22" },
		{ "connect allow [FD00::]/8:1-1,2-3",
		    "connect allow [fd00::]/8:1,2-3" },
		{ "connect allow [fd00:0:0:0:0:0:0:5]:00022",
		    "connect allow [fd00::5]:22" },
		{ "connect allow [::ffff:192.168.7.0]/120:25",
		    "connect allow 192.168.7.0/24:25" },
		{ "connect allow [::ffff:10.0.0.1]:25",
		    "connect allow 10.0.0.1:25" },
		{ "accept deny [::1]/128:22", "accept deny [::1]:22" },
		{ "accept allow [::]/0:*", "accept allow [::]/0:*" },
		{ "connect allow 0.0.0.0/0:9", "connect allow 0.0.0.0/0:9" },
		{ "connect allow [::ffff:0.0.0.0]/96:9",
		    "connect allow 0.0.0.0/0:9" },
		{ "listen allow [::]:8080", "listen allow [::]:8080" },
		{ "connect allow under_score.example.test:1,1",
		    "connect allow under_score.example.test:1,1" },
	};
	struct policy	*policy;
	char		 text[300], buf[RULE_TEXT_MAX];
	size_t		 i;
	int		 n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		n = snprintf(text, sizeof(text), "tenant t {\nmatch uid 1\n%s\n"
		    "}\n", cases[i].rule);
		policy = parse_ok(text, (size_t)n);
		policy_rule_text(&policy->tenants[0].rules[0], buf,
		    sizeof(buf));
		if (strcmp(buf, cases[i].text) != 0) {
			policy_free(policy);
			fail_msg("\"%s\" written \"%s\", want \"%s\"",
			    cases[i].rule, buf, cases[i].text);
		}
		check_round_trip(&policy->tenants[0].rules[0], cases[i].rule);
		/* cut to the buffer */
		memset(buf, 'x', 16);
		policy_rule_text(&policy->tenants[0].rules[0], buf, 9);
		assert_int_equal(strlen(buf), 8);
		assert_memory_equal(buf, cases[i].text, 8);
		policy_free(policy);
	}
}

/* policy_check(): each kind of warning, exactly. */
static void
test_check_warnings(void **state)
{
	static const char	 text[] =
	    "tenant t {\n"
	    "    match uid 1000\n"
	    "    connect allow a.example.com:443\n"
	    "    connect allow 10.1.2.3:80\n"
	    "    connect deny  *.example.com:*\n"
	    "    connect deny  10.0.0.0/8:80,443\n"
	    "    connect allow 192.168.0.0/16:*\n"
	    "    connect allow 192.168.1.0/24:22\n"
	    "    connect allow 0.0.0.0/0:9\n"
	    "    listen  allow 127.0.0.1:*\n"
	    "    listen  allow 127.0.0.1:8080\n"
	    "    listen  allow 127.0.0.2:8000-8100\n"
	    "    listen  allow 127.0.0.2:8080\n"
	    "    listen  deny  127.0.0.3:*\n"
	    "    listen  allow 127.0.0.3:0\n"
	    "    listen  allow 127.0.0.3:80\n"
	    "    accept  allow any:*\n"
	    "    accept  allow 10.0.0.0/8:*\n"
	    "\tconnect allow *.a.example.com:443\n"
	    "    connect deny  any:7\n"
	    "    connect allow [3fff::1]:7\n"
	    "}\n"
	    "tenant u {\n"
	    "    match uid 1000\n"
	    "}\n"
	    "tenant v {\n"
	    "    match uid 999-1001\n"
	    "}\n"
	    "tenant w {\n"
	    "    match uid 1001\n"
	    "    match uid 999\n"
	    "}\n"
	    "tenant x {\n"
	    "    match uid 1000\n"
	    "    match gid 5\n"
	    "    connect allow [::]/0:1\n"
	    "}\n";
	static const char *const want[] = {
		"w.conf:3:5: warning: \"connect allow a.example.com:443\" "
		    "never allows anything: the deny rule at line 5 covers it",
		"w.conf:4:5: warning: \"connect allow 10.1.2.3:80\" never "
		    "allows anything: the deny rule at line 6 covers it",
		"w.conf:8:5: warning: \"connect allow 192.168.1.0/24:22\" adds "
		    "nothing: the rule at line 7 allows all it does",
		"w.conf:9:5: warning: \"connect allow 0.0.0.0/0:9\" opens "
		    "16 internal ranges: 0.0.0.0/8 (this network), 10.0.0.0/8 "
		    "(private), 100.64.0.0/10 (carrier-grade NAT), ...",
		"w.conf:13:5: warning: \"listen allow 127.0.0.2:8080\" adds "
		    "nothing: the rule at line 12 allows all it does",
		"w.conf:16:5: warning: \"listen allow 127.0.0.3:80\" never "
		    "allows anything: the deny rule at line 14 covers it",
		"w.conf:18:5: warning: \"accept allow 10.0.0.0/8:*\" adds "
		    "nothing: the rule at line 17 allows all it does",
		"w.conf:19:2: warning: \"connect allow *.a.example.com:443\" "
		    "never allows anything: the deny rule at line 5 covers it",
		"w.conf:21:5: warning: \"connect allow [3fff::1]:7\" never "
		    "allows anything: the deny rule at line 20 covers it",
		"w.conf:23:1: warning: tenant \"u\" can never match: tenant "
		    "\"t\" (line 1) takes all its uids first",
		"w.conf:29:1: warning: tenant \"w\" can never match: tenant "
		    "\"v\" (line 26) takes all its uids first",
		"w.conf:36:5: warning: \"connect allow [::]/0:1\" opens "
		    "14 internal ranges: ::/128 (unspecified), ::1/128 "
		    "(loopback), ::/96 (IPv4-compatible), ...",
	};
	struct policy		*policy = NULL;
	struct policy_error	 err;
	struct warnings		 w;

	(void)state;
	if (policy_parse("w.conf", text, strlen(text), &policy, &err) != 0)
		fail_msg("%s", err.message);
	run_check(policy, &w);
	expect_warnings("w.conf", &w, want, NELEM(want));
	policy_free(policy);
}

/* Files policy_check() has nothing to say about. */
static void
test_check_quiet(void **state)
{
	static const char *const texts[] = {
		"tenant t {\nmatch uid 1\n}\n",
		/* an address rule before 'any' is what opens the address */
		"tenant t {\nmatch uid 1\nconnect allow 10.0.0.1:80\n"
		    "connect allow any:*\n}\n",
		/* a deny covering part of an allow */
		"tenant t {\nmatch uid 1\nconnect allow 10.0.0.0/8:*\n"
		    "connect deny 10.0.0.1:*\nconnect deny 10.0.0.0/8:22\n}\n",
		/* '*' for a listener names no low port, so 80 adds to it */
		"tenant t {\nmatch uid 1\nlisten allow 127.0.0.1:*\n"
		    "listen allow 127.0.0.1:80\n}\n",
		/* 0 is not in '*' */
		"tenant t {\nmatch uid 1\nlisten deny any:*\n"
		    "listen allow 127.0.0.1:0\n}\n",
		/* rules of different actions or tenants do not cover */
		"tenant t {\nmatch uid 1\nconnect deny any:*\n"
		    "listen allow any:8080\naccept allow any:*\n}\n"
		    "tenant u {\nmatch uid 2\nconnect allow any:*\n}\n",
		/* a name rule does not cover a wildcard, nor the reverse */
		"tenant t {\nmatch uid 1\nconnect allow a.example.com:443\n"
		    "connect allow *.a.example.com:443\n"
		    "connect deny example.com:443\n"
		    "connect allow *.example.com.example.org:443\n}\n",
		/* a wider range after a narrower one: a catch-all */
		"tenant t {\nmatch uid 1-10\n}\n"
		    "tenant u {\nmatch uid 1-20\n}\n",
		/* a tenant reachable by gid */
		"tenant t {\nmatch uid *\n}\ntenant u {\nmatch uid 5\n"
		    "match gid 7\n}\n",
		"tenant t {\nmatch gid *\n}\ntenant u {\nmatch uid 5\n}\n",
		/* a range that takes in no internal range */
		"tenant t {\nmatch uid 1\nconnect allow 8.0.0.0/7:9\n"
		    "listen allow 0.0.0.0/0:8080\naccept allow [::]/0:*\n}\n",
	};
	struct policy	*policy;
	struct warnings	 w;
	size_t		 i;
	char		 where[32];

	(void)state;
	for (i = 0; i < NELEM(texts); i++) {
		policy = parse_str(texts[i]);
		run_check(policy, &w);
		snprintf(where, sizeof(where), "case %zu", i);
		expect_warnings(where, &w, NULL, 0);
		policy_free(policy);
	}
}

/* The message names the file, line and column; tokens are shown safely. */
static void
test_error_message_format(void **state)
{
	static const char	 bad_byte[] =
	    "tenant t {\nmatch uid 1\nconn\x01" "ect allow any:80\n}\n";
	static const char	 dup[] =
	    "tenant a {\nmatch uid 1\n}\n\ntenant \"a\" {\nmatch uid 2\n}\n";
	struct policy		*policy;
	struct policy_error	 err;
	char			 text[200], want[120];

	(void)state;
	assert_int_equal(policy_parse("x.conf", "\nbind allow any:80\n",
	    strlen("\nbind allow any:80\n"), &policy, &err), -1);
	assert_string_equal(err.message,
	    "x.conf:2:1: expected 'tenant' or 'every', got 'bind'");

	assert_int_equal(policy_parse("x.conf", "\n  connect allow any:80\n",
	    strlen("\n  connect allow any:80\n"), &policy, &err), -1);
	assert_string_equal(err.message, "x.conf:2:3: 'connect' belongs in a "
	    "tenant block: tenant NAME { ... }");

	assert_int_equal(policy_parse("x.conf", bad_byte, strlen(bad_byte),
	    &policy, &err), -1);
	assert_string_equal(err.message, "x.conf:3:1: expected match, "
	    "connect, listen, accept, limit, mode or '}', got "
	    "'conn\\x01ect'");

	assert_int_equal(policy_parse("x.conf", dup, strlen(dup), &policy,
	    &err), -1);
	assert_string_equal(err.message, "x.conf:5:8: tenant \"a\" is already "
	    "defined at line 1");

	assert_int_equal(policy_parse("x.conf", "tenant t {\n", 11, &policy,
	    &err), -1);
	assert_string_equal(err.message, "x.conf:1:1: tenant \"t\" has no "
	    "closing '}'");

	/* a long token is cut and marked */
	memset(text, 'q', 150);
	text[150] = '\n';
	assert_int_equal(policy_parse("x.conf", text, 151, &policy, &err), -1);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 1);
	assert_non_null(strstr(err.message, "qqq...'"));
	snprintf(want, sizeof(want), "got '%.10s", text);
	assert_non_null(strstr(err.message, want));
	assert_true(strlen(err.message) < 150);
}

static void
test_token_limit(void **state)
{
	static const char	 rule[] =
	    "tenant t {\nmatch uid 1\n# long\nconnect allow 10.0.0.1:80 ";
	static const char	 target[] =
	    "tenant t {\nmatch uid 1\nlisten allow ";
	char			*text;
	size_t			 len;

	(void)state;
	text = malloc(sizeof(rule) + LIMIT_POLICY_TOKEN + 16);
	assert_non_null(text);

	/* a token of exactly the limit reaches the parser */
	memcpy(text, rule, sizeof(rule) - 1);
	len = sizeof(rule) - 1;
	memset(text + len, 'x', LIMIT_POLICY_TOKEN);
	len += LIMIT_POLICY_TOKEN;
	text[len++] = '\n';
	parse_bad(text, len, 4, 27, "unexpected 'xxx");

	/* one byte more does not */
	len--;
	text[len++] = 'x';
	text[len++] = '\n';
	parse_bad(text, len, 4, 27, "token longer than 512 bytes");
	/* also at the end of the file */
	parse_bad(text, len - 1, 4, 27, "token longer than 512 bytes");

	/* as the first token of a file and as a target */
	memset(text, 'a', LIMIT_POLICY_TOKEN + 1);
	parse_bad(text, LIMIT_POLICY_TOKEN + 1, 1, 1,
	    "token longer than 512 bytes");
	memcpy(text, target, sizeof(target) - 1);
	memset(text + sizeof(target) - 1, 'a', LIMIT_POLICY_TOKEN + 1);
	parse_bad(text, sizeof(target) - 1 + LIMIT_POLICY_TOKEN + 1, 3, 14,
	    "token longer than 512 bytes");

	/* a quoted string: the quotes do not count */
	memcpy(text, "tenant \"", 8);
	memset(text + 8, 'n', LIMIT_POLICY_TOKEN);
	memcpy(text + 8 + LIMIT_POLICY_TOKEN, "\" {\n", 4);
	parse_bad(text, 12 + LIMIT_POLICY_TOKEN, 1, 8,
	    "expected a tenant name of 1 to 63 characters");
	memset(text + 8, 'n', LIMIT_POLICY_TOKEN + 1);
	memcpy(text + 9 + LIMIT_POLICY_TOKEN, "\" {\n", 4);
	parse_bad(text, 13 + LIMIT_POLICY_TOKEN, 1, 8,
	    "token longer than 512 bytes");
	free(text);
}

/* Comments are not tokens: a long one is fine. */
static void
test_long_comment(void **state)
{
	static const char	 rest[] =
	    "\ntenant t {\nmatch uid 1\nlisten allow any:0 #\n}\n";
	struct policy		*policy;
	char			*text;
	size_t			 len = 4 * LIMIT_POLICY_TOKEN;

	(void)state;
	text = malloc(len + sizeof(rest));
	assert_non_null(text);
	text[0] = '#';
	memset(text + 1, 'c', len - 1);
	memcpy(text + len, rest, sizeof(rest) - 1);
	policy = parse_ok(text, len + sizeof(rest) - 1);
	assert_int_equal(policy->nrules, 1);
	assert_int_equal(policy->tenants[0].line, 2);
	assert_int_equal(policy->tenants[0].rules[0].line, 4);
	policy_free(policy);
	free(text);
}

/* LIMIT_POLICY_FILE bytes of a tenant padded with a comment. */
static char *
padded_text(size_t len)
{
	static const char	 head[] =
	    "tenant t {\nmatch uid 1\nconnect allow 10.0.0.1:80\n}\n#";
	char			*text;

	text = malloc(len);
	assert_non_null(text);
	memset(text, ' ', len);
	memcpy(text, head, sizeof(head) - 1);
	return text;
}

static void
test_file_limit_parse(void **state)
{
	struct policy	*policy;
	char		*text;

	(void)state;
	text = padded_text(LIMIT_POLICY_FILE + 1);
	policy = parse_ok(text, LIMIT_POLICY_FILE);
	assert_int_equal(policy->nrules, 1);
	policy_free(policy);
	parse_bad(text, LIMIT_POLICY_FILE + 1, 1, 1,
	    "file larger than 1048576 bytes");
	free(text);
}

/* Files of test_file_limit_load, in a directory its teardown removes. */
static const char	*temp_names[] = { "exact.conf", "over.conf", "far.conf" };
static char		 temp_dir[] = "/tmp/unit_policy.XXXXXX";

static int
make_temp_dir(void **state)
{
	(void)state;
	return mkdtemp(temp_dir) == NULL ? -1 : 0;
}

static int
remove_temp_dir(void **state)
{
	char	path[PATH_MAX];
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(temp_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", temp_dir, temp_names[i]);
		unlink(path);
	}
	return rmdir(temp_dir);
}

/* Writes len bytes of text to the file name in temp_dir. */
static void
write_temp(const char *name, const char *text, size_t len, char *path,
    size_t cap)
{
	FILE	*fp;

	snprintf(path, cap, "%s/%s", temp_dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void
test_file_limit_load(void **state)
{
	struct policy		*policy = NULL;
	struct policy_error	 err;
	char			 path[PATH_MAX];
	char			*text;

	(void)state;
	text = padded_text(LIMIT_POLICY_FILE + 100);
	write_temp(temp_names[0], text, LIMIT_POLICY_FILE, path, sizeof(path));
	if (policy_load(path, &policy, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(policy->nrules, 1);
	policy_free(policy);

	write_temp(temp_names[1], text, LIMIT_POLICY_FILE + 1, path,
	    sizeof(path));
	assert_int_equal(policy_load(path, &policy, &err), -1);
	assert_null(policy);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.col, 1);
	assert_non_null(strstr(err.message, "file larger than"));
	assert_int_equal(strncmp(err.message, path, strlen(path)), 0);

	write_temp(temp_names[2], text, LIMIT_POLICY_FILE + 100, path,
	    sizeof(path));
	assert_int_equal(policy_load(path, &policy, &err), -1);
	assert_non_null(strstr(err.message, "file larger than"));
	free(text);
}

/* Two tenants with in_a and in_b rules. */
static char *
rules_text(size_t in_a, size_t in_b, size_t *len)
{
	static const char	 rule[] = "connect allow 10.0.0.1:80\n";
	static const char	 a[] = "tenant a {\nmatch uid 1\n";
	static const char	 b[] = "}\ntenant b {\nmatch uid 2\n";
	static const char	 end[] = "}\n";
	size_t			 i, n = 0;
	char			*text;

	text = malloc(sizeof(a) + sizeof(b) + sizeof(end) +
	    (in_a + in_b) * (sizeof(rule) - 1));
	assert_non_null(text);
	memcpy(text, a, sizeof(a) - 1);
	n = sizeof(a) - 1;
	for (i = 0; i < in_a; i++, n += sizeof(rule) - 1)
		memcpy(text + n, rule, sizeof(rule) - 1);
	memcpy(text + n, b, sizeof(b) - 1);
	n += sizeof(b) - 1;
	for (i = 0; i < in_b; i++, n += sizeof(rule) - 1)
		memcpy(text + n, rule, sizeof(rule) - 1);
	memcpy(text + n, end, sizeof(end) - 1);
	*len = n + sizeof(end) - 1;
	return text;
}

/* LIMIT_POLICY_RULES counts the rules of all tenants. */
static void
test_rules_limit(void **state)
{
	struct policy	*policy;
	char		*text;
	size_t		 len, half = LIMIT_POLICY_RULES / 2;

	(void)state;
	text = rules_text(half, half, &len);
	policy = parse_ok(text, len);
	assert_int_equal(policy->nrules, LIMIT_POLICY_RULES);
	assert_int_equal(policy->tenants[0].nrules, half);
	assert_int_equal(policy->tenants[1].nrules, half);
	assert_int_equal(policy->tenants[1].rules[half - 1].line,
	    2 + half + 3 + half);
	policy_free(policy);
	free(text);

	text = rules_text(half, half + 1, &len);
	parse_bad(text, len, 2 + half + 3 + half + 1, 1,
	    "more than 4096 rules");
	free(text);
	text = rules_text(LIMIT_POLICY_RULES + 1, 0, &len);
	parse_bad(text, len, 2 + LIMIT_POLICY_RULES + 1, 1,
	    "more than 4096 rules");
	free(text);
}

static void
test_tenants_limit(void **state)
{
	struct policy	*policy;
	char		*text;
	size_t		 cap = (LIMIT_POLICY_TENANTS + 1) * 64, n = 0;
	unsigned	 i;

	(void)state;
	assert_non_null(text = malloc(cap));
	for (i = 0; i < LIMIT_POLICY_TENANTS + 1; i++)
		n += (size_t)snprintf(text + n, cap - n,
		    "tenant t%u {\nmatch uid %u\n}\n", i, i);
	assert_true(n < cap);
	/* all but the last */
	policy = parse_ok(text, (size_t)(strstr(text, "tenant t256 ") - text));
	assert_int_equal(policy->ntenants, LIMIT_POLICY_TENANTS);
	assert_string_equal(policy->tenants[255].name, "t255");
	assert_int_equal(policy->tenants[255].line, 3 * 255 + 1);
	policy_free(policy);
	parse_bad(text, n, 3 * LIMIT_POLICY_TENANTS + 1, 1,
	    "more than 256 tenants");
	free(text);
}

static void
test_load_errors(void **state)
{
	static const char	 missing[] = TB_TEST_DATA "/policy/missing.conf";
	struct policy		*policy = NULL;
	struct policy_error	 err;

	(void)state;
	assert_int_equal(policy_load(missing, &policy, &err), -1);
	assert_null(policy);
	assert_int_equal(err.line, 0);
	assert_int_equal(err.col, 0);
	assert_int_equal(strncmp(err.message, missing, strlen(missing)), 0);
	assert_non_null(strstr(err.message, ": cannot open: "));

	assert_int_equal(policy_load(TB_TEST_DATA "/policy", &policy, &err),
	    -1);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.message, "not a regular file"));
}

static void
test_empty_policy(void **state)
{
	static const char	*texts[] = {
		"", "\n", "\n\n\n", "# only a comment", "   \t \r\n  # x\n\n"
	};
	struct policy		*policy;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	char			 buf[128];
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(texts); i++) {
		policy = parse_str(texts[i]);
		assert_int_equal(policy->ntenants, 0);
		assert_int_equal(policy->nrules, 0);
		assert_false(policy_may_listen(policy));
		decide_for(policy, 1000, NULL, POLICY_CONNECT,
		    "a.example.com", NULL, 80, &addr, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_int_equal(dec.reason, POLICY_BY_NO_TENANT);
		assert_null(dec.rule);
		assert_false(dec.report);
		decide_for(policy, 0, NULL, POLICY_LISTEN, NULL, "127.0.0.1",
		    0, &addr, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_null(dec.rule);
		policy_explain(policy, &dec, &addr, buf, sizeof(buf));
		assert_string_equal(buf,
		    "the default (no tenant of t.conf matches the client)");
		policy_free(policy);
	}
}

/* The same request decided against rules in either order. */
static void
test_order_does_not_matter(void **state)
{
	static const char	*texts[] = {
		"tenant t {\nmatch uid 1\nconnect allow any:*\n"
		    "connect deny *.example.com:443\n}\n",
		"tenant t {\nmatch uid 1\nconnect deny *.example.com:443\n"
		    "connect allow any:*\n}\n"
	};
	static const unsigned	 deny_line[] = { 4, 3 };
	struct policy		*policy;
	struct policy_request	 req;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	size_t			 i;

	(void)state;
	assert_int_equal(host_parse_literal("3fff::1", 7, &addr), 0);
	for (i = 0; i < 2; i++) {
		policy = parse_str(texts[i]);
		memset(&req, 0, sizeof(req));
		req.action = POLICY_CONNECT;
		req.name = "a.example.com";
		req.port = 443;
		policy_decide(policy, &policy->tenants[0], NULL, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_non_null(dec.rule);
		assert_int_equal(dec.rule->line, deny_line[i]);
		req.addr = &addr;
		policy_decide(policy, &policy->tenants[0], NULL, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_int_equal(dec.rule->line, deny_line[i]);
		req.port = 80;
		policy_decide(policy, &policy->tenants[0], NULL, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_ALLOW);
		assert_int_equal(dec.rule->line, 7 - deny_line[i]);
		policy_free(policy);
	}
}

/*
 * Numeric host forms that resolvers read as addresses are refused, in
 * requests and in every place of a rule that takes a name.
 */
static void
test_numeric_hosts(void **state)
{
	static const char *const numeric[] = {
		"2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001",
		"127.0.0.1.", "0x7f.0x0.0x0.0x1", "017700000001", "127.0.1",
		"10.1", "0X7F.1", "127.000.000.001",
	};
	static const struct {
		const char	*before, *after;
		unsigned	 col;
		const char	*message;
	} places[] = {
		{ "connect allow ", ":80", 15, "bad host: a numeric address" },
		{ "connect deny ", ":*", 14, "bad host: a numeric address" },
		{ "connect allow *.", ":80", 17, "bad domain after '*.': a "
		    "numeric address" },
		{ "listen allow ", ":80", 14, "bad host: a numeric address" },
		{ "accept allow ", ":80", 14, "bad host: a numeric address" },
		{ "connect allow ", "/32:80", 15, "not an IPv4 address" },
		{ "connect allow [::ffff:", "]:80", 15, "not an IPv6 address "
		    "inside [ ]" },
	};
	char		 out[PROTO_HOST_NAME_MAX + 1], text[200];
	const char	*why;
	size_t		 i, j;
	int		 n;

	(void)state;
	for (i = 0; i < NELEM(numeric); i++) {
		if (host_normalize_name(numeric[i], strlen(numeric[i]), out,
		    &why) == 0)
			fail_msg("the name %s is taken", numeric[i]);
		for (j = 0; j < NELEM(places); j++) {
			n = snprintf(text, sizeof(text), "tenant t {\n"
			    "match uid 1\n%s%s%s\n}\n", places[j].before,
			    numeric[i], places[j].after);
			parse_bad(text, (size_t)n, 3, places[j].col,
			    places[j].message);
		}
	}
}

/*
 * An allow rule for an internal address or range after `any` is not
 * redundant: `any` never opens an internal address, so that rule is the
 * only thing that does.  Nor is a listen rule naming 0.0.0.0 after
 * `listen allow any:PORT`, which never names the wildcard address.  The
 * decisions below show each rule is needed; the check says nothing.
 */
static void
test_check_keeps_needed_rules(void **state)
{
	static const char	 text[] =
	    "tenant t {\n"
	    "    match uid 1\n"
	    "    connect allow any:*\n"
	    "    connect allow 10.0.0.1:80\n"
	    "    listen  allow any:8080\n"
	    "    listen  allow 0.0.0.0:8080\n"
	    "}\n";
	struct policy		*policy;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	struct warnings		 w;

	(void)state;
	policy = parse_str(text);
	decide_for(policy, 1, NULL, POLICY_CONNECT, NULL, "10.0.0.1", 80,
	    &addr, &dec);
	assert_int_equal(dec.verdict, POLICY_ALLOW);
	assert_int_equal(dec.rule->line, 4);
	decide_for(policy, 1, NULL, POLICY_CONNECT, NULL, "10.0.0.2", 80,
	    &addr, &dec);
	assert_int_equal(dec.reason, POLICY_BY_INTERNAL);
	decide_for(policy, 1, NULL, POLICY_LISTEN, NULL, "0.0.0.0", 8080,
	    &addr, &dec);
	assert_int_equal(dec.verdict, POLICY_ALLOW);
	assert_int_equal(dec.rule->line, 6);

	run_check(policy, &w);
	policy_free(policy);
	expect_warnings("policy_check() on rules that are needed", &w, NULL,
	    0);
}

/*
 * A rule whose port list is long (the parser takes up to 64 ranges in a
 * token of up to 512 bytes) is written whole, never cut in a number.
 */
static void
test_rule_text_long_ports(void **state)
{
	struct policy		*policy;
	struct policy_rule	 rule;
	char			 text[700];
	size_t			 n;
	unsigned		 i;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "tenant t {\nmatch uid 1\n"
	    "connect allow any:");
	for (i = 0; i < 42; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%u-%u",
		    i ? "," : "", 10000 + 2 * i, 10001 + 2 * i);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "\n}\n");
	assert_true(n < sizeof(text));
	policy = parse_ok(text, n);
	rule = policy->tenants[0].rules[0];
	policy_free(policy);
	assert_int_equal(rule.nports, 42);
	check_round_trip(&rule, "policy_rule_text() of 42 port ranges");
}

/*
 * A tenant without accept rules hands over every peer (verdict allow,
 * reason default); the explanation says so rather than that nothing
 * allows it.
 */
static void
test_explain_accept_default(void **state)
{
	struct policy		*policy;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	char			 buf[200];

	(void)state;
	policy = parse_str("tenant t {\nmatch uid 1\nlisten allow "
	    "127.0.0.1:8080\n}\n");
	decide_for(policy, 1, NULL, POLICY_ACCEPT, NULL, "10.0.0.1", 40000,
	    &addr, &dec);
	assert_int_equal(dec.verdict, POLICY_ALLOW);
	assert_null(dec.rule);
	policy_explain(policy, &dec, &addr, buf, sizeof(buf));
	policy_free(policy);
	if (strstr(buf, "allows it") != NULL)
		fail_msg("an allowed accept explained as \"%s\"", buf);
}

/* Runs one test per file in dir; returns the failures. */
static int
run_file_tests(const char *group, const char *dir,
    CMUnitTestFunction func)
{
	struct CMUnitTest	*tests;
	struct file_list	 list;
	size_t			 i;
	int			 failed;

	if (list_conf(dir, &list) != 0 || list.n == 0) {
		print_error("%s: no policy files\n", dir);
		return 1;
	}
	if ((tests = calloc(list.n, sizeof(*tests))) == NULL) {
		free_list(&list);
		return 1;
	}
	for (i = 0; i < list.n; i++) {
		tests[i].name = strrchr(list.names[i], '/') + 1;
		tests[i].test_func = func;
		tests[i].initial_state = list.names[i];
	}
	failed = _cmocka_run_group_tests(group, tests, list.n, NULL, NULL);
	free(tests);
	free_list(&list);
	return failed;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_present),
		cmocka_unit_test(test_rule_fields),
		cmocka_unit_test(test_tenant_fields),
		cmocka_unit_test(test_tenant_by_groups),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_tenant_name_and_ids_limits),
		cmocka_unit_test(test_limit_values),
		cmocka_unit_test(test_limit_errors),
		cmocka_unit_test(test_policy_tenant),
		cmocka_unit_test(test_may_listen),
		cmocka_unit_test(test_internal),
		cmocka_unit_test(test_reason_codes),
		cmocka_unit_test(test_explain_and_where),
		cmocka_unit_test(test_explain_edges),
		cmocka_unit_test(test_rule_text),
		cmocka_unit_test(test_check_warnings),
		cmocka_unit_test(test_check_quiet),
		cmocka_unit_test(test_error_message_format),
		cmocka_unit_test(test_token_limit),
		cmocka_unit_test(test_long_comment),
		cmocka_unit_test(test_file_limit_parse),
		cmocka_unit_test_setup_teardown(test_file_limit_load,
		    make_temp_dir, remove_temp_dir),
		cmocka_unit_test(test_rules_limit),
		cmocka_unit_test(test_tenants_limit),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_empty_policy),
		cmocka_unit_test(test_order_does_not_matter),
		cmocka_unit_test(test_numeric_hosts),
		cmocka_unit_test(test_check_keeps_needed_rules),
		cmocka_unit_test(test_rule_text_long_ports),
		cmocka_unit_test(test_explain_accept_default),
	};
	int	failed;

	failed = cmocka_run_group_tests_name("policy", tests, NULL, NULL);
	failed += run_file_tests("policy/good", GOOD_DIR, test_good_file);
	failed += run_file_tests("policy/bad", BAD_DIR, test_bad_file);
	return failed;
}
