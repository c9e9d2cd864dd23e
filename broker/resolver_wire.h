/*
 * The records between the broker and its resolver workers: one query or
 * one answer, of fixed size, per SOCK_SEQPACKET message.  The workers
 * parse answers from the network, so the broker checks every answer
 * record (resolver_answer_check) before it uses a byte of it.
 */
#ifndef TB_RESOLVER_WIRE_H
#define TB_RESOLVER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "tb_limits.h"

struct resolver_query {
	uint32_t	id;
	char		name[PROTO_HOST_NAME_MAX + 1];
};

struct resolver_answer {
	uint32_t		id;	/* 0: a notice from the keeper */
	int32_t			code;	/* 0, TB_ENOTFOUND or TB_ERESOLVE */
	uint32_t		naddrs;
	struct host_addr	addrs[LIMIT_RESOLVE_ADDRS];
};

/*
 * Checks an answer record of len bytes: its size, its code, its count
 * (at least one address on success, none on failure) and the family of
 * every address.  Returns 0, or -1 with *why set.
 */
int	resolver_answer_check(const void *record, size_t len,
	    const char **why);

#endif
