/*
 * Tenant quotas: open connections, listeners, name lookups waiting,
 * new connections a second, and bandwidth each way.  The counts live
 * here, by tenant name, so they outlast a reload (a renamed tenant starts
 * from nothing); the limits are those of the current policy.  Over a
 * quota a call fails with EQUOTA; over the bandwidth a tenant's own
 * traffic waits, nobody else's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

struct quota {
	TAILQ_ENTRY(quota)	 entry;
	char			 name[LIMIT_POLICY_NAME + 1];
	struct policy_limits	 limits;
	uint32_t		 held[QUOTA_KINDS];
	uint64_t		 rate_tokens;	/* thousandths of a connection */
	uint64_t		 rate_ms;
	uint64_t		 bytes[2];	/* thousandths of a byte, each way */
	uint64_t		 bytes_ms[2];
	/* For the control socket: what the tenant did, since start. */
	uint64_t		 total[2];	/* bytes each way */
	uint64_t		 allowed, denied;
	uint64_t		 hits;		/* requests over a quota */
};

TAILQ_HEAD(quota_list, quota);
static struct quota_list	quotas = TAILQ_HEAD_INITIALIZER(quotas);
static unsigned			nquotas;

static const char *const kind_names[QUOTA_KINDS] = {
	[QUOTA_CONNECTION] = "connections",
	[QUOTA_LISTENER] = "listeners",
	[QUOTA_LOOKUP] = "lookups",
};

/* The quota of the tenant called name, made with the tenant's limits. */
static struct quota *
quota_named(const char *name, const struct policy_limits *limits)
{
	struct quota	*q;

	TAILQ_FOREACH(q, &quotas, entry)
		if (strcmp(q->name, name) == 0)
			return q;
	/*
	 * Bounded by the tenants of the policy and those of older
	 * policies that still hold something (quota_reload).
	 */
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warnx("quota of tenant %s: out of memory", name);
		return NULL;
	}
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->rate_ms = q->bytes_ms[0] = q->bytes_ms[1] = loop_now();
	q->rate_tokens = (uint64_t)limits->rate * 1000;
	q->bytes[0] = q->bytes[1] = limits->bandwidth * 1000;
	q->limits = *limits;
	TAILQ_INSERT_TAIL(&quotas, q, entry);
	nquotas++;
	return q;
}

struct quota *
quota_of(const struct policy_tenant *tn)
{
	struct quota	*q;

	if (tn == NULL)
		return NULL;
	if ((q = quota_named(tn->name, &tn->limits)) != NULL)
		q->limits = tn->limits;
	return q;
}

const char *
quota_name(const struct quota *q)
{
	return q != NULL ? q->name : "-";
}

void
quota_count_decision(const char *name, bool allowed)
{
	const struct policy_tenant	*tn;
	struct quota			*q;

	if (name == NULL || (tn = policy_tenant_named(broker.policy, name)) ==
	    NULL)
		return;
	if ((q = quota_of(tn)) == NULL)
		return;
	if (allowed)
		q->allowed++;
	else
		q->denied++;
}

void
quota_report(void (*fn)(void *, const struct report_tenant *), void *arg)
{
	struct report_tenant	 r;
	struct quota		*q;

	TAILQ_FOREACH(q, &quotas, entry) {
		memset(&r, 0, sizeof(r));
		r.name = q->name;
		memcpy(r.held, q->held, sizeof(r.held));
		r.bytes[0] = q->total[0];
		r.bytes[1] = q->total[1];
		r.allowed = q->allowed;
		r.denied = q->denied;
		r.quota_hits = q->hits;
		fn(arg, &r);
	}
}

int
quota_acquire(struct quota *q, enum quota_kind kind, char *why, size_t len)
{
	uint32_t	max;

	if (q == NULL)
		return 0;
	max = kind == QUOTA_CONNECTION ? q->limits.connections :
	    kind == QUOTA_LISTENER ? q->limits.listeners : q->limits.lookups;
	if (max != 0 && q->held[kind] >= max) {
		q->hits++;
		textf(why, len, "tenant \"%s\" has %u %s open, its limit",
		    q->name, q->held[kind], kind_names[kind]);
		return TB_EQUOTA;
	}
	q->held[kind]++;
	return 0;
}

void
quota_release(struct quota *q, enum quota_kind kind)
{
	if (q == NULL)
		return;
	if (q->held[kind] == 0)
		fatalx("quota %s: releasing %s not held", q->name,
		    kind_names[kind]);
	q->held[kind]--;
}

/*
 * Buckets hold thousandths: a rate of R a second adds R thousandths a
 * millisecond.  At most one second's worth, which is also the burst.
 */
static void
refill(uint64_t *tokens, uint64_t *last, uint64_t rate)
{
	uint64_t	now = loop_now(), elapsed = now - *last;

	if (elapsed > 1000)
		elapsed = 1000;
	*tokens += elapsed * rate;
	if (*tokens > rate * 1000)
		*tokens = rate * 1000;
	*last = now;
}

int
quota_rate(struct quota *q, char *why, size_t len)
{
	if (q == NULL || q->limits.rate == 0)
		return 0;
	refill(&q->rate_tokens, &q->rate_ms, q->limits.rate);
	if (q->rate_tokens < 1000) {
		q->hits++;
		textf(why, len, "tenant \"%s\" opens at most %u connections a "
		    "second", q->name, q->limits.rate);
		return TB_EQUOTA;
	}
	q->rate_tokens -= 1000;
	return 0;
}

size_t
quota_bytes(struct quota *q, int dir, size_t want, uint64_t *retry)
{
	uint64_t	rate, have, need;

	if (q == NULL || q->limits.bandwidth == 0)
		return want;
	rate = q->limits.bandwidth;
	refill(&q->bytes[dir], &q->bytes_ms[dir], rate);
	have = q->bytes[dir] / 1000;
	if (have == 0) {
		/* Come back when a piece worth moving has come in. */
		need = want < 4096 ? want : 4096;
		if (need > rate)
			need = rate;
		if (need == 0)
			need = 1;
		*retry = loop_now() + (need * 1000 - q->bytes[dir] + rate - 1) /
		    rate;
		return 0;
	}
	return want < have ? want : (size_t)have;
}

void
quota_spend(struct quota *q, int dir, size_t n)
{
	uint64_t	cost = (uint64_t)n * 1000;

	if (q == NULL)
		return;
	q->total[dir] += n;
	if (q->limits.bandwidth == 0)
		return;
	q->bytes[dir] = cost < q->bytes[dir] ? q->bytes[dir] - cost : 0;
}

void
quota_reload(const struct policy *policy)
{
	struct quota	*q, *next;
	size_t		 i;
	bool		 keep;

	for (q = TAILQ_FIRST(&quotas); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		keep = q->held[QUOTA_CONNECTION] || q->held[QUOTA_LISTENER] ||
		    q->held[QUOTA_LOOKUP];
		/* The new limits apply to what is open too. */
		for (i = 0; i < policy->ntenants; i++)
			if (strcmp(policy->tenants[i].name, q->name) == 0) {
				q->limits = policy->tenants[i].limits;
				keep = true;
				break;
			}
		if (!keep) {
			TAILQ_REMOVE(&quotas, q, entry);
			nquotas--;
			free(q);
		}
	}
}

void
quota_free_all(void)
{
	struct quota	*q;

	while ((q = TAILQ_FIRST(&quotas)) != NULL) {
		TAILQ_REMOVE(&quotas, q, entry);
		free(q);
	}
	nquotas = 0;
}
