/*
 * Deciding a request.  Rule order does not matter: a matching deny rule
 * always wins, then a matching allow rule; anything else is denied.
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

/* The first rule of the given verdict that matches, or NULL. */
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
		if (name_matches(rule, req->name) ||
		    addr_matches(rule, req->addr))
			return rule;
	}
	return NULL;
}

/* Whether some address rule could allow an address the name has. */
static bool
address_rule_exists(const struct policy *policy,
    const struct policy_request *req)
{
	const struct policy_rule	*rule;
	size_t				 i;

	for (i = 0; i < policy->nrules; i++) {
		rule = &policy->rules[i];
		if (rule->action == req->action && rule->allow &&
		    rule->host == POLICY_HOST_ADDR &&
		    port_matches(rule, req->port))
			return true;
	}
	return false;
}

void
policy_decide(const struct policy *policy, const struct policy_request *req,
    struct policy_decision *decision)
{
	memset(decision, 0, sizeof(*decision));
	decision->verdict = POLICY_DENY;
	if ((decision->rule = find_rule(policy, req, false)) != NULL)
		return;
	decision->rule = find_rule(policy, req, true);
	if (req->addr == NULL) {
		/* A name before DNS: deny now unless an answer could pass. */
		if (decision->rule != NULL || address_rule_exists(policy, req))
			decision->verdict = POLICY_RESOLVE;
		return;
	}
	if (decision->rule != NULL)
		decision->verdict = POLICY_ALLOW;
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
