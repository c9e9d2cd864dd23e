/*
 * tcpbroker --explain FILE [--uid N] [--gid N] connect HOST:PORT
 *                                             | listen ADDR:PORT
 *                                             | accept ADDR:PORT
 *
 * Says what the policy decides for a client and a request, which tenant
 * and which rule (file:line) or built-in default decided, and, for a
 * name, what each address it resolves to gets.  It resolves the name
 * with the resolver's own settings and decides through the broker's own
 * path (policy_decide_resolved), so the two cannot disagree.  Exit
 * status: 0 allowed, 1 denied, 2 a usage or policy error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

static int
usage(void)
{
	fprintf(stderr, "usage: tcpbroker --explain FILE --uid N [--gid N] "
	    "connect HOST:PORT | listen ADDR:PORT | accept ADDR:PORT\n");
	return 2;
}

/*
 * The supplementary groups a session of uid would have: those of the
 * user uid names, as a login would give them; none for a bare number.
 */
static size_t
user_groups(uid_t uid, gid_t gid, uint32_t groups[LIMIT_PEER_GROUPS])
{
	static gid_t	 all[LIMIT_PEER_GROUPS];
	struct passwd	*pw;
	int		 n = LIMIT_PEER_GROUPS, i;

	if ((pw = getpwuid(uid)) == NULL)
		return 0;
	if (getgrouplist(pw->pw_name, gid, all, &n) == -1)
		n = LIMIT_PEER_GROUPS;	/* the first of them */
	for (i = 0; i < n; i++)
		groups[i] = (uint32_t)all[i];
	return (size_t)n;
}

/* A uid or gid as a whole decimal number; 0, or -1 when it is not. */
static int
parse_id(const char *text, unsigned long *id)
{
	char	*end;

	errno = 0;
	*id = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    *id >= UINT32_MAX)
		return -1;
	return 0;
}

static void
say(const struct policy *policy, const struct policy_decision *d,
    const struct host_addr *addr, const char *subject)
{
	char	why[400], text[300];

	policy_explain(policy, d, addr, why, sizeof(why));
	text[0] = '\0';
	if (d->rule != NULL)
		policy_rule_text(d->rule, text, sizeof(text));
	printf("%s: %s by %s%s%s%s%s\n", subject,
	    d->verdict == POLICY_DENY ? "deny" : d->verdict == POLICY_RESOLVE ?
	    "resolve" : "allow", why, d->rule ? " (" : "", text,
	    d->rule ? ")" : "", d->report ? "; report mode: would be denied, "
	    "allowed" : "");
}

/* Splits "host:port" or "[v6]:port". */
static int
split(const char *arg, char *host, size_t cap, uint16_t *port)
{
	const char	*colon = strrchr(arg, ':');
	char		*end;
	long		 v;
	size_t		 len;

	if (colon == NULL)
		return -1;
	len = (size_t)(colon - arg);
	if (len > 2 && arg[0] == '[' && arg[len - 1] == ']') {
		arg++;
		len -= 2;
	}
	if (len == 0 || len >= cap)
		return -1;
	memcpy(host, arg, len);
	host[len] = '\0';
	v = strtol(colon + 1, &end, 10);
	if (*end != '\0' || v < 0 || v > 65535 || end == colon + 1)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int
explain_main(int argc, char *argv[])
{
	const struct policy_tenant	*tn;
	struct policy			*policy;
	struct policy_error		 err;
	struct policy_request		 req = { 0 };
	struct policy_decision		 d;
	struct policy_resolved		 r;
	struct policy_client		 client;
	uint32_t			 groups[LIMIT_PEER_GROUPS];
	struct host_addr		 addr, addrs[LIMIT_RESOLVE_ADDRS];
	char				 host[PROTO_STRING_MAX + 1], first[64];
	char				 name[PROTO_HOST_NAME_MAX + 1], text[64];
	const char			*why;
	struct passwd			*pw;
	unsigned long			 uid = 0, gid = 0;
	unsigned			 n = 0, i;
	bool				 uid_given = false, gid_given = false;
	int				 a = 2, rc;

	if (argc < 4)
		return usage();
	for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
		if (strcmp(argv[a], "--uid") == 0) {
			if (parse_id(argv[a + 1], &uid) != 0) {
				fprintf(stderr, "tcpbroker: --uid %s: not a "
				    "uid\n", argv[a + 1]);
				return 2;
			}
			uid_given = true;
		} else if (strcmp(argv[a], "--gid") == 0) {
			if (parse_id(argv[a + 1], &gid) != 0) {
				fprintf(stderr, "tcpbroker: --gid %s: not a "
				    "gid\n", argv[a + 1]);
				return 2;
			}
			gid_given = true;
		} else
			return usage();
	}
	/* Whose request it is must be said, never assumed to be root's. */
	if (a + 2 != argc || !uid_given)
		return usage();
	/* The user's own group, unless --gid says. */
	if (!gid_given)
		gid = (pw = getpwuid((uid_t)uid)) != NULL ? pw->pw_gid : uid;
	if (strcmp(argv[a], "connect") == 0)
		req.action = POLICY_CONNECT;
	else if (strcmp(argv[a], "listen") == 0)
		req.action = POLICY_LISTEN;
	else if (strcmp(argv[a], "accept") == 0)
		req.action = POLICY_ACCEPT;
	else
		return usage();
	if (split(argv[a + 1], host, sizeof(host), &req.port) != 0) {
		fprintf(stderr, "tcpbroker: expected HOST:PORT, not %s\n",
		    argv[a + 1]);
		return 2;
	}
	if (policy_load(argv[1], &policy, &err) != 0) {
		fprintf(stderr, "%s\n", err.message);
		return 2;
	}
	broker_read_own_addresses();

	client.uid = (uint32_t)uid;
	client.gid = (uint32_t)gid;
	client.groups = groups;
	client.ngroups = user_groups((uid_t)uid, (gid_t)gid, groups);
	tn = policy_tenant_of(policy, &client);
	printf("client: uid %lu gid %lu", uid, gid);
	for (i = 0; i < client.ngroups; i++)
		printf("%s%u", i == 0 ? " groups " : ",", groups[i]);
	printf(": ");
	if (tn == NULL)
		printf("no tenant matches\n");
	else
		printf("tenant \"%s\" (%s:%u), mode %s\n", tn->name,
		    policy->file, tn->line, tn->mode == POLICY_REPORT ?
		    "report" : "enforce");
	printf("request: %s %s\n", argv[a], argv[a + 1]);

	if (req.action != POLICY_CONNECT) {
		/* As the broker reads it: an address, IPv6 in brackets. */
		if (host_parse_addr_port(argv[a + 1], strlen(argv[a + 1]),
		    &addr, &req.port, &why) != 0) {
			fprintf(stderr, "tcpbroker: %s: %s\n", argv[a + 1], why);
			rc = 2;
			goto done;
		}
		req.addr = &addr;
	} else if (host_parse_literal(host, strlen(host), &addr) == 0) {
		if (host_addr_unspecified(&addr)) {
			printf("decision: invalid, the unspecified address "
			    "(EINVAL)\n");
			rc = 1;
			goto done;
		}
		req.addr = &addr;
	}
	if (req.addr != NULL) {
		policy_decide(policy, tn, &broker.ctx, &req, &d);
		say(policy, &d, &addr, "decision");
		rc = d.verdict == POLICY_ALLOW ? 0 : 1;
		goto done;
	}
	if (host_normalize_name(host, strlen(host), name, &why) != 0) {
		fprintf(stderr, "tcpbroker: bad host %s\n", host);
		rc = 2;
		goto done;
	}
	req.name = name;
	policy_decide(policy, tn, &broker.ctx, &req, &d);
	say(policy, &d, NULL, "before DNS");
	if (d.verdict == POLICY_DENY) {
		printf("decision: deny, before any DNS query\n");
		rc = 1;
		goto done;
	}
	resolver_configure(LIMIT_RESOLVE_MS);
	if ((rc = resolver_resolve(name, addrs, &n)) != 0) {
		printf("decision: deny, %s does not resolve: %s\n", name,
		    proto_err_text(rc));
		rc = 1;
		goto done;
	}
	policy_decide_resolved(policy, tn, &broker.ctx, name, req.port, addrs,
	    n, &r);
	printf("resolved: %u address%s\n", r.naddrs, r.naddrs == 1 ? "" :
	    "es");
	for (i = 0; i < r.naddrs; i++) {
		host_format_addr(&r.addrs[i], text, sizeof(text));
		if (r.unspecified[i]) {
			printf("  %s: deny, the unspecified address\n", text);
			continue;
		}
		printf("  ");
		say(policy, &r.decisions[i], &r.addrs[i], text);
	}
	if (r.first_allowed >= 0) {
		host_format_addr(&r.addrs[r.first_allowed], first,
		    sizeof(first));
		printf("decision: allow, connecting to %s first\n", first);
	} else
		printf("decision: deny, no address of %s is allowed\n", name);
	rc = r.first_allowed >= 0 ? 0 : 1;
 done:
	policy_free(policy);
	return rc;
}
