/*
 * A cursor over a message proto_scan() has bounded: reads one msgpack
 * value at a time without allocating, for the paths that run for every
 * message (responses and notifications in the client library).  Each
 * reader takes only the types it names and fails on anything else.
 */
#include <string.h>

#include "proto.h"

static int
take(struct proto_cursor *c, size_t n, const uint8_t **p)
{
	if (n > c->len)
		return -1;
	*p = c->p;
	c->p += n;
	c->len -= n;
	return 0;
}

/* An unsigned big-endian integer of n bytes. */
static int
take_be(struct proto_cursor *c, size_t n, uint64_t *v)
{
	const uint8_t	*p;
	size_t		 i;

	if (take(c, n, &p) != 0)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v << 8 | p[i];
	return 0;
}

int
proto_get_nil(struct proto_cursor *c)
{
	if (c->len < 1 || c->p[0] != 0xc0)
		return -1;
	c->p++;
	c->len--;
	return 0;
}

int
proto_get_uint(struct proto_cursor *c, uint64_t *v)
{
	const uint8_t	*p;

	if (take(c, 1, &p) != 0)
		return -1;
	if (*p <= 0x7f) {
		*v = *p;
		return 0;
	}
	switch (*p) {
	case 0xcc: return take_be(c, 1, v);
	case 0xcd: return take_be(c, 2, v);
	case 0xce: return take_be(c, 4, v);
	case 0xcf: return take_be(c, 8, v);
	}
	return -1;
}

int
proto_get_array(struct proto_cursor *c, uint32_t *n)
{
	const uint8_t	*p;
	uint64_t	 v;

	if (take(c, 1, &p) != 0)
		return -1;
	if ((*p & 0xf0) == 0x90) {
		*n = *p & 0x0f;
		return 0;
	}
	if ((*p != 0xdc && *p != 0xdd) ||
	    take_be(c, *p == 0xdc ? 2 : 4, &v) != 0)
		return -1;
	*n = (uint32_t)v;
	return 0;
}

int
proto_get_map(struct proto_cursor *c, uint32_t *n)
{
	const uint8_t	*p;
	uint64_t	 v;

	if (take(c, 1, &p) != 0)
		return -1;
	if ((*p & 0xf0) == 0x80) {
		*n = *p & 0x0f;
		return 0;
	}
	if ((*p != 0xde && *p != 0xdf) ||
	    take_be(c, *p == 0xde ? 2 : 4, &v) != 0)
		return -1;
	*n = (uint32_t)v;
	return 0;
}

/* A str (bin false) or bin (bin true) of any length that is there. */
static int
get_bytes(struct proto_cursor *c, bool bin, const uint8_t **ptr, size_t *len)
{
	const uint8_t	*p;
	uint64_t	 v;

	if (take(c, 1, &p) != 0)
		return -1;
	if (!bin && (*p & 0xe0) == 0xa0)
		v = *p & 0x1f;
	else if ((!bin && *p == 0xd9) || (bin && *p == 0xc4)) {
		if (take_be(c, 1, &v) != 0)
			return -1;
	} else if ((!bin && *p == 0xda) || (bin && *p == 0xc5)) {
		if (take_be(c, 2, &v) != 0)
			return -1;
	} else if ((!bin && *p == 0xdb) || (bin && *p == 0xc6)) {
		if (take_be(c, 4, &v) != 0)
			return -1;
	} else
		return -1;
	*len = (size_t)v;
	return take(c, *len, ptr);
}

int
proto_get_str(struct proto_cursor *c, const char **ptr, size_t *len)
{
	const uint8_t	*p = NULL;

	if (get_bytes(c, false, &p, len) != 0)
		return -1;
	*ptr = (const char *)p;
	return 0;
}

int
proto_get_bin(struct proto_cursor *c, const uint8_t **ptr, size_t *len)
{
	return get_bytes(c, true, ptr, len);
}

int
proto_get_error(struct proto_cursor *c, int *code, char *message,
    size_t cap)
{
	const char	*name = NULL, *text = NULL;
	size_t		 nlen = 0, tlen = 0;
	uint32_t	 n;

	if (proto_get_nil(c) == 0) {
		*code = 0;
		return 0;
	}
	if (proto_get_array(c, &n) != 0 || n != 2 ||
	    proto_get_str(c, &name, &nlen) != 0 ||
	    proto_get_str(c, &text, &tlen) != 0 ||
	    (*code = proto_err_lookup(name, nlen)) == 0)
		return -1;
	if (cap > 0) {
		if (tlen > cap - 1)
			tlen = cap - 1;
		memcpy(message, text, tlen);
		message[tlen] = '\0';
	}
	return 0;
}
