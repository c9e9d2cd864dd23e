/*
 * Name resolution in processes of their own, so that the loop never
 * blocks on DNS and the broker never touches /etc or NSS.  The broker
 * sends a name; a resolver worker answers with at most
 * LIMIT_RESOLVE_ADDRS addresses; the broker checks each of them against
 * the policy itself and connects only to one it checked.
 *
 * Processes: the broker forks a keeper once, at start; the keeper forks
 * LIMIT_RESOLVER_WORKERS workers and forks a new one whenever one dies,
 * so the broker itself never forks again.  Each worker has a
 * SOCK_SEQPACKET socketpair of its own with the broker: a query or an
 * answer is one fixed-size record.  When a worker dies the keeper sends
 * a notice (id 0) on that worker's socket, and the broker fails the
 * lookups it had sent there, since it cannot know which one was lost.
 *
 * The workers parse answers from the network, so a record from them is
 * checked and a malformed one fails that worker's lookups; it never
 * brings the broker down.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <nss.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "resolver_wire.h"
#include "sandbox.h"

/* The first query socket's descriptor in the keeper; the rest follow. */
#define RESOLVER_FD		3

/*
 * A lookup: queued until a worker may take it, then running.  A
 * cancelled one that runs keeps its slot (done is NULL) until its answer
 * comes, so a lookup nobody waits for still counts against its uid
 * while a worker spends time on it.
 */
enum pending_state {
	PENDING_FREE,
	PENDING_QUEUED,
	PENDING_RUNNING
};

struct pending {
	uint32_t		 id;		/* 0 when the slot is free */
	enum pending_state	 state;
	uint64_t		 seq;		/* queue order */
	uint64_t		 started_ms;	/* running since */
	uid_t			 uid;
	unsigned		 worker;	/* running: which */
	resolver_done		 done;
	void			*arg;
	char			 name[PROTO_HOST_NAME_MAX + 1];
};

/* A worker runs one lookup at a time; the broker keeps the queue. */
struct worker_io {
	struct loop_io	 io;
	unsigned	 index;
	bool		 busy;
	bool		 broken;	/* took no query, or sent nonsense */
	uid_t		 uid;		/* busy: whose lookup */
};

/* uids whose last turn at a worker the broker remembers: uids. */
#define RESOLVER_SERVED_MAX	(LIMIT_RESOLVER_PENDING + LIMIT_RESOLVER_WORKERS)
/* Records of one worker handled per event: records. */
#define RESOLVER_RECORDS_BATCH	16

/* When each uid was last given a worker, so the least served goes next. */
struct served {
	uid_t		 uid;
	uint64_t	 when;		/* dispatch count; 0: never */
};

static struct worker_io	 workers[LIMIT_RESOLVER_WORKERS];
static pid_t		 keeper_pid = -1;
static bool		 confined;
static bool		 unavailable;
static struct pending	 pending[LIMIT_RESOLVER_PENDING];
static uint32_t		 next_gen;
static uint64_t		 next_seq;
static struct loop_io	 stderr_io;	/* the resolver processes' messages */
static unsigned		 alarm_seconds;	/* a worker's longest lookup */
static struct served	 served[RESOLVER_SERVED_MAX];
static uint64_t		 dispatches;

/* Longest line of a resolver process's own messages logged: bytes. */
#define RESOLVER_MESSAGE_MAX	200
/* Lines of the resolver processes' messages logged a second: lines. */
#define RESOLVER_MESSAGES	10

static void	resolver_event(struct loop_io *io, uint32_t events);
static void	resolver_messages(struct loop_io *io, uint32_t events);

/* Answers one query with getaddrinfo(). */
static void
resolve(const struct resolver_query *q, struct resolver_answer *a)
{
	struct addrinfo	 hints, *res, *ai;
	struct host_addr addr;
	unsigned	 i;
	int		 rc;

	memset(a, 0, sizeof(*a));
	a->id = q->id;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(q->name, NULL, &hints, &res);
	if (rc == EAI_NONAME || rc == EAI_NODATA) {
		a->code = TB_ENOTFOUND;
		return;
	}
	if (rc != 0) {
		a->code = TB_ERESOLVE;
		return;
	}
	for (ai = res; ai != NULL && a->naddrs < LIMIT_RESOLVE_ADDRS;
	    ai = ai->ai_next) {
		if (host_addr_from_sockaddr(ai->ai_addr, &addr, NULL) != 0)
			continue;
		for (i = 0; i < a->naddrs; i++)
			if (host_addr_equal(&a->addrs[i], &addr))
				break;
		if (i == a->naddrs)
			a->addrs[a->naddrs++] = addr;
	}
	freeaddrinfo(res);
	if (a->naddrs == 0)
		a->code = TB_ENOTFOUND;
}

void
resolver_configure(uint32_t resolve_ms)
{
	char		options[64];
	unsigned	seconds = (resolve_ms + 999) / 1000;

	/*
	 * Only the modules built into libc: a module loaded later would
	 * need executable memory, which the filter refuses.
	 */
	__nss_configure_lookup("hosts", "files dns");
	/*
	 * No search domains: a name is looked up as it is, so that a rule
	 * for *.example.com never reaches x.example.com.corp.example.
	 */
	setenv("LOCALDOMAIN", "", 1);
	/* One try per server, within the broker's wait. */
	snprintf(options, sizeof(options), "timeout:%u attempts:1",
	    seconds > 2 ? seconds / 2 : 1);
	setenv("RES_OPTIONS", options, 1);
}

int
resolver_resolve(const char *name, struct host_addr *addrs, unsigned *naddrs)
{
	struct resolver_query	q;
	struct resolver_answer	a;

	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", name);
	resolve(&q, &a);
	memcpy(addrs, a.addrs, sizeof(a.addrs));
	*naddrs = a.naddrs;
	return a.code;
}

/* A worker: one query at a time on its own socket, until the keeper goes. */
static void __attribute__((noreturn))
worker_main(pid_t keeper, int fd)
{
	struct resolver_query	q;
	struct resolver_answer	a;
	ssize_t			n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != keeper)
		_exit(1);
	if (confined && sandbox_resolver(false) != 0)
		_exit(1);
	for (;;) {
		n = recv(fd, &q, sizeof(q), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(q))
			_exit(n == 0 ? 0 : 1);
		q.name[PROTO_HOST_NAME_MAX] = '\0';
		/*
		 * A lookup that outlasts the broker's wait ends the worker
		 * (SIGALRM); the keeper starts another, and the broker frees
		 * the uid's share.
		 */
		alarm(alarm_seconds);
		resolve(&q, &a);
		alarm(0);
		if (send(fd, &a, sizeof(a), MSG_NOSIGNAL) != (ssize_t)sizeof(a))
			_exit(1);
	}
}

/* Starts worker i; a fork that fails is tried again, never given up. */
static pid_t
worker_start(pid_t keeper, unsigned i)
{
	pid_t	pid;

	while ((pid = fork()) == -1)
		sleep(1);
	if (pid == 0) {
		/* A worker holds its own socket only. */
		if (dup2(RESOLVER_FD + (int)i, RESOLVER_FD) == -1 ||
		    close_range(RESOLVER_FD + 1, ~0U, 0) == -1)
			_exit(1);
		worker_main(keeper, RESOLVER_FD);
	}
	return pid;
}

/* The keeper: starts the workers and replaces those that die. */
static void __attribute__((noreturn))
keeper_main(pid_t broker_pid)
{
	struct resolver_answer	 notice;
	struct timespec		 now, last = { 0, 0 };
	pid_t			 self = getpid(), pids[LIMIT_RESOLVER_WORKERS];
	pid_t			 pid;
	unsigned		 i;
	int			 status;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != broker_pid)
		_exit(1);
	prctl(PR_SET_NAME, "tcpbroker-dns");
	resolver_configure(broker.resolve_ms);

	if (confined && sandbox_resolver(true) != 0) {
		fprintf(stderr, "tcpbroker-dns: cannot install the filter\n");
		_exit(1);
	}
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
		pids[i] = worker_start(self, i);
	memset(&notice, 0, sizeof(notice));
	notice.code = TB_ERESOLVE;
	for (;;) {
		if ((pid = waitpid(-1, &status, 0)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
			if (pids[i] == pid)
				break;
		if (i == LIMIT_RESOLVER_WORKERS)
			continue;
		if (send(RESOLVER_FD + (int)i, &notice, sizeof(notice),
		    MSG_NOSIGNAL) != (ssize_t)sizeof(notice))
			_exit(1);
		/* A worker that keeps dying is restarted once a second. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last.tv_sec < 1)
			sleep(1);
		clock_gettime(CLOCK_MONOTONIC, &last);
		pids[i] = worker_start(self, i);
	}
}

void
resolver_start(bool sandbox)
{
	sigset_t	set;
	pid_t		broker_pid = getpid();
	int		sv[LIMIT_RESOLVER_WORKERS][2], messages[2];
	unsigned	i;

	confined = sandbox;
	alarm_seconds = (broker.resolve_ms + 999) / 1000 + 1;
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv[i]) == -1)
			fatal("resolver socketpair");
	/* Their messages come through a pipe of their own, never our log. */
	if (pipe2(messages, O_CLOEXEC) == -1)
		fatal("resolver pipe");
	switch (keeper_pid = fork()) {
	case -1:
		fatal("resolver fork");
	case 0:
		if (dup2(messages[1], STDOUT_FILENO) == -1 ||
		    dup2(messages[1], STDERR_FILENO) == -1)
			_exit(1);
		/* Keep only stdio and the workers' sockets, at 3, 4, ... */
		for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
			if ((sv[i][1] = fcntl(sv[i][1], F_DUPFD, RESOLVER_FD +
			    LIMIT_RESOLVER_WORKERS)) == -1)
				_exit(1);
		for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
			if (dup2(sv[i][1], RESOLVER_FD + (int)i) == -1)
				_exit(1);
		if (close_range(RESOLVER_FD + LIMIT_RESOLVER_WORKERS, ~0U,
		    0) == -1)
			_exit(1);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		/* They end with the broker, not on the signals it handles. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		signal(SIGUSR1, SIG_IGN);
		signal(SIGUSR2, SIG_IGN);
		keeper_main(broker_pid);
	}
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++) {
		close(sv[i][1]);
		workers[i].index = i;
		if (loop_add(&workers[i].io, sv[i][0], EPOLLIN, resolver_event,
		    &workers[i]) == -1)
			fatal("resolver epoll");
	}
	close(messages[1]);
	if (fcntl(messages[0], F_SETFL, O_NONBLOCK) == -1 ||
	    loop_add(&stderr_io, messages[0], EPOLLIN, resolver_messages,
	    NULL) == -1)
		fatal("resolver pipe");
	log_debug("resolver process %d started", (int)keeper_pid);
}

/*
 * The broker's own warnings about the resolver: a hostile worker must
 * not fill the disk through them, so at most RESOLVER_MESSAGES a
 * second.
 */
static void __attribute__((format(printf, 1, 2)))
resolver_warn(const char *fmt, ...)
{
	static uint64_t	second;
	static unsigned	count;
	char		line[BROKER_WHY_MAX];
	va_list		ap;

	if (loop_now() / 1000 != second) {
		second = loop_now() / 1000;
		count = 0;
	}
	if (count++ >= RESOLVER_MESSAGES)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("resolver: %s", line);
}

/* Busy workers, and those of uid; a broken one counts as busy. */
static unsigned
busy_workers(uid_t uid, unsigned *of_uid)
{
	unsigned	i, n = 0;

	*of_uid = 0;
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++) {
		if (!workers[i].busy && !workers[i].broken)
			continue;
		n++;
		if (workers[i].busy && workers[i].uid == uid)
			(*of_uid)++;
	}
	return n;
}

/*
 * Whether a lookup of uid may take a worker now: a uid keeps at most
 * LIMIT_RESOLVER_WORKERS_PER_UID busy, and the last
 * LIMIT_RESOLVER_RESERVE idle ones go only to a uid with none busy.
 */
static bool
may_run(uid_t uid, unsigned *mine)
{
	unsigned	busy = busy_workers(uid, mine);
	unsigned	idle = LIMIT_RESOLVER_WORKERS - busy;

	if (idle == 0 || *mine >= LIMIT_RESOLVER_WORKERS_PER_UID)
		return false;
	return idle > LIMIT_RESOLVER_RESERVE || *mine == 0;
}

static struct served *
served_of(uid_t uid)
{
	struct served	*oldest = &served[0];
	size_t		 i;

	for (i = 0; i < RESOLVER_SERVED_MAX; i++) {
		if (served[i].when != 0 && served[i].uid == uid)
			return &served[i];
		if (served[i].when < oldest->when)
			oldest = &served[i];
	}
	return oldest;		/* forgets the uid served longest ago */
}

static uint64_t
last_served(uid_t uid)
{
	struct served	*sv = served_of(uid);

	return sv->when != 0 && sv->uid == uid ? sv->when : 0;
}

/*
 * Hands queued lookups to the idle workers they may take: first the
 * uid with the fewest workers busy, then the one served longest ago,
 * then the oldest lookup, so that a uid with many lookups waiting
 * cannot keep another from its turn.
 */
static void
dispatch(void)
{
	struct resolver_query	 q;
	struct pending		*p, *next;
	unsigned		 i, mine, next_mine = 0;
	uint64_t		 when, next_when = 0;

	for (;;) {
		next = NULL;
		for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
			p = &pending[i];
			if (p->state != PENDING_QUEUED || !may_run(p->uid, &mine))
				continue;
			when = last_served(p->uid);
			if (next == NULL || mine < next_mine ||
			    (mine == next_mine && (when < next_when ||
			    (when == next_when && p->seq < next->seq)))) {
				next = p;
				next_mine = mine;
				next_when = when;
			}
		}
		if (next == NULL)
			return;
		for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
			if (!workers[i].busy && !workers[i].broken)
				break;
		memset(&q, 0, sizeof(q));
		q.id = next->id;
		memcpy(q.name, next->name, sizeof(q.name));
		/*
		 * An idle worker's socket is empty, so the record fits; if
		 * it does not, the worker is broken until the keeper says
		 * it replaced it, and the lookup waits for another.
		 */
		if (send(workers[i].io.fd, &q, sizeof(q), MSG_NOSIGNAL |
		    MSG_DONTWAIT) != (ssize_t)sizeof(q)) {
			resolver_warn("worker %u takes no queries", i);
			workers[i].broken = true;
			continue;
		}
		next->state = PENDING_RUNNING;
		next->started_ms = loop_now();
		next->worker = i;
		workers[i].busy = true;
		workers[i].uid = next->uid;
		*served_of(next->uid) = (struct served){ next->uid,
		    ++dispatches };
	}
}

void
resolver_count(uint64_t ms)
{
	static const uint64_t	le[] = REPORT_LOOKUP_BUCKETS;
	size_t			i;

	counters.lookups++;
	counters.lookup_ms += ms;
	for (i = 0; i < sizeof(le) / sizeof(le[0]); i++)
		if (ms <= le[i])
			counters.lookup_le[i]++;
}

int
resolver_lookup(const char *name, uid_t uid, resolver_done done, void *arg,
    uint32_t *id, const char **why)
{
	unsigned	i, free_slot = LIMIT_RESOLVER_PENDING, mine = 0;
	unsigned	free_slots = 0;

	if (unavailable) {
		*why = "the resolver process is gone; restart the broker";
		return TB_ERESOLVE;
	}
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		if (pending[i].state == PENDING_FREE) {
			if (free_slot == LIMIT_RESOLVER_PENDING)
				free_slot = i;
			free_slots++;
		} else if (pending[i].uid == uid)
			mine++;
	}
	if (mine >= LIMIT_LOOKUPS_PER_UID) {
		*why = "too many name lookups of this uid are waiting";
		return TB_ELIMIT;
	}
	/* The last slots go only to a uid with no lookup at all. */
	if (free_slot == LIMIT_RESOLVER_PENDING || (mine > 0 &&
	    free_slots <= LIMIT_RESOLVER_QUEUE_RESERVE)) {
		*why = "too many name lookups are waiting in the broker";
		return TB_ELIMIT;
	}
	next_gen = (next_gen + 1) & 0xffffff;
	if (next_gen == 0)
		next_gen = 1;
	pending[free_slot] = (struct pending){ .id = next_gen << 8 | free_slot,
	    .state = PENDING_QUEUED, .seq = ++next_seq, .uid = uid,
	    .done = done, .arg = arg };
	snprintf(pending[free_slot].name, sizeof(pending[free_slot].name),
	    "%s", name);
	*id = pending[free_slot].id;
	dispatch();
	return 0;
}

void
resolver_cancel(uint32_t id)
{
	unsigned	slot = id & 0xff;

	if (slot >= LIMIT_RESOLVER_PENDING || pending[slot].id != id)
		return;
	/* A queued lookup costs nothing; a running one holds its worker. */
	if (pending[slot].state == PENDING_QUEUED)
		memset(&pending[slot], 0, sizeof(pending[slot]));
	else
		pending[slot].done = NULL;
}

/* Fails the lookup a worker ran (or every lookup) and frees it. */
static void
fail_worker(int worker, const char *reason)
{
	struct pending	p;
	unsigned	i;

	resolver_warn("%s; failing its lookups", reason);
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		p = pending[i];
		if (p.state == PENDING_FREE || (worker >= 0 &&
		    (p.state != PENDING_RUNNING || p.worker != (unsigned)worker)))
			continue;
		memset(&pending[i], 0, sizeof(pending[i]));
		if (p.done != NULL)
			p.done(p.arg, TB_ERESOLVE, NULL, 0);
	}
	if (worker >= 0)
		workers[worker].busy = false;
}

static void
resolver_event(struct loop_io *io, uint32_t events)
{
	struct worker_io	*w = io->owner;
	struct resolver_answer	 a;
	struct pending		 p;
	const char		*why;
	unsigned		 slot, i, k;
	ssize_t			 n;

	(void)events;
	/*
	 * A few records a turn: a worker that floods cannot hold the loop,
	 * and as it keeps sending, the next edge brings it back.
	 */
	for (k = 0; k < RESOLVER_RECORDS_BATCH; k++) {
		n = recv(io->fd, &a, sizeof(a), MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* The keeper and its workers are gone. */
			for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
				loop_remove(&workers[i].io);
			unavailable = true;
			fail_worker(-1, "the resolver processes are gone");
			return;
		}
		if (resolver_answer_check(&a, (size_t)n, &why) != 0) {
			/* Nothing more is sent to it until it is replaced. */
			resolver_warn("worker %u: %s", w->index, why);
			fail_worker((int)w->index, "a malformed answer");
			w->broken = true;
			continue;
		}
		if (a.id == 0) {
			/* The keeper replaced it: a new worker, idle. */
			fail_worker((int)w->index, "a resolver worker died");
			w->broken = false;
			continue;
		}
		if (w->broken)
			continue;
		slot = a.id & 0xff;
		if (slot >= LIMIT_RESOLVER_PENDING || pending[slot].id != a.id ||
		    pending[slot].state != PENDING_RUNNING ||
		    pending[slot].worker != w->index)
			continue;	/* failed already */
		p = pending[slot];
		memset(&pending[slot], 0, sizeof(pending[slot]));
		w->busy = false;
		resolver_count(loop_now() - p.started_ms);
		if (p.done == NULL)
			continue;	/* cancelled */
		/* Judge what the connection would reach: mapped is IPv4. */
		for (i = 0; i < a.naddrs; i++)
			host_addr_normalize(&a.addrs[i]);
		p.done(p.arg, a.code, a.addrs, a.naddrs);
	}
	dispatch();
}

/*
 * The resolver processes' own messages (libc's, or the keeper's), as
 * lines of ours that say where they came from: bounded, printable, and
 * at most RESOLVER_MESSAGES a second.
 */
static void
resolver_messages(struct loop_io *io, uint32_t events)
{
	static char	 line[RESOLVER_MESSAGE_MAX + 1];
	static size_t	 len;
	static uint64_t	 second;
	static unsigned	 count;
	char		 buf[512];
	ssize_t		 n, i;

	(void)events;
	while ((n = read(io->fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				loop_remove(io);
			return;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (len < RESOLVER_MESSAGE_MAX)
					line[len++] = buf[i] >= 0x20 &&
					    buf[i] < 0x7f ? buf[i] : '?';
				continue;
			}
			line[len] = '\0';
			if (loop_now() / 1000 != second) {
				second = loop_now() / 1000;
				count = 0;
			}
			if (count++ < RESOLVER_MESSAGES)
				log_warnx("resolver says: %s", line);
			len = 0;
		}
	}
	loop_remove(io);	/* end of file: they are gone */
}
