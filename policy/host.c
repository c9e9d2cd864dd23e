/* Strict parsing of host names, IP literals and "ip:port" texts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "host.h"

static const uint8_t mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
host_parse_literal(const char *s, size_t len, struct host_addr *out)
{
	char	text[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1) {
		out->family = AF_INET6;
		host_addr_normalize(out);
		return 0;
	}
	return -1;
}

void
host_addr_normalize(struct host_addr *addr)
{
	if (addr->family == AF_INET6 &&
	    memcmp(addr->bytes, mapped_prefix, 12) == 0) {
		memmove(addr->bytes, addr->bytes + 12, 4);
		memset(addr->bytes + 4, 0, 12);
		addr->family = AF_INET;
	}
}

int
host_addr_unspecified(const struct host_addr *addr)
{
	static const uint8_t	zero[16];

	return memcmp(addr->bytes, zero, addr->family == AF_INET ? 4 : 16) == 0;
}

static int
is_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

int
host_normalize_name(const char *s, size_t len,
    char out[PROTO_HOST_NAME_MAX + 1], const char **why)
{
	struct in_addr	 ignored;
	size_t		 i, label = 0;
	int		 numeric = 1;
	char		 c;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > PROTO_HOST_NAME_MAX) {
		*why = "a host name must be 1 to 253 characters";
		return -1;
	}
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
		if (c == '.') {
			if (label == 0 || out[i - 1] == '-') {
				*why = "empty label or label ending in '-'";
				return -1;
			}
			label = 0;
			numeric = 1;
			continue;
		}
		if (!is_label_char(c)) {
			*why = "a host name has only letters, digits, '-', "
			    "'_' and '.'";
			return -1;
		}
		if (label == 0 && c == '-') {
			*why = "a label must not start with '-'";
			return -1;
		}
		if (++label > 63) {
			*why = "a label is longer than 63 characters";
			return -1;
		}
		if (c < '0' || c > '9')
			numeric = 0;
	}
	out[len] = '\0';
	if (label == 0) {
		*why = "empty label";
		return -1;
	}
	if (out[len - 1] == '-') {
		*why = "a label must not end with '-'";
		return -1;
	}
	/*
	 * getaddrinfo() reads "127.1", "0x7f.1" or "2130706433" as an
	 * address, so such a name would pass a name rule and reach an
	 * address no rule allowed.  Names ending in a numeric label are
	 * refused too: no top-level domain is numeric.
	 */
	if (numeric || inet_aton(out, &ignored) != 0) {
		*why = "a numeric address in a form other than dotted quad "
		    "or IPv6";
		return -1;
	}
	return 0;
}

int
host_parse_addr_port(const char *s, size_t len, struct host_addr *addr,
    uint16_t *port, const char **why)
{
	const char	*colon, *host;
	size_t		 hostlen, i;
	unsigned long	 value = 0;

	if (len > 0 && s[0] == '[') {
		colon = memchr(s, ']', len);
		if (colon == NULL || (size_t)(colon - s) + 1 >= len ||
		    colon[1] != ':') {
			*why = "expected [ipv6]:port";
			return -1;
		}
		host = s + 1;
		hostlen = (size_t)(colon - host);
		colon++;
		if (host_parse_literal(host, hostlen, addr) != 0 ||
		    memchr(host, ':', hostlen) == NULL) {
			*why = "not an IPv6 address inside [ ]";
			return -1;
		}
	} else {
		colon = memchr(s, ':', len);
		if (colon == NULL) {
			*why = "expected ip:port";
			return -1;
		}
		host = s;
		hostlen = (size_t)(colon - s);
		if (host_parse_literal(host, hostlen, addr) != 0 ||
		    memchr(host, ':', hostlen) != NULL) {
			*why = "not an IPv4 address (write IPv6 as [addr]:port)";
			return -1;
		}
	}
	i = (size_t)(colon - s) + 1;
	if (i == len || len - i > 5) {
		*why = "expected a port number 0-65535";
		return -1;
	}
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*why = "expected a port number 0-65535";
			return -1;
		}
		value = value * 10 + (unsigned long)(s[i] - '0');
	}
	if (value > 65535) {
		*why = "expected a port number 0-65535";
		return -1;
	}
	*port = (uint16_t)value;
	return 0;
}

int
host_addr_from_sockaddr(const void *sa, struct host_addr *addr,
    uint16_t *port)
{
	const struct sockaddr_in	*sin = sa;
	const struct sockaddr_in6	*sin6 = sa;

	memset(addr, 0, sizeof(*addr));
	switch (sin->sin_family) {
	case AF_INET:
		addr->family = AF_INET;
		memcpy(addr->bytes, &sin->sin_addr, 4);
		if (port != NULL)
			*port = ntohs(sin->sin_port);
		return 0;
	case AF_INET6:
		addr->family = AF_INET6;
		memcpy(addr->bytes, &sin6->sin6_addr, 16);
		if (port != NULL)
			*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -1;
}

unsigned
host_addr_to_sockaddr(const struct host_addr *addr, uint16_t port, void *ss)
{
	struct sockaddr_in	*sin = ss;
	struct sockaddr_in6	*sin6 = ss;

	memset(ss, 0, sizeof(struct sockaddr_storage));
	if (addr->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr->bytes, 4);
		return sizeof(*sin);
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, addr->bytes, 16);
	return sizeof(*sin6);
}

void
host_format_addr(const struct host_addr *addr, char *buf, size_t cap)
{
	if (inet_ntop(addr->family, addr->bytes, buf, (socklen_t)cap) == NULL)
		snprintf(buf, cap, "?");
}

void
host_format(const struct host_addr *addr, uint16_t port, char *buf,
    size_t cap)
{
	char	text[INET6_ADDRSTRLEN];

	host_format_addr(addr, text, sizeof(text));
	if (addr->family == AF_INET6)
		snprintf(buf, cap, "[%s]:%u", text, port);
	else
		snprintf(buf, cap, "%s:%u", text, port);
}

int
host_addr_equal(const struct host_addr *a, const struct host_addr *b)
{
	return a->family == b->family &&
	    memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}
