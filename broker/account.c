/*
 * Accounts: what each uid holds of the broker (sessions, connections
 * and listeners) and its budget of log lines, over all its sessions,
 * so that no uid can take another's share by opening more sessions or
 * by reconnecting.  An account outlives its sessions for the rest of
 * its log second, so a reconnect does not reset the budget.
 *
 * The table is fixed (LIMIT_UIDS); an account that holds nothing and
 * whose second is over is reused.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"

struct account {
	bool		 used;
	uid_t		 uid;
	unsigned	 sessions;
	unsigned	 handles;
	uint64_t	 second;		/* of the budgets below */
	unsigned	 logged[ACCOUNT_LOGS];
	unsigned	 dropped[ACCOUNT_LOGS];
};

static struct account	accounts[LIMIT_UIDS];
static struct timer	summary_timer;
/* Lines of uids that found the table full: counted, never logged. */
static unsigned		homeless_dropped;

static const unsigned	budgets[ACCOUNT_LOGS] = {
	[ACCOUNT_LOG_DECISION] = LIMIT_LOG_DECISIONS,
	[ACCOUNT_LOG_LINE] = LIMIT_LOG_LINES,
};

static bool
account_idle(const struct account *a, uint64_t second)
{
	return a->sessions == 0 && a->handles == 0 && a->second != second &&
	    a->dropped[ACCOUNT_LOG_DECISION] == 0 &&
	    a->dropped[ACCOUNT_LOG_LINE] == 0;
}

struct account *
account_get(uid_t uid)
{
	struct account	*a, *spare = NULL;
	uint64_t	 second = loop_now() / 1000;
	size_t		 i;

	for (i = 0; i < LIMIT_UIDS; i++) {
		a = &accounts[i];
		if (a->used && a->uid == uid)
			return a;
		if (spare == NULL && (!a->used || account_idle(a, second)))
			spare = a;
	}
	if (spare != NULL) {
		memset(spare, 0, sizeof(*spare));
		spare->used = true;
		spare->uid = uid;
	}
	return spare;
}

uid_t
account_uid(const struct account *a)
{
	return a->uid;
}

unsigned
account_sessions(const struct account *a)
{
	return a->sessions;
}

unsigned
account_handles(const struct account *a)
{
	return a->handles;
}

void
account_add(struct account *a, int sessions, int handles)
{
	if ((sessions < 0 && a->sessions < (unsigned)-sessions) ||
	    (handles < 0 && a->handles < (unsigned)-handles))
		fatalx("account of uid %u: releasing what it does not hold",
		    (unsigned)a->uid);
	a->sessions = (unsigned)((int)a->sessions + sessions);
	a->handles = (unsigned)((int)a->handles + handles);
}

/* Logs what each uid lost in the second that ended, one line each. */
static void
summarise(struct timer *timer)
{
	struct account	*a;
	size_t		 i;
	bool		 more = false;

	(void)timer;
	for (i = 0; i < LIMIT_UIDS; i++) {
		a = &accounts[i];
		if (!a->used)
			continue;
		if (a->second == loop_now() / 1000) {
			more |= a->dropped[ACCOUNT_LOG_DECISION] ||
			    a->dropped[ACCOUNT_LOG_LINE];
			continue;	/* its second is not over */
		}
		if (a->dropped[ACCOUNT_LOG_DECISION] > 0)
			audit_suppressed(a->uid,
			    a->dropped[ACCOUNT_LOG_DECISION]);
		if (a->dropped[ACCOUNT_LOG_LINE] > 0)
			log_warnx("uid %u: %u log lines suppressed",
			    (unsigned)a->uid, a->dropped[ACCOUNT_LOG_LINE]);
		a->dropped[ACCOUNT_LOG_DECISION] = 0;
		a->dropped[ACCOUNT_LOG_LINE] = 0;
	}
	if (homeless_dropped > 0) {
		log_warnx("%u log lines of uids beyond the %d accounts "
		    "suppressed", homeless_dropped, LIMIT_UIDS);
		homeless_dropped = 0;
	}
	if (more)
		timer_set(&summary_timer, (loop_now() / 1000 + 1) * 1000,
		    summarise);
}

bool
account_may_log(struct account *a, enum account_log which)
{
	uint64_t	second = loop_now() / 1000;

	if (a == NULL) {
		homeless_dropped++;
		goto dropped;
	}
	if (a->second != second) {
		a->second = second;
		a->logged[ACCOUNT_LOG_DECISION] = 0;
		a->logged[ACCOUNT_LOG_LINE] = 0;
	}
	if (a->logged[which] < budgets[which]) {
		a->logged[which]++;
		return true;
	}
	a->dropped[which]++;
 dropped:
	if (summary_timer.slot == 0)
		timer_set(&summary_timer, (second + 1) * 1000, summarise);
	return false;
}

void
account_log(struct account *a, enum log_level level, const char *fmt, ...)
{
	char	line[BROKER_LOG_LINE_MAX];
	va_list	ap;

	if (!log_enabled(level) || !account_may_log(a, ACCOUNT_LOG_LINE))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg(level, "%s", line);
}

void
account_flush(void)
{
	size_t	i;

	/* At shutdown: every second is over. */
	for (i = 0; i < LIMIT_UIDS; i++)
		accounts[i].second = UINT64_MAX;
	summarise(NULL);
	timer_cancel(&summary_timer);
}
