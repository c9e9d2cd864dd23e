/*
 * The broker as it runs: started as root it serves as nobody, with
 * no_new_privs and its seccomp filter, and so do its resolver
 * processes; a reload that would need more than the filter allows is
 * refused.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <linux/capability.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "tb_limits.h"

#define NOLISTEN_RULES	"    connect allow 127.0.0.1:1024-65535\n"
#define NOLISTEN_POLICY	"tenant all {\n    match uid *\n" NOLISTEN_RULES "}\n"

static struct broker_proc	broker;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start(&broker, NOLISTEN_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

/* The value of a field of /proc/PID/status, as text. */
static void
status_field(pid_t pid, const char *field, char *out, size_t cap)
{
	char	path[64], line[256];
	size_t	len = strlen(field);
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	out[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			if (snprintf(out, cap, "%s", line + len + 1) >=
			    (int)cap)
				fail_msg("%s of pid %d: longer than %zu bytes",
				    field, (int)pid, cap);
			break;
		}
	}
	fclose(f);
}

static void
assert_confined(pid_t pid, const char *what)
{
	char		value[128];
	uint64_t	deadline = harness_now_ms() + 5000;
	int		uid;

	/* A process confines itself a moment after it starts: wait for it. */
	status_field(pid, "Seccomp", value, sizeof(value));
	while (atoi(value) != 2 && harness_now_ms() < deadline) {
		harness_sleep_ms(10);
		status_field(pid, "Seccomp", value, sizeof(value));
	}
	if (atoi(value) != 2)
		fail_msg("%s %d: Seccomp:%s", what, (int)pid, value);
	status_field(pid, "NoNewPrivs", value, sizeof(value));
	if (atoi(value) != 1)
		fail_msg("%s %d: NoNewPrivs:%s", what, (int)pid, value);
	if (getuid() == 0) {
		status_field(pid, "Uid", value, sizeof(value));
		uid = atoi(value);
		if (uid == 0)
			fail_msg("%s %d still runs as root", what, (int)pid);
	}
}

/*
 * The reader keeps root's uid to open the policy file, but only
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, under its own filter.
 */
static void
assert_reader_confined(pid_t pid)
{
	char		value[128];
	uint64_t	deadline = harness_now_ms() + 5000;
	unsigned long long caps;

	status_field(pid, "Seccomp", value, sizeof(value));
	while (atoi(value) != 2 && harness_now_ms() < deadline) {
		harness_sleep_ms(10);
		status_field(pid, "Seccomp", value, sizeof(value));
	}
	if (atoi(value) != 2)
		fail_msg("the reader %d: Seccomp:%s", (int)pid, value);
	status_field(pid, "NoNewPrivs", value, sizeof(value));
	assert_int_equal(atoi(value), 1);
	if (getuid() != 0)
		return;
	status_field(pid, "CapEff", value, sizeof(value));
	caps = strtoull(value, NULL, 16);
	if (caps != ((1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_DAC_READ_SEARCH)))
		fail_msg("the reader %d: CapEff:%s", (int)pid, value);
	status_field(pid, "CapBnd", value, sizeof(value));
	caps = strtoull(value, NULL, 16);
	if (caps != ((1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_DAC_READ_SEARCH)))
		fail_msg("the reader %d: CapBnd:%s", (int)pid, value);
}

static void
test_processes_are_confined(void **state)
{
	pid_t	keeper, reader, workers[16];
	int	nworkers, i;

	(void)state;
	/* The socket answers before the filter is in; a hello only after. */
	tb_client_close(harness_client(&broker));
	assert_confined(broker.pid, "the broker");
	keeper = harness_wait_child(broker.pid, "tcpbroker-dns");
	assert_confined(keeper, "the resolver keeper");
	/* The reader alone keeps root, with its own filter (reader.c). */
	reader = harness_wait_child(broker.pid, "tcpbroker-read");
	assert_reader_confined(reader);
	/* The keeper starts its workers once it is confined itself. */
	nworkers = harness_wait_children(keeper, workers, 16,
	    LIMIT_RESOLVER_WORKERS);
	for (i = 0; i < nworkers; i++)
		assert_confined(workers[i], "a resolver worker");
	assert_true(harness_log_contains(&broker, "running as tcpbroker"));
	assert_true(harness_log_contains(&broker, "(no listening: the policy "
	    "allows none)"));
}

/* path is root's, and no one else may read it. */
static void
assert_root_only(const char *path)
{
	struct stat	st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0077, 0);
}

static void
test_reload(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h;

	(void)state;
	assert_rc(tb_listen(c, "127.0.0.1:0", &h, &err), TB_EPOLICY, &err);
	/* The filter has no bind or listen: such a policy needs a restart. */
	assert_false(harness_broker_reload(&broker, "tenant all {\n"
	    "    match uid *\n" NOLISTEN_RULES
	    "    listen allow 127.0.0.1:0\n}\n"));
	assert_true(harness_log_contains(&broker, "restart the broker"));
	assert_rc(tb_listen(c, "127.0.0.1:0", &h, &err), TB_EPOLICY, &err);
	/* Report mode allows what the rules deny, listening included. */
	assert_false(harness_broker_reload(&broker, "tenant all {\n"
	    "    match uid *\n" NOLISTEN_RULES "    mode report\n}\n"));
	/* A broken file keeps the old policy. */
	assert_false(harness_broker_reload(&broker, "connect allow\n"));
	/* A policy within the filter's reach is taken. */
	assert_true(harness_broker_reload(&broker, "tenant all {\n"
	    "    match uid *\n" NOLISTEN_RULES
	    "    connect deny 127.0.0.1:1024-65535\n}\n"));
	assert_rc(tb_connect(c, "127.0.0.1", 5000, &h, &err), TB_EPOLICY,
	    &err);
	/*
	 * A policy file only root may read reloads all the same: the broker
	 * runs as tcpbroker, and its reader, which kept root's uid, opens
	 * the file for it.
	 */
	assert_true(harness_broker_reload_mode(&broker, "tenant all {\n"
	    "    match uid *\n" NOLISTEN_RULES
	    "    connect deny 127.0.0.1:4000-4999\n}\n", 0600));
	assert_root_only(broker.policy);
	assert_rc(tb_connect(c, "127.0.0.1", 4000, &h, &err), TB_EPOLICY,
	    &err);
	assert_true(harness_broker_reload_mode(&broker, "tenant all {\n"
	    "    match uid *\n" NOLISTEN_RULES
	    "    connect deny 127.0.0.1:1024-65535\n}\n", 0600));
	assert_rc(tb_connect(c, "127.0.0.1", 5000, &h, &err), TB_EPOLICY,
	    &err);
	/*
	 * Names in match lines are looked up again at reload, inside the
	 * filter, in the copies of /etc/passwd and /etc/group the reader
	 * passes.
	 */
	assert_true(harness_broker_reload(&broker, "tenant all {\n"
	    "    match uid root,daemon\n    match gid root\n"
	    NOLISTEN_RULES "}\n"));
	assert_false(harness_broker_reload(&broker, "tenant all {\n"
	    "    match uid no-such-user-here\n}\n"));
	assert_true(harness_log_contains(&broker, "no user called "
	    "\"no-such-user-here\""));
	tb_client_close(c);
	/* The broker is alive, and serves root as the tenant by name. */
	c = harness_client(&broker);
	assert_ok(tb_connect(c, "127.0.0.1", 1, &h, &err) == TB_EPOLICY ? 0 :
	    -1, &err);
	tb_client_close(c);
}

/* Sends a byte no message starts with; the session ends, not the broker. */
static void
poison(struct broker_proc *b)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	struct timeval		tv = { 5, 0 };
	char			c;
	int			fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", b->socket);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(send(fd, "\xc1", 1, 0), 1);
	assert_int_equal(recv(fd, &c, 1, 0), 0);
	close(fd);
}

/*
 * The first log line after the filter is written from a process that
 * logged nothing before: a quiet broker, and one started as a user.
 */
static void
test_quiet_and_unprivileged_brokers(void **state)
{
	struct harness_options	quiet = { .args = { "--log-level", "error" } };
	struct harness_options	user = { .user = "nobody" };
	struct broker_proc	b;
	tb_client		*c;
	struct tb_error		 err;
	tb_handle		 h;

	(void)state;
	harness_broker_start_opts(&b, NOLISTEN_POLICY, &quiet);
	poison(&b);
	c = harness_client(&b);
	assert_rc(tb_connect(c, "10.0.0.1", 80, &h, &err), TB_EPOLICY, &err);
	tb_client_close(c);
	assert_int_equal(harness_broker_stop(&b), 0);

	harness_broker_start_opts(&b, NOLISTEN_POLICY, &user);
	poison(&b);
	c = harness_client(&b);
	assert_rc(tb_connect(c, "10.0.0.1", 80, &h, &err), TB_EPOLICY, &err);
	tb_client_close(c);
	assert_int_equal(harness_broker_stop(&b), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_processes_are_confined),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_quiet_and_unprivileged_brokers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
