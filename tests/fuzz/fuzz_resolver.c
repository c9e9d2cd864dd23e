/*
 * Fuzz target: a resolver worker's answer record, as the broker reads
 * it.  A worker parses DNS answers from the network, so whatever it
 * sends must be refused or be safe to use: the check, then what the
 * broker does with an accepted record (normalise, decide, format).
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "resolver_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_text[] =
    "tenant t {\n"
    "    match uid *\n"
    "    connect allow *.test:443\n"
    "    connect allow 10.0.0.0/8:443\n"
    "    connect deny 10.9.0.0/16:*\n"
    "}\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy	*policy;
	struct policy_error	 err;
	struct policy_resolved	 r;
	struct resolver_answer	 a;
	const char		*why;
	char			 text[PROTO_ADDR_STRLEN];
	uint32_t		 i;

	if (policy == NULL && policy_parse("fuzz.conf", policy_text,
	    strlen(policy_text), &policy, &err) != 0)
		abort();
	if (resolver_answer_check(data, size, &why) != 0)
		return 0;
	memcpy(&a, data, sizeof(a));
	/* What the check promises, the broker relies on. */
	if (a.naddrs > LIMIT_RESOLVE_ADDRS || (a.code == 0) != (a.naddrs > 0))
		abort();
	for (i = 0; i < a.naddrs; i++) {
		if (a.addrs[i].family != AF_INET &&
		    a.addrs[i].family != AF_INET6)
			abort();
		host_addr_normalize(&a.addrs[i]);
		host_format(&a.addrs[i], 443, text, sizeof(text));
	}
	policy_decide_resolved(policy, &policy->tenants[0], NULL, "a.test",
	    443, a.addrs, a.naddrs, &r);
	return 0;
}
