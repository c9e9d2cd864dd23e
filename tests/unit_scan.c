/*
 * proto_scan(): the frame scanner that bounds every declared size before
 * msgpack-c sees a byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Prefixes up to this length are scanned from an exact-size copy. */
#define COPY_MAX	1024

struct packed {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
};

static void
packed_init(struct packed *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void
packed_free(struct packed *p)
{
	msgpack_sbuffer_destroy(&p->sb);
}

static const uint8_t *
packed_data(const struct packed *p)
{
	return (const uint8_t *)p->sb.data;
}

/*
 * Scans a heap copy of exactly len bytes, so that valgrind sees any read
 * past the end.
 */
static enum proto_scan
scan(const uint8_t *buf, size_t len, size_t *msg_len, const char **why)
{
	enum proto_scan	 rc;
	uint8_t		*copy;

	*msg_len = SIZE_MAX;
	*why = NULL;
	if (len > COPY_MAX)
		return proto_scan(buf, len, msg_len, why);
	copy = malloc(len > 0 ? len : 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rc = proto_scan(copy, len, msg_len, why);
	free(copy);
	return rc;
}

static void
assert_more(const uint8_t *buf, size_t len)
{
	const char	*why;
	size_t		 n;

	if (scan(buf, len, &n, &why) != PROTO_SCAN_MORE)
		fail_msg("prefix of %zu bytes: not MORE (%s)", len,
		    why ? why : "done");
}

/* buf is one whole message: DONE with its length, MORE for every prefix. */
static void
assert_complete(const uint8_t *buf, size_t len)
{
	const char	*why;
	size_t		 n, i;

	assert_int_equal(scan(buf, len, &n, &why), PROTO_SCAN_DONE);
	assert_int_equal(n, len);
	for (i = 0; i < len; i++)
		assert_more(buf, i);
}

static void
assert_packed_complete(struct packed *p)
{
	assert_complete(packed_data(p), p->sb.size);
	packed_free(p);
}

static void
assert_bad(const uint8_t *buf, size_t len, const char *reason)
{
	enum proto_scan	 rc;
	const char	*why;
	size_t		 n;

	rc = scan(buf, len, &n, &why);
	if (rc != PROTO_SCAN_BAD)
		fail_msg("%zu bytes: %s, not BAD (%s)", len,
		    rc == PROTO_SCAN_DONE ? "DONE" : "MORE", reason);
	assert_non_null(why);
	if (strstr(why, reason) == NULL)
		fail_msg("why \"%s\" does not say \"%s\"", why, reason);
}

static void
test_scalars(void **state)
{
	static const uint8_t	one[] = {
		0x00, 0x01, 0x7f,		/* positive fixint */
		0xe0, 0xf0, 0xff,		/* negative fixint */
		0xc0, 0xc2, 0xc3		/* nil, false, true */
	};
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(one); i++)
		assert_complete(&one[i], 1);
}

static void
test_fixed_width_numbers(void **state)
{
	struct packed	p;

	(void)state;
	packed_init(&p);
	msgpack_pack_fix_uint8(&p.pk, 200);
	assert_int_equal(p.sb.size, 2);
	assert_int_equal((uint8_t)p.sb.data[0], 0xcc);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_uint16(&p.pk, 60000);
	assert_int_equal(p.sb.size, 3);
	assert_int_equal((uint8_t)p.sb.data[0], 0xcd);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_uint32(&p.pk, UINT32_MAX);
	assert_int_equal(p.sb.size, 5);
	assert_int_equal((uint8_t)p.sb.data[0], 0xce);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_uint64(&p.pk, UINT64_MAX);
	assert_int_equal(p.sb.size, 9);
	assert_int_equal((uint8_t)p.sb.data[0], 0xcf);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_int8(&p.pk, -100);
	assert_int_equal(p.sb.size, 2);
	assert_int_equal((uint8_t)p.sb.data[0], 0xd0);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_int16(&p.pk, -30000);
	assert_int_equal(p.sb.size, 3);
	assert_int_equal((uint8_t)p.sb.data[0], 0xd1);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_int32(&p.pk, INT32_MIN);
	assert_int_equal(p.sb.size, 5);
	assert_int_equal((uint8_t)p.sb.data[0], 0xd2);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_fix_int64(&p.pk, INT64_MIN);
	assert_int_equal(p.sb.size, 9);
	assert_int_equal((uint8_t)p.sb.data[0], 0xd3);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_float(&p.pk, 1.5f);
	assert_int_equal(p.sb.size, 5);
	assert_int_equal((uint8_t)p.sb.data[0], 0xca);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_double(&p.pk, -2.25);
	assert_int_equal(p.sb.size, 9);
	assert_int_equal((uint8_t)p.sb.data[0], 0xcb);
	assert_packed_complete(&p);
}

/* Packs a str or bin of len bytes and checks its header byte. */
static void
check_bytes(int bin, size_t len, uint8_t want_type, size_t want_head)
{
	struct packed	 p;
	char		*body;

	body = malloc(len > 0 ? len : 1);
	assert_non_null(body);
	memset(body, 'x', len);
	packed_init(&p);
	if (bin)
		msgpack_pack_bin_with_body(&p.pk, body, len);
	else
		msgpack_pack_str_with_body(&p.pk, body, len);
	free(body);
	assert_int_equal(p.sb.size, want_head + len);
	assert_int_equal((uint8_t)p.sb.data[0], want_type);
	assert_packed_complete(&p);
}

static void
test_strings(void **state)
{
	(void)state;
	check_bytes(0, 0, 0xa0, 1);
	check_bytes(0, 31, 0xbf, 1);
	check_bytes(0, 32, 0xd9, 2);
	check_bytes(0, 255, 0xd9, 2);
	check_bytes(0, 256, 0xda, 3);
	check_bytes(0, 65535, 0xda, 3);
	check_bytes(0, 65536, 0xdb, 5);
}

static void
test_bins(void **state)
{
	(void)state;
	check_bytes(1, 0, 0xc4, 2);
	check_bytes(1, 255, 0xc4, 2);
	check_bytes(1, 256, 0xc5, 3);
	check_bytes(1, 65535, 0xc5, 3);
	check_bytes(1, PROTO_DATA_MAX, 0xc6, 5);
}

static void
test_arrays(void **state)
{
	/* array 32 and array 16 with few elements, written by hand */
	static const uint8_t	a32[] = { 0xdd, 0, 0, 0, 2, 0x01, 0xc0 };
	static const uint8_t	a32empty[] = { 0xdd, 0, 0, 0, 0 };
	static const uint8_t	a16[] = { 0xdc, 0, 3, 0x01, 0xa1, 'x', 0xc3 };
	struct packed		p;
	unsigned		i;

	(void)state;
	packed_init(&p);
	msgpack_pack_array(&p.pk, 0);
	assert_int_equal((uint8_t)p.sb.data[0], 0x90);
	assert_packed_complete(&p);

	packed_init(&p);
	msgpack_pack_array(&p.pk, 15);
	for (i = 0; i < 15; i++)
		msgpack_pack_uint32(&p.pk, i * 1000);
	assert_int_equal((uint8_t)p.sb.data[0], 0x9f);
	assert_packed_complete(&p);

	/* 1 + 31 objects: exactly PROTO_OBJECTS_MAX */
	packed_init(&p);
	msgpack_pack_array(&p.pk, PROTO_OBJECTS_MAX - 1);
	for (i = 0; i < PROTO_OBJECTS_MAX - 1; i++)
		msgpack_pack_nil(&p.pk);
	assert_int_equal((uint8_t)p.sb.data[0], 0xdc);
	assert_packed_complete(&p);

	assert_complete(a32, sizeof(a32));
	assert_complete(a32empty, sizeof(a32empty));
	assert_complete(a16, sizeof(a16));
}

static void
test_maps(void **state)
{
	static const uint8_t	m16[] = { 0xde, 0, 1, 0x01, 0x02 };
	static const uint8_t	m32[] = { 0xdf, 0, 0, 0, 2, 0x01, 0x02,
				    0xa1, 'k', 0x90 };
	static const uint8_t	m32empty[] = { 0xdf, 0, 0, 0, 0 };
	struct packed		p;
	unsigned		i;

	(void)state;
	packed_init(&p);
	msgpack_pack_map(&p.pk, 0);
	assert_int_equal((uint8_t)p.sb.data[0], 0x80);
	assert_packed_complete(&p);

	/* 1 + 2 * 15 objects */
	packed_init(&p);
	msgpack_pack_map(&p.pk, 15);
	for (i = 0; i < 15; i++) {
		msgpack_pack_uint8(&p.pk, (uint8_t)i);
		msgpack_pack_str_with_body(&p.pk, "value", 5);
	}
	assert_int_equal((uint8_t)p.sb.data[0], 0x8f);
	assert_packed_complete(&p);

	assert_complete(m16, sizeof(m16));
	assert_complete(m32, sizeof(m32));
	assert_complete(m32empty, sizeof(m32empty));
}

/* The shape every request has: [0, msgid, "method", [params]]. */
static void
test_request_shape(void **state)
{
	struct packed	p;

	(void)state;
	packed_init(&p);
	msgpack_pack_array(&p.pk, 4);
	msgpack_pack_uint8(&p.pk, 0);
	msgpack_pack_uint32(&p.pk, 0x12345678);
	msgpack_pack_str_with_body(&p.pk, "write", 5);
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_uint32(&p.pk, 7);
	msgpack_pack_bin_with_body(&p.pk, "hello\0world", 11);
	assert_packed_complete(&p);
}

static void
test_back_to_back(void **state)
{
	struct packed	 p;
	size_t		 first, n;
	const char	*why;

	(void)state;
	packed_init(&p);
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_str_with_body(&p.pk, "abc", 3);
	msgpack_pack_int64(&p.pk, -5);
	first = p.sb.size;
	msgpack_pack_array(&p.pk, 1);
	msgpack_pack_nil(&p.pk);

	assert_int_equal(scan(packed_data(&p), p.sb.size, &n, &why),
	    PROTO_SCAN_DONE);
	assert_int_equal(n, first);
	/* the second message alone, whole and cut short */
	assert_complete(packed_data(&p) + first, p.sb.size - first);
	/* the first whole and only the start of the second */
	assert_int_equal(scan(packed_data(&p), first + 1, &n, &why),
	    PROTO_SCAN_DONE);
	assert_int_equal(n, first);
	packed_free(&p);
}

static void
test_reserved_and_ext(void **state)
{
	static const uint8_t	ext[] = {
		0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8
	};
	/* fixext 1 whole: still refused */
	static const uint8_t	fixext1[] = { 0xd4, 0x01, 0x00 };
	static const uint8_t	c1_inside[] = { 0x93, 0x01, 0x02, 0xc1 };
	uint8_t			b;
	size_t			i;

	(void)state;
	b = 0xc1;
	assert_bad(&b, 1, "0xc1");
	assert_bad(c1_inside, sizeof(c1_inside), "0xc1");
	/* the elements before the bad byte are only a prefix */
	assert_more(c1_inside, sizeof(c1_inside) - 1);
	for (i = 0; i < sizeof(ext); i++)
		assert_bad(&ext[i], 1, "extension");
	assert_bad(fixext1, sizeof(fixext1), "extension");
}

/* A declared count is refused from its header alone. */
static void
test_huge_counts(void **state)
{
	static const uint8_t	a32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t	a32_33[] = { 0xdd, 0, 0, 0, 33 };
	static const uint8_t	a16[] = { 0xdc, 0xff, 0xff };
	static const uint8_t	a16_32[] = { 0xdc, 0, 32 };
	static const uint8_t	m32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t	m32_half[] = { 0xdf, 0x80, 0, 0, 0 };
	static const uint8_t	m16[] = { 0xde, 0xff, 0xff };
	static const uint8_t	m16_16[] = { 0xde, 0, 16 };

	(void)state;
	assert_bad(a32, sizeof(a32), "too many objects");
	assert_bad(a32_33, sizeof(a32_33), "too many objects");
	assert_bad(a16, sizeof(a16), "too many objects");
	assert_bad(a16_32, sizeof(a16_32), "too many objects");
	assert_bad(m32, sizeof(m32), "too many objects");
	assert_bad(m32_half, sizeof(m32_half), "too many objects");
	assert_bad(m16, sizeof(m16), "too many objects");
	/* 16 pairs are 32 objects, plus the map itself */
	assert_bad(m16_16, sizeof(m16_16), "too many objects");
	/* a header cut short could still be a small count */
	assert_more(a32, 4);
	assert_more(m32, 3);
}

static void
test_objects_limit(void **state)
{
	struct packed	p;
	uint8_t		buf[5 + 17 + 13];
	unsigned	i;

	(void)state;
	/* [[14 nils], [15 nils]]: 1 + 2 + 29 = 32 */
	packed_init(&p);
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_array(&p.pk, 14);
	for (i = 0; i < 14; i++)
		msgpack_pack_nil(&p.pk);
	msgpack_pack_array(&p.pk, 15);
	for (i = 0; i < 15; i++)
		msgpack_pack_nil(&p.pk);
	assert_packed_complete(&p);

	/* [[15 nils], [15 nils]]: 33 */
	packed_init(&p);
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_array(&p.pk, 15);
	for (i = 0; i < 15; i++)
		msgpack_pack_nil(&p.pk);
	msgpack_pack_array(&p.pk, 15);
	for (i = 0; i < 15; i++)
		msgpack_pack_nil(&p.pk);
	assert_bad(packed_data(&p), p.sb.size, "too many objects");
	/* refused at the second inner header, before its elements */
	assert_bad(packed_data(&p), 1 + 1 + 15 + 1, "too many objects");
	packed_free(&p);

	/* a map of 15 pairs whose last value is a 2-array: 1+30+2 = 33 */
	packed_init(&p);
	msgpack_pack_map(&p.pk, 15);
	for (i = 0; i < 14; i++) {
		msgpack_pack_nil(&p.pk);
		msgpack_pack_nil(&p.pk);
	}
	msgpack_pack_nil(&p.pk);
	msgpack_pack_array(&p.pk, 2);
	msgpack_pack_nil(&p.pk);
	msgpack_pack_nil(&p.pk);
	assert_bad(packed_data(&p), p.sb.size, "too many objects");
	packed_free(&p);

	/*
	 * [[[17 nils], ...15 in all], ?]: each header alone fits, but
	 * together they declare 1 + 2 + 15 + 17 objects: refused at the
	 * third header, before any element arrives.
	 */
	memset(buf, 0xc0, sizeof(buf));
	buf[0] = 0x92;
	buf[1] = 0x9f;
	buf[2] = 0xdc;
	buf[3] = 0;
	buf[4] = 17;
	assert_more(buf, 4);
	assert_bad(buf, 5, "too many objects");
}

static void
test_depth(void **state)
{
	uint8_t	buf[2 * (PROTO_DEPTH_MAX + 2) + 1];
	size_t	i, n;

	(void)state;
	/* [[[[1]]]]: PROTO_DEPTH_MAX levels */
	for (n = 0; n < PROTO_DEPTH_MAX; n++)
		buf[n] = 0x91;
	buf[n++] = 0x01;
	assert_complete(buf, n);

	/* one level more, refused at its header */
	for (n = 0; n < PROTO_DEPTH_MAX + 1; n++)
		buf[n] = 0x91;
	assert_bad(buf, n, "nested too deeply");
	buf[n++] = 0x01;
	assert_bad(buf, n, "nested too deeply");

	/* {1: {1: {1: {1: 1}}}} and one map more */
	for (n = 0, i = 0; i < PROTO_DEPTH_MAX; i++) {
		buf[n++] = 0x81;
		buf[n++] = 0x01;
	}
	buf[n++] = 0x01;
	assert_complete(buf, n);
	for (n = 0, i = 0; i < PROTO_DEPTH_MAX + 1; i++) {
		buf[n++] = 0x81;
		buf[n++] = 0x01;
	}
	buf[n++] = 0x01;
	assert_bad(buf, n, "nested too deeply");

	/* array 16 and map 32 count as levels too */
	n = 0;
	buf[n++] = 0x91;
	buf[n++] = 0x81;
	buf[n++] = 0x01;
	buf[n++] = 0x91;
	buf[n++] = 0x91;
	buf[n++] = 0xdc;
	buf[n++] = 0x00;
	buf[n++] = 0x01;
	assert_bad(buf, n, "nested too deeply");
}

/*
 * An empty array or map one level below PROTO_DEPTH_MAX, [[[[[]]]]],
 * still nests PROTO_DEPTH_MAX + 1 levels.
 */
static void
test_depth_empty_innermost(void **state)
{
	uint8_t	buf[PROTO_DEPTH_MAX + 1];
	size_t	n;

	(void)state;
	for (n = 0; n < PROTO_DEPTH_MAX; n++)
		buf[n] = 0x91;
	buf[n++] = 0x90;
	assert_bad(buf, n, "nested too deeply");
	buf[n - 1] = 0x80;
	assert_bad(buf, n, "nested too deeply");
}

static void
test_declared_size_too_large(void **state)
{
	uint32_t	sizes[] = {
		PROTO_MESSAGE_MAX - 4, PROTO_MESSAGE_MAX, PROTO_MESSAGE_MAX + 1,
		UINT32_MAX
	};
	uint8_t		types[] = { 0xc6, 0xdb };
	uint8_t		hdr[5];
	size_t		i, j;

	(void)state;
	for (i = 0; i < sizeof(types); i++) {
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			hdr[0] = types[i];
			hdr[1] = (uint8_t)(sizes[j] >> 24);
			hdr[2] = (uint8_t)(sizes[j] >> 16);
			hdr[3] = (uint8_t)(sizes[j] >> 8);
			hdr[4] = (uint8_t)sizes[j];
			assert_bad(hdr, sizeof(hdr), "larger than the limit");
		}
		/* the largest body that fits: header + body == limit */
		hdr[1] = 0;
		hdr[2] = (uint8_t)((PROTO_MESSAGE_MAX - 5) >> 16);
		hdr[3] = (uint8_t)((PROTO_MESSAGE_MAX - 5) >> 8);
		hdr[4] = (uint8_t)(PROTO_MESSAGE_MAX - 5);
		assert_more(hdr, sizeof(hdr));
	}
}

/* Declared sizes add up across the message. */
static void
test_sizes_add_up(void **state)
{
	static const uint8_t	bin16[] = { 0xc5, 0xc0, 0x00 };	/* 49152 */
	uint8_t			*buf;
	size_t			 n, msg_len;
	const char		*why;

	(void)state;
	n = 1 + sizeof(bin16) + 49152;
	buf = calloc(1, n + sizeof(bin16));
	assert_non_null(buf);
	buf[0] = 0x92;
	memcpy(buf + 1, bin16, sizeof(bin16));
	/* [bin 49152, str16 header]: fine so far */
	buf[n] = 0xda;
	buf[n + 1] = 0x00;
	buf[n + 2] = 0x10;
	assert_int_equal(scan(buf, n + 3, &msg_len, &why), PROTO_SCAN_MORE);
	/* [bin 49152, bin16 of 49152]: refused from the second header */
	memcpy(buf + n, bin16, sizeof(bin16));
	assert_bad(buf, n + sizeof(bin16), "larger than the limit");
	free(buf);
}

static void
test_message_max(void **state)
{
	uint8_t		*buf;
	size_t		 body, msg_len;
	const char	*why;

	(void)state;
	buf = calloc(1, PROTO_MESSAGE_MAX + 1);
	assert_non_null(buf);

	/* a single bin of exactly PROTO_MESSAGE_MAX bytes in all */
	body = PROTO_MESSAGE_MAX - 5;
	buf[0] = 0xc6;
	buf[1] = (uint8_t)(body >> 24);
	buf[2] = (uint8_t)(body >> 16);
	buf[3] = (uint8_t)(body >> 8);
	buf[4] = (uint8_t)body;
	assert_int_equal(scan(buf, PROTO_MESSAGE_MAX, &msg_len, &why),
	    PROTO_SCAN_DONE);
	assert_int_equal(msg_len, PROTO_MESSAGE_MAX);
	assert_int_equal(scan(buf, PROTO_MESSAGE_MAX - 1, &msg_len, &why),
	    PROTO_SCAN_MORE);

	/* [bin, ?] whose bin ends at the limit: the full buffer is bad */
	body = PROTO_MESSAGE_MAX - 6;
	buf[0] = 0x92;
	buf[1] = 0xc6;
	buf[2] = (uint8_t)(body >> 24);
	buf[3] = (uint8_t)(body >> 16);
	buf[4] = (uint8_t)(body >> 8);
	buf[5] = (uint8_t)body;
	assert_int_equal(scan(buf, PROTO_MESSAGE_MAX - 1, &msg_len, &why),
	    PROTO_SCAN_MORE);
	assert_bad(buf, PROTO_MESSAGE_MAX, "larger than the limit");
	assert_bad(buf, PROTO_MESSAGE_MAX + 1, "larger than the limit");

	/* [bin, str8 ...] whose str8 header is cut by the limit */
	body = PROTO_MESSAGE_MAX - 7;
	buf[2] = (uint8_t)(body >> 24);
	buf[3] = (uint8_t)(body >> 16);
	buf[4] = (uint8_t)(body >> 8);
	buf[5] = (uint8_t)body;
	buf[PROTO_MESSAGE_MAX - 1] = 0xd9;
	assert_bad(buf, PROTO_MESSAGE_MAX, "larger than the limit");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_fixed_width_numbers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_bins),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_request_shape),
		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_reserved_and_ext),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_objects_limit),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_depth_empty_innermost),
		cmocka_unit_test(test_declared_size_too_large),
		cmocka_unit_test(test_sizes_add_up),
		cmocka_unit_test(test_message_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
