/*
 * Fair shares of the broker: one uid attacks, another keeps working.
 *   - slow DNS: a fake DNS server on loopback that never answers, while
 *     another uid resolves a name in /etc/hosts;
 *   - a log flood by reconnecting;
 *   - the session slots, and the descriptors.
 * The whole test runs in a network namespace of its own with only
 * loopback, and a mount namespace whose resolv.conf names the fake DNS
 * server, so no query can leave the machine.
 */
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "harness.h"
#include "tb_limits.h"

/* The attacking uid and the uid that keeps working. */
#define ATTACKER	5100
#define BYSTANDER	5200
/* How long each flood lasts: milliseconds. */
#define FLOOD_MS	2000
/* The longest a slow machine may stretch the log flood: milliseconds. */
#define FLOOD_MAX_MS	20000
/* Denied connects in each session of the log flood. */
#define FLOOD_DENIALS	10
/*
 * The broker's wait for a lookup in the DNS test: milliseconds.  A
 * starved lookup of the other uid waits until a worker the attacker
 * holds times out, nearly all of it; a served one only for a worker to
 * start, which a machine made slow by other work (ASan, a load of 8)
 * stretched past 1 s once.  The test wants the other uid's lookups
 * answered within half of it.
 */
#define RESOLVE_MS	8000
#define RESOLVE_ARG	"8000"

static struct test_server	echo;
/* Each test's broker; stopped after the test whatever its outcome. */
static struct broker_proc	broker;
static char			resolv[64] = "/tmp/tcpbroker-resolv-XXXXXX";
static int			dns_fd = -1;
static pthread_t		dns_thread;
static atomic_bool		dns_stop;
static atomic_int		dns_queries;

/* A DNS server that reads every query and answers none. */
static void *
dns_blackhole(void *arg)
{
	uint8_t		buf[512];
	struct timeval	tv = { 0, 100000 };

	(void)arg;
	setsockopt(dns_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!atomic_load(&dns_stop))
		if (recv(dns_fd, buf, sizeof(buf), 0) > 0)
			atomic_fetch_add(&dns_queries, 1);
	return NULL;
}

/* Only loopback, up, and a resolv.conf that names the black hole. */
static void
private_network(void)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	struct ifreq		ifr;
	char			path[96];
	FILE			*f;
	int			fd;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
		perror("it_fairness: namespaces");
		exit(1);
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd == -1 || ioctl(fd, SIOCGIFFLAGS, &ifr) == -1) {
		perror("it_fairness: lo");
		exit(1);
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1) {
		perror("it_fairness: lo up");
		exit(1);
	}
	close(fd);
	if (mkdtemp(resolv) == NULL) {
		perror("it_fairness: mkdtemp");
		exit(1);
	}
	chmod(resolv, 0755);
	snprintf(path, sizeof(path), "%s/resolv.conf", resolv);
	if ((f = fopen(path, "w")) == NULL) {
		perror("it_fairness: resolv.conf");
		exit(1);
	}
	fprintf(f, "nameserver 127.0.0.1\n");
	fclose(f);
	chmod(path, 0644);
	if (mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == -1) {
		perror("it_fairness: bind resolv.conf");
		exit(1);
	}
	sin.sin_port = htons(53);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (dns_fd == -1 || bind(dns_fd, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1) {
		perror("it_fairness: fake DNS server");
		exit(1);
	}
}

static int
setup(void **state)
{
	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	assert_int_equal(pthread_create(&dns_thread, NULL, dns_blackhole,
	    NULL), 0);
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	(void)state;
	atomic_store(&dns_stop, true);
	pthread_join(dns_thread, NULL);
	server_stop(&echo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", resolv);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * One session, connect and echo through the broker for uid; fails the
 * test if it does not work.  Returns how long it took: milliseconds.
 */
static uint64_t
echo_as(struct broker_proc *b, uid_t uid, const char *host)
{
	struct tb_error	 err;
	tb_client	*c;
	tb_handle	 h;
	char		 line[32];
	size_t		 n;
	uint64_t	 t0 = harness_now_ms();

	if ((c = harness_client_as(b, uid, &err)) == NULL)
		fail_msg("uid %u: %s", (unsigned)uid, err.message);
	assert_ok(tb_connect(c, host, echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "fair\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "fair");
	tb_client_close(c);
	return harness_now_ms() - t0;
}

/* How many lines of the broker's log hold both needles. */
static int
count_lines(struct broker_proc *b, const char *a, const char *c)
{
	char	 line[2048];
	int	 n = 0;
	FILE	*f = fopen(b->log, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, a) != NULL && (c == NULL ||
		    strstr(line, c) != NULL))
			n++;
	fclose(f);
	return n;
}

static void
start(struct broker_proc *bp, const struct harness_options *extra)
{
	struct harness_options	opts = { .hosts = "127.0.0.1 fast.test\n",
				    .args = { "--socket-mode", "0666",
				    "--resolve-timeout", RESOLVE_ARG } };

	if (extra != NULL) {
		opts.user = extra->user;
		opts.nofile = extra->nofile;
	}
	harness_broker_start_opts(bp, HARNESS_POLICY_WITH(
	    "    connect allow *.test:1024-65535\n"), &opts);
}

/*
 * An attacker keeps every lookup it may waiting on a DNS server that
 * never answers, and gives each up after 50 ms; another uid's name in
 * /etc/hosts still resolves at once.
 */
static void
test_slow_dns(void **state)
{
	struct tb_error		 err;
	tb_client		*attacker;
	tb_handle		 h;
	uint64_t		 worst = 0, took, end;
	char			 name[64];
	unsigned		 i = 0, rounds = 0;

	(void)state;
	start(&broker, NULL);
	/* The same work with nobody attacking, for comparison. */
	print_message("quiet: the other uid's session, connect by name and "
	    "echo took %llu ms\n", (unsigned long long)echo_as(&broker,
	    BYSTANDER, "fast.test"));
	assert_non_null(attacker = harness_client_as(&broker, ATTACKER, &err));
	end = harness_now_ms() + FLOOD_MS;
	while (harness_now_ms() < end && i < 10000) {
		/* A burst of lookups, each given up after 50 ms. */
		for (; i % 8 != 7; i++) {
			snprintf(name, sizeof(name), "slow%u.test", i);
			tb_connect_timeout(attacker, name, echo.port, 50, &h,
			    &err);
		}
		i++;
		took = echo_as(&broker, BYSTANDER, "fast.test");
		if (getenv("TB_VERBOSE") != NULL)
			print_message("round %u: %llu ms\n", rounds, (unsigned long long)took);
		if (took > worst)
			worst = took;
		rounds++;
	}
	tb_client_close(attacker);
	print_message("slow DNS: %u lookups abandoned by the attacker, %d "
	    "queries reached the black hole; the other uid's %u connects "
	    "by name took at most %llu ms\n", i, atomic_load(&dns_queries),
	    rounds, (unsigned long long)worst);
	assert_true(atomic_load(&dns_queries) > 0);
	assert_true(rounds > 0);
	assert_true(worst < RESOLVE_MS / 2);
}

/*
 * One uid reconnects as fast as it can, each session with a denied
 * connect; its lines are bounded by its budget, over all its sessions,
 * and another uid's decisions are all logged.
 */
static void
test_log_flood(void **state)
{
	struct tb_error		 err;
	tb_client		*c;
	tb_handle		 h;
	uint64_t		 t0, end, took, worst = 0;
	char			 mine[32];
	int			 sessions = 0, denials = 0, i, lines;
	int			 elapsed;

	(void)state;
	start(&broker, NULL);
	t0 = harness_now_ms();
	end = t0 + FLOOD_MS;
	/*
	 * For FLOOD_MS, and until there are more denials than the budget
	 * could ever log, however slow this machine is (within
	 * FLOOD_MAX_MS).
	 */
	while ((harness_now_ms() < end || denials <= LIMIT_LOG_DECISIONS *
	    (int)((harness_now_ms() - t0) / 1000 + 2)) &&
	    harness_now_ms() < t0 + FLOOD_MAX_MS) {
		if ((c = harness_client_as(&broker, ATTACKER, &err)) == NULL)
			continue;	/* refused while others close */
		for (i = 0; i < FLOOD_DENIALS; i++)
			if (tb_connect(c, "10.9.8.7", (uint16_t)(22 + i), &h,
			    &err) == TB_EPOLICY)
				denials++;
		tb_client_close(c);
		sessions++;
		if (sessions % 10 == 0) {
			/* The bystander, in the middle of it. */
			assert_non_null(c = harness_client_as(&broker, BYSTANDER,
			    &err));
			assert_rc(tb_connect(c, "10.9.8.6", 22, &h, &err),
			    TB_EPOLICY, &err);
			tb_client_close(c);
			took = echo_as(&broker, BYSTANDER, "127.0.0.1");
			if (took > worst)
				worst = took;
		}
	}
	elapsed = (int)((harness_now_ms() - t0) / 1000) + 2;
	/* The summaries come once each second is over. */
	for (i = 0; i < 300 && count_lines(&broker, "\"event\":\"suppressed\"",
	    "\"uid\":5100") == 0; i++)
		harness_sleep_ms(10);
	snprintf(mine, sizeof(mine), "\"uid\":%u,", ATTACKER);
	lines = count_lines(&broker, "\"event\":\"decision\"", mine);
	print_message("log flood: %d sessions, %d denials, %d decision lines "
	    "of the attacker logged in about %d s; the other uid's session, "
	    "connect and echo took at most %llu ms\n", sessions, denials,
	    lines, elapsed - 2, (unsigned long long)worst);
	assert_true(denials > LIMIT_LOG_DECISIONS * (elapsed - 1));
	assert_true(lines <= LIMIT_LOG_DECISIONS * elapsed);
	assert_true(count_lines(&broker, "\"event\":\"suppressed\"",
	    "\"uid\":5100") > 0);
	snprintf(mine, sizeof(mine), "uid %u ", ATTACKER);
	assert_true(count_lines(&broker, "opened", mine) <= LIMIT_LOG_LINES *
	    elapsed);
	snprintf(mine, sizeof(mine), "\"uid\":%u,", BYSTANDER);
	assert_int_equal(count_lines(&broker, "\"host\":\"10.9.8.6\"", mine),
	    sessions / 10);
}

/* A raw session of uid that has said hello; -1 if it was refused. */
static int
session_with_hello(struct broker_proc *b, uid_t uid)
{
	/* [0, 1, "hello", [PROTO_VERSION]] */
	uint8_t	hello[] = { 0x94, 0x00, 0x01, 0xa5, 'h', 'e', 'l', 'l', 'o',
		    0x91, PROTO_VERSION };
	uint8_t	buf[256];
	struct timeval tv = { 5, 0 };
	int	fd = harness_connect_as(b, uid);

	assert_true(fd != -1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello) ||
	    recv(fd, buf, sizeof(buf), 0) <= 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sessions: one uid's are capped, the last slots go to uids with none,
 * and a session without hello is closed.
 */
static void
test_session_slots(void **state)
{
	static int		 fds[LIMIT_SESSIONS];
	uint8_t			 buf[16];
	struct timeval		 tv = { 0, 0 };
	unsigned		 uid, n = 0, i, nuids;
	uint64_t		 t0;
	int			 fd, quiet;

	(void)state;
	start(&broker, NULL);
	/* One uid: its share, and no more. */
	for (i = 0; i < LIMIT_SESSIONS_PER_UID; i++)
		assert_true((fds[n++] = session_with_hello(&broker, ATTACKER)) != -1);
	assert_int_equal(session_with_hello(&broker, ATTACKER), -1);
	echo_as(&broker, BYSTANDER, "127.0.0.1");
	/* Many uids, up to the reserve. */
	nuids = (LIMIT_SESSIONS - LIMIT_SESSIONS_RESERVE) /
	    LIMIT_SESSIONS_PER_UID - 1;
	for (uid = 6000; uid < 6000 + nuids; uid++)
		for (i = 0; i < LIMIT_SESSIONS_PER_UID; i++)
			assert_true((fds[n++] = session_with_hello(&broker, uid)) !=
			    -1);
	/* In the reserve: a uid with a session gets no second. */
	assert_true((fds[n++] = session_with_hello(&broker, 7000)) != -1);
	assert_int_equal(session_with_hello(&broker, 7000), -1);
	/* A uid with none still gets in, and works. */
	print_message("session slots: %u sessions open; the other uid's "
	    "session, connect and echo took %llu ms\n", n, (unsigned long long)
	    echo_as(&broker, BYSTANDER, "127.0.0.1"));
	for (i = 0; i < n; i++)
		close(fds[i]);

	/* A session that never says hello is closed in LIMIT_HELLO_MS. */
	assert_true((fd = harness_connect_as(&broker, ATTACKER)) != -1);
	tv.tv_sec = LIMIT_HELLO_MS / 1000 + 5;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = harness_now_ms();
	quiet = (int)recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(quiet, 0);
	assert_true(harness_now_ms() - t0 >= LIMIT_HELLO_MS - 100);
	close(fd);
	assert_true(harness_log_contains(&broker, "no hello in time"));
}

/* A plain TCP connection to 127.0.0.1:port, from the test itself. */
static int
peer_connect(const char *port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			fd;

	sin.sin_port = htons((uint16_t)atoi(port));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) !=
	    -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/*
 * Descriptors: under a low limit the broker serves fewer and says how
 * many; one uid that takes all its share leaves room for another.
 */
static void
test_descriptors(void **state)
{
	struct harness_options	 low = { .user = "daemon", .nofile = 1024 };
	struct tb_error		 err;
	tb_client		*c;
	tb_handle		 h;
	char			 want[80], addr[TB_ADDR_STRLEN];
	tb_handle		 ls[45];
	bool			 ready[45];
	size_t			 nready;
	unsigned		 opened = 0;
	int			 rc = 0, i, peers[45], ready_all;
	uint64_t		 deadline;

	(void)state;
	start(&broker, &low);
	assert_true(harness_log_contains(&broker, "the descriptor limit 1024 is "
	    "short"));
	assert_true(harness_log_contains(&broker, "and 720 connections and "
	    "listeners (90 a uid)"));
	assert_non_null(c = harness_client_as(&broker, ATTACKER, &err));
	while (opened < 1000 && (rc = tb_listen(c, "127.0.0.1:0", &h,
	    &err)) == 0)
		opened++;
	assert_int_equal(rc, TB_ELIMIT);
	assert_int_equal(opened, 90);
	snprintf(want, sizeof(want), "uid %u has 90 connections and listeners "
	    "open, its limit", ATTACKER);
	assert_non_null(strstr(err.message, want));
	print_message("descriptors: one uid holds its 90 listeners; the other "
	    "uid's session, connect and echo took %llu ms\n",
	    (unsigned long long)echo_as(&broker, BYSTANDER, "127.0.0.1"));
	tb_client_close(c);

	/*
	 * A connection a listener takes ahead counts as one of the uid's:
	 * 45 listeners, a peer for each, and the uid is at its share.
	 */
	assert_non_null(c = harness_client_as(&broker, ATTACKER, &err));
	for (i = 0; i < 45; i++) {
		assert_ok(tb_listen(c, "127.0.0.1:0", &ls[i], &err), &err);
		assert_ok(tb_local_addr(c, ls[i], addr, sizeof(addr), &err),
		    &err);
		peers[i] = peer_connect(strrchr(addr, ':') + 1);
	}
	/* Each listener has taken its peer ahead once it says it is ready. */
	deadline = harness_now_ms() + 10000;
	for (ready_all = 0; ready_all < 45 && harness_now_ms() < deadline;
	    harness_sleep_ms(10)) {
		assert_ok(tb_select(c, ls, 45, ready, 100, &nready, &err), &err);
		ready_all = (int)nready;
	}
	assert_int_equal(ready_all, 45);
	assert_rc(tb_listen(c, "127.0.0.1:0", &h, &err), TB_ELIMIT, &err);
	for (i = 0; i < 45; i++)
		close(peers[i]);
	tb_client_close(c);
}

static int
stop_broker(void **state)
{
	(void)state;
	if (broker.pid > 0)
		harness_broker_stop(&broker);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_slow_dns, stop_broker),
		cmocka_unit_test_teardown(test_log_flood, stop_broker),
		cmocka_unit_test_teardown(test_session_slots, stop_broker),
		cmocka_unit_test_teardown(test_descriptors, stop_broker),
	};

	if (getuid() != 0) {
		fprintf(stderr, "it_fairness runs as root\n");
		return 77;
	}
	private_network();
	return cmocka_run_group_tests(tests, setup, teardown);
}
