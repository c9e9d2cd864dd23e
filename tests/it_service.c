/*
 * The broker as a service: log files rotated with mv and a signal,
 * signals that must not end it, its socket passed the way systemd
 * passes it (LISTEN_FDS, LISTEN_PID) with readiness sent to a
 * NOTIFY_SOCKET the test binds, and the socket directory made when it
 * is missing.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* How long the broker may take to show what a test waits for: ms. */
#define WAIT_MS		5000

static struct test_server	echo;
/*
 * The broker a test started, stopped by stop_live when the test fails
 * before it stops it itself.
 */
static struct broker_proc	 broker;
static bool			 live_broker;
static pid_t			 live_pid;

static int
setup(void **state)
{
	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	server_stop(&echo);
	return 0;
}

static int
stop_live(void **state)
{
	int	status;

	(void)state;
	if (live_broker && broker.pid > 0)
		harness_broker_stop(&broker);
	if (live_pid > 0 && kill(live_pid, SIGTERM) == 0)
		waitpid(live_pid, &status, 0);
	live_broker = false;
	live_pid = 0;
	return 0;
}

static bool
file_contains(const char *path, const char *needle)
{
	FILE	*f = fopen(path, "r");
	char	 line[2048];
	bool	 found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static off_t
file_size(const char *path)
{
	struct stat	st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* How many lines of path hold needle. */
static int
count_lines(const char *path, const char *needle)
{
	FILE	*f = fopen(path, "r");
	char	 line[2048];
	int	 n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

/* Waits until path holds needle; fails the test after WAIT_MS. */
static void
wait_for_line(const char *path, const char *needle)
{
	uint64_t	deadline = harness_now_ms() + WAIT_MS;

	while (!file_contains(path, needle)) {
		if (harness_now_ms() > deadline)
			fail_msg("%s: no line with \"%s\"", path, needle);
		harness_sleep_ms(10);
	}
}

static void
round_trip(tb_client *c)
{
	struct tb_error	err;
	tb_handle	h;
	char		buf[64];
	size_t		n;

	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "ping\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "ping");
	assert_ok(tb_close(c, h, &err), &err);
}

/*
 * A directory for log files, writable by the user the broker switches
 * to (--user nobody): the reader creates the new files after rotation
 * whoever owns it, and a broker taken over could put links in it.
 */
static void
make_log_dir(char *dir, size_t cap)
{
	struct passwd	*pw;

	snprintf(dir, cap, "/tmp/tcpbroker-logs-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (getuid() == 0) {
		assert_non_null(pw = getpwnam("nobody"));
		assert_int_equal(chown(dir, pw->pw_uid, pw->pw_gid), 0);
	}
}

static void
remove_dir(const char *dir)
{
	char	cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
rename_aside(const char *path, const char *suffix)
{
	char	to[192];

	snprintf(to, sizeof(to), "%s%s", path, suffix);
	assert_int_equal(rename(path, to), 0);
}

static void
test_logs_reopen_after_rotation(void **state)
{
	struct harness_options	 o = { 0 };
	tb_client		*c;
	char			 dir[64], log[128], decisions[128];
	char			 old_log[160], old_decisions[160];
	char			 victim[128], victim2[128];
	int			 reloads, i;

	(void)state;
	make_log_dir(dir, sizeof(dir));
	snprintf(log, sizeof(log), "%s/broker.log", dir);
	snprintf(decisions, sizeof(decisions), "%s/decisions.json", dir);
	snprintf(old_log, sizeof(old_log), "%s.1", log);
	snprintf(old_decisions, sizeof(old_decisions), "%s.1", decisions);
	o.args[0] = "--log";
	o.args[1] = log;
	o.args[2] = "--decision-log";
	o.args[3] = decisions;
	/* The user make_log_dir gave the directory to. */
	o.args[4] = "--user";
	o.args[5] = "nobody";
	harness_broker_start_opts(&broker, HARNESS_POLICY, &o);
	live_broker = true;
	c = harness_client(&broker);
	round_trip(c);
	wait_for_line(decisions, "\"verdict\":\"allow\"");

	/*
	 * Files still in place are kept: the reader opens them again, and
	 * the broker sees the same files and closes the new descriptors.
	 */
	assert_int_equal(kill(broker.pid, SIGHUP), 0);
	wait_for_line(log, "policy reloaded");
	assert_false(file_contains(log, "cannot reopen"));
	assert_false(file_contains(log, "log files reopened"));

	/* logrotate's way: rename, then SIGUSR1. */
	rename_aside(log, ".1");
	rename_aside(decisions, ".1");
	assert_int_equal(kill(broker.pid, SIGUSR1), 0);
	wait_for_line(log, "log files reopened");
	round_trip(c);
	wait_for_line(decisions, "\"verdict\":\"allow\"");
	assert_false(file_contains(old_log, "log files reopened"));
	assert_true(file_contains(old_log, "serving"));

	/*
	 * SIGHUP reopens too, then reloads: both land in the new file (so
	 * not harness_broker_reload, which reads the first stderr).
	 */
	rename_aside(log, ".2");
	rename_aside(decisions, ".2");
	assert_int_equal(kill(broker.pid, SIGHUP), 0);
	wait_for_line(log, "log files reopened");
	wait_for_line(log, "policy reloaded");
	round_trip(c);
	wait_for_line(decisions, "\"verdict\":\"allow\"");

	/*
	 * A link put where a log was is never followed: the reader keeps
	 * root's uid, and must not hand the broker another file to append
	 * to.  A symbolic link for the log, a hard link for the decisions.
	 */
	snprintf(old_log, sizeof(old_log), "%s.3", log);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(victim2, sizeof(victim2), "%s/victim2", dir);
	assert_int_equal(close(open(victim, O_WRONLY | O_CREAT, 0600)), 0);
	assert_int_equal(close(open(victim2, O_WRONLY | O_CREAT, 0600)), 0);
	rename_aside(log, ".3");
	rename_aside(decisions, ".3");
	assert_int_equal(symlink(victim, log), 0);
	assert_int_equal(link(victim2, decisions), 0);
	assert_int_equal(kill(broker.pid, SIGUSR1), 0);
	wait_for_line(old_log, "cannot reopen the decision log");
	assert_true(file_contains(old_log, "cannot reopen the log"));
	round_trip(c);
	assert_int_equal(file_size(victim), 0);
	assert_int_equal(file_size(victim2), 0);
	unlink(log);
	unlink(decisions);

	/*
	 * A FIFO where the log was: the reader opens without waiting, so
	 * it fails at once, and the reload that follows is answered.  One
	 * signal only: of a SIGUSR1 and a SIGHUP pending together, the
	 * broker reads SIGHUP first (the lower number), and the SIGUSR1's
	 * reopen after the FIFO is gone would start a new file.
	 */
	reloads = count_lines(old_log, "policy reloaded");
	assert_int_equal(mkfifo(log, 0600), 0);
	assert_int_equal(kill(broker.pid, SIGHUP), 0);
	for (i = 0; i < WAIT_MS / 10 &&
	    count_lines(old_log, "policy reloaded") == reloads; i++)
		harness_sleep_ms(10);
	assert_int_equal(count_lines(old_log, "policy reloaded"), reloads + 1);
	assert_true(file_contains(old_log, "No such device or address"));
	assert_false(file_contains(old_log, "did not answer"));
	unlink(log);

	tb_client_close(c);
	assert_int_equal(harness_broker_stop(&broker), 0);
	wait_for_line(old_log, "shutting down");
	remove_dir(dir);
}

/*
 * A directory on the log's path replaced by a symbolic link after
 * start: the reader opens the log in the directory it opened at start,
 * never where the link leads.
 */
static void
test_log_directory_replaced(void **state)
{
	struct harness_options	 o = { 0 };
	struct stat		 st;
	char			 dir[64], sub[96], log[128], moved[128];
	char			 target[96], planted[128];

	(void)state;
	make_log_dir(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(log, sizeof(log), "%s/broker.log", sub);
	snprintf(moved, sizeof(moved), "%s/sub.old/broker.log", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(planted, sizeof(planted), "%s/broker.log", target);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mkdir(target, 0700), 0);
	o.args[0] = "--log";
	o.args[1] = log;
	o.args[2] = "--user";
	o.args[3] = "nobody";
	harness_broker_start_opts(&broker, HARNESS_POLICY, &o);
	live_broker = true;
	wait_for_line(log, "serving");

	snprintf(moved, sizeof(moved), "%s/sub.old", dir);
	assert_int_equal(rename(sub, moved), 0);
	assert_int_equal(symlink(target, sub), 0);
	snprintf(moved, sizeof(moved), "%s/sub.old/broker.log", dir);
	assert_int_equal(kill(broker.pid, SIGUSR1), 0);
	assert_int_equal(kill(broker.pid, SIGHUP), 0);
	wait_for_line(moved, "policy reloaded");
	assert_int_equal(lstat(planted, &st), -1);

	assert_int_equal(harness_broker_stop(&broker), 0);
	live_broker = false;
	unlink(sub);
	remove_dir(dir);
}

static void
test_signals_do_not_end_the_broker(void **state)
{
	static const int	 ignored[] = { SIGUSR2, SIGALRM, SIGVTALRM,
				    SIGPROF, SIGIO, SIGPWR };
	tb_client		*c;
	char			 needle[64];
	const char		*name;
	size_t			 i;
	int			 status;

	(void)state;
	harness_broker_start(&broker, HARNESS_POLICY);
	live_broker = true;
	c = harness_client(&broker);
	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		assert_int_equal(kill(broker.pid, ignored[i]), 0);
		name = sigabbrev_np(ignored[i]);
		snprintf(needle, sizeof(needle), "signal %s from pid %d ignored",
		    name, (int)getpid());
		wait_for_line(broker.log, needle);
	}
	assert_int_equal(kill(broker.pid, SIGRTMIN + 1), 0);
	snprintf(needle, sizeof(needle), "signal RTMIN+1 from pid %d ignored",
	    (int)getpid());
	wait_for_line(broker.log, needle);
	/* SIGPIPE and SIGXFSZ are ignored without a word. */
	assert_int_equal(kill(broker.pid, SIGPIPE), 0);
	assert_int_equal(kill(broker.pid, SIGXFSZ), 0);
	round_trip(c);
	tb_client_close(c);

	/* SIGQUIT stops it, cleanly and with a word. */
	assert_int_equal(kill(broker.pid, SIGQUIT), 0);
	wait_for_line(broker.log, "signal QUIT");
	status = harness_broker_stop(&broker);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A Unix socket bound at path: listening (stream) or not (datagram). */
static int
bound_socket(const char *path, int type)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	int			fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_true((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* The next datagram on fd, within WAIT_MS; fails the test without. */
static void
expect_notify(int fd, const char *want)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	char		buf[256];
	ssize_t		n;

	if (poll(&pfd, 1, WAIT_MS) != 1)
		fail_msg("no notification; expected %s", want);
	assert_true((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/*
 * What systemd does for a socket unit: the listening socket at
 * descriptor 3, LISTEN_FDS=1 and LISTEN_PID set to the pid that execs
 * the service, and NOTIFY_SOCKET for Type=notify.
 */
static pid_t
spawn_activated(const char *dir, int listen_fd, const char *notify,
    const char *log)
{
	char		 policy[128], pid[16], stream[64];
	char		 unused[128];
	struct stat	 st;
	/*
	 * A --socket of its own, so that a broker that ignored the passed
	 * socket would serve there, never at the default path.
	 */
	const char	*argv[] = { TB_BROKER_BIN, "--policy", policy,
			    "--socket", unused, "--log-level", "debug", NULL };
	FILE		*f;
	pid_t		 child;
	int		 fd;

	snprintf(unused, sizeof(unused), "%s/not-passed.sock", dir);
	snprintf(policy, sizeof(policy), "%s/policy.conf", dir);
	assert_non_null(f = fopen(policy, "w"));
	fputs(HARNESS_POLICY, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(policy, 0644), 0);
	assert_true((child = fork()) != -1);
	if (child == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1 ||
		    dup2(listen_fd, 3) == -1)
			_exit(127);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		setenv("LISTEN_PID", pid, 1);
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", "tcpbroker.socket", 1);
		setenv("NOTIFY_SOCKET", notify, 1);
		/* StandardError=journal: the stream's device and inode. */
		if (fstat(fd, &st) == -1)
			_exit(127);
		snprintf(stream, sizeof(stream), "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", stream, 1);
		setenv("ASAN_OPTIONS", "symbolize=0", 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return child;
}

static int
wait_exit(pid_t pid)
{
	uint64_t	deadline = harness_now_ms() + WAIT_MS;
	int		status;

	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the broker did not stop");
		}
		harness_sleep_ms(10);
	}
	return status;
}

static void
test_socket_activation_and_readiness(void **state)
{
	struct tb_error	 err;
	tb_client	*c = NULL;
	char		 dir[64], sock[100], notify[100], log[128], line[160];
	pid_t		 pid;
	int		 lfd, nfd, status;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tcpbroker-sd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(sock, sizeof(sock), "%s/broker.sock", dir);
	snprintf(notify, sizeof(notify), "%s/notify", dir);
	snprintf(log, sizeof(log), "%s/broker.log", dir);
	lfd = bound_socket(sock, SOCK_STREAM);
	nfd = bound_socket(notify, SOCK_DGRAM);

	pid = spawn_activated(dir, lfd, notify, log);
	live_pid = pid;
	close(lfd);		/* the broker holds it now */
	expect_notify(nfd, "READY=1");
	snprintf(line, sizeof(line), "serving %s with policy", sock);
	assert_true(file_contains(log, line));
	assert_true(file_contains(log, "sandbox: filter installed"));
	/*
	 * To the journal: the priority as sd-daemon(3) prefixes it, and no
	 * time stamp or pid, which the journal records itself.
	 */
	snprintf(line, sizeof(line), "<6>info: serving %s with policy",
	    sock);
	assert_true(file_contains(log, line));
	assert_true(file_contains(log, "<7>debug: "));
	assert_false(file_contains(log, "Z tcpbroker["));

	/* A session on the passed socket works, under the filter. */
	assert_ok(tb_client_open_path(&c, sock, &err), &err);
	round_trip(c);

	assert_int_equal(kill(pid, SIGHUP), 0);
	expect_notify(nfd, "RELOADING=1");
	expect_notify(nfd, "READY=1");
	wait_for_line(log, "policy reloaded");
	round_trip(c);
	tb_client_close(c);

	assert_int_equal(kill(pid, SIGTERM), 0);
	expect_notify(nfd, "STOPPING=1");
	status = wait_exit(pid);
	live_pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(nfd);
	remove_dir(dir);
}

/* LISTEN_PID of another process: the broker binds its own socket. */
static void
test_listen_pid_of_another_process(void **state)
{
	struct harness_options	 o = { 0 };
	tb_client		*c;

	(void)state;
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "1", 1);
	harness_broker_start_opts(&broker, HARNESS_POLICY, &o);
	live_broker = true;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	c = harness_client(&broker);
	round_trip(c);
	tb_client_close(c);
	assert_int_equal(harness_broker_stop(&broker), 0);
}

/* A broker started with a socket in a directory that is missing. */
static void
test_socket_directory_is_created(void **state)
{
	struct tb_error	 err;
	struct stat	 st;
	tb_client	*c = NULL;
	char		 dir[64], rundir[80], sock[100], policy[128];
	const char	*argv[] = { TB_BROKER_BIN, "--policy", policy,
			    "--socket", sock, NULL };
	uint64_t	 deadline;
	FILE		*f;
	pid_t		 pid;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tcpbroker-run-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(rundir, sizeof(rundir), "%s/tcpbroker", dir);
	snprintf(sock, sizeof(sock), "%s/tcpbroker.sock", rundir);
	snprintf(policy, sizeof(policy), "%s/policy.conf", dir);
	assert_non_null(f = fopen(policy, "w"));
	fputs(HARNESS_POLICY, f);
	assert_int_equal(fclose(f), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		/* Its log beside it, not on the test's output. */
		snprintf(policy, sizeof(policy), "%s/broker.log", dir);
		if (freopen(policy, "w", stderr) == NULL ||
		    dup2(STDERR_FILENO, STDOUT_FILENO) == -1)
			_exit(127);
		snprintf(policy, sizeof(policy), "%s/policy.conf", dir);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	live_pid = pid;
	deadline = harness_now_ms() + WAIT_MS;
	while (tb_client_open_path(&c, sock, &err) != 0) {
		if (harness_now_ms() > deadline)
			fail_msg("the broker did not serve %s", sock);
		harness_sleep_ms(10);
	}
	assert_int_equal(stat(rundir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	round_trip(c);
	tb_client_close(c);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(WEXITSTATUS(wait_exit(pid)), 0);
	live_pid = 0;
	remove_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_teardown(test_logs_reopen_after_rotation, stop_live),
		cmocka_unit_test_teardown(test_log_directory_replaced, stop_live),
		cmocka_unit_test_teardown(test_signals_do_not_end_the_broker, stop_live),
		cmocka_unit_test_teardown(test_socket_activation_and_readiness, stop_live),
		cmocka_unit_test_teardown(test_listen_pid_of_another_process, stop_live),
		cmocka_unit_test_teardown(test_socket_directory_is_created, stop_live),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
