/*
 * Name resolution in a separate process, so that the loop never blocks
 * on DNS.  The broker sends a name, the resolver answers with at most
 * LIMIT_RESOLVE_ADDRS addresses; the broker checks each of them against
 * the policy itself and connects only to one it checked.
 *
 * The two talk over a SOCK_SEQPACKET socketpair with fixed-size records.
 * The resolver is our own process, so a malformed record from it is a
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

struct resolver_query {
	uint32_t	id;
	char		name[PROTO_HOST_NAME_MAX + 1];
};

struct resolver_answer {
	uint32_t		id;
	int32_t			code;	/* 0, TB_ENOTFOUND or TB_ERESOLVE */
	uint32_t		naddrs;
	struct host_addr	addrs[LIMIT_RESOLVE_ADDRS];
};

struct pending {
	uint32_t	 id;		/* 0 when the slot is free */
	resolver_done	 done;
	void		*arg;
};

static struct loop_io	 resolver_io;
static pid_t		 resolver_pid = -1;
static struct pending	 pending[LIMIT_RESOLVER_PENDING];
static uint32_t		 next_gen;

static void	resolver_event(struct loop_io *io, uint32_t events);

/* The resolver process: one query at a time, until the broker goes. */
static void __attribute__((noreturn))
resolver_main(int fd)
{
	struct resolver_query	 q;
	struct resolver_answer	 a;
	struct addrinfo		 hints, *res, *ai;
	ssize_t			 n;
	unsigned		 i;
	int			 rc;

	prctl(PR_SET_NAME, "tcpbroker-dns");
	for (;;) {
		n = recv(fd, &q, sizeof(q), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(q))
			_exit(n == 0 ? 0 : 1);
		q.name[PROTO_HOST_NAME_MAX] = '\0';
		memset(&a, 0, sizeof(a));
		a.id = q.id;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(q.name, NULL, &hints, &res);
		if (rc == EAI_NONAME || rc == EAI_NODATA)
			a.code = TB_ENOTFOUND;
		else if (rc != 0)
			a.code = TB_ERESOLVE;
		else {
			for (ai = res; ai != NULL &&
			    a.naddrs < LIMIT_RESOLVE_ADDRS; ai = ai->ai_next) {
				struct host_addr addr = { 0 };
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
				for (i = 0; i < a.naddrs; i++)
					if (host_addr_equal(&a.addrs[i], &addr))
						break;
				if (i == a.naddrs)
					a.addrs[a.naddrs++] = addr;
			}
			freeaddrinfo(res);
			if (a.naddrs == 0)
				a.code = TB_ENOTFOUND;
		}
		if (send(fd, &a, sizeof(a), MSG_NOSIGNAL) != (ssize_t)sizeof(a))
			_exit(1);
	}
}

void
resolver_start(void)
{
	sigset_t	set;
	int		sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("resolver socketpair");
	switch (resolver_pid = fork()) {
	case -1:
		fatal("resolver fork");
	case 0:
		/* Keep only stdio and the query socket. */
		if (dup2(sv[1], 3) == -1 || close_range(4, ~0U, 0) == -1)
			_exit(1);
		/* Die with the broker, whatever way it goes. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() == 1)
			_exit(1);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		/* It ends when the broker closes the socket, not on signals. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		resolver_main(3);
	}
	close(sv[1]);
	if (loop_add(&resolver_io, sv[0], EPOLLIN, resolver_event, NULL) == -1)
		fatal("resolver epoll");
	log_debug("resolver process %d started", (int)resolver_pid);
}

uint32_t
resolver_lookup(const char *name, resolver_done done, void *arg)
{
	struct resolver_query	q;
	unsigned		i;

	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++)
		if (pending[i].id == 0)
			break;
	if (i == LIMIT_RESOLVER_PENDING)
		return 0;
	memset(&q, 0, sizeof(q));
	next_gen = (next_gen + 1) & 0xffffff;
	if (next_gen == 0)
		next_gen = 1;
	q.id = next_gen << 8 | i;
	strncpy(q.name, name, PROTO_HOST_NAME_MAX);
	/* The socket buffer holds far more than LIMIT_RESOLVER_PENDING. */
	if (send(resolver_io.fd, &q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(q)) {
		log_warnx("resolver: send: %s", strerror(errno));
		return 0;
	}
	pending[i].id = q.id;
	pending[i].done = done;
	pending[i].arg = arg;
	return q.id;
}

void
resolver_cancel(uint32_t id)
{
	unsigned	slot = id & 0xff;

	if (slot < LIMIT_RESOLVER_PENDING && pending[slot].id == id)
		pending[slot].id = 0;
}

/* The resolver died: fail what it held and start a new one. */
static void
resolver_restart(void)
{
	struct pending	p;
	unsigned	i;
	int		status;

	loop_remove(&resolver_io);
	if (resolver_pid > 0)
		waitpid(resolver_pid, &status, 0);
	log_warnx("resolver process %d died; restarting it", (int)resolver_pid);
	resolver_start();
	for (i = 0; i < LIMIT_RESOLVER_PENDING; i++) {
		if (pending[i].id == 0)
			continue;
		p = pending[i];
		pending[i].id = 0;
		p.done(p.arg, TB_ERESOLVE, NULL, 0);
	}
}

static void
resolver_event(struct loop_io *io, uint32_t events)
{
	struct resolver_answer	 a;
	struct pending		*p;
	ssize_t			 n;

	(void)events;
	for (;;) {
		n = recv(io->fd, &a, sizeof(a), MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			resolver_restart();
			return;
		}
		if (n != (ssize_t)sizeof(a) || a.naddrs > LIMIT_RESOLVE_ADDRS ||
		    (a.code != 0 && a.code != TB_ENOTFOUND &&
		    a.code != TB_ERESOLVE))
			fatalx("resolver: malformed answer");
		if ((a.id & 0xff) >= LIMIT_RESOLVER_PENDING)
			fatalx("resolver: answer to an unknown query");
		p = &pending[a.id & 0xff];
		if (p->id != a.id)
			continue;	/* cancelled */
		p->id = 0;
		p->done(p->arg, a.code, a.addrs, a.naddrs);
	}
}
