/*
 * `tcpbroker run`: a command with a broker of its own, confined so that
 * only the plugin reaches the network, whose exit status is the
 * launcher's.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* How long a launched command may take: milliseconds. */
#define RUN_MS	20000

static struct test_server	echo;
static char			dir[64], policy[128], logfile[128];
/* Copies in dir, which a launcher started as root runs as nobody. */
static char			client[128], spawned[128];
#ifdef TB_LUA_MODULE
static char			luadir[128];
#endif

static void
copy(const char *from, const char *to)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 0755 '%s'", from,
	    to, to);
	assert_int_equal(system(cmd), 0);
}

static int
setup(void **state)
{
	FILE	*f;

	(void)state;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	snprintf(dir, sizeof(dir), "/tmp/tcpbroker-run-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(client, sizeof(client), "%s/launched_client", dir);
	copy(TB_LAUNCHED_CLIENT, client);
	snprintf(spawned, sizeof(spawned), "%s/spawned_client", dir);
	copy(TB_SPAWNED_CLIENT, spawned);
#ifdef TB_LUA_MODULE
	snprintf(luadir, sizeof(luadir), "%s/tcp.so", dir);
	copy(TB_LUA_MODULE, luadir);
	snprintf(luadir, sizeof(luadir), "%s/?.so", dir);
	{
		static const char *const scripts[] = { "testlib.lua",
		    "test_spawn.lua", "spawn_child.lua" };
		char	from[256], to[128];
		size_t	i;

		for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
			snprintf(from, sizeof(from), "%s/%s", TB_LUA_TESTS,
			    scripts[i]);
			snprintf(to, sizeof(to), "%s/%s", dir, scripts[i]);
			copy(from, to);
		}
	}
#endif
	snprintf(policy, sizeof(policy), "%s/policy.conf", dir);
	snprintf(logfile, sizeof(logfile), "%s/broker.log", dir);
	assert_non_null(f = fopen(policy, "w"));
	fprintf(f, "tenant all {\n    match uid *\n"
	    "    connect allow 127.0.0.1:%u\n}\n", echo.port);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	(void)state;
	server_stop(&echo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * Runs argv (as user, unless it is NULL), returns its wait status; kills
 * it (by PID) if it hangs.
 */
static int
run_as(const char *user, char *const argv[])
{
	uint64_t	 deadline = harness_now_ms() + RUN_MS;
	struct passwd	*pw = NULL;
	pid_t		 pid;
	int		 status;

	if (user != NULL)
		assert_non_null(pw = getpwnam(user));
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (pw != NULL && (setgroups(0, NULL) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1))
			_exit(125);
		execv(argv[0], argv);
		_exit(125);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s did not finish", argv[0]);
		}
		harness_sleep_ms(10);
	}
	return status;
}

static int
run(char *const argv[])
{
	return run_as(NULL, argv);
}

static void
set_ports(void)
{
	char	value[8];

	snprintf(value, sizeof(value), "%u", echo.port);
	setenv("ECHO_PORT", value, 1);
	snprintf(value, sizeof(value), "%u", echo.port == 65535 ? 1024 :
	    echo.port + 1);
	setenv("DENIED_PORT", value, 1);
}

static bool
log_has(const char *needle)
{
	struct broker_proc	b;

	memset(&b, 0, sizeof(b));
	snprintf(b.log, sizeof(b.log), "%s", logfile);
	return harness_log_contains(&b, needle);
}

static void
test_command_has_only_the_plugin(void **state)
{
	char *const	argv[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy,
			    "--log", logfile, "--", client, NULL };
	int		status;

	(void)state;
	set_ports();
	status = run(argv);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(log_has("sandbox: filter installed"));
	assert_true(log_has("serving one command"));
	assert_true(log_has("\"verdict\":\"deny\""));
}

#ifdef TB_LUA_MODULE
static void
test_lua_under_the_launcher(void **state)
{
	char *const	argv[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy,
			    "--", TB_LUA, "-e",
			    "local tcp = require 'tcp'\n"
			    "local ok, e = pcall(tcp.TcpClient, '127.0.0.1', 1)\n"
			    "assert(e.code == 'EPOLICY', tostring(e))\n"
			    "local c = tcp.TcpClient('127.0.0.1',"
			    " tonumber(os.getenv 'ECHO_PORT'))\n"
			    "c:write_all 'lua\\n'\n"
			    "assert(c:read_line() == 'lua')\n"
			    "os.exit(0)", NULL };
	int		status;

	(void)state;
	set_ports();
	setenv("LUA_CPATH", luadir, 1);
#ifdef TB_LIBASAN
	/* The stock interpreter loads an instrumented module. */
	setenv("LD_PRELOAD", TB_LIBASAN, 1);
#endif
	status = run(argv);
	unsetenv("LD_PRELOAD");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#else
static void
test_lua_under_the_launcher(void **state)
{
	(void)state;
	skip();		/* built without Lua */
}
#endif

/*
 * Every process of the command has a session of its own from the
 * session source: children echo beside their parent, are denied as it
 * is, count against its uid's cap, and a flood of requests is bounded.
 */
static void
test_children_have_sessions_of_their_own(void **state)
{
	static const char *const modes[] = { "children", "cap", "flood" };
	char		 mode[16];
	char *const	 argv[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy, "--log", logfile, "--",
			    spawned, mode, NULL };
	size_t		 i;
	int		 status;

	(void)state;
	set_ports();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(mode, sizeof(mode), "%s", modes[i]);
		unlink(logfile);
		status = run(argv);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("spawned_client %s: status %#x", mode, status);
	}
	/* The flood's sessions: those it held, one more, the child's. */
	assert_true(log_has("session source: a request that is not"));
	assert_true(log_has("session source closed"));
}

#ifdef TB_LUA_MODULE
/* The same from Lua: os.execute and io.popen of lua5.4. */
static void
test_lua_children(void **state)
{
	char		 script[160], lua_path[160];
	char *const	 argv[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy, "--", TB_LUA, script, NULL };
	int		 status;

	(void)state;
	set_ports();
	snprintf(script, sizeof(script), "%s/test_spawn.lua", dir);
	snprintf(lua_path, sizeof(lua_path), "%s/?.lua", dir);
	setenv("LUA_CPATH", luadir, 1);
	setenv("LUA_PATH", lua_path, 1);
	setenv("LUA", TB_LUA, 1);
#ifdef TB_LIBASAN
	setenv("LD_PRELOAD", TB_LIBASAN, 1);
#endif
	status = run(argv);
	unsetenv("LD_PRELOAD");
	unsetenv("LUA_PATH");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#else
static void
test_lua_children(void **state)
{
	(void)state;
	skip();		/* built without Lua */
}
#endif

/*
 * Outside tcpbroker run, a session handed over in TCPBROKER_FD serves
 * the process that opened it: a child that inherits the variable but
 * not the descriptor (close-on-exec) is told so.
 */
static void
test_inherited_session_is_refused(void **state)
{
	struct broker_proc	 b;
	struct tb_error		 err;
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	tb_client		*c;
	char			 number[16];
	char *const		 argv[] = { spawned, "orphan", NULL };
	int			 fd, status;

	(void)state;
	set_ports();
	harness_broker_start(&b, HARNESS_POLICY);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", b.socket);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	snprintf(number, sizeof(number), "%d", fd);
	setenv("TCPBROKER_FD", number, 1);
	assert_int_equal(tb_client_open(&c, &err), 0);
	status = run(argv);
	unsetenv("TCPBROKER_FD");
	tb_client_close(c);
	assert_int_equal(harness_broker_stop(&b), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_exit_status_is_the_commands(void **state)
{
	char *const	exits[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy,
			    "--", "/bin/sh", "-c", "exit 7", NULL };
	char *const	killed[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy,
			    "--", "/bin/sh", "-c", "kill -TERM $$", NULL };
	char *const	missing[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy,
			    "--", "/nonexistent/command", NULL };
	int		status;

	(void)state;
	status = run(exits);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	status = run(killed);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
	status = run(missing);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 127);
}

/*
 * Started as root, the command runs as a uid of its own from the range,
 * not as any user's; --user names one instead.
 */
static void
test_command_user(void **state)
{
	char *const	as_own[] = { TB_BROKER_BIN, "run", "--policy", policy,
			    "--", "/bin/sh", "-c", "u=$(id -u); "
			    "test \"$u\" -ge 2000000000 && test \"$u\" -le "
			    "2000009999 && test \"$(id -g)\" = \"$u\"", NULL };
	char *const	as_daemon[] = { TB_BROKER_BIN, "run", "--policy", policy,
			    "--user", "daemon", "--", "/bin/sh", "-c",
			    "test \"$(id -un)\" = daemon", NULL };
	char *const	as_root[] = { TB_BROKER_BIN, "run", "--policy", policy,
			    "--user", "root", "--", "/bin/true", NULL };
	int		status;

	(void)state;
	if (getuid() != 0)
		skip();
	status = run(as_own);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status = run(as_daemon);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status = run(as_root);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
}

/*
 * The tenant is the launching user's, never that of the uid the command
 * runs as; root may name another with --tenant, nobody else may.
 */
static void
test_tenant_is_the_launchers(void **state)
{
	char	tenants[160], broker_copy[160], port[64];
	char	script[] = "local tcp = require 'tcp'\n"
		    "local ok, e = pcall(tcp.TcpClient, '127.0.0.1',"
		    " tonumber(os.getenv 'ECHO_PORT'))\n"
		    "if ok then os.exit(0) end\n"
		    "os.exit(e.code == 'EPOLICY' and 3 or 4)";
	char *const	mine[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", tenants, "--", TB_LUA, "-e", script,
			    NULL };
	char *const	other[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", tenants, "--tenant", "other", "--",
			    TB_LUA, "-e", script, NULL };
	char *const	by_user[] = { broker_copy, "run", "--policy", tenants,
			    "--tenant", "mine", "--", "/bin/true", NULL };
	FILE		*f;
	int		 status;

	(void)state;
	if (getuid() != 0)
		skip();
	snprintf(tenants, sizeof(tenants), "%s/tenants.conf", dir);
	assert_non_null(f = fopen(tenants, "w"));
	fprintf(f, "tenant other {\n    match uid 4444\n}\n"
	    "tenant mine {\n    match uid 0\n"
	    "    connect allow 127.0.0.1:%u\n}\n", echo.port);
	fclose(f);
	assert_int_equal(chmod(tenants, 0644), 0);
	snprintf(port, sizeof(port), "%u", echo.port);
	setenv("ECHO_PORT", port, 1);
	setenv("LUA_CPATH", luadir, 1);
#ifdef TB_LIBASAN
	setenv("LD_PRELOAD", TB_LIBASAN, 1);
#endif
	/* Root's tenant, though the script runs as a uid of its own. */
	status = run(mine);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The tenant root names. */
	status = run(other);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	unsetenv("LD_PRELOAD");
	/* Only root may name one. */
	snprintf(broker_copy, sizeof(broker_copy), "%s/tcpbroker", dir);
	copy(TB_BROKER_BIN, broker_copy);
	status = run_as("nobody", by_user);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
}

/* Runs argv with its stderr in file; returns the wait status. */
static int
run_to(char *const argv[], const char *file)
{
	int	saved, fd, status;

	assert_true((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) != -1);
	assert_true((saved = dup(STDERR_FILENO)) != -1);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	close(fd);
	status = run(argv);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return status;
}

static bool
file_has(const char *file, const char *needle)
{
	struct broker_proc	b;

	memset(&b, 0, sizeof(b));
	snprintf(b.log, sizeof(b.log), "%s", file);
	return harness_log_contains(&b, needle);
}

/*
 * The script's terminal is its own: by default the broker writes
 * neither its info lines nor its decisions there; --log and
 * --decision-log take them.
 */
static void
test_broker_quiet_by_default(void **state)
{
	char		 errfile[96], decisions[96];
	char *const	quiet[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy, "--", client, NULL };
	char *const	asked[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy, "--log", logfile,
			    "--decision-log", decisions, "--", client, NULL };
	char *const	help[] = { TB_BROKER_BIN, "run", "--help", NULL };
	int		status;

	(void)state;
	set_ports();
	snprintf(errfile, sizeof(errfile), "%s/stderr", dir);
	snprintf(decisions, sizeof(decisions), "%s/decisions.json", dir);
	status = run_to(quiet, errfile);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(file_has(errfile, "tcpbroker["));
	assert_false(file_has(errfile, "verdict"));

	unlink(logfile);
	status = run_to(asked, errfile);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(file_has(errfile, "tcpbroker["));
	assert_false(file_has(errfile, "verdict"));
	assert_true(file_has(logfile, "info: serving one command"));
	assert_false(file_has(logfile, "\"verdict\""));
	assert_true(file_has(decisions, "\"verdict\":\"deny\""));

	/* The usage text names every option. */
	status = run_to(help, errfile);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A command in no directory of PATH is "not found" (127), also when a
 * directory of PATH cannot be entered by the command's uid (/root, 0700,
 * when the launcher runs as root).
 */
static void
test_command_not_found(void **state)
{
	char *const	argv[] = { TB_BROKER_BIN, "run", "--bind-ro", dir,
			    "--policy", policy, "--",
			    "tcpbroker-no-such-command", NULL };
	char		 errfile[96], *saved;
	const char	*path = getenv("PATH");
	int		 status;

	(void)state;
	saved = strdup(path != NULL ? path : "/usr/bin:/bin");
	assert_non_null(saved);
	snprintf(errfile, sizeof(errfile), "%s/stderr", dir);
	setenv("PATH", "/root:/usr/bin:/bin", 1);
	status = run_to(argv, errfile);
	setenv("PATH", saved, 1);
	free(saved);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 127);
	assert_true(file_has(errfile, "tcpbroker-no-such-command: command "
	    "not found"));
}

/*
 * A signal sent to the launcher reaches the command (through the PID 1
 * of its namespace), which decides what it means.
 */
static void
test_signals_are_forwarded(void **state)
{
	static const int	 sigs[] = { SIGTERM, SIGHUP, SIGINT };
	char			 script[128], ready[8];
	char *const		 argv[] = { TB_BROKER_BIN, "run", "--policy",
				    policy, "--", "/bin/sh", "-c", script, NULL };
	uint64_t		 deadline;
	size_t			 i;
	pid_t			 pid;
	int			 p[2], in[2], status;

	(void)state;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		/* It says it is ready, then waits for the signal to end it. */
		snprintf(script, sizeof(script), "trap 'exit %d' %d; echo "
		    "ready; read x", 40 + (int)i, sigs[i]);
		assert_int_equal(pipe(p), 0);
		/* Its stdin stays open, empty: it waits in read. */
		assert_int_equal(pipe(in), 0);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			dup2(p[1], 1);
			dup2(in[0], 0);
			close(p[0]);
			close(in[1]);
			execv(argv[0], argv);
			_exit(125);
		}
		close(p[1]);
		close(in[0]);
		assert_int_equal(read(p[0], ready, 6), 6);
		close(p[0]);
		assert_int_equal(kill(pid, sigs[i]), 0);
		deadline = harness_now_ms() + RUN_MS;
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (harness_now_ms() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				fail_msg("signal %d was not forwarded", sigs[i]);
			}
			harness_sleep_ms(10);
		}
		close(in[1]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 40 + (int)i);
	}
}

static void
test_missing_policy(void **state)
{
	char *const	argv[] = { TB_BROKER_BIN, "run", "--policy",
			    "/nonexistent/policy.conf", "--", "/bin/true", NULL };
	int		status;

	(void)state;
	status = run(argv);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_has_only_the_plugin),
		cmocka_unit_test(test_lua_under_the_launcher),
		cmocka_unit_test(test_children_have_sessions_of_their_own),
		cmocka_unit_test(test_lua_children),
		cmocka_unit_test(test_inherited_session_is_refused),
		cmocka_unit_test(test_exit_status_is_the_commands),
		cmocka_unit_test(test_command_user),
		cmocka_unit_test(test_tenant_is_the_launchers),
		cmocka_unit_test(test_missing_policy),
		cmocka_unit_test(test_broker_quiet_by_default),
		cmocka_unit_test(test_command_not_found),
		cmocka_unit_test(test_signals_are_forwarded),
	};

	/*
	 * A confined command cannot be ptraced, so LeakSanitizer cannot
	 * run in an instrumented one; the broker is checked in its own.
	 */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
