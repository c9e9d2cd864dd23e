/*
 * Tenant quotas: open connections, listeners, name lookups waiting,
 * new connections a second, and bandwidth each way.  The counts live
 * here, by tenant name, so they outlast a reload; the limits are those
 * of the current policy.  Over a quota a call fails with EQUOTA; over
 * the bandwidth a tenant's own traffic waits, nobody else's.
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"

struct quota {
	TAILQ_ENTRY(quota)	 entry;
	char			 name[LIMIT_POLICY_NAME + 1];
	struct policy_limits	 limits;
	uint32_t		 held[QUOTA_KINDS];
	uint64_t		 rate_tokens;	/* milli-connections */
	uint64_t		 rate_ms;
	uint64_t		 bytes[2];	/* tokens each way */
	uint64_t		 bytes_ms[2];
};

TAILQ_HEAD(quota_list, quota);
static struct quota_list	quotas = TAILQ_HEAD_INITIALIZER(quotas);
static unsigned			nquotas;

static const char *const kind_names[QUOTA_KINDS] = {
	[QUOTA_CONNECTION] = "connections",
	[QUOTA_LISTENER] = "listeners",
	[QUOTA_LOOKUP] = "lookups",
};

struct quota *
quota_of(const struct policy_tenant *tn)
{
	struct quota	*q;

	if (tn == NULL)
		return NULL;
	TAILQ_FOREACH(q, &quotas, entry)
		if (strcmp(q->name, tn->name) == 0)
			break;
	if (q == NULL) {
		/*
		 * Bounded by the tenants of the policy and those of older
		 * policies that still hold something (quota_prune).
		 */
		if ((q = calloc(1, sizeof(*q))) == NULL)
			fatal("quota");
		memcpy(q->name, tn->name, sizeof(q->name));
		q->rate_ms = q->bytes_ms[0] = q->bytes_ms[1] = loop_now();
		q->rate_tokens = (uint64_t)tn->limits.rate * 1000;
		q->bytes[0] = q->bytes[1] = tn->limits.bandwidth;
		TAILQ_INSERT_TAIL(&quotas, q, entry);
		nquotas++;
	}
	q->limits = tn->limits;
	return q;
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

int
quota_rate(struct quota *q, char *why, size_t len)
{
	uint64_t	now = loop_now(), full;

	if (q == NULL || q->limits.rate == 0)
		return 0;
	/* A bucket of one second's connections, in thousandths. */
	full = (uint64_t)q->limits.rate * 1000;
	q->rate_tokens += (now - q->rate_ms) * q->limits.rate;
	if (q->rate_tokens > full)
		q->rate_tokens = full;
	q->rate_ms = now;
	if (q->rate_tokens < 1000) {
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
	uint64_t	now = loop_now(), rate;

	if (q == NULL || q->limits.bandwidth == 0)
		return want;
	rate = q->limits.bandwidth;
	q->bytes[dir] += (now - q->bytes_ms[dir]) * rate / 1000;
	if (q->bytes[dir] > rate)
		q->bytes[dir] = rate;	/* a burst of one second */
	q->bytes_ms[dir] = now;
	if (q->bytes[dir] == 0) {
		/* Come back when enough for a small piece has come in. */
		*retry = now + (want < 4096 ? want : 4096) * 1000 / rate + 1;
		return 0;
	}
	return want < q->bytes[dir] ? want : (size_t)q->bytes[dir];
}

void
quota_spend(struct quota *q, int dir, size_t n)
{
	if (q == NULL || q->limits.bandwidth == 0)
		return;
	q->bytes[dir] = n < q->bytes[dir] ? q->bytes[dir] - n : 0;
}

void
quota_prune(const struct policy *policy)
{
	struct quota	*q, *next;
	size_t		 i;
	bool		 keep;

	for (q = TAILQ_FIRST(&quotas); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		keep = q->held[QUOTA_CONNECTION] || q->held[QUOTA_LISTENER] ||
		    q->held[QUOTA_LOOKUP];
		for (i = 0; !keep && i < policy->ntenants; i++)
			keep = strcmp(policy->tenants[i].name, q->name) == 0;
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
