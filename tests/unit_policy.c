/*
 * The policy parser and matcher, driven mostly by the files under
 * tests/policy: those in good/ carry "# expect:" decision lines, those
 * in bad/ start with "# error: LINE:COL: text".
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

#define GOOD_DIR	TB_TEST_DATA "/policy/good"
#define BAD_DIR		TB_TEST_DATA "/policy/bad"
/* Fewer files than this means the data went missing. */
#define GOOD_MIN	9
#define BAD_MIN		60
#define FILES_MAX	256
#define LINES_MAX	10000
#define LINE_MAX_LEN	1024

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

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
}

/* Parses a decimal number no larger than max; -1 if s is not one. */
static long
number(const char *s, unsigned long max)
{
	unsigned long	 v;
	char		*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	return (long)v;
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
	if (s == NULL)
		return -1;
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

/*
 * Checks one expectation: "connect HOST PORT V LINE", "listen ADDR PORT
 * V LINE" or "connect-resolved NAME ADDR PORT V LINE".
 */
static void
check_expectation(const struct policy *policy, const char *path,
    unsigned lineno, char *text)
{
	struct policy_request	 req;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	enum policy_verdict	 want = POLICY_DENY;
	char			 shown[LINE_MAX_LEN], name[PROTO_HOST_NAME_MAX + 1];
	char			 explain[PATH_MAX + 64], rule_text[PATH_MAX + 32];
	char			*tok[8], *save = NULL;
	const char		*why, *host;
	long			 port, want_line = 0;
	size_t			 ntok = 0;
	int			 resolved;

	snprintf(shown, sizeof(shown), "%s", text);
	for (ntok = 0; ntok < 7; ntok++)
		if ((tok[ntok] = strtok_r(ntok == 0 ? text : NULL, " \t",
		    &save)) == NULL)
			break;
	memset(&req, 0, sizeof(req));
	resolved = ntok > 0 && strcmp(tok[0], "connect-resolved") == 0;
	if (ntok != (resolved ? 6u : 5u))
		fail_msg("%s:%u: bad expectation \"%s\"", path, lineno, shown);
	if (strcmp(tok[0], "listen") == 0)
		req.action = POLICY_LISTEN;
	else if (resolved || strcmp(tok[0], "connect") == 0)
		req.action = POLICY_CONNECT;
	else
		fail_msg("%s:%u: bad action in \"%s\"", path, lineno, shown);

	host = tok[1];
	if (resolved || (req.action == POLICY_CONNECT &&
	    host_parse_literal(host, strlen(host), &addr) != 0)) {
		/* as the broker does: names are normalised first */
		if (host_normalize_name(host, strlen(host), name, &why) != 0)
			fail_msg("%s:%u: bad name %s: %s", path, lineno, host,
			    why);
		req.name = name;
	}
	if (resolved)
		host = tok[2];
	if (req.name == NULL || resolved) {
		if (host_parse_literal(host, strlen(host), &addr) != 0)
			fail_msg("%s:%u: bad address %s", path, lineno, host);
		req.addr = &addr;
	}
	port = number(tok[ntok - 3], 65535);
	if (port < 0 || parse_verdict(tok[ntok - 2], &want) != 0)
		fail_msg("%s:%u: bad expectation \"%s\"", path, lineno, shown);
	req.port = (uint16_t)port;
	if (strcmp(tok[ntok - 1], "default") == 0)
		want_line = 0;
	else if ((want_line = number(tok[ntok - 1], UINT32_MAX)) <= 0)
		fail_msg("%s:%u: bad rule line in \"%s\"", path, lineno, shown);

	policy_decide(policy, &req, &dec);
	if (dec.verdict != want ||
	    (want_line == 0 && dec.rule != NULL) ||
	    (want_line != 0 && (dec.rule == NULL ||
	    dec.rule->line != (unsigned)want_line)))
		fail_msg("%s:%u: \"%s\": got %s, rule line %u (0: default)",
		    path, lineno, shown, verdict_name(dec.verdict),
		    dec.rule ? dec.rule->line : 0);

	policy_explain(policy, &dec, explain, sizeof(explain));
	if (dec.rule != NULL) {
		/* the deciding rule agrees with the verdict */
		assert_int_equal(dec.rule->action, req.action);
		assert_int_equal(dec.rule->allow, dec.verdict != POLICY_DENY);
		snprintf(rule_text, sizeof(rule_text), "rule %s:%ld", path,
		    want_line);
		assert_string_equal(explain, rule_text);
	} else {
		assert_non_null(strstr(explain, "the default"));
		assert_non_null(strstr(explain, path));
	}
}

static void
check_good_file(const char *path)
{
	struct policy		*policy = NULL;
	struct policy_error	 err;
	char			 line[LINE_MAX_LEN];
	FILE			*fp;
	unsigned		 lineno, checked = 0;

	if (policy_load(path, &policy, &err) != 0)
		fail_msg("%s refused: %s", path, err.message);
	assert_non_null(policy);
	assert_string_equal(policy->file, path);
	assert_non_null(fp = fopen(path, "r"));
	for (lineno = 1; lineno <= LINES_MAX &&
	    fgets(line, sizeof(line), fp) != NULL; lineno++) {
		chomp(line);
		if (strncmp(line, "# expect: ", 10) != 0)
			continue;
		check_expectation(policy, path, lineno, line + 10);
		checked++;
	}
	fclose(fp);
	policy_free(policy);
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
	if (strncmp(p, ": ", 2) != 0 || p[2] == '\0' || want_line < 2)
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

static void
test_rule_fields(void **state)
{
	static const char	 text[] =
	    "connect allow API.Example.COM.:80,443,8000-8099\n"
	    "  listen deny [::1]:*\n"
	    "connect allow *.Example.org:1\n"
	    "\tconnect deny any:22 # ssh\n"
	    "listen allow [::ffff:10.0.0.1]:0\n"
	    "connect allow 192.168.0.1:00443\n";
	struct policy		*policy;
	const struct policy_rule *r;
	struct host_addr	 addr;

	(void)state;
	policy = parse_ok(text, strlen(text));
	assert_string_equal(policy->file, "t.conf");
	assert_int_equal(policy->nrules, 6);

	r = &policy->rules[0];
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
	assert_int_equal(r->line, 1);
	assert_int_equal(r->col, 1);

	r = &policy->rules[1];
	assert_int_equal(r->action, POLICY_LISTEN);
	assert_false(r->allow);
	assert_int_equal(r->host, POLICY_HOST_ADDR);
	assert_int_equal(host_parse_literal("::1", 3, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->nports, 1);
	assert_int_equal(r->ports[0].lo, 1);
	assert_int_equal(r->ports[0].hi, 65535);
	assert_int_equal(r->line, 2);
	assert_int_equal(r->col, 3);

	r = &policy->rules[2];
	assert_int_equal(r->host, POLICY_HOST_WILDCARD);
	assert_string_equal(r->name, "example.org");

	r = &policy->rules[3];
	assert_false(r->allow);
	assert_int_equal(r->host, POLICY_HOST_ANY);
	assert_int_equal(r->line, 4);
	assert_int_equal(r->col, 2);

	r = &policy->rules[4];
	assert_int_equal(r->host, POLICY_HOST_ADDR);
	assert_int_equal(r->addr.family, AF_INET);
	assert_int_equal(host_parse_literal("10.0.0.1", 8, &addr), 0);
	assert_true(host_addr_equal(&r->addr, &addr));
	assert_int_equal(r->ports[0].lo, 0);
	assert_int_equal(r->ports[0].hi, 0);

	r = &policy->rules[5];
	assert_int_equal(r->ports[0].lo, 443);
	policy_free(policy);
	policy_free(NULL);
}

static void
test_empty_policy(void **state)
{
	static const char	*texts[] = {
		"", "\n", "\n\n\n", "# only a comment", "   \t \r\n  # x\n\n"
	};
	struct policy		*policy;
	struct policy_request	 req;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	char			 buf[128];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		policy = parse_ok(texts[i], strlen(texts[i]));
		assert_int_equal(policy->nrules, 0);
		memset(&req, 0, sizeof(req));
		req.action = POLICY_CONNECT;
		req.name = "a.example.com";
		req.port = 80;
		policy_decide(policy, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_null(dec.rule);
		assert_int_equal(host_parse_literal("127.0.0.1", 9, &addr), 0);
		req.name = NULL;
		req.addr = &addr;
		req.action = POLICY_LISTEN;
		req.port = 0;
		policy_decide(policy, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_null(dec.rule);
		policy_explain(policy, &dec, buf, sizeof(buf));
		assert_string_equal(buf,
		    "the default (no rule of t.conf allows it)");
		policy_free(policy);
	}
}

static void
test_explain(void **state)
{
	static const char	 text[] = "\n\nconnect allow 10.0.0.1:80\n";
	struct policy		*policy;
	struct policy_request	 req;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	char			 buf[64], small[8];

	(void)state;
	policy = parse_ok(text, strlen(text));
	assert_int_equal(host_parse_literal("10.0.0.1", 8, &addr), 0);
	memset(&req, 0, sizeof(req));
	req.action = POLICY_CONNECT;
	req.addr = &addr;
	req.port = 80;
	policy_decide(policy, &req, &dec);
	assert_int_equal(dec.verdict, POLICY_ALLOW);
	policy_explain(policy, &dec, buf, sizeof(buf));
	assert_string_equal(buf, "rule t.conf:3");
	memset(small, 'x', sizeof(small));
	policy_explain(policy, &dec, small, sizeof(small));
	assert_string_equal(small, "rule t.");

	req.port = 81;
	policy_decide(policy, &req, &dec);
	assert_int_equal(dec.verdict, POLICY_DENY);
	assert_null(dec.rule);
	policy_explain(policy, &dec, buf, sizeof(buf));
	assert_string_equal(buf, "the default (no rule of t.conf allows it)");
	policy_free(policy);
}

/* The message names the file, line and column; tokens are shown safely. */
static void
test_error_message_format(void **state)
{
	static const char	 bad_byte[] = "\nconn\x01" "ect allow any:80\n";
	struct policy		*policy;
	struct policy_error	 err;
	char			 text[200], want[120];

	(void)state;
	assert_int_equal(policy_parse("x.conf", "\nbind allow any:80\n", 19,
	    &policy, &err), -1);
	assert_string_equal(err.message,
	    "x.conf:2:1: expected 'connect' or 'listen', got 'bind'");

	assert_int_equal(policy_parse("x.conf", bad_byte, strlen(bad_byte),
	    &policy, &err), -1);
	assert_string_equal(err.message,
	    "x.conf:2:1: expected 'connect' or 'listen', got 'conn\\x01ect'");

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
	static const char	 rule[] = "# long\nconnect allow 10.0.0.1:80 ";
	char			*text;
	size_t			 len;

	(void)state;
	text = malloc(sizeof(rule) + LIMIT_POLICY_TOKEN + 2);
	assert_non_null(text);

	/* a token of exactly the limit reaches the parser */
	memcpy(text, rule, sizeof(rule) - 1);
	len = sizeof(rule) - 1;
	memset(text + len, 'x', LIMIT_POLICY_TOKEN);
	len += LIMIT_POLICY_TOKEN;
	text[len++] = '\n';
	parse_bad(text, len, 2, 27, "unexpected 'xxx");

	/* one byte more does not */
	len--;
	text[len++] = 'x';
	text[len++] = '\n';
	parse_bad(text, len, 2, 27, "token longer than 512 bytes");
	/* also at the end of the file */
	parse_bad(text, len - 1, 2, 27, "token longer than 512 bytes");

	/* as the first token of a line and as a target */
	memset(text, 'a', LIMIT_POLICY_TOKEN + 14);
	parse_bad(text, LIMIT_POLICY_TOKEN + 1, 1, 1,
	    "token longer than 512 bytes");
	memcpy(text, "listen allow ", 13);
	parse_bad(text, LIMIT_POLICY_TOKEN + 14, 1, 14,
	    "token longer than 512 bytes");
	free(text);
}

/* Comments are not tokens: a long one is fine. */
static void
test_long_comment(void **state)
{
	struct policy	*policy;
	char		*text;
	size_t		 len = 4 * LIMIT_POLICY_TOKEN;

	(void)state;
	text = malloc(len + 64);
	assert_non_null(text);
	text[0] = '#';
	memset(text + 1, 'c', len - 1);
	memcpy(text + len, "\nlisten allow any:0\n", 20);
	policy = parse_ok(text, len + 20);
	assert_int_equal(policy->nrules, 1);
	assert_int_equal(policy->rules[0].line, 2);
	policy_free(policy);
	free(text);
}

/* LIMIT_POLICY_FILE bytes of a rule padded with a comment. */
static char *
padded_text(size_t len)
{
	static const char	 rule[] = "connect allow 10.0.0.1:80\n#";
	char			*text;

	text = malloc(len);
	assert_non_null(text);
	memset(text, ' ', len);
	memcpy(text, rule, sizeof(rule) - 1);
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
	for (i = 0; i < sizeof(temp_names) / sizeof(temp_names[0]); i++) {
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

static void
test_rules_limit(void **state)
{
	static const char	 rule[] = "connect allow 10.0.0.1:80\n";
	struct policy		*policy;
	char			*text;
	size_t			 i, rlen = sizeof(rule) - 1;

	(void)state;
	text = malloc(rlen * (LIMIT_POLICY_RULES + 1));
	assert_non_null(text);
	for (i = 0; i < LIMIT_POLICY_RULES + 1; i++)
		memcpy(text + i * rlen, rule, rlen);
	policy = parse_ok(text, rlen * LIMIT_POLICY_RULES);
	assert_int_equal(policy->nrules, LIMIT_POLICY_RULES);
	assert_int_equal(policy->rules[LIMIT_POLICY_RULES - 1].line,
	    LIMIT_POLICY_RULES);
	policy_free(policy);
	parse_bad(text, rlen * (LIMIT_POLICY_RULES + 1), LIMIT_POLICY_RULES + 1,
	    1, "more than 4096 rules");
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
	assert_int_equal(err.line, 0);
	assert_int_equal(err.col, 0);
	assert_int_equal(strncmp(err.message, missing, strlen(missing)), 0);
	assert_non_null(strstr(err.message, ": cannot open: "));

	assert_int_equal(policy_load(TB_TEST_DATA "/policy", &policy, &err),
	    -1);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.message, "not a regular file"));
}

/* The same request decided against rules in either order. */
static void
test_order_does_not_matter(void **state)
{
	static const char	*texts[] = {
		"connect allow any:*\nconnect deny *.example.com:443\n",
		"connect deny *.example.com:443\nconnect allow any:*\n"
	};
	static const unsigned	 deny_line[] = { 2, 1 };
	struct policy		*policy;
	struct policy_request	 req;
	struct policy_decision	 dec;
	struct host_addr	 addr;
	size_t			 i;

	(void)state;
	assert_int_equal(host_parse_literal("10.0.0.1", 8, &addr), 0);
	for (i = 0; i < 2; i++) {
		policy = parse_ok(texts[i], strlen(texts[i]));
		memset(&req, 0, sizeof(req));
		req.action = POLICY_CONNECT;
		req.name = "a.example.com";
		req.port = 443;
		policy_decide(policy, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		assert_non_null(dec.rule);
		assert_int_equal(dec.rule->line, deny_line[i]);
		req.addr = &addr;
		policy_decide(policy, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_DENY);
		req.port = 80;
		policy_decide(policy, &req, &dec);
		assert_int_equal(dec.verdict, POLICY_ALLOW);
		assert_int_equal(dec.rule->line, 3 - deny_line[i]);
		policy_free(policy);
	}
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
		cmocka_unit_test(test_empty_policy),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_error_message_format),
		cmocka_unit_test(test_token_limit),
		cmocka_unit_test(test_long_comment),
		cmocka_unit_test(test_file_limit_parse),
		cmocka_unit_test_setup_teardown(test_file_limit_load,
		    make_temp_dir, remove_temp_dir),
		cmocka_unit_test(test_rules_limit),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_order_does_not_matter),
	};
	int	failed;

	failed = cmocka_run_group_tests_name("policy", tests, NULL, NULL);
	failed += run_file_tests("policy/good", GOOD_DIR, test_good_file);
	failed += run_file_tests("policy/bad", BAD_DIR, test_bad_file);
	return failed;
}
