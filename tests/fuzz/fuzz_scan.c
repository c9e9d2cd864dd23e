/*
 * Fuzz target: the frame scanner and the decoders behind it: msgpack-c
 * and the method tables, as the broker runs them on a session's bytes,
 * and the cursor, as the client library reads the broker's messages.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a message as the client library does, value by value. */
static void
walk(const uint8_t *msg, size_t len)
{
	struct proto_cursor	 c = { msg, len };
	const uint8_t		*bin;
	const char		*str;
	char			 text[PROTO_ERROR_MESSAGE_MAX + 1];
	size_t			 n;
	uint64_t		 v;
	uint32_t		 count, i;
	int			 code;

	if (proto_get_array(&c, &count) != 0 || proto_get_uint(&c, &v) != 0)
		return;
	if (v == PROTO_RESPONSE) {
		if (proto_get_uint(&c, &v) != 0 ||
		    proto_get_error(&c, &code, text, sizeof(text)) != 0)
			return;
		if (proto_get_map(&c, &count) == 0)
			for (i = 0; i < count; i++)
				if (proto_get_str(&c, &str, &n) != 0 ||
				    proto_get_uint(&c, &v) != 0)
					return;
		return;
	}
	if (proto_get_str(&c, &str, &n) != 0 ||
	    proto_get_array(&c, &count) != 0 || proto_get_uint(&c, &v) != 0)
		return;
	if (proto_get_bin(&c, &bin, &n) != 0 && proto_get_uint(&c, &v) != 0)
		proto_get_error(&c, &code, NULL, 0);
}

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
			} else if (m.type == PROTO_NOTIFY) {
				method = proto_table_lookup(proto_client_notes,
				    PROTO_CNOTE_COUNT, m.method, m.method_len);
				if (method >= 0)
					proto_check_params(
					    &proto_client_notes[method],
					    m.params, m.nparams, args, text,
					    sizeof(text));
			} else
				proto_read_error(m.error, text, sizeof(text));
		}
		walk(data + off, len);
		off += len;
	}
	msgpack_unpacked_destroy(&u);
	return 0;
}
