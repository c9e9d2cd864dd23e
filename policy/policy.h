/*
 * The administrator's network policy: parsing the policy file and
 * deciding requests.  Pure decision logic: no sockets, no event loop,
 * no DNS.  docs/policy.md describes the language.
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
	POLICY_LISTEN,
	POLICY_ACCEPT		/* which peers a listener hands over */
};

enum policy_host {
	POLICY_HOST_ANY,	/* any */
	POLICY_HOST_NAME,	/* api.example.com */
	POLICY_HOST_WILDCARD,	/* *.example.com: subdomains only */
	POLICY_HOST_CIDR	/* 10.20.0.0/16, 127.0.0.1 (a /32), [::1] */
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
	struct host_addr	addr;		/* POLICY_HOST_CIDR */
	unsigned		prefix;		/* bits of addr that count */
	struct policy_ports	ports[LIMIT_POLICY_PORTS];
	unsigned		nports;
	bool			any_port;	/* written as '*' */
	unsigned		line;
	unsigned		col;
	bool			every;		/* from the every-tenant block */
};

/* A range of uids or gids. */
struct policy_ids {
	uint32_t	lo;
	uint32_t	hi;
};

/* A tenant's quotas; 0 means no limit. */
struct policy_limits {
	uint32_t	connections;	/* open at once */
	uint32_t	listeners;	/* open at once */
	uint32_t	rate;		/* new connections a second */
	uint64_t	bandwidth;	/* bytes a second, each direction */
	uint32_t	lookups;	/* name lookups waiting at once */
};

enum policy_mode {
	POLICY_ENFORCE,
	POLICY_REPORT		/* log what would be denied, allow it */
};

struct policy_tenant {
	char			 name[LIMIT_POLICY_NAME + 1];
	unsigned		 line;
	unsigned		 col;
	struct policy_ids	 uids[LIMIT_POLICY_IDS];
	unsigned		 nuids;
	struct policy_ids	 gids[LIMIT_POLICY_IDS];
	unsigned		 ngids;
	struct policy_rule	*rules;
	size_t			 nrules;
	size_t			 cap;
	struct policy_limits	 limits;
	enum policy_mode	 mode;
	bool			 every;		/* the every-tenant block */
};

struct policy {
	char			*file;
	bool			 bom;		/* began with a UTF-8 BOM */
	/* The every-tenant block, whose rules each tenant also has. */
	struct policy_tenant	*every;
	struct policy_tenant	*tenants;
	size_t			 ntenants;
	size_t			 cap;
	size_t			 nrules;	/* in all tenants */
};

/* Where and why a policy file was refused. */
/* Longest message of one policy error: bytes. */
#define POLICY_ERROR_MAX	512

/*
 * Where and why a policy file was refused: the first error, and every
 * error the parse found (up to LIMIT_POLICY_ERRORS), for --check.
 */
struct policy_error {
	char		message[POLICY_ERROR_MAX];	/* "file:line:col: ..." */
	unsigned	line;
	unsigned	col;
	unsigned	count;				/* errors found */
	char		all[LIMIT_POLICY_ERRORS][POLICY_ERROR_MAX];
};

/*
 * How user and group names in `match` become ids, when not by
 * getpwnam and getgrnam: lookup returns 0 and sets *id, or -1.
 */
struct policy_names {
	int	(*lookup)(void *arg, bool group, const char *name,
		    uint64_t *id);
	void	*arg;
};

/* Reads and parses the policy file at path.  Returns 0 or -1. */
int	policy_load(const char *path, struct policy **out,
	    struct policy_error *err);
/*
 * The same from an open descriptor (read from where it is; not
 * closed); path names the file in messages, names resolves names
 * (NULL: getpwnam and getgrnam).
 */
int	policy_read(int fd, const char *path,
	    const struct policy_names *names, struct policy **out,
	    struct policy_error *err);
/* Parses policy text; file names it in messages.  Returns 0 or -1. */
int	policy_parse(const char *file, const char *text, size_t len,
	    struct policy **out, struct policy_error *err);
int	policy_parse_names(const char *file, const char *text, size_t len,
	    const struct policy_names *names, struct policy **out,
	    struct policy_error *err);
void	policy_free(struct policy *policy);

/*
 * Calls warn with "file:line:col: warning: ..." for each rule that can
 * never match or is shadowed by a deny rule, and each tenant that no
 * client can reach.  Returns the number of warnings.
 */
int	policy_check(const struct policy *policy,
	    void (*warn)(void *arg, const char *message), void *arg);

/* Who a client is, as the kernel reported it. */
struct policy_client {
	uint32_t	 uid;
	uint32_t	 gid;		/* primary */
	const uint32_t	*groups;	/* supplementary, or NULL */
	size_t		 ngroups;
};

/*
 * The tenant of a client: the first whose match lines take it (a `match
 * gid` takes the primary gid or any supplementary group), or NULL.
 */
const struct policy_tenant *policy_tenant_of(const struct policy *policy,
	    const struct policy_client *client);
/* The same for a client of uid and gid with no supplementary groups. */
const struct policy_tenant *policy_tenant(const struct policy *policy,
	    uint32_t uid, uint32_t gid);

/* The tenant called name, or NULL. */
const struct policy_tenant *policy_tenant_named(const struct policy *policy,
	    const char *name);

/* Whether any tenant may listen: by a rule, or in report mode. */
bool	policy_may_listen(const struct policy *policy);


/*
 * What the decisions need to know of the host: its own addresses, which
 * count as internal.
 */
struct policy_context {
	const struct host_addr	*own;
	size_t			 nown;
};

/*
 * One request to decide.  A connect to a host name is decided twice:
 * first with addr NULL, before any DNS query, then once for every
 * address the name resolved to, with both set.  An accept is decided
 * with the peer's address and port.
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

/* Why: each has a stable code for the decision log. */
enum policy_reason {
	POLICY_BY_RULE,		/* rule says so */
	POLICY_BY_DEFAULT,	/* no rule allows it */
	POLICY_BY_INTERNAL,	/* internal address, no address rule */
	POLICY_BY_UNNAMED,	/* listen: wildcard, port 0 or < 1024 unnamed */
	POLICY_BY_NO_TENANT	/* the client is in no tenant */
};

struct policy_decision {
	enum policy_verdict	  verdict;	/* what is done */
	enum policy_reason	  reason;
	/* The rule that decided, or NULL. */
	const struct policy_rule *rule;
	/* Report mode turned a denial into this allow. */
	bool			  report;
};

/*
 * The deny rule that matches the request, or NULL.  For a listener on
 * port 0: once the kernel chose the port, the deny rules judge it.
 */
const struct policy_rule *policy_deny_rule(const struct policy_tenant *tn,
	    const struct policy_request *request);

void	policy_decide(const struct policy *policy,
	    const struct policy_tenant *tenant,
	    const struct policy_context *ctx,
	    const struct policy_request *request,
	    struct policy_decision *decision);

/*
 * The decisions on the addresses a name resolved to, for a connect:
 * each distinct address in order, the unspecified ones (0.0.0.0, ::)
 * never allowed.  The broker and --explain both decide through this.
 */
struct policy_resolved {
	struct host_addr	addrs[LIMIT_RESOLVE_ADDRS];
	struct policy_decision	decisions[LIMIT_RESOLVE_ADDRS];
	bool			unspecified[LIMIT_RESOLVE_ADDRS];
	unsigned		naddrs;
	unsigned		nallowed;
	int			first_allowed;	/* an index, or -1 */
	int			first_denied;	/* an index, or -1 */
};

void	policy_decide_resolved(const struct policy *policy,
	    const struct policy_tenant *tenant,
	    const struct policy_context *ctx, const char *name, uint16_t port,
	    const struct host_addr *addrs, unsigned naddrs,
	    struct policy_resolved *out);

/* Whether addr is in a built-in internal range, or one of ctx's own. */
bool	policy_internal(const struct policy_context *ctx,
	    const struct host_addr *addr);

/* The decision log's code for a reason: "rule", "default", ... */
const char *policy_reason_code(enum policy_reason reason);

/* Room for what policy_explain() and policy_where() write; they truncate. */
#define POLICY_EXPLAIN_MAX	300

/*
 * Says in words what decided: "rule policy.conf:12", "the default (no
 * rule allows it)", "the internal range 10.0.0.0/8 (no address rule
 * allows it)".
 */
void	policy_explain(const struct policy *policy,
	    const struct policy_decision *decision,
	    const struct host_addr *addr, char *buf, size_t cap);

/* "file:line", or "default", for the decision log. */
void	policy_where(const struct policy *policy,
	    const struct policy_decision *decision, char *buf, size_t cap);

/* A rule as it could be written: "connect allow 10.0.0.0/8:22". */
void	policy_rule_text(const struct policy_rule *rule, char *buf,
	    size_t cap);

#endif
