/*
 * Deciding a request.  Rule order does not matter: a matching deny rule
 * always wins, then a matching allow rule; anything else is denied.
 *
 * A host name must be allowed by a rule for names (a name, a wildcard
 * or any): an address rule alone never lets a name through, so a name
 * that no rule allows is denied before any DNS query.
 */
#include <stdio.h>
#include <string.h>

#include "policy.h"

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
	case POLICY_HOST_ADDR:
		break;
	}
	return false;
}

static bool
addr_matches(const struct policy_rule *rule, const struct host_addr *addr)
{
	if (addr == NULL)
		return false;
	if (rule->host == POLICY_HOST_ANY)
		return true;
	return rule->host == POLICY_HOST_ADDR &&
	    host_addr_equal(&rule->addr, addr);
}

/*
 * The first rule of the given verdict that matches, or NULL.  Deny
 * rules match by name or by address; allow rules match a request for a
 * name by its name only.
 */
static const struct policy_rule *
find_rule(const struct policy *policy, const struct policy_request *req,
    bool allow)
{
	const struct policy_rule	*rule;
	size_t				 i;

	for (i = 0; i < policy->nrules; i++) {
		rule = &policy->rules[i];
		if (rule->action != req->action || rule->allow != allow ||
		    !port_matches(rule, req->port))
			continue;
		if (name_matches(rule, req->name))
			return rule;
		if ((!allow || req->name == NULL) &&
		    addr_matches(rule, req->addr))
			return rule;
	}
	return NULL;
}

void
policy_decide(const struct policy *policy, const struct policy_request *req,
    struct policy_decision *decision)
{
	memset(decision, 0, sizeof(*decision));
	decision->verdict = POLICY_DENY;
	if ((decision->rule = find_rule(policy, req, false)) != NULL)
		return;
	if ((decision->rule = find_rule(policy, req, true)) == NULL)
		return;
	/* A name before DNS: decided again for each address. */
	decision->verdict = req->addr == NULL ? POLICY_RESOLVE : POLICY_ALLOW;
}

bool
policy_may_listen(const struct policy *policy)
{
	size_t	i;

	for (i = 0; i < policy->nrules; i++)
		if (policy->rules[i].action == POLICY_LISTEN &&
		    policy->rules[i].allow)
			return true;
	return false;
}

void
policy_explain(const struct policy *policy,
    const struct policy_decision *decision, char *buf, size_t cap)
{
	if (decision->rule != NULL)
		snprintf(buf, cap, "rule %s:%u", policy->file,
		    decision->rule->line);
	else
		snprintf(buf, cap, "the default (no rule of %s allows it)",
		    policy->file);
}
