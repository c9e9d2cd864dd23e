/*
 * Fuzz target: the broker's whole session input path.  The input is one
 * client's byte stream (hello, requests, send and credit notifications)
 * given to the real session, connection, listener and policy code, in
 * chunks that end at each 0xc1 (a byte msgpack never uses as a type);
 * the first byte picks the client's uid, which the broker reads with
 * SO_PEERCRED as the daemon does (the target takes that effective uid
 * while it makes the socket pair).  The loop runs without
 * sleeping until nothing happens, after each chunk and after the end.
 *
 * Real sockets, no real network: as root the target first moves into a
 * network namespace of its own with only lo up, and the policy allows
 * loopback ports 4000-4003 only, so listeners and connections meet
 * inside it.  Without a namespace (not root) the policy allows nothing:
 * the decisions run, no connection is made.  Names have no rule, so no
 * lookup is ever made (there is no resolver process here).
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <net/if.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What main.c defines for the daemon. */
struct broker		broker;
struct broker_counters	counters;

/* Chunks of the client's bytes end at this byte. */
#define FUZZ_CHUNK_END		0xc1
/* Turns of the loop in which nothing happened that end a wait: turns. */
#define FUZZ_IDLE_TURNS		3
/* Most turns of the loop one wait takes: turns. */
#define FUZZ_TURNS_MAX		200

static const char policy_loopback[] =
    "tenant open {\n"
    "    match uid 1000\n"
    "    connect allow 127.0.0.1:4000-4003\n"
    "    connect allow [::1]:4000-4003\n"
    "    connect deny 127.0.0.1:4003\n"
    "    listen allow 127.0.0.1:4000-4002\n"
    "    listen allow [::1]:4000\n"
    "}\n"
    "tenant tight {\n"
    "    match uid 1001\n"
    "    connect allow 127.0.0.0/8:4000-4001\n"
    "    listen allow 127.0.0.1:4001\n"
    "    limit connections 2\n"
    "    limit listeners 1\n"
    "    limit rate 5/s\n"
    "    limit bandwidth 64KiB/s\n"
    "}\n";

static const char policy_none[] =
    "tenant open {\n"
    "    match uid *\n"
    "    connect deny 127.0.0.0/8:*\n"
    "}\n";

static const uid_t fuzz_uids[] = { 1000, 1001, 3000 };

/* A network namespace of our own with lo up; -1 when not allowed. */
static int
own_network(void)
{
	struct ifreq	ifr;
	int		fd, rc;

	if (unshare(CLONE_NEWNET) == -1)
		return -1;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0)
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return rc;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct policy_error	 err;
	const char		*text = policy_none;

	(void)argc;
	(void)argv;
	if (own_network() == 0)
		text = policy_loopback;
	else
		fprintf(stderr, "fuzz_session: no network namespace (not "
		    "root?): the policy allows nothing\n");
	log_init(LOG_LEVEL_ERROR);
	/* Decisions are logged as they are in the daemon, and dropped. */
	audit_open("/dev/null");
	if (policy_parse("fuzz", text, strlen(text), &broker.policy,
	    &err) != 0) {
		fprintf(stderr, "fuzz_session: %s\n", err.message);
		exit(1);
	}
	broker.policy_path = "fuzz";
	broker.resolve_ms = LIMIT_RESOLVE_MS;
	broker.limits = (struct broker_limits){ LIMIT_SESSIONS,
	    LIMIT_SESSIONS_PER_UID, LIMIT_SESSIONS_RESERVE, LIMIT_HANDLES,
	    LIMIT_HANDLES_PER_UID };
	broker.ctx.own = broker.own;
	/* Not a uid of any client here, so that none is refused as its own. */
	broker.uid = (uid_t)-2;
	broker.may_listen = policy_may_listen(broker.policy);
	loop_init((size_t)LIMIT_SESSIONS * 2 * (LIMIT_CALLS_PER_SESSION +
	    LIMIT_HANDLES_PER_SESSION));
	return 0;
}

/* Runs the loop until nothing happens; reads and drops the replies. */
static void
settle(int client)
{
	uint8_t	sink[65536];
	int	turn, idle = 0, n;
	bool	busy;

	for (turn = 0; turn < FUZZ_TURNS_MAX && idle < FUZZ_IDLE_TURNS;
	    turn++) {
		busy = loop_turn(0, session_reap, &n);
		while (client != -1 && read(client, sink, sizeof(sink)) > 0)
			busy = true;
		idle = n == 0 && !busy ? idle + 1 : 0;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct account	*acct;
	uid_t		 uid;
	const char	*why;
	const uint8_t	*end;
	size_t		 n, off;
	ssize_t		 w;
	int		 sv[2], turns, rc;

	if (size < 1)
		return 0;
	uid = geteuid();
	if (uid == 0 && seteuid(fuzz_uids[data[0] % 3]) == 0)
		uid = geteuid();
	data++;
	size--;
	rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv);
	if (uid != 0 && getuid() == 0 && seteuid(0) == -1)
		abort();
	if (rc == -1)
		return 0;
	if (session_open(sv[0], NULL, &why) != 0) {
		close(sv[1]);
		return 0;
	}
	while (size > 0) {
		end = memchr(data, FUZZ_CHUNK_END, size);
		n = end != NULL ? (size_t)(end - data) : size;
		for (off = 0, turns = 0; off < n && turns < FUZZ_TURNS_MAX;
		    turns++) {
			w = send(sv[1], data + off, n - off, MSG_NOSIGNAL);
			if (w > 0)
				off += (size_t)w;
			else if (w == -1 && errno == EPIPE)
				break;		/* the broker ended the session */
			else
				settle(sv[1]);
		}
		settle(sv[1]);
		n += end != NULL;
		data += n;
		size -= n;
	}
	/* The client goes: the broker must end the session, and free it. */
	close(sv[1]);
	settle(-1);
	acct = account_get(uid);
	if (acct != NULL && account_sessions(acct) != 0) {
		session_close_all();
		settle(-1);
	}
	if (acct != NULL && (account_sessions(acct) != 0 ||
	    account_handles(acct) != 0)) {
		fprintf(stderr, "fuzz_session: uid %u still has %u sessions "
		    "and %u handles\n", (unsigned)uid,
		    account_sessions(acct), account_handles(acct));
		abort();
	}
	return 0;
}
