/*
 * The msgpack-RPC codec, the method table, parameter checking, the
 * bounded packing buffer and the error code names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define WHY_MAX		256

/* A message packed into a proto_buf and decoded again. */
struct wire {
	struct proto_buf	buf;
	msgpack_packer		pk;
	msgpack_unpacked	unpacked;
	struct proto_msg	msg;
	const char		*why;
};

static void
wire_init(struct wire *w)
{
	memset(w, 0, sizeof(*w));
	proto_buf_init(&w->buf, PROTO_MESSAGE_MAX);
	proto_packer_init(&w->pk, &w->buf);
	msgpack_unpacked_init(&w->unpacked);
}

static void
wire_free(struct wire *w)
{
	msgpack_unpacked_destroy(&w->unpacked);
	proto_buf_free(&w->buf);
}

/* Scans and decodes what was packed; returns proto_decode's result. */
static int
wire_decode(struct wire *w)
{
	size_t	msg_len;

	assert_false(w->buf.failed);
	assert_int_equal(proto_scan(w->buf.data, w->buf.len, &msg_len,
	    &w->why), PROTO_SCAN_DONE);
	assert_int_equal(msg_len, w->buf.len);
	w->why = NULL;
	return proto_decode(&w->unpacked, w->buf.data, w->buf.len, &w->msg,
	    &w->why);
}

static void
wire_assert_rejected(struct wire *w, const char *reason)
{
	assert_int_equal(wire_decode(w), -1);
	assert_non_null(w->why);
	if (strstr(w->why, reason) == NULL)
		fail_msg("why \"%s\" does not say \"%s\"", w->why, reason);
}

static msgpack_object
obj_uint(uint64_t v)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o.via.u64 = v;
	return o;
}

static msgpack_object
obj_int(int64_t v)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
	o.via.i64 = v;
	return o;
}

static msgpack_object
obj_bool(bool v)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_BOOLEAN;
	o.via.boolean = v;
	return o;
}

static msgpack_object
obj_nil(void)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_NIL;
	return o;
}

static msgpack_object
obj_str(const char *s, size_t len)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_STR;
	o.via.str.ptr = s;
	o.via.str.size = (uint32_t)len;
	return o;
}

static msgpack_object
obj_bin(const void *p, size_t len)
{
	msgpack_object	o;

	memset(&o, 0, sizeof(o));
	o.type = MSGPACK_OBJECT_BIN;
	o.via.bin.ptr = p;
	o.via.bin.size = (uint32_t)len;
	return o;
}

/* A valid value for a parameter letter. */
static msgpack_object
obj_valid(char type)
{
	switch (type) {
	case 'u': return obj_uint(PROTO_VERSION);
	case 'h': return obj_uint(1);
	case 'p': return obj_uint(80);
	case 'm': return obj_uint(1500);
	case 'n': return obj_uint(4096);
	case 'y': return obj_uint('\n');
	case 'b': return obj_bool(true);
	case 's': return obj_str("127.0.0.1", 9);
	case 'd': return obj_bin("data", 4);
	case 'w': return obj_str("both", 4);
	}
	fail_msg("unknown parameter letter '%c'", type);
	return obj_nil();
}

static void
test_method_table(void **state)
{
	const char	*p;
	int		 i, j;

	(void)state;
	for (i = 0; i < PROTO_METHOD_COUNT; i++) {
		assert_non_null(proto_methods[i].name);
		assert_non_null(proto_methods[i].params);
		assert_true(strlen(proto_methods[i].params) <= PROTO_PARAMS_MAX);
		for (p = proto_methods[i].params; *p != '\0'; p++)
			assert_non_null(strchr("uhpmnybsdw", *p));
		for (j = 0; j < i; j++)
			assert_string_not_equal(proto_methods[i].name,
			    proto_methods[j].name);
	}
	assert_string_equal(proto_methods[PROTO_METHOD_HELLO].name, "hello");
	assert_string_equal(proto_methods[PROTO_METHOD_READ_UNTIL].params,
	    "hyn");
	assert_string_equal(proto_methods[PROTO_METHOD_PEER_ADDR].name,
	    "peer_addr");
}

static void
test_method_lookup(void **state)
{
	static const char	*unknown[] = {
		"rea", "read_linex", "READ", "Read", "hello ", " hello",
		"nope", "connect_", "close\n", "x"
	};
	size_t			 i;
	int			 m;

	(void)state;
	for (m = 0; m < PROTO_METHOD_COUNT; m++)
		assert_int_equal(proto_method_lookup(proto_methods[m].name,
		    strlen(proto_methods[m].name)), m);
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_int_equal(proto_method_lookup(unknown[i],
		    strlen(unknown[i])), -1);
	assert_int_equal(proto_method_lookup("", 0), -1);
	/* the length, not a NUL, ends the name */
	assert_int_equal(proto_method_lookup("read\0", 5), -1);
	assert_int_equal(proto_method_lookup("read_line", 4),
	    PROTO_METHOD_READ);
	assert_int_equal(proto_method_lookup("closed", 5), PROTO_METHOD_CLOSE);
}

static void
test_request_round_trip(void **state)
{
	static const uint32_t	ids[] = { 0, 1, 0x7fffffff, UINT32_MAX };
	struct wire		w;
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		wire_init(&w);
		proto_pack_request(&w.pk, ids[i], PROTO_METHOD_READ_UNTIL, 3);
		msgpack_pack_uint32(&w.pk, 42);
		msgpack_pack_uint8(&w.pk, '\n');
		msgpack_pack_uint32(&w.pk, PROTO_LINE_MAX);
		assert_int_equal(wire_decode(&w), 0);
		assert_int_equal(w.msg.type, PROTO_REQUEST);
		assert_int_equal(w.msg.msgid, ids[i]);
		assert_int_equal(w.msg.method_len, strlen("read_until"));
		assert_memory_equal(w.msg.method, "read_until",
		    w.msg.method_len);
		assert_int_equal(proto_method_lookup(w.msg.method,
		    w.msg.method_len), PROTO_METHOD_READ_UNTIL);
		assert_int_equal(w.msg.nparams, 3);
		assert_null(w.msg.error);
		assert_null(w.msg.result);
		assert_int_equal(proto_check_args(PROTO_METHOD_READ_UNTIL,
		    w.msg.params, w.msg.nparams, args, why, sizeof(why)), 0);
		assert_int_equal(args[0].u, 42);
		assert_int_equal(args[1].u, '\n');
		assert_int_equal(args[2].u, PROTO_LINE_MAX);
		wire_free(&w);
	}
}

static void
test_request_round_trip_data(void **state)
{
	struct wire		 w;
	struct proto_arg	 args[PROTO_PARAMS_MAX];
	char			 why[WHY_MAX];
	uint8_t			*data;
	size_t			 i;

	(void)state;
	data = malloc(PROTO_DATA_MAX);
	assert_non_null(data);
	for (i = 0; i < PROTO_DATA_MAX; i++)
		data[i] = (uint8_t)(i * 7);
	wire_init(&w);
	proto_pack_request(&w.pk, 9, PROTO_METHOD_WRITE_ALL, 2);
	msgpack_pack_uint32(&w.pk, 3);
	msgpack_pack_bin_with_body(&w.pk, data, PROTO_DATA_MAX);
	assert_true(w.buf.len <= PROTO_MESSAGE_MAX);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(proto_method_lookup(w.msg.method, w.msg.method_len),
	    PROTO_METHOD_WRITE_ALL);
	assert_int_equal(proto_check_args(PROTO_METHOD_WRITE_ALL,
	    w.msg.params, w.msg.nparams, args, why, sizeof(why)), 0);
	assert_int_equal(args[0].u, 3);
	assert_int_equal(args[1].len, PROTO_DATA_MAX);
	assert_memory_equal(args[1].ptr, data, PROTO_DATA_MAX);
	wire_free(&w);
	free(data);
}

/* Every method's name survives the trip. */
static void
test_request_every_method(void **state)
{
	struct wire	w;
	int		m;

	(void)state;
	for (m = 0; m < PROTO_METHOD_COUNT; m++) {
		wire_init(&w);
		proto_pack_request(&w.pk, (uint32_t)m + 100,
		    (enum proto_method)m, 0);
		assert_int_equal(wire_decode(&w), 0);
		assert_int_equal(w.msg.type, PROTO_REQUEST);
		assert_int_equal(w.msg.msgid, (uint32_t)m + 100);
		assert_int_equal(w.msg.nparams, 0);
		assert_int_equal(proto_method_lookup(w.msg.method,
		    w.msg.method_len), m);
		wire_free(&w);
	}
}

static void
test_result_round_trip(void **state)
{
	struct wire	w;
	char		message[64];

	(void)state;
	wire_init(&w);
	proto_pack_result(&w.pk, UINT32_MAX);
	msgpack_pack_str_with_body(&w.pk, "[::1]:443", 9);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(w.msg.type, PROTO_RESPONSE);
	assert_int_equal(w.msg.msgid, UINT32_MAX);
	assert_null(w.msg.method);
	assert_non_null(w.msg.error);
	assert_non_null(w.msg.result);
	assert_int_equal(w.msg.error->type, MSGPACK_OBJECT_NIL);
	assert_int_equal(w.msg.result->type, MSGPACK_OBJECT_STR);
	assert_int_equal(w.msg.result->via.str.size, 9);
	assert_memory_equal(w.msg.result->via.str.ptr, "[::1]:443", 9);
	memset(message, 'x', sizeof(message));
	assert_int_equal(proto_read_error(w.msg.error, message,
	    sizeof(message)), 0);
	assert_string_equal(message, "");
	wire_free(&w);
}

static void
test_error_round_trip(void **state)
{
	static const int	codes[] = {
#define CODE(name, text) TB_##name,
		TB_ERRNO_MAP(CODE)
#undef CODE
	};
	struct wire		w;
	char			message[PROTO_ERROR_MESSAGE_MAX + 1];
	size_t			i;

	(void)state;
	assert_int_equal(sizeof(codes) / sizeof(codes[0]),
	    TB__ERRNO_COUNT - 1);
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		wire_init(&w);
		proto_pack_error(&w.pk, (uint32_t)i, codes[i],
		    proto_err_text(codes[i]));
		assert_int_equal(wire_decode(&w), 0);
		assert_int_equal(w.msg.type, PROTO_RESPONSE);
		assert_int_equal(w.msg.msgid, i);
		assert_int_equal(w.msg.result->type, MSGPACK_OBJECT_NIL);
		assert_int_equal(w.msg.error->type, MSGPACK_OBJECT_ARRAY);
		assert_int_equal(w.msg.error->via.array.size, 2);
		assert_int_equal(proto_read_error(w.msg.error, message,
		    sizeof(message)), codes[i]);
		assert_string_equal(message, proto_err_text(codes[i]));
		wire_free(&w);
	}
}

static void
test_error_message_truncation(void **state)
{
	struct wire	w;
	char		long_text[PROTO_ERROR_MESSAGE_MAX + 50];
	char		message[PROTO_ERROR_MESSAGE_MAX + 50];
	char		small[8];

	(void)state;
	memset(long_text, 'a', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	long_text[0] = 'Z';

	/* the packer cuts the message to PROTO_ERROR_MESSAGE_MAX */
	wire_init(&w);
	proto_pack_error(&w.pk, 5, TB_EPOLICY, long_text);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(w.msg.error->via.array.ptr[1].via.str.size,
	    PROTO_ERROR_MESSAGE_MAX);
	memset(message, 'x', sizeof(message));
	assert_int_equal(proto_read_error(w.msg.error, message,
	    sizeof(message)), TB_EPOLICY);
	assert_int_equal(strlen(message), PROTO_ERROR_MESSAGE_MAX);
	assert_memory_equal(message, long_text, PROTO_ERROR_MESSAGE_MAX);

	/* the reader cuts it to the caller's cap */
	memset(small, 'x', sizeof(small));
	assert_int_equal(proto_read_error(w.msg.error, small, sizeof(small)),
	    TB_EPOLICY);
	assert_string_equal(small, "Zaaaaaa");

	memset(small, 'x', sizeof(small));
	assert_int_equal(proto_read_error(w.msg.error, small, 1), TB_EPOLICY);
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], 'x');

	/* cap 0: the code only, nothing written */
	memset(small, 'x', sizeof(small));
	assert_int_equal(proto_read_error(w.msg.error, small, 0), TB_EPOLICY);
	assert_int_equal(small[0], 'x');
	wire_free(&w);

	/* a message exactly as long as the cap still leaves room for NUL */
	wire_init(&w);
	proto_pack_error(&w.pk, 6, TB_EIO, "abcdefgh");
	assert_int_equal(wire_decode(&w), 0);
	memset(message, 'x', sizeof(message));
	assert_int_equal(proto_read_error(w.msg.error, message, 8), TB_EIO);
	assert_string_equal(message, "abcdefg");
	assert_int_equal(message[8], 'x');
	memset(message, 'x', sizeof(message));
	assert_int_equal(proto_read_error(w.msg.error, message, 9), TB_EIO);
	assert_string_equal(message, "abcdefgh");
	assert_int_equal(message[9], 'x');
	wire_free(&w);

	/* an empty message */
	wire_init(&w);
	proto_pack_error(&w.pk, 6, TB_EOF, "");
	assert_int_equal(wire_decode(&w), 0);
	memset(small, 'x', sizeof(small));
	assert_int_equal(proto_read_error(w.msg.error, small, sizeof(small)),
	    TB_EOF);
	assert_string_equal(small, "");
	wire_free(&w);
}

/* Decodes one hand-packed error object and reads it. */
static int
read_packed_error(struct wire *w, char *message, size_t cap)
{
	msgpack_unpacked	unpacked;
	size_t			off = 0;
	int			rc;

	msgpack_unpacked_init(&unpacked);
	assert_int_equal(msgpack_unpack_next(&unpacked,
	    (const char *)w->buf.data, w->buf.len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	rc = proto_read_error(&unpacked.data, message, cap);
	msgpack_unpacked_destroy(&unpacked);
	return rc;
}

static void
test_error_malformed(void **state)
{
	struct wire	w;
	char		message[32];
	int		i;

	(void)state;
	/* bounded: one case per value of i */
	for (i = 0; i < 12; i++) {
		wire_init(&w);
		switch (i) {
		case 0:		/* not an array */
			msgpack_pack_str_with_body(&w.pk, "EPOLICY", 7);
			break;
		case 1:
			msgpack_pack_int32(&w.pk, TB_EPOLICY);
			break;
		case 2:		/* one element */
			msgpack_pack_array(&w.pk, 1);
			msgpack_pack_str_with_body(&w.pk, "EPOLICY", 7);
			break;
		case 3:		/* three elements */
			msgpack_pack_array(&w.pk, 3);
			msgpack_pack_str_with_body(&w.pk, "EPOLICY", 7);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			msgpack_pack_nil(&w.pk);
			break;
		case 4:		/* code as a number */
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_int32(&w.pk, TB_EPOLICY);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			break;
		case 5:		/* message not a str */
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_str_with_body(&w.pk, "EPOLICY", 7);
			msgpack_pack_nil(&w.pk);
			break;
		case 6:		/* code as bin */
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_bin_with_body(&w.pk, "EPOLICY", 7);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			break;
		case 7:		/* unknown names */
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_str_with_body(&w.pk, "ENOPE", 5);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			break;
		case 8:
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_str_with_body(&w.pk, "OK", 2);
			msgpack_pack_str_with_body(&w.pk, "fine", 4);
			break;
		case 9:
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_str_with_body(&w.pk, "epolicy", 7);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			break;
		case 10:
			msgpack_pack_array(&w.pk, 2);
			msgpack_pack_str_with_body(&w.pk, "EPOLIC", 6);
			msgpack_pack_str_with_body(&w.pk, "denied", 6);
			break;
		case 11:
			msgpack_pack_array(&w.pk, 0);
			break;
		}
		memset(message, 'x', sizeof(message));
		if (read_packed_error(&w, message, sizeof(message)) !=
		    TB_EPROTO)
			fail_msg("malformed error %d not TB_EPROTO", i);
		assert_string_equal(message, "");
		wire_free(&w);
	}
}

static void
test_decode_rejects(void **state)
{
	struct wire	w;

	(void)state;
	wire_init(&w);
	msgpack_pack_map(&w.pk, 1);
	msgpack_pack_uint8(&w.pk, 0);
	msgpack_pack_uint8(&w.pk, 1);
	wire_assert_rejected(&w, "must be an array");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_uint8(&w.pk, 0);
	wire_assert_rejected(&w, "must be an array");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_str_with_body(&w.pk, "hello", 5);
	wire_assert_rejected(&w, "must be an array");
	wire_free(&w);

	/* three and five elements */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 3);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_str_with_body(&w.pk, "close", 5);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	proto_pack_request(&w.pk, 1, PROTO_METHOD_CLOSE, 0);
	/* proto_pack_request wrote a 4-array; rewrite its header to 5 */
	assert_int_equal(w.buf.data[0], 0x94);
	w.buf.data[0] = 0x95;
	msgpack_pack_nil(&w.pk);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 0);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);
}

/* [type, msgid, "close", []] with type and msgid packed by the caller. */
static void
pack_envelope_tail(struct wire *w)
{
	msgpack_pack_str_with_body(&w->pk, "close", 5);
	msgpack_pack_array(&w->pk, 0);
}

static void
test_decode_rejects_type_and_msgid(void **state)
{
	struct wire	w;

	(void)state;
	/* type not an unsigned integer */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_str_with_body(&w.pk, "0", 1);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_int8(&w.pk, -1);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_double(&w.pk, 0.0);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_nil(&w.pk);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	/* msgid above UINT32_MAX, negative, not an integer */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint64(&w.pk, (uint64_t)UINT32_MAX + 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint64(&w.pk, UINT64_MAX);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_int8(&w.pk, -1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_str_with_body(&w.pk, "1", 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "4 elements");
	wire_free(&w);

	/* the largest msgid is fine */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint64(&w.pk, UINT32_MAX);
	pack_envelope_tail(&w);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(w.msg.msgid, UINT32_MAX);
	wire_free(&w);

	/* types 2 (a notification in msgpack-RPC) and above */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, 2);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "unknown message type");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint64(&w.pk, UINT64_MAX);
	msgpack_pack_uint8(&w.pk, 1);
	pack_envelope_tail(&w);
	wire_assert_rejected(&w, "unknown message type");
	wire_free(&w);
}

static void
test_decode_rejects_request_shape(void **state)
{
	struct wire	w;

	(void)state;
	/* method as bin, as an integer */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_bin_with_body(&w.pk, "close", 5);
	msgpack_pack_array(&w.pk, 0);
	wire_assert_rejected(&w, "[0, msgid, method, params]");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_uint8(&w.pk, PROTO_METHOD_CLOSE);
	msgpack_pack_array(&w.pk, 0);
	wire_assert_rejected(&w, "[0, msgid, method, params]");
	wire_free(&w);

	/* params as a map, nil, a bare value */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_str_with_body(&w.pk, "close", 5);
	msgpack_pack_map(&w.pk, 0);
	wire_assert_rejected(&w, "[0, msgid, method, params]");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_str_with_body(&w.pk, "close", 5);
	msgpack_pack_nil(&w.pk);
	wire_assert_rejected(&w, "[0, msgid, method, params]");
	wire_free(&w);

	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_REQUEST);
	msgpack_pack_uint8(&w.pk, 1);
	msgpack_pack_str_with_body(&w.pk, "close", 5);
	msgpack_pack_uint8(&w.pk, 1);
	wire_assert_rejected(&w, "[0, msgid, method, params]");
	wire_free(&w);

	/* a response takes any error and result; the reader judges them */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 4);
	msgpack_pack_uint8(&w.pk, PROTO_RESPONSE);
	msgpack_pack_uint8(&w.pk, 3);
	msgpack_pack_uint8(&w.pk, 7);
	msgpack_pack_true(&w.pk);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(w.msg.type, PROTO_RESPONSE);
	assert_int_equal(w.msg.error->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(w.msg.result->type, MSGPACK_OBJECT_BOOLEAN);
	assert_int_equal(proto_read_error(w.msg.error, NULL, 0), TB_EPROTO);
	wire_free(&w);
}

/* proto_decode takes exactly one whole message. */
static void
test_decode_exact_length(void **state)
{
	struct wire	w;
	size_t		len;

	(void)state;
	wire_init(&w);
	proto_pack_request(&w.pk, 1, PROTO_METHOD_CLOSE, 1);
	msgpack_pack_uint8(&w.pk, 1);
	len = w.buf.len;
	msgpack_pack_nil(&w.pk);
	assert_int_equal(proto_decode(&w.unpacked, w.buf.data, len + 1,
	    &w.msg, &w.why), -1);
	assert_string_equal(w.why, "undecodable msgpack");
	assert_int_equal(proto_decode(&w.unpacked, w.buf.data, len - 1,
	    &w.msg, &w.why), -1);
	assert_string_equal(w.why, "undecodable msgpack");
	assert_int_equal(proto_decode(&w.unpacked, w.buf.data, len,
	    &w.msg, &w.why), 0);
	assert_int_equal(w.msg.nparams, 1);
	wire_free(&w);
}

/* Checks method with params; returns the code, why in why. */
static int
check(enum proto_method method, const msgpack_object *params,
    uint32_t nparams, struct proto_arg args[PROTO_PARAMS_MAX], char *why)
{
	int	rc;

	memset(why, 0, WHY_MAX);
	rc = proto_check_args(method, params, nparams, args, why, WHY_MAX);
	if (rc != 0) {
		/* every refusal says which method */
		if (strncmp(why, proto_methods[method].name,
		    strlen(proto_methods[method].name)) != 0)
			fail_msg("why \"%s\" does not name %s", why,
			    proto_methods[method].name);
	}
	return rc;
}

/* One parameter of method at position pos replaced by o. */
static int
check_one(enum proto_method method, unsigned pos, msgpack_object o,
    struct proto_arg args[PROTO_PARAMS_MAX], char *why)
{
	msgpack_object	params[PROTO_PARAMS_MAX];
	const char	*sig = proto_methods[method].params;
	size_t		i, n = strlen(sig);

	assert_true(pos < n);
	for (i = 0; i < n; i++)
		params[i] = obj_valid(sig[i]);
	params[pos] = o;
	return check(method, params, (uint32_t)n, args, why);
}

static void
test_check_args_every_method(void **state)
{
	msgpack_object		params[PROTO_PARAMS_MAX + 1];
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];
	const char		*sig;
	size_t			i, n;
	int			m;

	(void)state;
	for (m = 0; m < PROTO_METHOD_COUNT; m++) {
		sig = proto_methods[m].params;
		n = strlen(sig);
		for (i = 0; i < n; i++)
			params[i] = obj_valid(sig[i]);
		params[n] = obj_nil();
		if (check((enum proto_method)m, params, (uint32_t)n, args,
		    why) != 0)
			fail_msg("%s: valid params refused: %s",
			    proto_methods[m].name, why);
		for (i = 0; i < n; i++) {
			switch (sig[i]) {
			case 'b':
				assert_true(args[i].b);
				break;
			case 's':
			case 'd':
				assert_ptr_equal(args[i].ptr,
				    params[i].type == MSGPACK_OBJECT_STR ?
				    (const void *)params[i].via.str.ptr :
				    (const void *)params[i].via.bin.ptr);
				break;
			case 'w':
				assert_int_equal(args[i].u,
				    PROTO_SHUTDOWN_BOTH);
				break;
			default:
				assert_int_equal(args[i].u,
				    params[i].via.u64);
			}
		}

		/* one too many and one too few */
		assert_int_equal(check((enum proto_method)m, params,
		    (uint32_t)n + 1, args, why), TB_EINVAL);
		assert_non_null(strstr(why, "takes"));
		if (n > 0) {
			assert_int_equal(check((enum proto_method)m, params,
			    (uint32_t)n - 1, args, why), TB_EINVAL);
			assert_non_null(strstr(why, "takes"));
		}
	}
}

static void
test_check_args_count_message(void **state)
{
	msgpack_object		params[PROTO_PARAMS_MAX];
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];

	(void)state;
	params[0] = obj_uint(1);
	assert_int_equal(check(PROTO_METHOD_CLOSE, params, 0, args, why),
	    TB_EINVAL);
	assert_string_equal(why, "close takes 1 parameter, not 0");
	assert_int_equal(check(PROTO_METHOD_READ_UNTIL, params, 1, args, why),
	    TB_EINVAL);
	assert_string_equal(why, "read_until takes 3 parameters, not 1");
}

static void
test_check_args_integers(void **state)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];

	(void)state;
	/* u */
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0, obj_uint(0), args,
	    why), 0);
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0, obj_uint(UINT32_MAX),
	    args, why), 0);
	assert_int_equal(args[0].u, UINT32_MAX);
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0,
	    obj_uint((uint64_t)UINT32_MAX + 1), args, why), TB_EINVAL);
	assert_non_null(strstr(why, "parameter 1"));
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0, obj_int(-1), args,
	    why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0, obj_bool(true),
	    args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_HELLO, 0, obj_str("1", 1),
	    args, why), TB_EINVAL);

	/* h */
	assert_int_equal(check_one(PROTO_METHOD_CLOSE, 0, obj_uint(0), args,
	    why), TB_EINVAL);
	assert_string_equal(why, "close: parameter 1 must be a handle");
	assert_int_equal(check_one(PROTO_METHOD_CLOSE, 0, obj_uint(1), args,
	    why), 0);
	assert_int_equal(check_one(PROTO_METHOD_CLOSE, 0, obj_uint(UINT32_MAX),
	    args, why), 0);
	assert_int_equal(check_one(PROTO_METHOD_CLOSE, 0,
	    obj_uint((uint64_t)UINT32_MAX + 1), args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_CLOSE, 0, obj_nil(), args,
	    why), TB_EINVAL);

	/* p */
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 1, obj_uint(0), args,
	    why), TB_EINVAL);
	assert_string_equal(why,
	    "connect: parameter 2 must be a port number 1-65535");
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 1, obj_uint(1), args,
	    why), 0);
	assert_int_equal(args[1].u, 1);
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 1, obj_uint(65535),
	    args, why), 0);
	assert_int_equal(args[1].u, 65535);
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 1, obj_uint(65536),
	    args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 1, obj_int(-80),
	    args, why), TB_EINVAL);

	/* m */
	assert_int_equal(check_one(PROTO_METHOD_CONNECT_TIMEOUT, 2, obj_uint(0),
	    args, why), 0);
	assert_int_equal(check_one(PROTO_METHOD_SET_TIMEOUT_MS, 1,
	    obj_uint(UINT32_MAX), args, why), 0);
	assert_int_equal(args[1].u, UINT32_MAX);
	assert_int_equal(check_one(PROTO_METHOD_SET_TIMEOUT_MS, 1,
	    obj_uint((uint64_t)UINT32_MAX + 1), args, why), TB_EINVAL);
	assert_non_null(strstr(why, "set_timeout_ms: parameter 2"));

	/* n */
	assert_int_equal(check_one(PROTO_METHOD_READ, 1, obj_uint(0), args,
	    why), 0);
	assert_int_equal(check_one(PROTO_METHOD_READ, 1,
	    obj_uint(PROTO_DATA_MAX), args, why), 0);
	assert_int_equal(args[1].u, PROTO_DATA_MAX);
	assert_int_equal(check_one(PROTO_METHOD_READ, 1,
	    obj_uint(PROTO_DATA_MAX + 1), args, why), TB_ELIMIT);
	assert_non_null(strstr(why, "read: parameter 2"));
	assert_int_equal(check_one(PROTO_METHOD_PEEK, 1, obj_uint(UINT64_MAX),
	    args, why), TB_ELIMIT);
	assert_int_equal(check_one(PROTO_METHOD_READ_EXACT, 1, obj_int(-1),
	    args, why), TB_EINVAL);

	/* y */
	assert_int_equal(check_one(PROTO_METHOD_READ_UNTIL, 1, obj_uint(0),
	    args, why), 0);
	assert_int_equal(check_one(PROTO_METHOD_READ_UNTIL, 1, obj_uint(255),
	    args, why), 0);
	assert_int_equal(args[1].u, 255);
	assert_int_equal(check_one(PROTO_METHOD_READ_UNTIL, 1, obj_uint(256),
	    args, why), TB_EINVAL);
	assert_string_equal(why,
	    "read_until: parameter 2 must be a byte value 0-255");
	assert_int_equal(check_one(PROTO_METHOD_READ_UNTIL, 1,
	    obj_str("\n", 1), args, why), TB_EINVAL);
}

static void
test_check_args_bool(void **state)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];

	(void)state;
	assert_int_equal(check_one(PROTO_METHOD_SET_NODELAY, 1,
	    obj_bool(false), args, why), 0);
	assert_false(args[1].b);
	assert_int_equal(check_one(PROTO_METHOD_SET_KEEPALIVE, 1,
	    obj_bool(true), args, why), 0);
	assert_true(args[1].b);
	assert_int_equal(check_one(PROTO_METHOD_SET_NODELAY, 1, obj_uint(1),
	    args, why), TB_EINVAL);
	assert_string_equal(why, "set_nodelay: parameter 2 must be a boolean");
	assert_int_equal(check_one(PROTO_METHOD_SET_KEEPALIVE, 1, obj_nil(),
	    args, why), TB_EINVAL);
}

static void
test_check_args_strings(void **state)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];
	char			text[PROTO_STRING_MAX + 1];

	(void)state;
	memset(text, 'a', sizeof(text));
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 0,
	    obj_str(text, PROTO_STRING_MAX), args, why), 0);
	assert_ptr_equal(args[0].ptr, text);
	assert_int_equal(args[0].len, PROTO_STRING_MAX);
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 0,
	    obj_str(text, PROTO_STRING_MAX + 1), args, why), TB_EINVAL);
	assert_non_null(strstr(why, "connect: parameter 1"));
	assert_int_equal(check_one(PROTO_METHOD_LISTEN, 0, obj_str(text, 1),
	    args, why), 0);
	assert_int_equal(check_one(PROTO_METHOD_LISTEN, 0, obj_str(text, 0),
	    args, why), TB_EINVAL);
	assert_non_null(strstr(why, "listen: parameter 1"));
	assert_int_equal(check_one(PROTO_METHOD_LISTEN, 0,
	    obj_str("127.0.0.1\0:80", 13), args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_LISTEN, 0,
	    obj_str("\0", 1), args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 0,
	    obj_bin("example.test", 12), args, why), TB_EINVAL);
	assert_string_equal(why, "connect: parameter 1 must be a string");
	assert_int_equal(check_one(PROTO_METHOD_CONNECT, 0, obj_uint(1), args,
	    why), TB_EINVAL);
}

static void
test_check_args_data(void **state)
{
	struct proto_arg	 args[PROTO_PARAMS_MAX];
	char			 why[WHY_MAX];
	uint8_t			*data;

	(void)state;
	data = calloc(1, PROTO_DATA_MAX + 1);
	assert_non_null(data);
	assert_int_equal(check_one(PROTO_METHOD_WRITE, 1,
	    obj_bin(data, PROTO_DATA_MAX), args, why), 0);
	assert_ptr_equal(args[1].ptr, data);
	assert_int_equal(args[1].len, PROTO_DATA_MAX);
	assert_int_equal(check_one(PROTO_METHOD_WRITE_BYTES, 1,
	    obj_bin(data, PROTO_DATA_MAX + 1), args, why), TB_ELIMIT);
	assert_non_null(strstr(why, "write_bytes: data"));
	assert_int_equal(check_one(PROTO_METHOD_WRITE_ALL, 1, obj_bin(data, 0),
	    args, why), 0);
	assert_int_equal(args[1].len, 0);
	assert_int_equal(check_one(PROTO_METHOD_WRITE, 1, obj_str("abc", 3),
	    args, why), TB_EINVAL);
	assert_string_equal(why, "write: parameter 2 must be bin data");
	assert_int_equal(check_one(PROTO_METHOD_WRITE, 1, obj_nil(), args,
	    why), TB_EINVAL);
	free(data);
}

static void
test_check_args_shutdown(void **state)
{
	static const char	*bad[] = {
		"READ", "Read", "rea", "reads", "writ", "writes", "bothx",
		"both ", " both", "all", "rw"
	};
	struct proto_arg	 args[PROTO_PARAMS_MAX];
	char			 why[WHY_MAX];
	size_t			 i;

	(void)state;
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1,
	    obj_str("read", 4), args, why), 0);
	assert_int_equal(args[1].u, PROTO_SHUTDOWN_READ);
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1,
	    obj_str("write", 5), args, why), 0);
	assert_int_equal(args[1].u, PROTO_SHUTDOWN_WRITE);
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1,
	    obj_str("both", 4), args, why), 0);
	assert_int_equal(args[1].u, PROTO_SHUTDOWN_BOTH);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check_one(PROTO_METHOD_SHUTDOWN, 1,
		    obj_str(bad[i], strlen(bad[i])), args, why) != TB_EINVAL)
			fail_msg("shutdown mode \"%s\" accepted", bad[i]);
		assert_non_null(strstr(why, "shutdown: parameter 2"));
	}
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1, obj_str("", 0),
	    args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1,
	    obj_str("read\0", 5), args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1, obj_uint(0),
	    args, why), TB_EINVAL);
	assert_int_equal(check_one(PROTO_METHOD_SHUTDOWN, 1,
	    obj_bin("both", 4), args, why), TB_EINVAL);
}

/* A bad first parameter is reported before a bad second one. */
static void
test_check_args_first_error(void **state)
{
	msgpack_object		params[PROTO_PARAMS_MAX];
	struct proto_arg	args[PROTO_PARAMS_MAX];
	char			why[WHY_MAX];

	(void)state;
	params[0] = obj_uint(0);
	params[1] = obj_uint(PROTO_DATA_MAX + 1);
	assert_int_equal(check(PROTO_METHOD_READ, params, 2, args, why),
	    TB_EINVAL);
	assert_non_null(strstr(why, "parameter 1"));
}

static void
test_buf_limit(void **state)
{
	struct proto_buf	buf;

	(void)state;
	proto_buf_init(&buf, 10);
	assert_int_equal(buf.len, 0);
	assert_false(buf.failed);
	assert_int_equal(proto_buf_append(&buf, "", 0), 0);
	assert_int_equal(proto_buf_append(&buf, "abcd", 4), 0);
	assert_int_equal(proto_buf_append(&buf, "efghij", 6), 0);
	assert_int_equal(buf.len, 10);
	assert_true(buf.cap <= 10);
	assert_memory_equal(buf.data, "abcdefghij", 10);
	assert_false(buf.failed);
	assert_int_equal(proto_buf_append(&buf, "k", 1), -1);
	assert_true(buf.failed);
	assert_int_equal(buf.len, 10);
	/* once failed, it stays failed */
	proto_buf_consume(&buf, 5);
	assert_int_equal(proto_buf_append(&buf, "k", 1), -1);
	assert_int_equal(buf.len, 5);
	assert_memory_equal(buf.data, "fghij", 5);
	proto_buf_free(&buf);
	assert_null(buf.data);
	assert_int_equal(buf.len, 0);

	/* one append larger than the limit */
	proto_buf_init(&buf, 4);
	assert_int_equal(proto_buf_append(&buf, "abcde", 5), -1);
	assert_true(buf.failed);
	assert_int_equal(buf.len, 0);
	proto_buf_free(&buf);
}

static void
test_buf_consume(void **state)
{
	struct proto_buf	buf;

	(void)state;
	proto_buf_init(&buf, 100);
	assert_int_equal(proto_buf_append(&buf, "0123456789", 10), 0);
	proto_buf_consume(&buf, 0);
	assert_int_equal(buf.len, 10);
	proto_buf_consume(&buf, 3);
	assert_int_equal(buf.len, 7);
	assert_memory_equal(buf.data, "3456789", 7);
	assert_int_equal(proto_buf_append(&buf, "ab", 2), 0);
	assert_memory_equal(buf.data, "3456789ab", 9);
	proto_buf_consume(&buf, 9);
	assert_int_equal(buf.len, 0);
	assert_int_equal(proto_buf_append(&buf, "xy", 2), 0);
	proto_buf_consume(&buf, 1000);
	assert_int_equal(buf.len, 0);
	assert_false(buf.failed);
	proto_buf_free(&buf);
}

static void
test_buf_growth(void **state)
{
	struct proto_buf	buf;
	uint8_t			chunk[1000];
	size_t			i, j;

	(void)state;
	proto_buf_init(&buf, 300000);
	for (i = 0; i < 300; i++) {
		memset(chunk, (int)(i & 0xff), sizeof(chunk));
		assert_int_equal(proto_buf_append(&buf, chunk, sizeof(chunk)),
		    0);
		assert_true(buf.cap <= buf.max);
	}
	assert_int_equal(buf.len, 300000);
	for (i = 0; i < 300; i++)
		for (j = 0; j < sizeof(chunk); j += 499)
			assert_int_equal(buf.data[i * 1000 + j], i & 0xff);
	assert_int_equal(proto_buf_append(&buf, chunk, 1), -1);
	proto_buf_free(&buf);
}

/* A packer on a small proto_buf stops at the limit. */
static void
test_buf_packer_overflow(void **state)
{
	struct proto_buf	buf;
	msgpack_packer		pk;

	(void)state;
	proto_buf_init(&buf, 8);
	proto_packer_init(&pk, &buf);
	proto_pack_request(&pk, 1, PROTO_METHOD_CONNECT_TIMEOUT, 3);
	assert_true(buf.failed);
	assert_true(buf.len <= 8);
	proto_buf_free(&buf);

	proto_buf_init(&buf, 64);
	proto_packer_init(&pk, &buf);
	proto_pack_result(&pk, 1);
	msgpack_pack_nil(&pk);
	assert_false(buf.failed);
	/* [1, 1, nil, nil] */
	assert_int_equal(buf.len, 5);
	assert_memory_equal(buf.data, "\x94\x01\x01\xc0\xc0", 5);
	proto_buf_free(&buf);
}

static void
test_err_names(void **state)
{
	static const struct {
		int		 code;
		const char	*name;
		const char	*text;
	} map[] = {
#define ENTRY(name, text) { TB_##name, #name, text },
		TB_ERRNO_MAP(ENTRY)
#undef ENTRY
	};
	size_t	i, j;

	(void)state;
	assert_int_equal(sizeof(map) / sizeof(map[0]), TB__ERRNO_COUNT - 1);
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		assert_true(map[i].code < 0);
		assert_string_equal(proto_err_name(map[i].code), map[i].name);
		assert_string_equal(proto_err_text(map[i].code), map[i].text);
		assert_int_equal(proto_err_lookup(map[i].name,
		    strlen(map[i].name)), map[i].code);
		for (j = 0; j < i; j++)
			assert_int_not_equal(map[i].code, map[j].code);
	}
	assert_int_equal(TB_EPOLICY, -6);
	assert_string_equal(proto_err_name(TB_EPOLICY), "EPOLICY");
	assert_string_equal(proto_err_name(0), "OK");
	assert_string_equal(proto_err_text(0), "success");
}

static void
test_err_out_of_range(void **state)
{
	static const int	codes[] = {
		1, 2, 100, INT_MAX, -TB__ERRNO_COUNT, -TB__ERRNO_COUNT - 1,
		-1000, INT_MIN + 1, INT_MIN
	};
	static const char	*names[] = {
		"OK", "EUNKNOWN", "", "EPOLIC", "EPOLICYX", "epolicy",
		" EPOLICY", "EIO\n"
	};
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_string_equal(proto_err_name(codes[i]), "EUNKNOWN");
		assert_string_equal(proto_err_text(codes[i]), "unknown error");
	}
	/* the last valid code */
	assert_string_equal(proto_err_name(-(TB__ERRNO_COUNT - 1)), "ETLS");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(proto_err_lookup(names[i], strlen(names[i])),
		    0);
	/* the length, not a NUL, ends the name */
	assert_int_equal(proto_err_lookup("EIO", 2), 0);
	assert_int_equal(proto_err_lookup("EIOX", 3), TB_EIO);
}

/* A notification decodes as one; a bad one is refused. */
static void
test_note_round_trip(void **state)
{
	struct proto_arg	args[PROTO_PARAMS_MAX];
	struct wire		w;
	char			why[PROTO_ERROR_MESSAGE_MAX + 1];

	(void)state;
	wire_init(&w);
	proto_pack_note(&w.pk, proto_client_notes[PROTO_CNOTE_CREDIT].name,
	    2);
	msgpack_pack_uint32(&w.pk, 257);
	msgpack_pack_uint32(&w.pk, 4096);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(w.msg.type, PROTO_NOTIFY);
	assert_int_equal(proto_table_lookup(proto_client_notes,
	    PROTO_CNOTE_COUNT, w.msg.method, w.msg.method_len),
	    PROTO_CNOTE_CREDIT);
	assert_int_equal(proto_check_params(&proto_client_notes[
	    PROTO_CNOTE_CREDIT], w.msg.params, w.msg.nparams, args, why,
	    sizeof(why)), 0);
	assert_int_equal(args[0].u, 257);
	assert_int_equal(args[1].u, 4096);
	wire_free(&w);

	/* [2, 7, []]: the method must be a string. */
	wire_init(&w);
	msgpack_pack_array(&w.pk, 3);
	msgpack_pack_uint8(&w.pk, PROTO_NOTIFY);
	msgpack_pack_uint8(&w.pk, 7);
	msgpack_pack_array(&w.pk, 0);
	wire_assert_rejected(&w, "notification");
	wire_free(&w);

	/* The error parameter: [code, message] with a known code. */
	wire_init(&w);
	proto_pack_note(&w.pk, "error", 2);
	msgpack_pack_uint32(&w.pk, 1);
	msgpack_pack_array(&w.pk, 2);
	msgpack_pack_str_with_body(&w.pk, "ECONNRESET", 10);
	msgpack_pack_str_with_body(&w.pk, "reset", 5);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(proto_check_params(&proto_broker_notes[
	    PROTO_BNOTE_ERROR], w.msg.params, w.msg.nparams, args, why,
	    sizeof(why)), 0);
	assert_int_equal(-(int)args[1].u, TB_ECONNRESET);
	wire_free(&w);

	wire_init(&w);
	proto_pack_note(&w.pk, "error", 2);
	msgpack_pack_uint32(&w.pk, 1);
	msgpack_pack_array(&w.pk, 2);
	msgpack_pack_str_with_body(&w.pk, "EWHAT", 5);
	msgpack_pack_str_with_body(&w.pk, "?", 1);
	assert_int_equal(wire_decode(&w), 0);
	assert_int_equal(proto_check_params(&proto_broker_notes[
	    PROTO_BNOTE_ERROR], w.msg.params, w.msg.nparams, args, why,
	    sizeof(why)), TB_EINVAL);
	wire_free(&w);
}

/* The cursor reads what msgpack packs, in every width, and nothing else. */
static void
test_cursor(void **state)
{
	static const uint64_t	 uints[] = { 0, 127, 128, 255, 256, 65535,
				    65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1 };
	static uint8_t		 big[70000];
	struct proto_cursor	 c;
	struct wire		 w;
	const char		*str;
	const uint8_t		*bin;
	char			 message[8];
	size_t			 len, i;
	uint64_t		 v;
	uint32_t		 n;
	int			 code;

	(void)state;
	wire_init(&w);
	w.buf.max = sizeof(big) * 2;
	for (i = 0; i < sizeof(uints) / sizeof(uints[0]); i++)
		msgpack_pack_uint64(&w.pk, uints[i]);
	msgpack_pack_array(&w.pk, 17);
	msgpack_pack_map(&w.pk, 16);
	msgpack_pack_str_with_body(&w.pk, "data", 4);
	msgpack_pack_str_with_body(&w.pk, (const char *)big, 40);
	msgpack_pack_str_with_body(&w.pk, (const char *)big, 300);
	msgpack_pack_bin_with_body(&w.pk, big, 3);
	msgpack_pack_bin_with_body(&w.pk, big, sizeof(big));
	msgpack_pack_nil(&w.pk);
	msgpack_pack_array(&w.pk, 2);
	msgpack_pack_str_with_body(&w.pk, "EPIPE", 5);
	msgpack_pack_str_with_body(&w.pk, "a long message", 14);
	msgpack_pack_int8(&w.pk, -1);
	assert_false(w.buf.failed);

	c = (struct proto_cursor){ w.buf.data, w.buf.len };
	for (i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
		assert_int_equal(proto_get_uint(&c, &v), 0);
		assert_true(v == uints[i]);
	}
	assert_int_equal(proto_get_map(&c, &n), -1);	/* an array */
	c.p--;
	c.len++;
	assert_int_equal(proto_get_array(&c, &n), 0);
	assert_int_equal(n, 17);
	assert_int_equal(proto_get_map(&c, &n), 0);
	assert_int_equal(n, 16);
	assert_int_equal(proto_get_bin(&c, &bin, &len), -1);	/* a str */
	c.p--;
	c.len++;
	assert_int_equal(proto_get_str(&c, &str, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(str, "data", 4);
	assert_int_equal(proto_get_str(&c, &str, &len), 0);
	assert_int_equal(len, 40);
	assert_int_equal(proto_get_str(&c, &str, &len), 0);
	assert_int_equal(len, 300);
	assert_int_equal(proto_get_bin(&c, &bin, &len), 0);
	assert_int_equal(len, 3);
	assert_int_equal(proto_get_bin(&c, &bin, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_int_equal(proto_get_error(&c, &code, message, sizeof(message)),
	    0);
	assert_int_equal(code, 0);
	assert_int_equal(proto_get_error(&c, &code, message, sizeof(message)),
	    0);
	assert_int_equal(code, TB_EPIPE);
	assert_string_equal(message, "a long ");	/* cut to fit */
	assert_int_equal(proto_get_uint(&c, &v), -1);	/* negative */
	assert_int_equal(c.len, 0);
	assert_int_equal(proto_get_nil(&c), -1);	/* nothing left */

	/* A length past the end is refused. */
	c = (struct proto_cursor){ (const uint8_t *)"\xc4\x05" "ab", 4 };
	assert_int_equal(proto_get_bin(&c, &bin, &len), -1);
	c = (struct proto_cursor){ (const uint8_t *)"\xce\x01", 2 };
	assert_int_equal(proto_get_uint(&c, &v), -1);
	wire_free(&w);
}

/* Error messages go out as msgpack str, which must be UTF-8. */
static void
test_utf8_clean(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "plain", "plain" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\xff\xfe", "??" },
		{ "\xc0\xafx", "??x" },		/* overlong '/' */
		{ "\xe0\x80\xaf", "???" },		/* overlong, 3 bytes */
		{ "\xed\xa0\x80", "???" },		/* a surrogate */
		{ "\xf4\x90\x80\x80", "????" },	/* past U+10FFFF */
		{ "ab\xe2\x82", "ab??" },		/* cut short */
		{ "\xc3(", "?(" },
	};
	char	out[64];
	size_t	i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].in);
		memset(out, 0, sizeof(out));
		assert_int_equal(proto_utf8_clean(cases[i].in, len, out), len);
		assert_string_equal(out, cases[i].out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_method_table),
		cmocka_unit_test(test_utf8_clean),
		cmocka_unit_test(test_method_lookup),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_round_trip_data),
		cmocka_unit_test(test_request_every_method),
		cmocka_unit_test(test_result_round_trip),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_error_message_truncation),
		cmocka_unit_test(test_error_malformed),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_decode_rejects_type_and_msgid),
		cmocka_unit_test(test_decode_rejects_request_shape),
		cmocka_unit_test(test_decode_exact_length),
		cmocka_unit_test(test_check_args_every_method),
		cmocka_unit_test(test_check_args_count_message),
		cmocka_unit_test(test_check_args_integers),
		cmocka_unit_test(test_check_args_bool),
		cmocka_unit_test(test_check_args_strings),
		cmocka_unit_test(test_check_args_data),
		cmocka_unit_test(test_check_args_shutdown),
		cmocka_unit_test(test_check_args_first_error),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_consume),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_packer_overflow),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_err_out_of_range),
		cmocka_unit_test(test_note_round_trip),
		cmocka_unit_test(test_cursor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
