/*
 * tcpbroker run [--policy FILE] [--log FILE] [--user USER] -- COMMAND ...
 *
 * Runs COMMAND with a broker of its own.  The broker and the command
 * share a socketpair: the command inherits its end as the descriptor
 * named by TCPBROKER_FD, which the client stub reads.  The command is
 * confined so that socket() fails with EACCES for every family; the
 * plugin works, a socket of its own does not.  The command's exit
 * status becomes the launcher's.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

/* The policy a launcher uses unless --policy says. */
#define DEFAULT_POLICY	"/etc/tcpbroker/policy.conf"
/* Started as root, the command and its broker run as this, unless --user. */
#define LAUNCHER_USER	"nobody"

static volatile sig_atomic_t	child_pid;

static void
forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void __attribute__((noreturn))
launcher_usage(void)
{
	fprintf(stderr, "usage: tcpbroker run [--policy FILE] [--log FILE] "
	    "[--decision-log FILE] [--log-level LEVEL] [--user USER] "
	    "[--no-sandbox] -- COMMAND [ARG...]\n");
	exit(2);
}

/* Switches the command to user, when started as root. */
static void
drop_to(const char *user)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL) {
		fprintf(stderr, "tcpbroker run: unknown user %s\n", user);
		_exit(126);
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1 ||
	    (pw->pw_uid != 0 && setuid(0) != -1)) {
		fprintf(stderr, "tcpbroker run: cannot become %s\n", user);
		_exit(126);
	}
}

/* The command's side: its session descriptor, its user, its filter, exec. */
static void __attribute__((noreturn))
run_command(int fd, char *argv[], const char *user)
{
	char	value[16];

	snprintf(value, sizeof(value), "%d", fd);
	if (setenv("TCPBROKER_FD", value, 1) == -1 ||
	    unsetenv("TCPBROKER_SOCKET") == -1)
		_exit(126);
	/* The command inherits stdio and its session, nothing else. */
	if (fcntl(fd, F_SETFD, 0) == -1 ||
	    (fd > 3 && close_range(3, (unsigned)fd - 1, 0) == -1) ||
	    close_range((unsigned)fd + 1, ~0U, 0) == -1)
		_exit(126);
	drop_to(user);
	if (sandbox_child() != 0) {
		fprintf(stderr, "tcpbroker run: cannot confine the command\n");
		_exit(126);
	}
	execvp(argv[0], argv);
	fprintf(stderr, "tcpbroker run: %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int
exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int
launcher_main(int argc, char *argv[])
{
	static const struct option	 options[] = {
		{ "policy",	required_argument,	NULL, 'p' },
		{ "log",	required_argument,	NULL, 'L' },
		{ "decision-log", required_argument,	NULL, 'J' },
		{ "log-level",	required_argument,	NULL, 'l' },
		{ "user",	required_argument,	NULL, 'u' },
		{ "no-sandbox",	no_argument,		NULL, 'N' },
		{ "sandbox-debug", no_argument,		NULL, 'D' },
		{ NULL,		0,			NULL, 0 }
	};
	struct broker_options	 o = {
		.policy_path = DEFAULT_POLICY,
		.log_level = LOG_LEVEL_INFO,
		.sandbox = true,
	};
	struct sigaction	 sa;
	pid_t			 broker_pid, pid;
	int			 sv[2], ch, status, broker_status;

	/* Nothing started here may read or write the launcher's memory. */
	sandbox_undumpable();
	broker_stdio();
	while ((ch = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o.policy_path = optarg;
			break;
		case 'L':
			o.log_file = optarg;
			break;
		case 'J':
			o.decision_log = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &o.log_level) != 0)
				launcher_usage();
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'N':
			o.sandbox = false;
			break;
		case 'D':
			o.sandbox_debug = true;
			break;
		default:
			launcher_usage();
		}
	}
	if (optind >= argc)
		launcher_usage();
	if (access(o.policy_path, R_OK) == -1)
		fatal("tcpbroker run: policy %s", o.policy_path);

	if (o.user == NULL)
		o.user = LAUNCHER_USER;
	/*
	 * The command's credentials: its session is the launcher's
	 * socketpair, whose SO_PEERCRED would name the launcher instead.
	 */
	o.peer_uid = getuid();
	o.peer_gid = getgid();
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(o.user);
		if (pw == NULL)
			fatalx("tcpbroker run: unknown user %s", o.user);
		o.peer_uid = pw->pw_uid;
		o.peer_gid = pw->pw_gid;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(sv[0]);
		run_command(sv[1], argv + optind, o.user);
	}
	o.peer_pid = pid;
	o.launched = true;
	switch (broker_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		/* The broker ends with its launcher, whatever way it goes. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
			_exit(1);
		close(sv[1]);
		if ((sv[0] != 3 && dup3(sv[0], 3, O_CLOEXEC) == -1) ||
		    close_range(4, ~0U, 0) == -1)
			_exit(1);
		broker_serve(&o, 3);
		_exit(0);
	}
	close(sv[0]);
	close(sv[1]);

	child_pid = pid;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A Ctrl-C reaches the command itself, as it is in our group. */
	signal(SIGINT, SIG_IGN);

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	child_pid = 0;
	/* The session ended with the command, unless it left children. */
	kill(broker_pid, SIGTERM);
	while (waitpid(broker_pid, &broker_status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	if (!WIFEXITED(broker_status) || WEXITSTATUS(broker_status) != 0)
		fprintf(stderr, "tcpbroker run: the broker ended with status "
		    "%d\n", exit_status(broker_status));
	return exit_status(status);
}
