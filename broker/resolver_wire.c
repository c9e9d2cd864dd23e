/* The check of a resolver worker's answer record (resolver_wire.h). */
#include <sys/socket.h>

#include <string.h>

#include "resolver_wire.h"
#include "tcpbroker.h"

int
resolver_answer_check(const void *record, size_t len, const char **why)
{
	struct resolver_answer	a;
	uint32_t		i;

	if (len != sizeof(a)) {
		*why = "an answer of the wrong size";
		return -1;
	}
	memcpy(&a, record, sizeof(a));
	if (a.code != 0 && a.code != TB_ENOTFOUND && a.code != TB_ERESOLVE) {
		*why = "an answer with an unknown code";
		return -1;
	}
	if (a.naddrs > LIMIT_RESOLVE_ADDRS) {
		*why = "an answer with too many addresses";
		return -1;
	}
	if ((a.code == 0) != (a.naddrs > 0)) {
		*why = a.code == 0 ? "a successful answer without addresses" :
		    "a failed answer with addresses";
		return -1;
	}
	for (i = 0; i < a.naddrs; i++)
		if (a.addrs[i].family != AF_INET &&
		    a.addrs[i].family != AF_INET6) {
			*why = "an answer with an address of another family";
			return -1;
		}
	return 0;
}
