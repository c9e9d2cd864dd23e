/*
 * Deciding a request.  Rule order does not matter:
 *
 *   1. a matching deny rule always wins;
 *   2. an internal address (loopback, private, link-local, metadata, the
 *      host's own, ...) needs an allow rule for an address or range that
 *      covers it: a host name, a wildcard or `any` never opens one;
 *   3. a host name needs an allow rule for names, so a name no rule
 *      allows is denied before any DNS query;
 *   4. a listener on a wildcard address, on port 0 or below 1024 needs a
 *      rule that names it;
 *   5. anything not allowed is denied.
 *
 * A tenant in report mode has its denials logged and allowed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

struct range {
	int		 family;
	uint8_t		 bytes[16];
	unsigned	 prefix;
	const char	*text;
};

#define V4(a, b, c, d, len, text)					\
	{ AF_INET, { a, b, c, d }, len, text }
#define V6(len, text, ...)						\
	{ AF_INET6, { __VA_ARGS__ }, len, text }

/* The built-in internal ranges. */
static const struct range internal[] = {
	V4(0, 0, 0, 0, 8, "0.0.0.0/8 (this network)"),
	V4(10, 0, 0, 0, 8, "10.0.0.0/8 (private)"),
	V4(100, 64, 0, 0, 10, "100.64.0.0/10 (carrier-grade NAT)"),
	V4(127, 0, 0, 0, 8, "127.0.0.0/8 (loopback)"),
	V4(169, 254, 169, 254, 32, "169.254.169.254 (cloud metadata)"),
	V4(169, 254, 0, 0, 16, "169.254.0.0/16 (link-local)"),
	V4(172, 16, 0, 0, 12, "172.16.0.0/12 (private)"),
	V4(192, 0, 0, 0, 24, "192.0.0.0/24 (IETF protocol assignments)"),
	V4(192, 0, 2, 0, 24, "192.0.2.0/24 (documentation)"),
	V4(192, 88, 99, 0, 24, "192.88.99.0/24 (6to4 relay)"),
	V4(192, 168, 0, 0, 16, "192.168.0.0/16 (private)"),
	V4(198, 18, 0, 0, 15, "198.18.0.0/15 (benchmarking)"),
	V4(198, 51, 100, 0, 24, "198.51.100.0/24 (documentation)"),
	V4(203, 0, 113, 0, 24, "203.0.113.0/24 (documentation)"),
	V4(224, 0, 0, 0, 4, "224.0.0.0/4 (multicast)"),
	V4(240, 0, 0, 0, 4, "240.0.0.0/4 (reserved, broadcast)"),
	V6(128, "::/128 (unspecified)", 0),
	V6(128, "::1/128 (loopback)", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 1),
	V6(96, "::/96 (IPv4-compatible)", 0),
	V6(96, "::ffff:0:0:0/96 (SIIT)", 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff),
	V6(96, "64:ff9b::/96 (NAT64)", 0, 0x64, 0xff, 0x9b),
	V6(48, "64:ff9b:1::/48 (local NAT64)", 0, 0x64, 0xff, 0x9b, 0, 1),
	V6(32, "2001::/32 (Teredo)", 0x20, 0x01),
	V6(28, "2001:10::/28 (ORCHID)", 0x20, 0x01, 0, 0x10),
	V6(32, "2001:db8::/32 (documentation)", 0x20, 0x01, 0x0d, 0xb8),
	V6(16, "2002::/16 (6to4)", 0x20, 0x02),
	V6(7, "fc00::/7 (unique local)", 0xfc),
	V6(10, "fe80::/10 (link-local)", 0xfe, 0x80),
	V6(10, "fec0::/10 (site-local)", 0xfe, 0xc0),
	V6(8, "ff00::/8 (multicast)", 0xff),
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

enum match_by { BY_NAME, BY_ADDR, BY_ADDR_OR_ANY, BY_EITHER };

static const struct policy_rule *find(const struct policy_tenant *tn,
	    const struct policy_request *req, bool allow, enum match_by by);

static bool
in_prefix(const uint8_t *net, unsigned prefix, const uint8_t *addr)
{
	unsigned	full = prefix / 8, rest = prefix % 8;
	uint8_t		mask;

	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (net[full] & mask) == (addr[full] & mask);
}

static const struct range *
internal_range(const struct host_addr *addr)
{
	size_t	i;

	for (i = 0; i < NELEM(internal); i++)
		if (internal[i].family == addr->family &&
		    in_prefix(internal[i].bytes, internal[i].prefix,
		    addr->bytes))
			return &internal[i];
	return NULL;
}

bool
policy_internal(const struct policy_context *ctx, const struct host_addr *addr)
{
	size_t	i;

	if (internal_range(addr) != NULL)
		return true;
	for (i = 0; ctx != NULL && i < ctx->nown; i++)
		if (host_addr_equal(&ctx->own[i], addr))
			return true;
	return false;
}

static bool
in_ids(const struct policy_ids *ids, unsigned n, uint32_t id)
{
	unsigned	i;

	for (i = 0; i < n; i++)
		if (id >= ids[i].lo && id <= ids[i].hi)
			return true;
	return false;
}

const struct policy_tenant *
policy_tenant_of(const struct policy *policy,
    const struct policy_client *client)
{
	const struct policy_tenant	*tn;
	size_t				 i, g;

	for (i = 0; i < policy->ntenants; i++) {
		tn = &policy->tenants[i];
		if (in_ids(tn->uids, tn->nuids, client->uid) ||
		    in_ids(tn->gids, tn->ngids, client->gid))
			return tn;
		for (g = 0; g < client->ngroups; g++)
			if (in_ids(tn->gids, tn->ngids, client->groups[g]))
				return tn;
	}
	return NULL;
}

const struct policy_tenant *
policy_tenant(const struct policy *policy, uint32_t uid, uint32_t gid)
{
	struct policy_client	client = { uid, gid, NULL, 0 };

	return policy_tenant_of(policy, &client);
}

const struct policy_tenant *
policy_tenant_named(const struct policy *policy, const char *name)
{
	size_t	i;

	for (i = 0; i < policy->ntenants; i++)
		if (strcmp(policy->tenants[i].name, name) == 0)
			return &policy->tenants[i];
	return NULL;
}

bool
policy_may_listen(const struct policy *policy)
{
	size_t	i, j;

	for (i = 0; i < policy->ntenants; i++) {
		/* Report mode allows what its rules would deny. */
		if (policy->tenants[i].mode == POLICY_REPORT)
			return true;
		for (j = 0; j < policy->tenants[i].nrules; j++)
			if (policy->tenants[i].rules[j].action ==
			    POLICY_LISTEN && policy->tenants[i].rules[j].allow)
				return true;
	}
	return false;
}

const struct policy_rule *
policy_deny_rule(const struct policy_tenant *tn,
    const struct policy_request *req)
{
	if (tn == NULL)
		return NULL;
	return find(tn, req, false, BY_EITHER);
}

static bool
port_matches(const struct policy_rule *rule, uint16_t port)
{
	unsigned	i;

	for (i = 0; i < rule->nports; i++)
		if (port >= rule->ports[i].lo && port <= rule->ports[i].hi)
			return true;
	return false;
}

static bool
name_matches(const struct policy_rule *rule, const char *name)
{
	size_t	nlen, dlen;

	if (name == NULL)
		return false;
	switch (rule->host) {
	case POLICY_HOST_ANY:
		return true;
	case POLICY_HOST_NAME:
		return strcmp(rule->name, name) == 0;
	case POLICY_HOST_WILDCARD:
		nlen = strlen(name);
		dlen = strlen(rule->name);
		return nlen > dlen + 1 && name[nlen - dlen - 1] == '.' &&
		    strcmp(name + nlen - dlen, rule->name) == 0;
	case POLICY_HOST_CIDR:
		break;
	}
	return false;
}

static bool
cidr_matches(const struct policy_rule *rule, const struct host_addr *addr)
{
	return addr != NULL && rule->host == POLICY_HOST_CIDR &&
	    rule->addr.family == addr->family &&
	    in_prefix(rule->addr.bytes, rule->prefix, addr->bytes);
}

/* A listen rule names the wildcard, port 0 and ports below 1024. */
static bool
listen_named(const struct policy_rule *rule, const struct host_addr *addr,
    uint16_t port)
{
	unsigned	bits = addr->family == AF_INET ? 32 : 128;

	if (host_addr_unspecified(addr) && (rule->host != POLICY_HOST_CIDR ||
	    rule->prefix != bits))
		return false;
	if (port < 1024 && rule->any_port)
		return false;
	return true;
}

/* The first rule of a kind that matches. */

static const struct policy_rule *
find(const struct policy_tenant *tn, const struct policy_request *req,
    bool allow, enum match_by by)
{
	const struct policy_rule	*rule;
	size_t				 i;
	bool				 hit;

	for (i = 0; i < tn->nrules; i++) {
		rule = &tn->rules[i];
		if (rule->action != req->action || rule->allow != allow ||
		    !port_matches(rule, req->port))
			continue;
		switch (by) {
		case BY_NAME:
			hit = name_matches(rule, req->name);
			break;
		case BY_ADDR:
			hit = cidr_matches(rule, req->addr);
			break;
		case BY_ADDR_OR_ANY:
			hit = cidr_matches(rule, req->addr) ||
			    (req->addr != NULL && rule->host ==
			    POLICY_HOST_ANY);
			break;
		default:
			hit = name_matches(rule, req->name) ||
			    cidr_matches(rule, req->addr) ||
			    (req->addr != NULL && rule->host ==
			    POLICY_HOST_ANY);
			break;
		}
		if (hit && (req->action != POLICY_LISTEN || !allow ||
		    listen_named(rule, req->addr, req->port)))
			return rule;
	}
	return NULL;
}

static void
decide(const struct policy_tenant *tn, const struct policy_context *ctx,
    const struct policy_request *req, struct policy_decision *d)
{
	const struct policy_rule	*by_addr, *by_name;
	size_t				 i;

	d->verdict = POLICY_DENY;
	d->reason = POLICY_BY_RULE;
	if ((d->rule = find(tn, req, false, BY_EITHER)) != NULL)
		return;
	d->reason = POLICY_BY_DEFAULT;

	switch (req->action) {
	case POLICY_ACCEPT:
		/* Without accept rules a listener hands over every peer. */
		for (i = 0; i < tn->nrules; i++)
			if (tn->rules[i].action == POLICY_ACCEPT)
				break;
		if (i == tn->nrules) {
			d->verdict = POLICY_ALLOW;
			return;
		}
		if ((d->rule = find(tn, req, true, BY_ADDR_OR_ANY)) != NULL) {
			d->verdict = POLICY_ALLOW;
			d->reason = POLICY_BY_RULE;
		}
		return;
	case POLICY_LISTEN:
		if ((d->rule = find(tn, req, true, BY_ADDR_OR_ANY)) != NULL) {
			d->verdict = POLICY_ALLOW;
			d->reason = POLICY_BY_RULE;
		} else if (host_addr_unspecified(req->addr) || req->port < 1024)
			d->reason = POLICY_BY_UNNAMED;
		return;
	case POLICY_CONNECT:
		break;
	}

	if (req->addr == NULL) {
		/* A name before DNS. */
		if ((d->rule = find(tn, req, true, BY_NAME)) != NULL) {
			d->verdict = POLICY_RESOLVE;
			d->reason = POLICY_BY_RULE;
		}
		return;
	}
	by_addr = find(tn, req, true, BY_ADDR);
	if (policy_internal(ctx, req->addr) && by_addr == NULL) {
		d->reason = POLICY_BY_INTERNAL;
		return;
	}
	if (req->name != NULL)
		by_name = find(tn, req, true, BY_NAME);
	else
		by_name = by_addr != NULL ? by_addr :
		    find(tn, req, true, BY_ADDR_OR_ANY);
	if (by_name == NULL)
		return;
	d->verdict = POLICY_ALLOW;
	d->reason = POLICY_BY_RULE;
	/* For an internal address, the address rule is what opened it. */
	d->rule = by_addr != NULL ? by_addr : by_name;
}

void
policy_decide(const struct policy *policy, const struct policy_tenant *tn,
    const struct policy_context *ctx, const struct policy_request *request,
    struct policy_decision *d)
{
	struct policy_request	 r = *request, *req = &r;
	struct host_addr	 addr;

	(void)policy;
	memset(d, 0, sizeof(*d));
	/* An IPv4-mapped address is judged as the IPv4 address. */
	if (request->addr != NULL) {
		addr = *request->addr;
		host_addr_normalize(&addr);
		r.addr = &addr;
	}
	if (tn == NULL) {
		d->verdict = POLICY_DENY;
		d->reason = POLICY_BY_NO_TENANT;
		return;
	}
	decide(tn, ctx, req, d);
	/*
	 * Report mode reports what the rules decide; the internal ranges
	 * stay closed, as they are in enforce mode.
	 */
	if (d->verdict == POLICY_DENY && tn->mode == POLICY_REPORT &&
	    d->reason != POLICY_BY_INTERNAL) {
		d->report = true;
		d->verdict = req->action == POLICY_CONNECT && req->addr ==
		    NULL ? POLICY_RESOLVE : POLICY_ALLOW;
	}
}

void
policy_decide_resolved(const struct policy *policy,
    const struct policy_tenant *tn, const struct policy_context *ctx,
    const char *name, uint16_t port, const struct host_addr *addrs,
    unsigned naddrs, struct policy_resolved *out)
{
	struct policy_request	 req = { POLICY_CONNECT, name, NULL, port };
	struct host_addr	 addr;
	unsigned		 i, j, n;

	memset(out, 0, sizeof(*out));
	out->first_allowed = out->first_denied = -1;
	for (i = 0; i < naddrs && i < LIMIT_RESOLVE_ADDRS; i++) {
		/* Judged as what a connection would reach: mapped is IPv4. */
		addr = addrs[i];
		host_addr_normalize(&addr);
		for (j = 0; j < out->naddrs; j++)
			if (host_addr_equal(&out->addrs[j], &addr))
				break;
		if (j < out->naddrs)
			continue;
		n = out->naddrs++;
		out->addrs[n] = addr;
		if (host_addr_unspecified(&addr)) {
			out->unspecified[n] = true;
			out->decisions[n].verdict = POLICY_DENY;
			out->decisions[n].reason = POLICY_BY_DEFAULT;
			continue;
		}
		req.addr = &out->addrs[n];
		policy_decide(policy, tn, ctx, &req, &out->decisions[n]);
		if (out->decisions[n].verdict == POLICY_ALLOW) {
			out->nallowed++;
			if (out->first_allowed < 0)
				out->first_allowed = (int)n;
		} else if (out->first_denied < 0)
			out->first_denied = (int)n;
	}
}

const char *
policy_reason_code(enum policy_reason reason)
{
	switch (reason) {
	case POLICY_BY_RULE:		return "rule";
	case POLICY_BY_DEFAULT:		return "default";
	case POLICY_BY_INTERNAL:	return "internal";
	case POLICY_BY_UNNAMED:		return "unnamed";
	case POLICY_BY_NO_TENANT:	return "no-tenant";
	}
	return "?";
}

void
policy_where(const struct policy *policy, const struct policy_decision *d,
    char *buf, size_t cap)
{
	if (d->rule != NULL)
		snprintf(buf, cap, "%s:%u", policy->file, d->rule->line);
	else
		snprintf(buf, cap, "%s", policy_reason_code(d->reason));
}

void
policy_explain(const struct policy *policy, const struct policy_decision *d,
    const struct host_addr *addr, char *buf, size_t cap)
{
	const struct range	*r;

	switch (d->reason) {
	case POLICY_BY_RULE:
		snprintf(buf, cap, "rule %s:%u", policy->file, d->rule->line);
		return;
	case POLICY_BY_INTERNAL:
		r = addr != NULL ? internal_range(addr) : NULL;
		snprintf(buf, cap, "the internal range %s (no address rule "
		    "allows it)", r != NULL ? r->text : "of this host's own "
		    "addresses");
		return;
	case POLICY_BY_UNNAMED:
		snprintf(buf, cap, "the default (a wildcard address, port 0 "
		    "or a port below 1024 needs a rule that names it)");
		return;
	case POLICY_BY_NO_TENANT:
		snprintf(buf, cap, "the default (no tenant of %s matches the "
		    "client)", policy->file);
		return;
	case POLICY_BY_DEFAULT:
		break;
	}
	if (d->verdict != POLICY_DENY && !d->report)
		snprintf(buf, cap, "the default (the tenant has no accept "
		    "rules: every peer is handed over)");
	else
		snprintf(buf, cap, "the default (no rule of %s allows it)",
		    policy->file);
}

void
policy_rule_text(const struct policy_rule *rule, char *buf, size_t cap)
{
	static const char *const actions[] = { "connect", "listen", "accept" };
	char		host[PROTO_HOST_NAME_MAX + 8];
	char		ports[LIMIT_POLICY_PORTS * 12 + 1];
	size_t		n = 0;
	unsigned	i, bits;

	switch (rule->host) {
	case POLICY_HOST_ANY:
		snprintf(host, sizeof(host), "any");
		break;
	case POLICY_HOST_NAME:
		snprintf(host, sizeof(host), "%s", rule->name);
		break;
	case POLICY_HOST_WILDCARD:
		snprintf(host, sizeof(host), "*.%s", rule->name);
		break;
	case POLICY_HOST_CIDR:
		bits = rule->addr.family == AF_INET ? 32 : 128;
		host_format_addr(&rule->addr, ports, sizeof(ports));
		snprintf(host, sizeof(host), rule->addr.family == AF_INET ?
		    "%s" : "[%s]", ports);
		if (rule->prefix != bits) {
			n = strlen(host);
			snprintf(host + n, sizeof(host) - n, "/%u",
			    rule->prefix);
		}
		break;
	}
	n = 0;
	if (rule->any_port)
		snprintf(ports, sizeof(ports), "*");
	for (i = 0; !rule->any_port && i < rule->nports && n < sizeof(ports);
	    i++) {
		if (rule->ports[i].lo == rule->ports[i].hi)
			n += (size_t)snprintf(ports + n, sizeof(ports) - n,
			    "%s%u", i ? "," : "", rule->ports[i].lo);
		else
			n += (size_t)snprintf(ports + n, sizeof(ports) - n,
			    "%s%u-%u", i ? "," : "", rule->ports[i].lo,
			    rule->ports[i].hi);
	}
	snprintf(buf, cap, "%s %s %s:%s", actions[rule->action],
	    rule->allow ? "allow" : "deny", host, ports);
}

/* --check's warnings. */

/* Whether outer's ports hold every port of inner's. */
static bool
ports_cover(const struct policy_rule *outer, const struct policy_rule *inner)
{
	unsigned	i, j;
	uint32_t	p;

	for (i = 0; i < inner->nports; i++) {
		/* Walk the inner range from one outer range to the next. */
		for (p = inner->ports[i].lo; p <= inner->ports[i].hi; ) {
			for (j = 0; j < outer->nports; j++)
				if (p >= outer->ports[j].lo &&
				    p <= outer->ports[j].hi)
					break;
			if (j == outer->nports)
				return false;
			p = (uint32_t)outer->ports[j].hi + 1;
		}
	}
	return true;
}

/*
 * Whether every host inner matches, outer matches too.  For an allow
 * rule an address needs an address rule (internal ones, a listener's
 * wildcard), so only a range covers an address there.
 */
/*
 * The internal ranges a CIDR rule takes in whole, beyond the one it
 * names (10.0.0.0/8 opens the private range it names; 0.0.0.0/1 opens
 * loopback and private ranges, 169.254.0.0/16 the metadata address),
 * listed into buf; returns how many.
 */
static unsigned
covered_internal(const struct policy_rule *rule, char *buf, size_t cap)
{
	const struct range	*r;
	unsigned		 n = 0;
	size_t			 i, len;

	buf[0] = '\0';
	for (i = 0; i < NELEM(internal); i++) {
		r = &internal[i];
		if (r->family != rule->addr.family ||
		    rule->prefix >= r->prefix ||
		    !in_prefix(rule->addr.bytes, rule->prefix, r->bytes))
			continue;
		len = strlen(buf);
		if (n < 3)
			snprintf(buf + len, cap - len, "%s%s", n > 0 ? ", " : "",
			    r->text);
		else if (n == 3)
			snprintf(buf + len, cap - len, ", ...");
		n++;
	}
	return n;
}

static bool
host_covers(const struct policy_rule *outer, const struct policy_rule *inner,
    bool allow)
{
	size_t	olen, ilen;

	if (allow && inner->host == POLICY_HOST_CIDR &&
	    outer->host != POLICY_HOST_CIDR)
		return false;
	switch (outer->host) {
	case POLICY_HOST_ANY:
		return true;
	case POLICY_HOST_NAME:
		return inner->host == POLICY_HOST_NAME &&
		    strcmp(outer->name, inner->name) == 0;
	case POLICY_HOST_WILDCARD:
		if (inner->host != POLICY_HOST_NAME &&
		    inner->host != POLICY_HOST_WILDCARD)
			return false;
		olen = strlen(outer->name);
		ilen = strlen(inner->name);
		if (inner->host == POLICY_HOST_WILDCARD && ilen == olen)
			return strcmp(outer->name, inner->name) == 0;
		return ilen > olen + 1 && inner->name[ilen - olen - 1] == '.' &&
		    strcmp(inner->name + ilen - olen, outer->name) == 0;
	case POLICY_HOST_CIDR:
		return inner->host == POLICY_HOST_CIDR &&
		    outer->addr.family == inner->addr.family &&
		    outer->prefix <= inner->prefix &&
		    in_prefix(outer->addr.bytes, outer->prefix,
		    inner->addr.bytes);
	}
	return false;
}

static void
warnf(const struct policy *policy, unsigned line, unsigned col,
    void (*warn)(void *, const char *), void *arg, const char *what)
{
	char	msg[1800];

	snprintf(msg, sizeof(msg), "%s:%u:%u: warning: %s", policy->file,
	    line, col, what);
	warn(arg, msg);
}

/*
 * Ranges of uids or gids that two tenants share in part, neither taking
 * in the other's: the shared ids go to the earlier tenant, which is
 * seldom what was meant.  (A range inside an earlier one, or a catch-all
 * after specific tenants, is what was meant.)
 */
static int
overlaps(const struct policy *policy, const struct policy_tenant *tn,
    const struct policy_tenant *earlier, const struct policy_ids *mine,
    unsigned nmine, const struct policy_ids *theirs, unsigned ntheirs,
    const char *kind, void (*warn)(void *, const char *), void *arg)
{
	char		what[400];
	unsigned	i, j;
	uint32_t	lo, hi;
	int		n = 0;

	for (i = 0; i < nmine; i++)
		for (j = 0; j < ntheirs; j++) {
			lo = mine[i].lo > theirs[j].lo ? mine[i].lo :
			    theirs[j].lo;
			hi = mine[i].hi < theirs[j].hi ? mine[i].hi :
			    theirs[j].hi;
			if (lo > hi ||
			    (theirs[j].lo <= mine[i].lo &&
			    theirs[j].hi >= mine[i].hi) ||
			    (mine[i].lo <= theirs[j].lo &&
			    mine[i].hi >= theirs[j].hi))
				continue;
			snprintf(what, sizeof(what), "tenant \"%s\" matches %ss "
			    "%u-%u, which overlap tenant \"%s\"'s %u-%u (line "
			    "%u): %ss %u-%u go to \"%s\"", tn->name, kind,
			    mine[i].lo, mine[i].hi, earlier->name,
			    theirs[j].lo, theirs[j].hi, earlier->line, kind, lo,
			    hi, earlier->name);
			warnf(policy, tn->line, tn->col, warn, arg, what);
			n++;
		}
	return n;
}

static int
warn_partial_overlaps(const struct policy *policy, size_t t,
    void (*warn)(void *, const char *), void *arg)
{
	const struct policy_tenant	*tn = &policy->tenants[t], *e;
	size_t				 k;
	int				 n = 0;

	for (k = 0; k < t; k++) {
		e = &policy->tenants[k];
		n += overlaps(policy, tn, e, tn->uids, tn->nuids, e->uids,
		    e->nuids, "uid", warn, arg);
		n += overlaps(policy, tn, e, tn->gids, tn->ngids, e->gids,
		    e->ngids, "gid", warn, arg);
	}
	return n;
}

int
policy_check(const struct policy *policy,
    void (*warn)(void *arg, const char *message), void *arg)
{
	const struct policy_tenant	*tn, *earlier;
	const struct policy_rule	*r, *o;
	char				 text[LIMIT_POLICY_PORTS * 12 + 300];
	char				 what[sizeof(text) + POLICY_EXPLAIN_MAX + 100];
	char				 covered[POLICY_EXPLAIN_MAX];
	unsigned			 n_covered;
	size_t				 i, j, k, t;
	unsigned			 u, e;
	int				 n = 0;

	if (policy->bom) {
		warnf(policy, 1, 1, warn, arg, "the file begins with a UTF-8 "
		    "byte-order mark, which is ignored");
		n++;
	}
	if (policy->ntenants == 0) {
		warnf(policy, 1, 1, warn, arg, "no tenant: every client is "
		    "denied");
		n++;
	}
	for (t = 0; t < policy->ntenants; t++) {
		tn = &policy->tenants[t];
		n += warn_partial_overlaps(policy, t, warn, arg);
		/* A tenant whose uids an earlier tenant takes, all of them. */
		for (k = 0; k < t && tn->ngids == 0; k++) {
			earlier = &policy->tenants[k];
			for (u = 0; u < tn->nuids; u++) {
				for (e = 0; e < earlier->nuids; e++)
					if (earlier->uids[e].lo <= tn->uids[u].lo &&
					    earlier->uids[e].hi >= tn->uids[u].hi)
						break;
				if (e == earlier->nuids)
					break;
			}
			if (u == tn->nuids) {
				snprintf(what, sizeof(what), "tenant \"%s\" can "
				    "never match: tenant \"%s\" (line %u) takes "
				    "all its uids first", tn->name,
				    earlier->name, earlier->line);
				warnf(policy, tn->line, tn->col, warn, arg,
				    what);
				n++;
				break;
			}
		}
		for (i = 0; i < tn->nrules; i++) {
			r = &tn->rules[i];
			/* The every-tenant rules are checked once. */
			if (!r->allow || (r->every && t > 0))
				continue;
			policy_rule_text(r, text, sizeof(text));
			for (j = 0; j < tn->nrules; j++) {
				o = &tn->rules[j];
				if (o->allow || o->action != r->action ||
				    !host_covers(o, r, false) || !ports_cover(o, r))
					continue;
				snprintf(what, sizeof(what), "\"%s\" never "
				    "allows anything: the deny rule at line %u "
				    "covers it", text, o->line);
				warnf(policy, r->line, r->col, warn, arg, what);
				n++;
				break;
			}
			for (j = 0; j < i; j++) {
				o = &tn->rules[j];
				if (o->allow && o->action == r->action &&
				    host_covers(o, r, r->action != POLICY_ACCEPT) &&
				    ports_cover(o, r) &&
				    (r->action != POLICY_LISTEN ||
				    o->any_port == r->any_port)) {
					snprintf(what, sizeof(what), "\"%s\" "
					    "adds nothing: the rule at line %u "
					    "allows all it does", text, o->line);
					warnf(policy, r->line, r->col, warn,
					    arg, what);
					n++;
					break;
				}
			}
			if (r->action == POLICY_CONNECT &&
			    r->host == POLICY_HOST_CIDR &&
			    covered_internal(r, covered, sizeof(covered)) > 0) {
				n_covered = covered_internal(r, covered,
				    sizeof(covered));
				if (n_covered == 1)
					snprintf(what, sizeof(what), "\"%s\" opens "
					    "the internal range %s", text,
					    covered);
				else
					snprintf(what, sizeof(what), "\"%s\" opens "
					    "%u internal ranges: %s", text,
					    n_covered, covered);
				warnf(policy, r->line, r->col, warn, arg, what);
				n++;
			}
		}
	}
	return n;
}
