/*
 * The method table and the one place where request parameters are
 * checked, so that handlers receive arguments of the right type and
 * range only.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

const struct proto_method_info proto_methods[PROTO_METHOD_COUNT] = {
#define METHOD_INFO(id, name, params) [PROTO_METHOD_##id] = { #name, params },
	PROTO_METHODS(METHOD_INFO)
#undef METHOD_INFO
};

const struct proto_method_info proto_client_notes[PROTO_CNOTE_COUNT] = {
#define NOTE_INFO(id, name, params) [PROTO_CNOTE_##id] = { #name, params },
	PROTO_CLIENT_NOTES(NOTE_INFO)
#undef NOTE_INFO
};

const struct proto_method_info proto_broker_notes[PROTO_BNOTE_COUNT] = {
#define NOTE_INFO(id, name, params) [PROTO_BNOTE_##id] = { #name, params },
	PROTO_BROKER_NOTES(NOTE_INFO)
#undef NOTE_INFO
};

int
proto_table_lookup(const struct proto_method_info *table, int count,
    const char *name, size_t len)
{
	int	i;

	for (i = 0; i < count; i++) {
		if (strlen(table[i].name) == len &&
		    memcmp(table[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

int
proto_method_lookup(const char *name, size_t len)
{
	return proto_table_lookup(proto_methods, PROTO_METHOD_COUNT, name, len);
}

static const char *
type_text(char type)
{
	switch (type) {
	case 'u': return "an unsigned 32-bit integer";
	case 'h': return "a handle";
	case 'p': return "a port number 1-65535";
	case 'm': return "milliseconds as an unsigned 32-bit integer";
	case 'n': return "a byte count";
	case 'y': return "a byte value 0-255";
	case 'b': return "a boolean";
	case 's': return "a string";
	case 'd': return "bin data";
	case 'w': return "\"read\", \"write\" or \"both\"";
	case 'e': return "an error [code name, message]";
	}
	return "?";
}

/* Checks one parameter; 0, or an error code with why filled. */
static int
check_arg(char type, const msgpack_object *o, struct proto_arg *arg,
    const char *method, unsigned pos, char *why, size_t whylen)
{
	uint64_t	u = 0;
	uint64_t	max = UINT32_MAX;

	memset(arg, 0, sizeof(*arg));
	switch (type) {
	case 'u': case 'h': case 'p': case 'm': case 'n': case 'y':
		if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			goto badtype;
		u = o->via.u64;
		if (type == 'p')
			max = 65535;
		else if (type == 'y')
			max = 255;
		else if (type == 'n' && u > PROTO_DATA_MAX) {
			snprintf(why, whylen, "%s: parameter %u is %llu bytes, "
			    "more than the limit of %d", method, pos,
			    (unsigned long long)u, PROTO_DATA_MAX);
			return TB_ELIMIT;
		}
		if (u > max || ((type == 'h' || type == 'p') && u == 0))
			goto badtype;
		arg->u = u;
		return 0;
	case 'b':
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			goto badtype;
		arg->b = o->via.boolean;
		return 0;
	case 's':
	case 'w':
		if (o->type != MSGPACK_OBJECT_STR)
			goto badtype;
		if (o->via.str.size == 0 || o->via.str.size > PROTO_STRING_MAX ||
		    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
			snprintf(why, whylen, "%s: parameter %u must be a string "
			    "of 1 to %d bytes without NUL", method, pos,
			    PROTO_STRING_MAX);
			return TB_EINVAL;
		}
		arg->ptr = (const uint8_t *)o->via.str.ptr;
		arg->len = o->via.str.size;
		if (type == 's')
			return 0;
		if (arg->len == 4 && memcmp(arg->ptr, "read", 4) == 0)
			arg->u = PROTO_SHUTDOWN_READ;
		else if (arg->len == 5 && memcmp(arg->ptr, "write", 5) == 0)
			arg->u = PROTO_SHUTDOWN_WRITE;
		else if (arg->len == 4 && memcmp(arg->ptr, "both", 4) == 0)
			arg->u = PROTO_SHUTDOWN_BOTH;
		else
			goto badtype;
		return 0;
	case 'd':
		if (o->type != MSGPACK_OBJECT_BIN)
			goto badtype;
		if (o->via.bin.size > PROTO_DATA_MAX) {
			snprintf(why, whylen, "%s: data of %u bytes is more than "
			    "the limit of %d", method, o->via.bin.size,
			    PROTO_DATA_MAX);
			return TB_ELIMIT;
		}
		arg->ptr = (const uint8_t *)o->via.bin.ptr;
		arg->len = o->via.bin.size;
		return 0;
	case 'e':
		if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
		    o->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
		    o->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
		    (arg->u = (uint64_t)(-proto_err_lookup(
		    o->via.array.ptr[0].via.str.ptr,
		    o->via.array.ptr[0].via.str.size))) == 0)
			goto badtype;
		arg->ptr = (const uint8_t *)o->via.array.ptr[1].via.str.ptr;
		arg->len = o->via.array.ptr[1].via.str.size;
		return 0;
	}
 badtype:
	snprintf(why, whylen, "%s: parameter %u must be %s", method, pos,
	    type_text(type));
	return TB_EINVAL;
}

int
proto_check_args(enum proto_method method, const msgpack_object *params,
    uint32_t nparams, struct proto_arg args[PROTO_PARAMS_MAX], char *why,
    size_t whylen)
{
	return proto_check_params(&proto_methods[method], params, nparams,
	    args, why, whylen);
}

int
proto_check_params(const struct proto_method_info *info,
    const msgpack_object *params, uint32_t nparams,
    struct proto_arg args[PROTO_PARAMS_MAX], char *why, size_t whylen)
{
	size_t				 want = strlen(info->params);
	uint32_t			 i;
	int				 rc;

	if (nparams != want) {
		snprintf(why, whylen, "%s takes %zu parameter%s, not %u",
		    info->name, want, want == 1 ? "" : "s", nparams);
		return TB_EINVAL;
	}
	for (i = 0; i < nparams; i++) {
		rc = check_arg(info->params[i], &params[i], &args[i],
		    info->name, i + 1, why, whylen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

#define METHOD_ASSERT(id, name, params)					\
	_Static_assert(sizeof(params) - 1 <= PROTO_PARAMS_MAX,		\
	    #name " takes more than PROTO_PARAMS_MAX parameters");
PROTO_METHODS(METHOD_ASSERT)
PROTO_CLIENT_NOTES(METHOD_ASSERT)
PROTO_BROKER_NOTES(METHOD_ASSERT)
#undef METHOD_ASSERT
