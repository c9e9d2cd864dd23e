/*
 * Fuzz target: the policy parser, and the checks and decisions on
 * whatever it accepts.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "a.example.com", "example.com",
	    "localhost", NULL };
	static const char *const addrs[] = { "127.0.0.1", "10.1.2.3",
	    "0.0.0.0", "::1", "2001:db8::1", "::ffff:10.1.2.3", "3fff::1" };
	const struct policy_tenant	*tn;
	struct policy			*policy;
	struct policy_error		 err;
	struct policy_request		 req;
	struct policy_decision		 d;
	struct host_addr		 addr;
	char				 buf[2048];
	size_t				 i, j, a;

	if (policy_parse("fuzz.conf", (const char *)data, size, &policy,
	    &err) != 0)
		return 0;
	policy_check(policy, ignore, NULL);
	policy_may_listen(policy);
	for (i = 0; i < policy->ntenants; i++)
		for (j = 0; j < policy->tenants[i].nrules; j++)
			policy_rule_text(&policy->tenants[i].rules[j], buf,
			    sizeof(buf));
	tn = policy_tenant(policy, 1000, 1000);
	for (a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++) {
		host_parse_literal(addrs[a], strlen(addrs[a]), &addr);
		for (i = 0; i < 3; i++) {
			memset(&req, 0, sizeof(req));
			req.action = (enum policy_action)i;
			req.addr = &addr;
			req.port = (uint16_t)(a * 1000 + 80);
			policy_decide(policy, tn, NULL, &req, &d);
			policy_explain(policy, &d, &addr, buf, sizeof(buf));
			policy_where(policy, &d, buf, sizeof(buf));
		}
	}
	for (i = 0; names[i] != NULL; i++) {
		memset(&req, 0, sizeof(req));
		req.name = names[i];
		req.port = 443;
		policy_decide(policy, tn, NULL, &req, &d);
	}
	policy_free(policy);
	return 0;
}
