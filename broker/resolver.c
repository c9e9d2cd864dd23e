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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

/* The first query socket's descriptor in the keeper; the rest follow. */
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
	unsigned	 worker;
	resolver_done	 done;
	void		*arg;
};

struct worker_io {
	struct loop_io	 io;
	unsigned	 index;
	unsigned	 pending;	/* lookups sent to this worker */
};

static struct worker_io	 workers[LIMIT_RESOLVER_WORKERS];
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
		resolve(&q, &a);
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
	struct resolver_query	 warm = { 0, "localhost" };
	struct resolver_answer	 ignored;
	struct timespec		 now, last = { 0, 0 };
	pid_t			 self = getpid(), pids[LIMIT_RESOLVER_WORKERS];
	pid_t			 pid;
	unsigned		 i;
	int			 status;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != broker_pid)
		_exit(1);
	prctl(PR_SET_NAME, "tcpbroker-dns");
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
	resolve(&warm, &ignored);
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
	int		sv[LIMIT_RESOLVER_WORKERS][2];
	unsigned	i;

	confined = sandbox;
	for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv[i]) == -1)
			fatal("resolver socketpair");
	switch (keeper_pid = fork()) {
	case -1:
		fatal("resolver fork");
	case 0:
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
	log_debug("resolver process %d started", (int)keeper_pid);
}

int
resolver_lookup(const char *name, uid_t uid, resolver_done done, void *arg,
    uint32_t *id, const char **why)
{
	struct resolver_query	 q;
	struct worker_io	*w = &workers[0];
	unsigned		 i, free_slot = LIMIT_RESOLVER_PENDING, mine = 0;

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
	/* The worker with the fewest lookups. */
	for (i = 1; i < LIMIT_RESOLVER_WORKERS; i++)
		if (workers[i].pending < w->pending)
			w = &workers[i];
	memset(&q, 0, sizeof(q));
	next_gen = (next_gen + 1) & 0xffffff;
	if (next_gen == 0)
		next_gen = 1;
	q.id = next_gen << 8 | free_slot;
	strncpy(q.name, name, PROTO_HOST_NAME_MAX);
	/* The socket holds far more than LIMIT_RESOLVER_PENDING records. */
	if (send(w->io.fd, &q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(q)) {
		log_warnx("resolver: send: %s", strerror(errno));
		*why = "the resolver process does not take queries";
		return TB_ERESOLVE;
	}
	pending[free_slot] = (struct pending){ q.id, uid, w->index, done, arg };
	w->pending++;
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

/* Fails the lookups sent to one worker (or to all) and frees their slots. */
static void
fail_worker(int worker, const char *reason)
{
	struct pending	p;
	unsigned	i;

	log_warnx("resolver: %s; failing its waiting lookups", reason);
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		p = pending[i];
		if (p.id == 0 || (worker >= 0 && p.worker != (unsigned)worker))
			continue;
		pending[i].id = 0;
		workers[p.worker].pending--;
		if (p.done != NULL)
			p.done(p.arg, TB_ERESOLVE, NULL, 0);
	}
}

static void
resolver_event(struct loop_io *io, uint32_t events)
{
	struct worker_io	*w = io->owner;
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
			/* The keeper and its workers are gone. */
			for (i = 0; i < LIMIT_RESOLVER_WORKERS; i++)
				loop_remove(&workers[i].io);
			unavailable = true;
			fail_worker(-1, "the resolver processes are gone");
			return;
		}
		slot = a.id & 0xff;
		if (n != (ssize_t)sizeof(a) || a.naddrs > LIMIT_RESOLVE_ADDRS ||
		    (a.code != 0 && a.code != TB_ENOTFOUND &&
		    a.code != TB_ERESOLVE) ||
		    (a.id != 0 && slot >= LIMIT_RESOLVER_PENDING)) {
			fail_worker((int)w->index, "malformed answer from a "
			    "resolver worker");
			continue;
		}
		if (a.id == 0) {
			fail_worker((int)w->index, "a resolver worker died");
			continue;
		}
		if (pending[slot].id != a.id ||
		    pending[slot].worker != w->index)
			continue;	/* failed already */
		p = pending[slot];
		pending[slot].id = 0;
		w->pending--;
		if (p.done == NULL)
			continue;	/* cancelled */
		/* Judge what the connection would reach: mapped is IPv4. */
		for (i = 0; i < a.naddrs; i++)
			host_addr_normalize(&a.addrs[i]);
		p.done(p.arg, a.code, a.addrs, a.naddrs);
	}
}
