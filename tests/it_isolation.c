/*
 * Tenant isolation: the attacks of the isolation review, each run by
 * escape (tests/escape.c) under `tcpbroker run`, against a shared
 * broker and another tenant's launched command; and the identities the
 * broker and the launcher give their processes.  Each attack must fail,
 * and its target must be as it was.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* How long a launched command may take: milliseconds. */
#define RUN_MS		20000
/* The uids the launcher takes from, as the default --uid-range. */
#define RANGE_LO	2000000000u
#define RANGE_HI	2000009999u

static struct broker_proc	daemon_broker;
static char	dir[64], escape_bin[128], helper[128], broker_bin[128];
static char	policy[128], dgram_path[100], abstract[64];
static int	dgram_fd = -1, abstract_fd = -1;

/* The victim: another tenant's launched command, alive during the tests. */
static pid_t	victim_launcher, victim_cmd, victim_broker;
static int	victim_stdin = -1;

static void
copy(const char *from, const char *to, const char *mode)
{
	char	cmd[512];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod %s '%s'", from, to,
	    mode, to);
	assert_int_equal(system(cmd), 0);
}

static char
state_of(pid_t pid)
{
	char	path[64], buf[512], *p, state = '?';
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return '?';
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) !=
	    NULL)
		state = p[2];
	fclose(f);
	return state;
}

/* The soft limit on descriptors of pid, from /proc. */
static long
nofile_of(pid_t pid)
{
	char	path[64], line[256];
	long	soft = -1;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Max open files %ld", &soft) == 1)
			break;
	fclose(f);
	return soft;
}

/* Whether pid runs in a PID namespace below ours (NSpid has two). */
static bool
nested(pid_t pid)
{
	char	path[64], line[256];
	int	a, b;
	bool	yes = false;
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "NSpid: %d %d", &a, &b) == 2)
			yes = true;
	fclose(f);
	return yes;
}

/*
 * Starts `tcpbroker run ... -- escape ARGS` (as uid, unless it is 0),
 * with stdin and stdout as pipes of ours when given.
 */
static pid_t
launch(uid_t uid, char *const args[], int *in, int *out)
{
	const char	*argv[24];
	int		 inp[2], outp[2], n = 0, i;
	pid_t		 pid;

	argv[n++] = broker_bin;
	argv[n++] = "run";
	argv[n++] = "--policy";
	argv[n++] = policy;
	argv[n++] = "--bind-ro";
	argv[n++] = dir;
	argv[n++] = "--log-level";
	argv[n++] = "error";
	argv[n++] = "--";
	argv[n++] = escape_bin;
	for (i = 0; args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe(inp), 0);
	assert_int_equal(pipe(outp), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		dup2(inp[0], 0);
		dup2(outp[1], 1);
		close_range(3, ~0U, 0);
		if (uid != 0 && (setgroups(0, NULL) == -1 ||
		    setresgid(uid, uid, uid) == -1 ||
		    setresuid(uid, uid, uid) == -1))
			_exit(125);
		execv(argv[0], (char *const *)argv);
		_exit(125);
	}
	close(inp[0]);
	close(outp[1]);
	if (in != NULL)
		*in = inp[1];
	else
		close(inp[1]);
	if (out != NULL)
		*out = outp[0];
	else
		close(outp[0]);
	return pid;
}

/* Waits for pid, for at most RUN_MS; kills it by PID if it hangs. */
static int
reap(pid_t pid)
{
	uint64_t	deadline = harness_now_ms() + RUN_MS;
	int		status;

	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("a launched command did not finish");
		}
		harness_sleep_ms(10);
	}
	return status;
}

/* Reads a line from fd within RUN_MS. */
static void
read_line(int fd, char *buf, size_t cap)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	size_t		len = 0;
	ssize_t		n;

	while (len + 1 < cap) {
		assert_int_equal(poll(&pfd, 1, RUN_MS), 1);
		n = read(fd, buf + len, 1);
		assert_true(n == 1);
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
}

static int
setup(void **state)
{
	struct harness_options	 opts = { .args = { "--socket-mode", "0666" } };
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	char			*wait_args[] = { "wait", NULL };
	char			 line[64];
	pid_t			 kids[8], grand[8];
	int			 out, i, j, n, m;
	FILE			*f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tcpbroker-iso-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(escape_bin, sizeof(escape_bin), "%s/escape", dir);
	copy(TB_ESCAPE, escape_bin, "0755");
	snprintf(helper, sizeof(helper), "%s/setuid-helper", dir);
	copy(TB_ESCAPE, helper, "4755");
	snprintf(broker_bin, sizeof(broker_bin), "%s/tcpbroker", dir);
	copy(TB_BROKER_BIN, broker_bin, "0755");
	snprintf(policy, sizeof(policy), "%s/policy.conf", dir);
	assert_non_null(f = fopen(policy, "w"));
	fprintf(f, "tenant all {\n    match uid *\n"
	    "    connect allow 127.0.0.1:1024-65535\n}\n");
	fclose(f);
	assert_int_equal(chmod(policy, 0644), 0);

	/* Datagram sockets on the host that nothing may reach. */
	snprintf(dgram_path, sizeof(dgram_path), "%s/dgram.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", dgram_path);
	dgram_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(dgram_fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	assert_int_equal(chmod(dgram_path, 0666), 0);
	snprintf(abstract, sizeof(abstract), "tcpbroker-escape-%d",
	    (int)getpid());
	memset(sun.sun_path, 0, sizeof(sun.sun_path));
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "%s", abstract);
	abstract_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(abstract_fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(abstract))), 0);

	harness_broker_start_opts(&daemon_broker, HARNESS_POLICY, &opts);

	/* The victim, and its command's and broker's host pids. */
	victim_launcher = launch(0, wait_args, &victim_stdin, &out);
	read_line(out, line, sizeof(line));
	assert_string_equal(line, "waiting");
	close(out);
	n = harness_children(victim_launcher, kids, 8);
	for (i = 0; i < n; i++) {
		m = harness_children(kids[i], grand, 8);
		for (j = 0; j < m; j++)
			if (nested(grand[j]))
				victim_cmd = grand[j];
		if (!nested(kids[i]))
			victim_broker = kids[i];
	}
	assert_true(victim_cmd > 0);
	assert_true(victim_broker > 0);
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	(void)state;
	if (victim_stdin != -1)
		close(victim_stdin);
	if (victim_launcher > 0)
		reap(victim_launcher);
	harness_broker_stop(&daemon_broker);
	close(dgram_fd);
	close(abstract_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The daemon runs as a user of its own and serves no session of it. */
static void
test_daemon_identity(void **state)
{
	struct passwd	*pw;
	uint8_t		 buf[64];
	uid_t		 uid = (uid_t)harness_status_field(daemon_broker.pid,
			    "Uid:");
	int		 fd;

	(void)state;
	assert_non_null(pw = getpwnam("tcpbroker"));
	assert_int_equal(uid, pw->pw_uid);
	assert_int_not_equal(uid, 0);
	assert_int_not_equal(uid, 65534);
	/* A session of the broker's own uid is closed at once. */
	assert_true((fd = harness_connect_as(&daemon_broker, uid)) != -1);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	assert_true(harness_log_contains(&daemon_broker,
	    "it is the broker's own uid"));
}

/* Every launched command, and every broker of one, has a uid of its own. */
static void
test_launched_identities(void **state)
{
	char	*id_args[] = { "id", NULL };
	char	 line[64];
	uid_t	 cmd = (uid_t)harness_status_field(victim_cmd, "Uid:");
	uid_t	 brk, other;
	pid_t	 pid;
	int	 out, status, i;

	(void)state;
	/*
	 * The broker switches uids during its set-up, which may still run
	 * when the command is already waiting: read its uid once it has
	 * confined itself, which comes after.
	 */
	for (i = 0; i < 500 && harness_status_field(victim_broker,
	    "Seccomp:") != 2; i++)
		harness_sleep_ms(10);
	assert_int_equal(harness_status_field(victim_broker, "Seccomp:"), 2);
	brk = (uid_t)harness_status_field(victim_broker, "Uid:");
	assert_true(cmd >= RANGE_LO && cmd <= RANGE_HI);
	assert_true(brk >= RANGE_LO && brk <= RANGE_HI);
	assert_int_not_equal(cmd, brk);
	assert_int_not_equal(cmd, (uid_t)harness_status_field(daemon_broker.pid,
	    "Uid:"));
	pid = launch(0, id_args, NULL, &out);
	read_line(out, line, sizeof(line));
	close(out);
	status = reap(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	other = (uid_t)strtoul(line, NULL, 10);
	assert_true(other >= RANGE_LO && other <= RANGE_HI);
	assert_int_not_equal(other, cmd);
	assert_int_not_equal(other, brk);
}

/* Runs one attack as a launched command of uid; it must fail whole. */
static void
attack(uid_t uid, char *const args[])
{
	int	status = reap(launch(uid, args, NULL, NULL));

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("escape %s: status %d (see its stderr)", args[0],
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void
all_attacks(uid_t uid)
{
	char	d[16], c[16], b[16];
	char	*signal_args[] = { "signal", d, c, b, NULL };
	char	*prlimit_args[] = { "prlimit", d, c, b, NULL };
	char	*mem_args[] = { "mem", d, c, b, NULL };
	char	*unix_args[] = { "unix", dgram_path, abstract, NULL };
	char	*sockets_args[] = { "sockets", NULL };
	char	*abi_args[] = { "abi", NULL };
	char	*kernel_args[] = { "kernel", NULL };
	char	*setuid_args[] = { "setuid", helper, NULL };
	long	 nofile = nofile_of(daemon_broker.pid);
	char	 buf[16];

	snprintf(d, sizeof(d), "%d", (int)daemon_broker.pid);
	snprintf(c, sizeof(c), "%d", (int)victim_cmd);
	snprintf(b, sizeof(b), "%d", (int)victim_broker);
	attack(uid, signal_args);
	attack(uid, prlimit_args);
	attack(uid, mem_args);
	attack(uid, unix_args);
	attack(uid, sockets_args);
	attack(uid, abi_args);
	attack(uid, kernel_args);
	attack(uid, setuid_args);
	/* The targets are as they were. */
	assert_int_not_equal(state_of(daemon_broker.pid), 'T');
	assert_int_equal(nofile_of(daemon_broker.pid), nofile);
	assert_int_equal(kill(victim_cmd, 0), 0);
	assert_int_not_equal(state_of(victim_cmd), 'T');
	assert_int_equal(kill(victim_broker, 0), 0);
	assert_int_equal(recv(dgram_fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(recv(abstract_fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN);
}

/* Launched by root: a uid of its own, and every layer. */
static void
test_attacks_launched_by_root(void **state)
{
	(void)state;
	all_attacks(0);
}

/*
 * Launched by a user: the user's uid, in a user namespace; the other
 * layers hold all the same.
 */
static void
test_attacks_launched_by_a_user(void **state)
{
	struct passwd	*pw;

	(void)state;
	assert_non_null(pw = getpwnam("nobody"));
	all_attacks(pw->pw_uid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daemon_identity),
		cmocka_unit_test(test_launched_identities),
		cmocka_unit_test(test_attacks_launched_by_root),
		cmocka_unit_test(test_attacks_launched_by_a_user),
	};

	if (getuid() != 0) {
		fprintf(stderr, "it_isolation runs as root\n");
		return 77;
	}
	/* A confined command cannot be ptraced, so no LeakSanitizer there. */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
