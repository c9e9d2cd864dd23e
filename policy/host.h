/*
 * Host names, addresses and "ip:port" texts: parsing them strictly and
 * formatting them.  Pure logic, shared by the policy and the broker.
 */
#ifndef TB_HOST_H
#define TB_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "tb_limits.h"

/* An IPv4 or IPv6 address; IPv4 uses the first 4 bytes. */
struct host_addr {
	int	family;		/* AF_INET or AF_INET6 */
	uint8_t	bytes[16];
};

/*
 * Parses an IP literal as strict inet_pton does (no brackets); an
 * IPv4-mapped IPv6 address becomes the IPv4 address.  Returns 0 or -1.
 */
int	host_parse_literal(const char *s, size_t len, struct host_addr *out);

/*
 * Checks that s is a valid host name and writes it lower-case, without
 * a trailing dot, into out.  Numeric forms that some resolvers read as
 * addresses ("127.1", "0x7f.1", "2130706433") are refused.  Returns 0,
 * or -1 with *why set.
 */
int	host_normalize_name(const char *s, size_t len,
	    char out[PROTO_HOST_NAME_MAX + 1], const char **why);

/* Makes an IPv4-mapped IPv6 address (::ffff:a.b.c.d) the IPv4 address. */
void	host_addr_normalize(struct host_addr *addr);

/* Whether addr is 0.0.0.0 or ::, which a connect sends to this host. */
int	host_addr_unspecified(const struct host_addr *addr);

/* Parses "ip:port" or "[ipv6]:port" (port 0-65535).  Returns 0 or -1. */
int	host_parse_addr_port(const char *s, size_t len, struct host_addr *addr,
	    uint16_t *port, const char **why);

/*
 * Reads an AF_INET or AF_INET6 socket address (a struct sockaddr *) into
 * addr and *port (when port is not NULL).  Returns 0, or -1 for another
 * family.
 */
int	host_addr_from_sockaddr(const void *sa, struct host_addr *addr,
	    uint16_t *port);

/*
 * Writes addr and port as a socket address into ss (a struct
 * sockaddr_storage *); returns its length.
 */
unsigned host_addr_to_sockaddr(const struct host_addr *addr, uint16_t port,
	    void *ss);

/* Formats "ip:port", or "[ipv6]:port", into buf (PROTO_ADDR_STRLEN). */
void	host_format(const struct host_addr *addr, uint16_t port, char *buf,
	    size_t cap);

/* Formats the address alone. */
void	host_format_addr(const struct host_addr *addr, char *buf, size_t cap);

/* Whether two addresses are the same. */
int	host_addr_equal(const struct host_addr *a, const struct host_addr *b);

#endif
