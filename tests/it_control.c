/*
 * The control socket: tcpbroker status and tcpbroker metrics against a
 * real broker with real connections open, and who may ask.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The uid that may not ask. */
#define STRANGER	4545
/* Longest answer the test reads: bytes. */
#define ANSWER_MAX	(256 * 1024)

static struct broker_proc	broker;
static struct test_server	echo;
static char			control[64];
/* The control socket the commands ask: the broker's, or a fake one. */
static const char		*ask_path = control;
/* A copy of the broker that other users can run, wherever the build is. */
static char			copy_dir[64], broker_copy[96];

static int
setup(void **state)
{
	struct harness_options	opts = { .args = { "--control", control,
				    "--control-group", "daemon" } };

	(void)state;
	snprintf(control, sizeof(control), "/tmp/tcpbroker-ctl-%d.sock",
	    (int)getpid());
	snprintf(copy_dir, sizeof(copy_dir), "/tmp/tcpbroker-ctl-XXXXXX");
	assert_non_null(mkdtemp(copy_dir));
	assert_int_equal(chmod(copy_dir, 0755), 0);
	snprintf(broker_copy, sizeof(broker_copy), "%s/tcpbroker", copy_dir);
	harness_copy(TB_BROKER_BIN, broker_copy);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	harness_broker_start_opts(&broker, HARNESS_POLICY, &opts);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	harness_broker_stop(&broker);
	server_stop(&echo);
	unlink(control);
	unlink(broker_copy);
	rmdir(copy_dir);
	return 0;
}

/* Runs tcpbroker A1 A2 as uid and gid (root: 0); its output and status. */
static int
ctl_as(uid_t uid, gid_t gid, char *out, size_t cap, const char *a1,
    const char *a2)
{
	const char	*argv[8] = { broker_copy, a1, "--control", ask_path,
			    a2, NULL };
	struct pollfd	 pfd;
	uint64_t	 deadline = harness_now_ms() + 10000;
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], status;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		if (uid != 0 && (setgroups(0, NULL) == -1 ||
		    setresgid(gid, gid, gid) == -1 ||
		    setresuid(uid, uid, uid) == -1))
			_exit(125);
		execv(argv[0], (char *const *)argv);
		_exit(125);
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (len + 1 < cap && harness_now_ms() < deadline) {
		if (poll(&pfd, 1, 1000) != 1)
			continue;
		if ((n = read(p[0], out + len, cap - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
ctl(uid_t uid, char *out, size_t cap, const char *a1, const char *a2)
{
	return ctl_as(uid, (gid_t)uid, out, cap, a1, a2);
}

static void
test_status_and_metrics(void **state)
{
	static char	 out[ANSWER_MAX];
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h, denied;
	char		 want[128], line[16];
	size_t		 n;

	(void)state;
	assert_ok(tb_connect(c, "127.0.0.1", echo.port, &h, &err), &err);
	assert_ok(tb_write_all(c, h, "ping\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_rc(tb_connect(c, "10.1.2.3", 22, &denied, &err), TB_EPOLICY,
	    &err);

	/* For people: the tenant, the session, the connection, the denial. */
	assert_int_equal(ctl(0, out, sizeof(out), "status", NULL), 0);
	assert_non_null(strstr(out, "everyone"));
	snprintf(want, sizeof(want), "127.0.0.1:%u", echo.port);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "connect 10.1.2.3:22 (internal)"));

	/* For scripts. */
	assert_int_equal(ctl(0, out, sizeof(out), "status", "--json"), 0);
	assert_non_null(strstr(out, "{\"tenants\":[{\"name\":\"everyone\","
	    "\"connections\":1,"));
	snprintf(want, sizeof(want), "\"peer\":\"127.0.0.1:%u\",\"bytes_in\":5,"
	    "\"bytes_out\":5", echo.port);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\"host\":\"10.1.2.3\",\"port\":22,"
	    "\"reason\":\"internal\""));

	/* For a metrics system. */
	assert_int_equal(ctl(0, out, sizeof(out), "metrics", NULL), 0);
	assert_non_null(strstr(out, "\ntcpbroker_sessions 1\n"));
	assert_non_null(strstr(out, "\ntcpbroker_connections{tenant="
	    "\"everyone\"} 1\n"));
	assert_non_null(strstr(out, "\ntcpbroker_decisions_total{tenant="
	    "\"everyone\",verdict=\"deny\"} 1\n"));
	assert_non_null(strstr(out, "\ntcpbroker_decisions_total{tenant="
	    "\"everyone\",verdict=\"allow\"} 1\n"));
	assert_non_null(strstr(out, "\ntcpbroker_sent_bytes_total{tenant="
	    "\"everyone\"} 5\n"));
	assert_non_null(strstr(out, "\ntcpbroker_received_bytes_total{tenant="
	    "\"everyone\"} 5\n"));
	assert_non_null(strstr(out, "\ntcpbroker_errors_total{code="
	    "\"EPOLICY\"} 1\n"));

	/* Closed: the gauges come down, the counters stay. */
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	assert_int_equal(ctl(0, out, sizeof(out), "metrics", NULL), 0);
	assert_non_null(strstr(out, "\ntcpbroker_connections{tenant="
	    "\"everyone\"} 0\n"));
	assert_non_null(strstr(out, "\ntcpbroker_sent_bytes_total{tenant="
	    "\"everyone\"} 5\n"));
}

/* Whether dir holds a file whose name ends in suffix. */
static bool
dir_has_suffix(const char *dir, const char *suffix)
{
	struct dirent	*d;
	DIR		*dp;
	size_t		 len, slen = strlen(suffix);
	bool		 found = false;

	assert_non_null(dp = opendir(dir));
	while (!found && (d = readdir(dp)) != NULL) {
		len = strlen(d->d_name);
		found = len >= slen &&
		    strcmp(d->d_name + len - slen, suffix) == 0;
	}
	closedir(dp);
	return found;
}

static void
read_text(const char *path, char *out, size_t cap)
{
	FILE	*f;
	size_t	 n;

	assert_non_null(f = fopen(path, "r"));
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

/*
 * Runs `tcpbroker metrics arg` against a fake control socket that sends
 * the first lines of an answer and closes; its status.
 */
static int
ctl_cut_short(char *out, size_t cap, const char *arg)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	struct timeval		tv = { 10, 0 };
	char			path[64], line[64];
	pid_t			pid;
	int			fd, c, status, rc;

	snprintf(path, sizeof(path), "/tmp/tcpbroker-ctl-fake-%d.sock",
	    (int)getpid());
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) !=
	    -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if ((c = accept(fd, NULL, NULL)) == -1)
			_exit(1);
		(void)!read(c, line, sizeof(line));
		(void)!write(c, "# HELP tcpbroker_sessions Client sessions "
		    "open.\ntcpbroker_sessions 1\n", 69);
		_exit(0);
	}
	close(fd);
	ask_path = path;
	rc = ctl(0, out, cap, "metrics", arg);
	ask_path = control;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	return rc;
}

/*
 * For node_exporter's textfile collector: the whole answer or the old
 * file, never half of one, and nothing left aside.
 */
static void
test_metrics_textfile(void **state)
{
	static char	 out[ANSWER_MAX];
	char		 dir[64], file[96], arg[128];
	FILE		*f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tcpbroker-prom-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	snprintf(file, sizeof(file), "%s/tcpbroker.prom", dir);
	snprintf(arg, sizeof(arg), "--textfile=%s", file);
	assert_non_null(f = fopen(file, "w"));
	fputs("# old\n", f);
	fclose(f);

	assert_int_equal(ctl(0, out, sizeof(out), "metrics", arg), 0);
	read_text(file, out, sizeof(out));
	assert_non_null(strstr(out, "\ntcpbroker_sessions "));
	assert_null(strstr(out, "# old"));
	assert_false(dir_has_suffix(dir, ".tmp"));

	/* Cut short (a broker that died while answering): the same. */
	assert_non_null(f = fopen(file, "w"));
	fputs("# old\n", f);
	fclose(f);
	assert_int_not_equal(ctl_cut_short(out, sizeof(out), arg), 0);
	read_text(file, out, sizeof(out));
	assert_string_equal(out, "# old\n");
	assert_false(dir_has_suffix(dir, ".tmp"));

	/* Refused (not root, not in the group): the old file stays. */
	assert_non_null(f = fopen(file, "w"));
	fputs("# old\n", f);
	fclose(f);
	assert_int_not_equal(ctl(STRANGER, out, sizeof(out), "metrics", arg),
	    0);
	read_text(file, out, sizeof(out));
	assert_string_equal(out, "# old\n");
	assert_false(dir_has_suffix(dir, ".tmp"));

	unlink(file);
	assert_int_equal(rmdir(dir), 0);
}

/* Only root and the control group may ask; the socket says so too. */
static void
test_who_may_ask(void **state)
{
	static char	 out[ANSWER_MAX];
	struct group	*gr;

	(void)state;
	assert_int_not_equal(ctl(STRANGER, out, sizeof(out), "status", NULL),
	    0);
	assert_int_equal(out[0], '\0');
	/* A member of the control group may. */
	assert_non_null(gr = getgrnam("daemon"));
	assert_int_equal(ctl_as(STRANGER, gr->gr_gid, out, sizeof(out),
	    "metrics", NULL), 0);
	assert_non_null(strstr(out, "tcpbroker_sessions "));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_and_metrics),
		cmocka_unit_test(test_metrics_textfile),
		cmocka_unit_test(test_who_may_ask),
	};

	if (getuid() != 0) {
		fprintf(stderr, "it_control runs as root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
