/* Strict parsing of IP literals, host names and "ip:port" texts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <string.h>

#include "host.h"

static int
parse_literal(const char *s, struct host_addr *addr)
{
	return host_parse_literal(s, strlen(s), addr);
}

static void
assert_v4(const struct host_addr *addr, uint8_t a, uint8_t b, uint8_t c,
    uint8_t d)
{
	static const uint8_t	zero[12];
	uint8_t			want[4];

	want[0] = a;
	want[1] = b;
	want[2] = c;
	want[3] = d;
	assert_int_equal(addr->family, AF_INET);
	assert_memory_equal(addr->bytes, want, 4);
	assert_memory_equal(addr->bytes + 4, zero, 12);
}

static void
test_literal_ipv4(void **state)
{
	struct host_addr	addr;

	(void)state;
	assert_int_equal(parse_literal("1.2.3.4", &addr), 0);
	assert_v4(&addr, 1, 2, 3, 4);
	assert_int_equal(parse_literal("0.0.0.0", &addr), 0);
	assert_v4(&addr, 0, 0, 0, 0);
	assert_int_equal(parse_literal("255.255.255.255", &addr), 0);
	assert_v4(&addr, 255, 255, 255, 255);
	assert_int_equal(parse_literal("10.0.0.1", &addr), 0);
	assert_v4(&addr, 10, 0, 0, 1);
	/* the length, not a NUL, ends the text */
	assert_int_equal(host_parse_literal("10.0.0.12", 8, &addr), 0);
	assert_v4(&addr, 10, 0, 0, 1);
}

static void
test_literal_ipv6(void **state)
{
	static const uint8_t	loopback[16] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
	};
	static const uint8_t	fe80[16] = {
		0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd
	};
	static const uint8_t	compat[16] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4
	};
	struct host_addr	addr;

	(void)state;
	assert_int_equal(parse_literal("::1", &addr), 0);
	assert_int_equal(addr.family, AF_INET6);
	assert_memory_equal(addr.bytes, loopback, 16);
	assert_int_equal(parse_literal("0:0:0:0:0:0:0:1", &addr), 0);
	assert_int_equal(addr.family, AF_INET6);
	assert_memory_equal(addr.bytes, loopback, 16);
	assert_int_equal(parse_literal("FE80::ABCD", &addr), 0);
	assert_int_equal(addr.family, AF_INET6);
	assert_memory_equal(addr.bytes, fe80, 16);
	/* IPv4-compatible (not mapped) stays IPv6 */
	assert_int_equal(parse_literal("::1.2.3.4", &addr), 0);
	assert_int_equal(addr.family, AF_INET6);
	assert_memory_equal(addr.bytes, compat, 16);
}

static void
test_literal_mapped(void **state)
{
	static const char	*texts[] = {
		"::ffff:1.2.3.4", "::FFFF:1.2.3.4", "::ffff:0102:0304",
		"0:0:0:0:0:ffff:1.2.3.4",
		"0000:0000:0000:0000:0000:ffff:1.2.3.4"
	};
	struct host_addr	addr;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		memset(&addr, 0xaa, sizeof(addr));
		if (parse_literal(texts[i], &addr) != 0)
			fail_msg("\"%s\" refused", texts[i]);
		assert_v4(&addr, 1, 2, 3, 4);
	}
}

static void
test_literal_rejects(void **state)
{
	static const char	*texts[] = {
		"127.1", "0177.0.0.1", "0x7f.0.0.1", "2130706433",
		"1.2.3.4 ", " 1.2.3.4", "", "[::1]", "256.0.0.1",
		"1.2.3", "1.2.3.4.5", "1.2.3.-4", "01.2.3.4", "1.2.3.04",
		"::1%lo", "::1/128", "1::2::3", ":::", "localhost",
		"example.test", "1.2.3.4:80", "::g",
		"0000:0000:0000:0000:0000:0000:0000:0000:1"
	};
	struct host_addr	addr;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (parse_literal(texts[i], &addr) != -1)
			fail_msg("\"%s\" accepted", texts[i]);
	assert_int_equal(host_parse_literal("1.2.3.4\0", 8, &addr), -1);
	assert_int_equal(host_parse_literal("\0:1", 3, &addr), -1);
	assert_int_equal(host_parse_literal("::1", 0, &addr), -1);
}

/* Normalises s; asserts success and the result. */
static void
assert_name(const char *s, const char *want)
{
	char		out[PROTO_HOST_NAME_MAX + 1];
	const char	*why = NULL;

	if (host_normalize_name(s, strlen(s), out, &why) != 0)
		fail_msg("\"%s\" refused: %s", s, why);
	assert_string_equal(out, want);
}

/* Asserts s is refused with a message containing reason. */
static void
assert_bad_name_len(const char *s, size_t len, const char *reason)
{
	char		out[PROTO_HOST_NAME_MAX + 1];
	const char	*why = NULL;

	if (host_normalize_name(s, len, out, &why) != -1)
		fail_msg("\"%.*s\" accepted", (int)len, s);
	assert_non_null(why);
	if (strstr(why, reason) == NULL)
		fail_msg("\"%.*s\": why \"%s\" does not say \"%s\"", (int)len,
		    s, why, reason);
}

static void
assert_bad_name(const char *s, const char *reason)
{
	assert_bad_name_len(s, strlen(s), reason);
}

static void
test_name_normalize(void **state)
{
	(void)state;
	assert_name("example.test", "example.test");
	assert_name("Example.TEST", "example.test");
	assert_name("API.Example.Test.", "api.example.test");
	assert_name("localhost", "localhost");
	assert_name("a-b.example.test", "a-b.example.test");
	assert_name("_srv._tcp.example.test", "_srv._tcp.example.test");
	assert_name("xn--bcher-kva.example", "xn--bcher-kva.example");
	assert_name("123.example.test", "123.example.test");
	assert_name("1a", "1a");
	assert_name("0x7f.example", "0x7f.example");
	assert_name("a", "a");
}

static void
test_name_lengths(void **state)
{
	char	name[PROTO_HOST_NAME_MAX + 2];
	char	want[PROTO_HOST_NAME_MAX + 1];
	char	label[65];

	(void)state;
	/* a label of 63 characters, and of 64 */
	memset(label, 'a', 63);
	label[63] = '\0';
	assert_name(label, label);
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_bad_name(label, "longer than 63");

	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	memset(name, 'B', PROTO_HOST_NAME_MAX);
	name[63] = name[127] = name[191] = '.';
	name[PROTO_HOST_NAME_MAX] = '\0';
	assert_int_equal(strlen(name), 253);
	memset(want, 'b', PROTO_HOST_NAME_MAX);
	want[63] = want[127] = want[191] = '.';
	want[PROTO_HOST_NAME_MAX] = '\0';
	assert_name(name, want);

	/* a trailing dot does not count */
	name[PROTO_HOST_NAME_MAX] = '.';
	name[PROTO_HOST_NAME_MAX + 1] = '\0';
	assert_name(name, want);

	/* 254 */
	name[PROTO_HOST_NAME_MAX] = 'b';
	assert_bad_name(name, "1 to 253");
	name[PROTO_HOST_NAME_MAX + 1] = '.';
	assert_bad_name_len(name, PROTO_HOST_NAME_MAX + 2, "1 to 253");
}

static void
test_name_rejects(void **state)
{
	(void)state;
	assert_bad_name("", "1 to 253");
	assert_bad_name(".", "1 to 253");
	assert_bad_name("..", "empty label");
	assert_bad_name(".example.test", "empty label");
	assert_bad_name("a..b", "empty label");
	assert_bad_name("-a.example.test", "must not start with '-'");
	assert_bad_name("a.-b.example.test", "must not start with '-'");
	assert_bad_name("a-.example.test", "ending in '-'");
	assert_bad_name("example-", "must not end with '-'");
	assert_bad_name("example.test-", "must not end with '-'");
	assert_bad_name("exa mple.test", "only letters");
	assert_bad_name("example.test/x", "only letters");
	assert_bad_name("user@example.test", "only letters");
	assert_bad_name("example.test:80", "only letters");
	assert_bad_name("*.example.test", "only letters");
	assert_bad_name("[::1]", "only letters");
	assert_bad_name("ex\xc3\xa4mple.test", "only letters");
	assert_bad_name("example.test\n", "only letters");
	assert_bad_name_len("exa\0mple.test", 12, "only letters");
	assert_bad_name_len("example.test\0", 13, "only letters");
}

/* Forms getaddrinfo() would read as an address. */
static void
test_name_numeric(void **state)
{
	static const char	*names[] = {
		"2130706433", "0x7f.1", "127.1", "0177.0.0.1", "1.2.3",
		"127.0.0.1", "127.0.0.1.", "0x7f000001", "0x7F000001",
		"017700000001", "1.2.3.4.5", "example.123", "0"
	};
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_bad_name(names[i], "numeric address");
}

static void
assert_addr_port(const char *s, int family, const char *addr_text,
    uint16_t want_port)
{
	struct host_addr	addr, want;
	uint16_t		port = 12345;
	const char		*why = NULL;

	if (host_parse_addr_port(s, strlen(s), &addr, &port, &why) != 0)
		fail_msg("\"%s\" refused: %s", s, why);
	assert_int_equal(parse_literal(addr_text, &want), 0);
	assert_int_equal(addr.family, family);
	assert_true(host_addr_equal(&addr, &want));
	assert_int_equal(port, want_port);
}

static void
test_addr_port(void **state)
{
	(void)state;
	assert_addr_port("127.0.0.1:80", AF_INET, "127.0.0.1", 80);
	assert_addr_port("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
	assert_addr_port("10.1.2.3:65535", AF_INET, "10.1.2.3", 65535);
	assert_addr_port("127.0.0.1:00080", AF_INET, "127.0.0.1", 80);
	assert_addr_port("[::1]:0", AF_INET6, "::1", 0);
	assert_addr_port("[::1]:65535", AF_INET6, "::1", 65535);
	assert_addr_port("[fe80::1:2]:443", AF_INET6, "fe80::1:2", 443);
	/* An IPv4-mapped address in brackets means the IPv4 address. */
	assert_addr_port("[::ffff:127.0.0.1]:80", AF_INET, "127.0.0.1", 80);
}

static void
test_addr_port_rejects(void **state)
{
	static const char	*texts[] = {
		"::1:80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:8a", "[::1]80", "localhost:80", "[127.0.0.1]:80",
		"", ":80", "[::1]", "[::1]:", "[::1", "::1]:80", "[]:80",
		"127.0.0.1:000080", "127.0.0.1:99999", "127.0.0.1:-1",
		"127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:80 ",
		"127.0.0.1:80:81", "[::1]:80:81", "127.1:80",
		"2130706433:80", "[::1]:123456", "[::1]:8a", "[[::1]]:80",
		"1.2.3.4]:80", "fe80::1:443"
	};
	struct host_addr	addr;
	uint16_t		port;
	const char		*why;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		why = NULL;
		if (host_parse_addr_port(texts[i], strlen(texts[i]), &addr,
		    &port, &why) != -1)
			fail_msg("\"%s\" accepted", texts[i]);
		if (why == NULL || *why == '\0')
			fail_msg("\"%s\": no reason given", texts[i]);
	}
	why = NULL;
	assert_int_equal(host_parse_addr_port("127.0.0.1:80\0", 13, &addr,
	    &port, &why), -1);
	assert_non_null(why);
	why = NULL;
	assert_int_equal(host_parse_addr_port("127.0.0.1\0:80", 13, &addr,
	    &port, &why), -1);
	assert_non_null(why);
}

static void
assert_format(const char *literal, uint16_t port, const char *want)
{
	struct host_addr	addr;
	char			buf[PROTO_ADDR_STRLEN];

	assert_int_equal(parse_literal(literal, &addr), 0);
	memset(buf, 'x', sizeof(buf));
	host_format(&addr, port, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void
test_format(void **state)
{
	struct host_addr	addr;
	char			buf[PROTO_ADDR_STRLEN];
	char			small[6];

	(void)state;
	assert_format("1.2.3.4", 80, "1.2.3.4:80");
	assert_format("::1", 443, "[::1]:443");
	assert_format("0.0.0.0", 0, "0.0.0.0:0");
	assert_format("FE80::0001", 65535, "[fe80::1]:65535");
	assert_format("::ffff:10.0.0.1", 22, "10.0.0.1:22");
	assert_format("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	assert_int_equal(parse_literal("::1", &addr), 0);
	host_format_addr(&addr, buf, sizeof(buf));
	assert_string_equal(buf, "::1");

	/* cut short, still terminated */
	assert_int_equal(parse_literal("10.20.30.40", &addr), 0);
	memset(small, 'x', sizeof(small));
	host_format(&addr, 8080, small, sizeof(small));
	assert_string_equal(small, "10.20");
}

/* Whatever host_format writes, host_parse_addr_port reads back. */
static void
test_format_round_trip(void **state)
{
	static const char	*literals[] = {
		"127.0.0.1", "::1", "10.255.0.7", "fd00::1:2:3", "::"
	};
	static const uint16_t	ports[] = { 0, 1, 80, 65535 };
	struct host_addr	addr, back;
	char			buf[PROTO_ADDR_STRLEN];
	const char		*why;
	uint16_t		port;
	size_t			i, j;

	(void)state;
	for (i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
		for (j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
			assert_int_equal(parse_literal(literals[i], &addr), 0);
			host_format(&addr, ports[j], buf, sizeof(buf));
			if (host_parse_addr_port(buf, strlen(buf), &back,
			    &port, &why) != 0)
				fail_msg("\"%s\" refused: %s", buf, why);
			assert_true(host_addr_equal(&addr, &back));
			assert_int_equal(port, ports[j]);
		}
	}
}

static void
test_addr_equal(void **state)
{
	struct host_addr	a, b;

	(void)state;
	assert_int_equal(parse_literal("10.0.0.1", &a), 0);
	assert_int_equal(parse_literal("::ffff:10.0.0.1", &b), 0);
	assert_true(host_addr_equal(&a, &b));
	assert_int_equal(parse_literal("10.0.0.2", &b), 0);
	assert_false(host_addr_equal(&a, &b));
	/* same leading bytes, other family */
	assert_int_equal(parse_literal("a00:1::", &b), 0);
	assert_memory_equal(a.bytes, b.bytes, 4);
	assert_false(host_addr_equal(&a, &b));
	assert_int_equal(parse_literal("::1", &a), 0);
	assert_int_equal(parse_literal("0::0:1", &b), 0);
	assert_true(host_addr_equal(&a, &b));
	assert_int_equal(parse_literal("::2", &b), 0);
	assert_false(host_addr_equal(&a, &b));
	/* ::1 and 127.0.0.1 are different addresses */
	assert_int_equal(parse_literal("127.0.0.1", &b), 0);
	assert_false(host_addr_equal(&a, &b));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_ipv4),
		cmocka_unit_test(test_literal_ipv6),
		cmocka_unit_test(test_literal_mapped),
		cmocka_unit_test(test_literal_rejects),
		cmocka_unit_test(test_name_normalize),
		cmocka_unit_test(test_name_lengths),
		cmocka_unit_test(test_name_rejects),
		cmocka_unit_test(test_name_numeric),
		cmocka_unit_test(test_addr_port),
		cmocka_unit_test(test_addr_port_rejects),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_addr_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
