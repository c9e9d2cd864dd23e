/*
 * tcpbroker run [options] -- COMMAND ...
 *
 * Runs COMMAND with a broker of its own.  The broker and the command
 * share a SOCK_SEQPACKET pair, the session source (source.c): the
 * command inherits its end as the descriptor named by TCPBROKER_FD, and
 * the client stub of each of its processes asks there for a session of
 * its own.  The command is
 * isolated in layers (isolate.c): a uid of its own, new namespaces,
 * no host Unix sockets, Landlock and a seccomp filter in which socket()
 * fails with EACCES for every family.  The plugin works; a socket of
 * its own does not.  The command's exit status becomes the launcher's.
 *
 * The tenant is the launching user's (uid and groups), or, when root
 * launches, the one --tenant names; never that of the uid the command
 * happens to run as.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
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
#include "isolate.h"
#include "sandbox.h"

/* The policy a launcher uses unless --policy says. */
#define DEFAULT_POLICY	"/etc/tcpbroker/policy.conf"

static volatile sig_atomic_t	child_pid;

/* What a process sends the launcher goes on to the command. */
static void
forward_signal(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	/* A terminal's Ctrl-C reached the command's group already. */
	if (info->si_code != SI_USER && info->si_code != SI_QUEUE)
		return;
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void __attribute__((noreturn))
launcher_usage(FILE *f, int status)
{
	fprintf(f, "usage: tcpbroker run [options] -- COMMAND [ARG...]\n"
	    "Runs COMMAND with a confined broker of its own; the exit status "
	    "is COMMAND's.\n"
	    "  --policy FILE          the policy (default " DEFAULT_POLICY
	    ")\n"
	    "  --log FILE             the broker's log lines go to FILE "
	    "(level info unless\n"
	    "                         --log-level says), and its decisions "
	    "too without --decision-log\n"
	    "  --decision-log FILE    the broker's decisions, one JSON object "
	    "a line\n"
	    "  --log-level LEVEL      debug, info, warn or error; without "
	    "--log the lines go to\n"
	    "                         stderr, and only errors by default\n"
	    "  --user USER            run COMMAND as USER (root only; default "
	    "a uid of its own)\n"
	    "  --uid-range LO-HI      the uids root takes from (default "
	    ISOLATE_UID_RANGE ")\n"
	    "  --tenant NAME          the policy's tenant (root only; default "
	    "the caller's)\n"
	    "  --bind-ro PATH         show PATH to COMMAND, read-only "
	    "(repeatable)\n"
	    "  --resolve-timeout MS   the longest name lookup\n"
	    "  --busy-poll US         the broker polls for US microseconds "
	    "after each event\n"
	    "                         instead of sleeping (0 to %d; "
	    "default 0)\n"
	    "  --no-sandbox           no seccomp filters (tests only)\n"
	    "  --sandbox-debug        name the system call a filter "
	    "refused\n"
	    "  --explain-sandbox      say which isolation layers this host "
	    "gives, and exit\n"
	    "  --print-filter         print the broker's seccomp filter for "
	    "this policy, and exit\n"
	    "  --help                 this text\n", LIMIT_BUSY_POLL_US_MAX);
	exit(status);
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

/* Says which layers this host lacks, once, at start. */
static void
warn_missing_layers(void)
{
	int	abi = isolate_landlock_abi();

	if (abi < 4)
		fprintf(stderr, "tcpbroker run: warning: no Landlock (ABI %d): "
		    "the command's signals, abstract sockets and TCP are held "
		    "by the other layers only\n", abi);
	else if (abi < 6)
		fprintf(stderr, "tcpbroker run: warning: Landlock ABI %d: no "
		    "scoping of signals and abstract sockets (ABI 6); the "
		    "other layers hold them\n", abi);
}

/* The launching user's supplementary groups, the first LIMIT_PEER_GROUPS. */
static unsigned
launcher_groups(uint32_t groups[LIMIT_PEER_GROUPS])
{
	static gid_t	all[NGROUPS_MAX];
	int		n, i;

	if ((n = getgroups(NGROUPS_MAX, all)) == -1)
		fatal("tcpbroker run: getgroups");
	if (n > LIMIT_PEER_GROUPS)
		n = LIMIT_PEER_GROUPS;
	for (i = 0; i < n; i++)
		groups[i] = (uint32_t)all[i];
	return (unsigned)n;
}

/* The command's user when --user names one: uid and gid. */
static void
named_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd	*pw;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("tcpbroker run: unknown user %s", user);
	if (pw->pw_uid == 0)
		fatalx("tcpbroker run: --user %s: the command never runs as "
		    "root", user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
}

/* --print-filter: the filter the launch's broker would install. */
static int
print_launched_filter(const struct broker_options *o)
{
	struct sandbox_broker	 sb = { .session_fd = -1, .control_fd = -1,
				    .source = true };
	struct policy		*policy;
	struct policy_error	 err;

	if (policy_load(o->policy_path, &policy, &err) != 0)
		fatalx("%s", err.message);
	sb.listen = policy_may_listen(policy);
	sb.log_files = o->log_file != NULL || o->decision_log != NULL;
	sb.busy_poll = o->busy_poll_us > 0;
	policy_free(policy);
	return sandbox_print_broker(&sb, STDOUT_FILENO) == 0 ? 0 : 1;
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
		{ "uid-range",	required_argument,	NULL, 'r' },
		{ "tenant",	required_argument,	NULL, 't' },
		{ "bind-ro",	required_argument,	NULL, 'b' },
		{ "resolve-timeout", required_argument,	NULL, 'R' },
		{ "busy-poll",	required_argument,	NULL, 'B' },
		{ "no-sandbox",	no_argument,		NULL, 'N' },
		{ "sandbox-debug", no_argument,		NULL, 'D' },
		{ "explain-sandbox", no_argument,	NULL, 'E' },
		{ "print-filter", no_argument,		NULL, 'P' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct broker_options	 o = {
		.policy_path = DEFAULT_POLICY,
		.sandbox = true,
	};
	struct isolate_spec	 spec = { .seccomp = true, .lock_fd = -1 };
	struct isolate_uid_range range;
	struct sigaction	 sa;
	sigset_t		 forwarded;
	const char		*range_text = ISOLATE_UID_RANGE, *why;
	const char		*user = NULL;
	pid_t			 broker_pid, pid;
	int			 sv[2], ch, status, broker_status;
	int			 broker_lock = -1, source;
	bool			 explain = false, level_given = false;
	bool			 print_filter = false;

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
				launcher_usage(stderr, 2);
			level_given = true;
			break;
		case 'u':
			user = optarg;
			break;
		case 'r':
			range_text = optarg;
			break;
		case 't':
			o.tenant = optarg;
			break;
		case 'b':
			if (spec.nbinds == ISOLATE_BINDS_MAX)
				fatalx("tcpbroker run: more than %d --bind-ro",
				    ISOLATE_BINDS_MAX);
			if (optarg[0] != '/')
				fatalx("tcpbroker run: --bind-ro %s: not an "
				    "absolute path", optarg);
			spec.binds[spec.nbinds++] = optarg;
			break;
		case 'R':
			o.resolve_ms = broker_option_uint(
			    "tcpbroker run: --resolve-timeout", optarg, 1,
			    LIMIT_RESOLVE_MS_MAX, "milliseconds");
			break;
		case 'B':
			o.busy_poll_us = broker_option_uint(
			    "tcpbroker run: --busy-poll", optarg, 0,
			    LIMIT_BUSY_POLL_US_MAX, "microseconds");
			break;
		case 'N':
			o.sandbox = false;
			spec.seccomp = false;
			break;
		case 'D':
			o.sandbox_debug = true;
			break;
		case 'E':
			explain = true;
			break;
		case 'P':
			print_filter = true;
			break;
		case 'h':
			launcher_usage(stdout, 0);
		default:
			launcher_usage(stderr, 2);
		}
	}
	/*
	 * The command's terminal is the script's: the broker writes there
	 * only its errors, unless asked; its decisions go to a file or
	 * nowhere.
	 */
	if (!level_given)
		o.log_level = o.log_file != NULL ? LOG_LEVEL_INFO :
		    LOG_LEVEL_ERROR;
	if (o.decision_log == NULL && o.log_file == NULL)
		o.decision_log = "/dev/null";
	spec.root = geteuid() == 0;
	if (isolate_parse_range(range_text, &range) != 0)
		fatalx("tcpbroker run: --uid-range %s: expected LO-HI, non-root "
		    "uids", range_text);
	if (explain) {
		isolate_explain(stdout, &spec, range_text);
		return 0;
	}
	if (print_filter)
		return print_launched_filter(&o);
	if (optind >= argc)
		launcher_usage(stderr, 2);
	if (access(o.policy_path, R_OK) == -1)
		fatal("tcpbroker run: policy %s", o.policy_path);
	if (o.tenant != NULL && getuid() != 0)
		fatalx("tcpbroker run: only root may choose the tenant");
	if (user != NULL && !spec.root)
		fatalx("tcpbroker run: only root may choose the user");
	warn_missing_layers();

	/*
	 * The tenant is the launching user's.  The uids below only keep
	 * launched commands and their brokers apart.
	 */
	o.peer_uid = getuid();
	o.peer_gid = getgid();
	o.peer_ngroups = launcher_groups(o.peer_groups);
	o.launched = true;
	o.run_uid = getuid();
	o.run_gid = getgid();
	if (spec.root) {
		if (user != NULL)
			named_user(user, &spec.uid, &spec.gid);
		else if (isolate_take_uid(&range, &spec.uid, &spec.lock_fd,
		    &why) != 0)
			fatalx("tcpbroker run: %s", why);
		else
			spec.gid = (gid_t)spec.uid;
		if (isolate_take_uid(&range, &o.run_uid, &broker_lock,
		    &why) != 0)
			fatalx("tcpbroker run: %s", why);
		o.run_gid = (gid_t)o.run_uid;
	}
	/*
	 * A signal sent before the command has a pid to forward it to waits
	 * until it has one, instead of ending the launcher alone.
	 */
	sigemptyset(&forwarded);
	sigaddset(&forwarded, SIGTERM);
	sigaddset(&forwarded, SIGHUP);
	sigaddset(&forwarded, SIGINT);
	sigaddset(&forwarded, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &forwarded, &spec.sigmask) == -1)
		fatal("sigprocmask");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	if ((pid = isolate_spawn(&spec, argv + optind, sv[1])) == -1)
		fatal("tcpbroker run: cannot start the command in namespaces "
		    "of its own");
	o.peer_pid = pid;
	switch (broker_pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		/* The broker ends with its launcher, whatever way it goes. */
		if (sigprocmask(SIG_SETMASK, &spec.sigmask, NULL) == -1 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
			_exit(1);
		/* Its source at 3, its uid's lock at 4, nothing else. */
		if ((source = fcntl(sv[0], F_DUPFD_CLOEXEC, 10)) == -1 ||
		    (broker_lock != -1 && (broker_lock = fcntl(broker_lock,
		    F_DUPFD_CLOEXEC, 10)) == -1) ||
		    dup3(source, BROKER_SOURCE_FD, O_CLOEXEC) == -1 ||
		    (broker_lock != -1 && dup3(broker_lock, 4, O_CLOEXEC) ==
		    -1) || close_range(broker_lock != -1 ? 5 : 4, ~0U, 0) == -1)
			_exit(1);
		broker_serve(&o, BROKER_SOURCE_FD);
		_exit(0);
	}
	close(sv[0]);
	close(sv[1]);
	if (broker_lock != -1)
		close(broker_lock);
	if (spec.lock_fd != -1)
		close(spec.lock_fd);

	child_pid = pid;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	if (sigprocmask(SIG_SETMASK, &spec.sigmask, NULL) == -1)
		fatal("sigprocmask");

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	child_pid = 0;
	/* The source and the sessions ended with the command's namespace. */
	kill(broker_pid, SIGTERM);
	while (waitpid(broker_pid, &broker_status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	/* Our SIGTERM is no news; any other end is. */
	if (!(WIFSIGNALED(broker_status) && WTERMSIG(broker_status) ==
	    SIGTERM) && (!WIFEXITED(broker_status) ||
	    WEXITSTATUS(broker_status) != 0))
		fprintf(stderr, "tcpbroker run: the broker ended with status "
		    "%d\n", exit_status(broker_status));
	return exit_status(status);
}
