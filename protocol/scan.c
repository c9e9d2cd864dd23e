/*
 * The frame scanner.  msgpack-c has no input limits: it allocates for a
 * declared array or map length as soon as it reads the header.  This
 * scanner runs first, over raw bytes, allocates nothing, and accepts a
 * message only when every declared size fits the limits in tb_limits.h.
 */
#include "proto.h"

static uint32_t
be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

enum proto_scan
proto_scan(const uint8_t *buf, size_t len, size_t *msg_len, const char **why)
{
	uint32_t	remaining[PROTO_DEPTH_MAX + 1];
	unsigned	depth = 0, objects = 0, declared = 1;
	size_t		off = 0, head, body;
	uint64_t	count;
	uint8_t		b;
	bool		container;

	remaining[0] = 1;
	for (;;) {
		while (remaining[depth] == 0) {
			if (depth == 0) {
				*msg_len = off;
				return PROTO_SCAN_DONE;
			}
			depth--;
		}
		if (off >= len)
			goto more;
		objects++;
		remaining[depth]--;

		b = buf[off];
		head = 1;
		body = 0;
		count = 0;
		container = false;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3)
			;			/* fixint, nil, false, true */
		else if (b <= 0x8f) {
			count = 2 * (b & 0x0f);	/* fixmap */
			container = true;
		} else if (b <= 0x9f) {
			count = b & 0x0f;	/* fixarray */
			container = true;
		}
		else if (b <= 0xbf)
			body = b & 0x1f;	/* fixstr */
		else switch (b) {
		case 0xcc: case 0xd0: head = 2; break;
		case 0xcd: case 0xd1: head = 3; break;
		case 0xca: case 0xce: case 0xd2: head = 5; break;
		case 0xcb: case 0xcf: case 0xd3: head = 9; break;
		case 0xc4: case 0xd9:		/* bin 8, str 8 */
			head = 2;
			if (off + head > len)
				goto more;
			body = buf[off + 1];
			break;
		case 0xc5: case 0xda:		/* bin 16, str 16 */
			head = 3;
			if (off + head > len)
				goto more;
			body = be16(buf + off + 1);
			break;
		case 0xc6: case 0xdb:		/* bin 32, str 32 */
			head = 5;
			if (off + head > len)
				goto more;
			body = be32(buf + off + 1);
			break;
		case 0xdc:			/* array 16 */
			head = 3;
			if (off + head > len)
				goto more;
			count = be16(buf + off + 1);
			container = true;
			break;
		case 0xdd:			/* array 32 */
			head = 5;
			if (off + head > len)
				goto more;
			count = be32(buf + off + 1);
			container = true;
			break;
		case 0xde:			/* map 16 */
			head = 3;
			if (off + head > len)
				goto more;
			count = 2 * (uint64_t)be16(buf + off + 1);
			container = true;
			break;
		case 0xdf:			/* map 32 */
			head = 5;
			if (off + head > len)
				goto more;
			count = 2 * (uint64_t)be32(buf + off + 1);
			container = true;
			break;
		case 0xc1:
			*why = "the reserved byte 0xc1";
			return PROTO_SCAN_BAD;
		default:
			*why = "extension types are not used";
			return PROTO_SCAN_BAD;
		}
		if (body > PROTO_MESSAGE_MAX || off + head + body >
		    PROTO_MESSAGE_MAX) {
			*why = "message larger than the limit";
			return PROTO_SCAN_BAD;
		}
		if (off + head + body > len)
			goto more;
		off += head + body;

		if (!container)
			continue;
		/* Every object declared so far counts, before any arrives. */
		if (count > PROTO_OBJECTS_MAX - declared) {
			*why = "too many objects in one message";
			return PROTO_SCAN_BAD;
		}
		if (depth == PROTO_DEPTH_MAX) {
			*why = "message nested too deeply";
			return PROTO_SCAN_BAD;
		}
		declared += (unsigned)count;
		if (count > 0)
			remaining[++depth] = (uint32_t)count;
	}
 more:
	if (len >= PROTO_MESSAGE_MAX) {
		*why = "message larger than the limit";
		return PROTO_SCAN_BAD;
	}
	return PROTO_SCAN_MORE;
}
