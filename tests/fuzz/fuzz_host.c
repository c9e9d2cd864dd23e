/* Fuzz target: host names, IP literals and "ip:port" texts. */
#include <stddef.h>
#include <stdint.h>

#include "host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char			 name[PROTO_HOST_NAME_MAX + 1], text[64];
	struct host_addr	 addr;
	const char		*why;
	uint16_t		 port;

	host_normalize_name((const char *)data, size, name, &why);
	if (host_parse_literal((const char *)data, size, &addr) == 0) {
		host_addr_normalize(&addr);
		host_format(&addr, 80, text, sizeof(text));
	}
	if (host_parse_addr_port((const char *)data, size, &addr, &port,
	    &why) == 0)
		host_format(&addr, port, text, sizeof(text));
	return 0;
}
