/*
 * The msgpack-RPC envelope: packing requests and responses, and decoding
 * a message the scanner has already bounded.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void
proto_buf_init(struct proto_buf *buf, size_t max)
{
	memset(buf, 0, sizeof(*buf));
	buf->max = max;
}

void
proto_buf_free(struct proto_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

int
proto_buf_append(struct proto_buf *buf, const void *data, size_t len)
{
	size_t	 cap;
	uint8_t	*p;

	if (buf->failed)
		return -1;
	if (len > buf->max - buf->len) {
		buf->failed = true;
		return -1;
	}
	if (len > buf->cap - buf->len) {
		cap = buf->cap ? buf->cap : 256;
		while (cap - buf->len < len)
			cap *= 2;
		if (cap > buf->max)
			cap = buf->max;
		/* Short of memory, the doubling may fail where the need fits. */
		if ((p = realloc(buf->data, cap)) == NULL &&
		    (p = realloc(buf->data, cap = buf->len + len)) == NULL) {
			buf->failed = true;
			return -1;
		}
		buf->data = p;
		buf->cap = cap;
	}
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	return 0;
}

void
proto_buf_consume(struct proto_buf *buf, size_t n)
{
	if (n >= buf->len) {
		buf->len = 0;
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
}

uint8_t *
proto_buf_reserve(struct proto_buf *buf, size_t len)
{
	size_t	 cap;
	uint8_t	*p;

	if (buf->failed || len > buf->max - buf->len)
		return NULL;
	if (len > buf->cap - buf->len) {
		cap = buf->cap ? buf->cap : 256;
		while (cap - buf->len < len)
			cap *= 2;
		if (cap > buf->max)
			cap = buf->max;
		if ((p = realloc(buf->data, cap)) == NULL &&
		    (p = realloc(buf->data, cap = buf->len + len)) == NULL)
			return NULL;
		buf->data = p;
		buf->cap = cap;
	}
	return buf->data + buf->len;
}

static int
packer_write(void *data, const char *p, size_t len)
{
	return proto_buf_append(data, p, len);
}

void
proto_packer_init(msgpack_packer *pk, struct proto_buf *buf)
{
	msgpack_packer_init(pk, buf, packer_write);
}

void
proto_pack_request(msgpack_packer *pk, uint32_t msgid,
    enum proto_method method, uint32_t nparams)
{
	const char	*name = proto_methods[method].name;

	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, PROTO_REQUEST);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_str_with_body(pk, name, strlen(name));
	msgpack_pack_array(pk, nparams);
}

void
proto_pack_note(msgpack_packer *pk, const char *name, uint32_t nparams)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, PROTO_NOTIFY);
	msgpack_pack_str_with_body(pk, name, strlen(name));
	msgpack_pack_array(pk, nparams);
}

void
proto_pack_result(msgpack_packer *pk, uint32_t msgid)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, PROTO_RESPONSE);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_nil(pk);
}

/* The length of the valid UTF-8 sequence at p (at most len), or 0. */
static size_t
utf8_sequence(const unsigned char *p, size_t len)
{
	size_t		n, i;
	uint32_t	c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	c = p[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

size_t
proto_utf8_clean(const char *in, size_t len, char *out)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 i = 0, n;

	while (i < len) {
		if ((n = utf8_sequence(p + i, len - i)) == 0) {
			out[i++] = '?';
			continue;
		}
		memcpy(out + i, p + i, n);
		i += n;
	}
	return len;
}

void
proto_pack_error(msgpack_packer *pk, uint32_t msgid, int code,
    const char *message)
{
	const char	*name = proto_err_name(code);
	char		 clean[PROTO_ERROR_MESSAGE_MAX];
	size_t		 len = strlen(message);

	if (len > PROTO_ERROR_MESSAGE_MAX)
		len = PROTO_ERROR_MESSAGE_MAX;
	/* A msgpack str is UTF-8, whatever bytes a client sent us. */
	proto_utf8_clean(message, len, clean);
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, PROTO_RESPONSE);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_array(pk, 2);
	msgpack_pack_str_with_body(pk, name, strlen(name));
	msgpack_pack_str_with_body(pk, clean, len);
	msgpack_pack_nil(pk);
}

int
proto_decode(msgpack_unpacked *unpacked, const uint8_t *buf, size_t len,
    struct proto_msg *msg, const char **why)
{
	const msgpack_object	*e;
	size_t			 off = 0;
	uint32_t		 n;

	memset(msg, 0, sizeof(*msg));
	/*
	 * One zone per unpacked, cleared and used again: decoding a message
	 * allocates nothing once the zone's first chunk exists.
	 */
	if (unpacked->zone != NULL)
		msgpack_zone_clear(unpacked->zone);
	else if ((unpacked->zone = msgpack_zone_new(PROTO_DECODE_ZONE)) ==
	    NULL) {
		*why = "out of memory";
		return -1;
	}
	if (msgpack_unpack((const char *)buf, len, &off, unpacked->zone,
	    &unpacked->data) != MSGPACK_UNPACK_SUCCESS || off != len) {
		*why = "undecodable msgpack";
		return -1;
	}
	if (unpacked->data.type != MSGPACK_OBJECT_ARRAY) {
		*why = "a message must be an array";
		return -1;
	}
	e = unpacked->data.via.array.ptr;
	n = unpacked->data.via.array.size;
	if (n == 3 && e[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    e[0].via.u64 == PROTO_NOTIFY) {
		if (e[1].type != MSGPACK_OBJECT_STR ||
		    e[2].type != MSGPACK_OBJECT_ARRAY) {
			*why = "a notification must be [2, method, params]";
			return -1;
		}
		msg->type = PROTO_NOTIFY;
		msg->method = e[1].via.str.ptr;
		msg->method_len = e[1].via.str.size;
		msg->params = e[2].via.array.ptr;
		msg->nparams = e[2].via.array.size;
		return 0;
	}
	if (n != 4 || e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    e[1].via.u64 > UINT32_MAX) {
		*why = "a message must be [type, msgid, ...] with 4 elements";
		return -1;
	}
	msg->msgid = (uint32_t)e[1].via.u64;
	switch (e[0].via.u64) {
	case PROTO_REQUEST:
		if (e[2].type != MSGPACK_OBJECT_STR ||
		    e[3].type != MSGPACK_OBJECT_ARRAY) {
			*why = "a request must be [0, msgid, method, params]";
			return -1;
		}
		msg->type = PROTO_REQUEST;
		msg->method = e[2].via.str.ptr;
		msg->method_len = e[2].via.str.size;
		msg->params = e[3].via.array.ptr;
		msg->nparams = e[3].via.array.size;
		return 0;
	case PROTO_RESPONSE:
		msg->type = PROTO_RESPONSE;
		msg->error = &e[2];
		msg->result = &e[3];
		return 0;
	}
	*why = "unknown message type";
	return -1;
}

int
proto_read_error(const msgpack_object *error, char *message, size_t cap)
{
	const msgpack_object	*e;
	size_t			 len;
	int			 code;

	if (cap > 0)
		message[0] = '\0';
	if (error->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (error->type != MSGPACK_OBJECT_ARRAY ||
	    error->via.array.size != 2)
		return TB_EPROTO;
	e = error->via.array.ptr;
	if (e[0].type != MSGPACK_OBJECT_STR || e[1].type != MSGPACK_OBJECT_STR)
		return TB_EPROTO;
	code = proto_err_lookup(e[0].via.str.ptr, e[0].via.str.size);
	if (code == 0)
		return TB_EPROTO;
	if (cap > 0) {
		len = e[1].via.str.size;
		if (len > cap - 1)
			len = cap - 1;
		memcpy(message, e[1].via.str.ptr, len);
		message[len] = '\0';
	}
	return code;
}
