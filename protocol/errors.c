/* Error codes: their wire names and descriptions. */
#include <string.h>

#include "proto.h"

static const char *const err_names[TB__ERRNO_COUNT] = {
	[TB__ERRNO_NONE] = "OK",
#define ERR_NAME(name, text) [TB__ERRNO_INDEX_##name] = #name,
	TB_ERRNO_MAP(ERR_NAME)
#undef ERR_NAME
};

static const char *const err_texts[TB__ERRNO_COUNT] = {
	[TB__ERRNO_NONE] = "success",
#define ERR_TEXT(name, text) [TB__ERRNO_INDEX_##name] = text,
	TB_ERRNO_MAP(ERR_TEXT)
#undef ERR_TEXT
};

const char *
proto_err_name(int code)
{
	if (code > 0 || code <= -TB__ERRNO_COUNT)
		return "EUNKNOWN";
	return err_names[-code];
}

const char *
proto_err_text(int code)
{
	if (code > 0 || code <= -TB__ERRNO_COUNT)
		return "unknown error";
	return err_texts[-code];
}

int
proto_err_lookup(const char *name, size_t len)
{
	int	i;

	for (i = 1; i < TB__ERRNO_COUNT; i++) {
		if (strlen(err_names[i]) == len &&
		    memcmp(err_names[i], name, len) == 0)
			return -i;
	}
	return 0;
}
