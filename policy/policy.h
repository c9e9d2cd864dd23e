/*
 * The administrator's network policy: parsing the policy file and
 * deciding connect and listen requests.  Pure decision logic: no
 * sockets, no event loop, no DNS.
 */
#ifndef TB_POLICY_H
#define TB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "tb_limits.h"

enum policy_action {
	POLICY_CONNECT,
	POLICY_LISTEN
};

enum policy_host {
	POLICY_HOST_ANY,	/* any */
	POLICY_HOST_NAME,	/* api.example.com */
	POLICY_HOST_WILDCARD,	/* *.example.com: subdomains only */
	POLICY_HOST_ADDR	/* 127.0.0.1, [::1] */
};

struct policy_ports {
	uint16_t	lo;
	uint16_t	hi;
};

struct policy_rule {
	enum policy_action	action;
	bool			allow;
	enum policy_host	host;
	/* POLICY_HOST_NAME: the name; POLICY_HOST_WILDCARD: the domain. */
	char			name[PROTO_HOST_NAME_MAX + 1];
	struct host_addr	addr;
	struct policy_ports	ports[LIMIT_POLICY_PORTS];
	unsigned		nports;
	unsigned		line;
	unsigned		col;
};

struct policy {
	char			*file;
	struct policy_rule	*rules;
	size_t			 nrules;
	size_t			 cap;
};

/* Where and why a policy file was refused. */
struct policy_error {
	char		message[512];	/* "file:line:col: what is wrong" */
	unsigned	line;
	unsigned	col;
};

/* Reads and parses the policy file at path.  Returns 0 or -1. */
int	policy_load(const char *path, struct policy **out,
	    struct policy_error *err);
/* Parses policy text; file names it in messages.  Returns 0 or -1. */
int	policy_parse(const char *file, const char *text, size_t len,
	    struct policy **out, struct policy_error *err);
void	policy_free(struct policy *policy);

/*
 * One request to decide.  A connect to a host name is decided twice:
 * first with addr NULL, before any DNS query, then once for every
 * address the name resolved to.
 */
struct policy_request {
	enum policy_action	 action;
	const char		*name;	/* normalised host name, or NULL */
	const struct host_addr	*addr;	/* address, or NULL */
	uint16_t		 port;
};

enum policy_verdict {
	POLICY_DENY,
	POLICY_ALLOW,
	POLICY_RESOLVE		/* name only: decide again per address */
};

struct policy_decision {
	enum policy_verdict	 verdict;
	/* The rule that decided, or NULL for the default. */
	const struct policy_rule *rule;
};

/* Whether any rule lets anyone listen. */
bool	policy_may_listen(const struct policy *policy);

void	policy_decide(const struct policy *policy,
	    const struct policy_request *request,
	    struct policy_decision *decision);

/*
 * Says in words what decided: "rule policy.conf:12" or "the default
 * (no rule allows it)".
 */
void	policy_explain(const struct policy *policy,
	    const struct policy_decision *decision, char *buf, size_t cap);

#endif
