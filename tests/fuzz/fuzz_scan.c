/*
 * Fuzz target: the frame scanner and the decoder behind it, as the
 * broker runs them on a session's bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_arg	 args[PROTO_PARAMS_MAX];
	msgpack_unpacked	 u;
	struct proto_msg	 m;
	const char		*why;
	char			 text[PROTO_ERROR_MESSAGE_MAX + 1];
	size_t			 len, off = 0;
	int			 method;

	msgpack_unpacked_init(&u);
	while (off < size) {
		if (proto_scan(data + off, size - off, &len, &why) !=
		    PROTO_SCAN_DONE)
			break;
		if (proto_decode(&u, data + off, len, &m, &why) == 0) {
			if (m.type == PROTO_REQUEST) {
				method = proto_method_lookup(m.method,
				    m.method_len);
				if (method >= 0)
					proto_check_args((enum proto_method)
					    method, m.params, m.nparams, args,
					    text, sizeof(text));
			} else
				proto_read_error(m.error, text, sizeof(text));
		}
		off += len;
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}
