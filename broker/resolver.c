/*
 * Name resolution in processes of its own, so that the loop never
 * blocks on DNS and the broker never touches /etc or NSS.  The broker
 * sends a name; a resolver worker answers with at most
 * LIMIT_RESOLVE_ADDRS addresses; the broker checks each of them against
 * the policy itself and connects only to one it checked.
 *
 * Processes: the broker forks a keeper once, at start; the keeper forks
 * LIMIT_RESOLVER_WORKERS workers and forks a new one whenever one dies,
 * so the broker itself never forks again.  All of them share one
 * SOCK_SEQPACKET socketpair with the broker: a query or an answer is one
 * fixed-size record, and each worker takes whole queries from it.  When
 * a worker dies the keeper sends a notice (id 0), and the broker fails
 * every lookup still waiting, since it cannot know which one was lost.
 *
 * The resolver is our own code, so a malformed record from it is a
 * broken invariant and fatal.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

/* The descriptor of the query socket in resolver processes. */
#define RESOLVER_FD		3

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
 * A lookup.  A cancelled one keeps its slot (done is NULL) until its
 * answer comes, so lookups nobody waits for still count against the
 * limits while a worker spends time on them.
 */
struct pending {
	uint32_t	 id;		/* 0 when the slot is free */
	uid_t		 uid;
	resolver_done	 done;
	void		*arg;
};

static struct loop_io	 resolver_io;
static pid_t		 keeper_pid = -1;
static bool		 confined;
static bool		 unavailable;
static struct pending	 pending[LIMIT_RESOLVER_PENDING];
static uint32_t		 next_gen;

static void	resolver_event(struct loop_io *io, uint32_t events);

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
		memset(&addr, 0, sizeof(addr));
		if (ai->ai_family == AF_INET) {
			addr.family = AF_INET;
			memcpy(addr.bytes, &((struct sockaddr_in *)
			    ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			addr.family = AF_INET6;
			memcpy(addr.bytes, &((struct sockaddr_in6 *)
			    ai->ai_addr)->sin6_addr, 16);
		} else
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

/* A worker: one query at a time, until the keeper goes. */
static void __attribute__((noreturn))
worker_main(pid_t keeper)
{
	struct resolver_query	q;
	struct resolver_answer	a;
	ssize_t			n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != keeper)
		_exit(1);
	if (confined && sandbox_resolver(false) != 0)
		_exit(1);
	for (;;) {
		n = recv(RESOLVER_FD, &q, sizeof(q), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(q))
			_exit(n == 0 ? 0 : 1);
		q.name[PROTO_HOST_NAME_MAX] = '\0';
		resolve(&q, &a);
		if (send(RESOLVER_FD, &a, sizeof(a), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(a))
			_exit(1);
	}
}

static void
worker_start(pid_t keeper)
{
	switch (fork()) {
	case -1:
		_exit(1);
	case 0:
		worker_main(keeper);
	}
}

/* The keeper: starts the workers and replaces those that die. */
static void __attribute__((noreturn))
keeper_main(pid_t broker_pid)
{
	struct resolver_answer	 notice;
	struct resolver_query	 warm = { 0, "localhost" };
	struct resolver_answer	 ignored;
	struct timespec		 now, last = { 0, 0 };
	pid_t			 self = getpid();
	int			 i, status;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != broker_pid)
		_exit(1);
	prctl(PR_SET_NAME, "tcpbroker-dns");
	/* Load the NSS modules once, so that workers inherit them loaded. */
	resolve(&warm, &ignored);
	if (confined && sandbox_resolver(true) != 0) {
		fprintf(stderr, "tcpbroker-dns: cannot install the filter\n");
		_exit(1);
	}
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
		worker_start(self);
	memset(&notice, 0, sizeof(notice));
	notice.code = TB_ERESOLVE;
	for (;;) {
		if (waitpid(-1, &status, 0) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (send(RESOLVER_FD, &notice, sizeof(notice), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(notice))
			_exit(1);
		/* A worker that keeps dying is restarted once a second. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last.tv_sec < 1)
			sleep(1);
		clock_gettime(CLOCK_MONOTONIC, &last);
		worker_start(self);
	}
}

void
resolver_start(bool sandbox)
{
	sigset_t	set;
	pid_t		broker_pid = getpid();
	int		sv[2];

	confined = sandbox;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("resolver socketpair");
	switch (keeper_pid = fork()) {
	case -1:
		fatal("resolver fork");
	case 0:
		/* Keep only stdio and the query socket. */
		if (dup2(sv[1], RESOLVER_FD) == -1 ||
		    close_range(RESOLVER_FD + 1, ~0U, 0) == -1)
			_exit(1);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		/* They end with the broker, not on the signals it handles. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		keeper_main(broker_pid);
	}
	close(sv[1]);
	if (loop_add(&resolver_io, sv[0], EPOLLIN, resolver_event, NULL) == -1)
		fatal("resolver epoll");
	log_debug("resolver process %d started", (int)keeper_pid);
}

int
resolver_lookup(const char *name, uid_t uid, resolver_done done, void *arg,
    uint32_t *id, const char **why)
{
	struct resolver_query	q;
	unsigned		i, free_slot = LIMIT_RESOLVER_PENDING, mine = 0;

	if (unavailable) {
		*why = "the resolver process is gone; restart the broker";
		return TB_ERESOLVE;
	}
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		if (pending[i].id == 0) {
			if (free_slot == LIMIT_RESOLVER_PENDING)
				free_slot = i;
		} else if (pending[i].uid == uid)
			mine++;
	}
	if (mine >= LIMIT_LOOKUPS_PER_UID) {
		*why = "too many name lookups of this uid are waiting";
		return TB_ELIMIT;
	}
	if (free_slot == LIMIT_RESOLVER_PENDING) {
		*why = "too many name lookups are waiting in the broker";
		return TB_ELIMIT;
	}
	memset(&q, 0, sizeof(q));
	next_gen = (next_gen + 1) & 0xffffff;
	if (next_gen == 0)
		next_gen = 1;
	q.id = next_gen << 8 | free_slot;
	strncpy(q.name, name, PROTO_HOST_NAME_MAX);
	/* The socket holds far more than LIMIT_RESOLVER_PENDING records. */
	if (send(resolver_io.fd, &q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(q)) {
		log_warnx("resolver: send: %s", strerror(errno));
		*why = "the resolver process does not take queries";
		return TB_ERESOLVE;
	}
	pending[free_slot] = (struct pending){ q.id, uid, done, arg };
	*id = q.id;
	return 0;
}

void
resolver_cancel(uint32_t id)
{
	unsigned	slot = id & 0xff;

	if (slot < LIMIT_RESOLVER_PENDING && pending[slot].id == id)
		pending[slot].done = NULL;
}

/* Fails every lookup still waiting and frees every slot. */
static void
fail_all(const char *reason)
{
	struct pending	p;
	unsigned	i;

	log_warnx("resolver: %s; failing the lookups that wait", reason);
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		p = pending[i];
		pending[i].id = 0;
		if (p.id != 0 && p.done != NULL)
			p.done(p.arg, TB_ERESOLVE, NULL, 0);
	}
}

static void
resolver_event(struct loop_io *io, uint32_t events)
{
	struct resolver_answer	 a;
	struct pending		 p;
	unsigned		 slot, i;
	ssize_t			 n;

	(void)events;
	for (;;) {
		n = recv(io->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* The keeper and every worker are gone. */
			loop_remove(io);
			unavailable = true;
			fail_all("the resolver processes are gone");
			return;
		}
		if (n != (ssize_t)sizeof(a) || a.naddrs > LIMIT_RESOLVE_ADDRS ||
		    (a.code != 0 && a.code != TB_ENOTFOUND &&
		    a.code != TB_ERESOLVE))
			fatalx("resolver: malformed answer");
		if (a.id == 0) {
			fail_all("a resolver worker died");
			continue;
		}
		slot = a.id & 0xff;
		if (slot >= LIMIT_RESOLVER_PENDING)
			fatalx("resolver: answer to an unknown query");
		if (pending[slot].id != a.id)
			continue;	/* failed already */
		p = pending[slot];
		pending[slot].id = 0;
		if (p.done == NULL)
			continue;	/* cancelled */
		/* Judge what the connection would reach: mapped is IPv4. */
		for (i = 0; i < a.naddrs; i++)
			host_addr_normalize(&a.addrs[i]);
		p.done(p.arg, a.code, a.addrs, a.naddrs);
	}
}
