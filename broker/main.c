/*
 * tcpbroker: owns the TCP sockets of untrusted script interpreters and
 * opens them only where the administrator's policy allows.
 *
 * Set-up runs in a fixed order: close what was inherited, read the
 * policy, bind the Unix socket, drop privileges, start the resolver,
 * confine, serve.  `tcpbroker run` (launcher.c) runs the same broker
 * privately for one command.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nss.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

/*
 * The user a broker started as root runs as, unless --user says: a
 * system user of its own, made at first start when it is missing, so
 * that no client's process shares the broker's uid.
 */
#define DEFAULT_USER		"tcpbroker"
/* How the default user is made: a system user with no home and no shell. */
#define USERADD			"/usr/sbin/useradd"
/* The descriptor of the Unix socket, the same in every broker. */
#define LISTEN_FD		3
/* The descriptor of the control socket (--control). */
#define CONTROL_FD		4

struct broker	broker;
struct broker_counters	counters;

static struct loop_io	signal_io;

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: tcpbroker --policy FILE [--socket PATH] [--socket-mode MODE]\n"
	    "                 [--socket-owner USER[:GROUP]] [--user USER]\n"
	    "                 [--log FILE] [--log-level error|warn|info|debug]\n"
	    "                 [--decision-log FILE] [--resolve-timeout MS]\n"
	    "                 [--busy-poll US]\n"
	    "                 [--control PATH] [--control-group GROUP]\n"
	    "                 [--revoke-on-reload]\n"
	    "                 [--no-sandbox] [--sandbox-debug]\n"
	    "       tcpbroker run [--policy FILE] [--log FILE] "
	    "[--decision-log FILE] [--user USER]\n"
	    "                 -- COMMAND [ARG...]\n"
	    "       tcpbroker --check FILE...\n"
	    "       tcpbroker status [--control PATH] [--json] [--watch SECONDS]\n"
	    "       tcpbroker metrics [--control PATH]\n"
	    "       tcpbroker --explain FILE [--uid N] [--gid N] "
	    "connect|listen|accept HOST:PORT\n"
	    "       tcpbroker --print-filter --policy FILE [--log FILE] "
	    "[--decision-log FILE]\n"
	    "       tcpbroker --list-syscalls\n"
	    "       tcpbroker --version\n");
	exit(status);
}

static void
print_warning(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "%s\n", message);
}

/* --check FILE: every error and warning; 0 when it loads. */
static int
check_policy(const char *path)
{
	struct policy		*policy;
	struct policy_error	 err;
	unsigned		 i;
	int			 warnings;

	if (policy_load(path, &policy, &err) != 0) {
		for (i = 0; i < err.count && i < LIMIT_POLICY_ERRORS; i++)
			fprintf(stderr, "%s\n", err.all[i]);
		if (err.count == 0)
			fprintf(stderr, "%s\n", err.message);
		if (err.count > LIMIT_POLICY_ERRORS)
			fprintf(stderr, "%s: %u more errors not shown\n", path,
			    err.count - LIMIT_POLICY_ERRORS);
		fprintf(stderr, "%s: %u error%s\n", path,
		    err.count ? err.count : 1, err.count > 1 ? "s" : "");
		return 1;
	}
	warnings = policy_check(policy, print_warning, NULL);
	printf("%s: %zu tenant%s, %zu rule%s, %d warning%s\n", path,
	    policy->ntenants, policy->ntenants == 1 ? "" : "s",
	    policy->nrules, policy->nrules == 1 ? "" : "s", warnings,
	    warnings == 1 ? "" : "s");
	policy_free(policy);
	return 0;
}

/* --check FILE...: each file; 1 when any of them does not load. */
static int
check_policies(const char *first, char *rest[], int nrest)
{
	int	rc, i;

	rc = check_policy(first);
	for (i = 0; i < nrest; i++)
		rc |= check_policy(rest[i]);
	return rc;
}

/*
 * The host's own addresses count as internal.  Read once at start:
 * after confinement the broker cannot ask the kernel again.
 */
void
broker_read_own_addresses(void)
{
	struct ifaddrs	*ifa, *i;
	struct host_addr *a;

	broker.ctx.own = broker.own;
	broker.ctx.nown = 0;
	if (getifaddrs(&ifa) == -1) {
		log_warnx("getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (broker.ctx.nown == BROKER_OWN_ADDRS) {
			log_warnx("more than %d addresses on this host; the "
			    "rest do not count as internal", BROKER_OWN_ADDRS);
			break;
		}
		a = &broker.own[broker.ctx.nown];
		if (host_addr_from_sockaddr(i->ifa_addr, a, NULL) != 0)
			continue;
		broker.ctx.nown++;
	}
	freeifaddrs(ifa);
}

static void
reload_policy(void)
{
	struct policy		*policy;
	struct policy_error	 err;
	unsigned		 revoked;

	if (reader_policy(broker.policy_path, &policy, &err) != 0) {
		log_warnx("reload refused, keeping the current policy: %s",
		    err.message);
		return;
	}
	if (broker.sandboxed && !broker.may_listen &&
	    policy_may_listen(policy)) {
		log_warnx("reload refused, keeping the current policy: %s "
		    "allows listening, which the running sandbox forbids; "
		    "restart the broker to use it", broker.policy_path);
		policy_free(policy);
		return;
	}
	policy_free(broker.policy);
	broker.policy = policy;
	quota_reload(policy);
	/* One line, last, so that whoever waits for it sees all before. */
	if (broker.revoke) {
		revoked = session_revoke();
		log_info("policy reloaded from %s: %zu tenants, %zu rules; "
		    "closed %u connections and listeners it no longer allows",
		    broker.policy_path, policy->ntenants, policy->nrules,
		    revoked);
	} else
		log_info("policy reloaded from %s: %zu tenants, %zu rules",
		    broker.policy_path, policy->ntenants, policy->nrules);
}

/* After rotation: both log files are opened again by their paths. */
static void
reopen_logs(void)
{
	int	log_fd, decisions_fd, log, decisions;

	if (reader_logs(&log_fd, &decisions_fd) == -1)
		return;
	log = log_reopen(log_fd);
	decisions = audit_reopen(decisions_fd);
	if (log >= 0 && decisions >= 0 && log + decisions > 0)
		log_info("log files reopened");
}

/* "HUP", "RTMIN+1": as kill -l names them. */
static const char *
signal_name(int signo, char *buf, size_t cap)
{
	const char	*name;

	if ((name = sigabbrev_np(signo)) != NULL)
		return name;
	if (signo >= SIGRTMIN && signo <= SIGRTMAX)
		snprintf(buf, cap, "RTMIN+%d", signo - SIGRTMIN);
	else
		snprintf(buf, cap, "%d", signo);
	return buf;
}

static void
signal_event(struct loop_io *io, uint32_t events)
{
	struct signalfd_siginfo	info;
	const char		*name;
	char			 number[16];

	(void)events;
	while (read(io->fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
		name = signal_name((int)info.ssi_signo, number,
		    sizeof(number));
		switch (info.ssi_signo) {
		case SIGHUP:
			systemd_notify("RELOADING=1");
			reopen_logs();
			reload_policy();
			systemd_notify("READY=1");
			break;
		case SIGUSR1:
			reopen_logs();
			break;
		case SIGTERM:
		case SIGINT:
		case SIGQUIT:
		case SIGXCPU:
			log_info("signal %s from pid %u: shutting down", name,
			    info.ssi_pid);
			systemd_notify("STOPPING=1");
			loop_stop();
			break;
		default:
			log_info("signal %s from pid %u ignored", name,
			    info.ssi_pid);
			break;
		}
	}
}

/*
 * No signal ends the broker silently.  Those it acts on, and those whose
 * default would end it, are read from a signalfd and handled or logged;
 * a few are ignored outright.  Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGSYS) and SIGABRT keep their default: they are bugs, and a
 * crash must show.  SIGTSTP stops a broker in a terminal, as the user
 * asked.  A launcher's broker ignores SIGINT: a Ctrl-C goes to the
 * command, and the broker ends with its session.
 */
static void
setup_signals(bool launched)
{
	static const int	handled[] = {
		SIGHUP, SIGTERM, SIGQUIT, SIGUSR1, SIGXCPU,
		/* Logged and ignored. */
		SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
	};
	/* Ignored without a word: a log line could raise them again. */
	static const int	ignored[] = { SIGPIPE, SIGXFSZ, SIGTTIN, SIGTTOU };
	sigset_t		set;
	size_t			i;
	int			fd, sig;

	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	sigemptyset(&set);
	for (i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaddset(&set, handled[i]);
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(&set, sig);
	if (launched)
		signal(SIGINT, SIG_IGN);
	else
		sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	if (loop_add(&signal_io, fd, EPOLLIN, signal_event, NULL) == -1)
		fatal("epoll_ctl");
}

static void
owner_of(const char *spec, uid_t *uid, gid_t *gid)
{
	char		 user[256], *colon;
	struct passwd	*pw;
	struct group	*gr;

	snprintf(user, sizeof(user), "%s", spec);
	if ((colon = strchr(user, ':')) != NULL)
		*colon++ = '\0';
	if ((pw = getpwnam(user)) == NULL)
		fatalx("--socket-owner: unknown user %s", user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (colon != NULL) {
		if ((gr = getgrnam(colon)) == NULL)
			fatalx("--socket-owner: unknown group %s", colon);
		*gid = gr->gr_gid;
	}
}

/* Binds a Unix socket at target, refusing to steal a live one. */
static void
bind_socket(const char *path, mode_t mode, const char *owner, int target)
{
	struct sockaddr_un	sun;
	struct stat		st;
	mode_t			old;
	uid_t			uid;
	gid_t			gid;
	int			fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("socket path too long: %s", path);
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatalx("%s exists and is not a socket", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0)
			fatalx("%s: another broker is serving it", path);
		if (probe != -1)
			close(probe);
		if (unlink(path) == -1)
			fatal("unlink %s", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		fatal("socket");
	if (fd != target) {
		if (dup3(fd, target, O_CLOEXEC) == -1)
			fatal("dup3");
		close(fd);
	}
	/* Created with its mode; never chmod a path that may be replaced. */
	old = umask(0777 & ~mode);
	if (bind(target, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", path);
	umask(old);
	if (owner != NULL) {
		owner_of(owner, &uid, &gid);
		if (lchown(path, uid, gid) == -1)
			fatal("chown %s", path);
	}
	if (listen(target, SOMAXCONN) == -1)
		fatal("listen %s", path);
}

/*
 * The control socket: root's, and readable and writable by the control
 * group when there is one.
 */
static gid_t
bind_control(const char *path, const char *group)
{
	struct group	*gr = NULL;
	char		 owner[300];

	if (group != NULL && (gr = getgrnam(group)) == NULL)
		fatalx("--control-group: unknown group %s", group);
	snprintf(owner, sizeof(owner), "root:%s", gr != NULL ? gr->gr_name :
	    "root");
	bind_socket(path, gr != NULL ? 0660 : 0600, geteuid() == 0 ? owner :
	    NULL, CONTROL_FD);
	return gr != NULL ? gr->gr_gid : 0;
}

static unsigned
smaller(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/*
 * A descriptor for each session, one for each connection or listener
 * (a connection a listener accepted ahead counts as one), and
 * LIMIT_FD_SPARE for the broker itself: the limit is raised that far if
 * it may be.  If it is still short, the broker serves fewer, keeping
 * the shares of one uid in proportion, and says exactly how many.
 */
static void
limit_descriptors(void)
{
	struct broker_limits	*l = &broker.limits;
	struct rlimit		 rl, raised;
	rlim_t			 want = (rlim_t)LIMIT_SESSIONS + LIMIT_HANDLES +
				    LIMIT_FD_SPARE;
	rlim_t			 avail;

	l->sessions = LIMIT_SESSIONS;
	l->sessions_per_uid = LIMIT_SESSIONS_PER_UID;
	l->sessions_reserve = LIMIT_SESSIONS_RESERVE;
	l->handles = LIMIT_HANDLES;
	l->handles_per_uid = LIMIT_HANDLES_PER_UID;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("getrlimit RLIMIT_NOFILE");
	raised.rlim_cur = raised.rlim_max = want;
	if (rl.rlim_max < want && setrlimit(RLIMIT_NOFILE, &raised) == 0)
		rl = raised;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("setrlimit RLIMIT_NOFILE");
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_cur < LIMIT_FD_SPARE + 16)
		fatalx("the descriptor limit %llu is far too low; the broker "
		    "needs %llu", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)want);
	avail = rl.rlim_cur - LIMIT_FD_SPARE;
	l->sessions = smaller(LIMIT_SESSIONS, (unsigned)(avail / 4));
	l->handles = (unsigned)avail - l->sessions;
	l->sessions_per_uid = smaller(LIMIT_SESSIONS_PER_UID,
	    l->sessions / 16 ? l->sessions / 16 : 1);
	l->sessions_reserve = smaller(LIMIT_SESSIONS_RESERVE, l->sessions / 8);
	l->handles_per_uid = smaller(LIMIT_HANDLES_PER_UID,
	    l->handles / 8 ? l->handles / 8 : 1);
	log_warnx("the descriptor limit %llu is short of the %llu the limits "
	    "need: serving at most %u sessions (%u a uid, %u kept for uids "
	    "with none) and %u connections and listeners (%u a uid); raise "
	    "the hard limit (ulimit -Hn, LimitNOFILE=) to serve more",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)want,
	    l->sessions, l->sessions_per_uid, l->sessions_reserve, l->handles,
	    l->handles_per_uid);
}

/*
 * Started as root for the first time, the broker makes its own system
 * user rather than share one (such as nobody) with other programs.
 */
static void
ensure_default_user(void)
{
	pid_t	pid;
	int	status;

	if (geteuid() != 0 || getpwnam(DEFAULT_USER) != NULL)
		return;
	log_info("making the system user %s", DEFAULT_USER);
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		execl(USERADD, USERADD, "--system", "--user-group",
		    "--no-create-home", "--home-dir", "/nonexistent",
		    "--shell", "/usr/sbin/nologin", "--comment",
		    "tcpbroker daemon", DEFAULT_USER, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	/* Another broker may have made it at the same moment. */
	if (getpwnam(DEFAULT_USER) == NULL)
		fatalx("cannot make the user %s with %s (status %d); make it "
		    "or name another with --user", DEFAULT_USER, USERADD,
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/*
 * Descriptors 0 to 2 must be open, or the first socket would become
 * stderr and the log would go into it.
 */
void
broker_stdio(void)
{
	int	fd;

	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) != -1 && fd <= 2)
		if (fcntl(fd, F_SETFD, 0) == -1)
			exit(1);
	if (fd == -1)
		exit(1);
	close(fd);
}

uint32_t
broker_option_uint(const char *option, const char *text, uint32_t min,
    uint32_t max, const char *unit)
{
	uint64_t	n = 0;
	size_t		i, len = strlen(text);
	bool		ok = len > 0 && len <= 10;	/* no 64-bit overflow */

	for (i = 0; ok && i < len; i++) {
		ok = text[i] >= '0' && text[i] <= '9';
		n = n * 10 + (uint64_t)(text[i] - '0');
	}
	if (!ok || n < min || n > max)
		fatalx("%s: expected %u to %u %s", option, min, max, unit);
	return (uint32_t)n;
}

void
broker_serve(const struct broker_options *o, int source_fd)
{
	struct sandbox_broker	sb = { .session_fd = -1,
				    .debug = o->sandbox_debug, .control_fd = -1,
				    .reader_fd = -1 };
	gid_t			control_gid = 0;
	struct policy_error	err;

	/*
	 * Not dumpable from the start, and so is every process forked
	 * from here (the resolver): a process of the same uid must not
	 * read or write our memory through /proc or ptrace.
	 */
	sandbox_undumpable();

	log_init(o->log_level);
	if (o->log_file != NULL)
		log_open(o->log_file);
	broker.policy_path = o->policy_path;
	broker.resolve_ms = o->resolve_ms ? o->resolve_ms : LIMIT_RESOLVE_MS;
	broker.tenant = o->tenant;
	broker.revoke = o->revoke;
	memcpy(broker.launched_groups, o->peer_groups,
	    sizeof(broker.launched_groups));
	broker.launched_ngroups = o->peer_ngroups;
	if (policy_load(broker.policy_path, &broker.policy, &err) != 0)
		fatalx("%s", err.message);
	if (source_fd == -1) {
		if (!o->socket_passed) {
			systemd_runtime_dir(o->socket_path);
			bind_socket(o->socket_path, o->socket_mode,
			    o->socket_owner, LISTEN_FD);
		}
		if (o->control_path != NULL)
			control_gid = bind_control(o->control_path,
			    o->control_group);
	} else if (source_fd != BROKER_SOURCE_FD)
		fatalx("the session source must be descriptor %d (the filter "
		    "names it)", BROKER_SOURCE_FD);
	else if (fcntl(source_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(source_fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("the launcher's session source");
	/* After the sockets, which must be LISTEN_FD and CONTROL_FD. */
	audit_open(o->decision_log);
	/* Before privileges go: the policy may be readable by root only. */
	reader_start(broker.policy_path, o->log_file, o->decision_log);

	/*
	 * A timer per waiting call, one per connection resolving (which
	 * has a waiting call), and two per connection held back by its
	 * tenant's bandwidth, one each way.
	 */
	loop_init((size_t)LIMIT_SESSIONS * 2 * (LIMIT_CALLS_PER_SESSION +
	    LIMIT_HANDLES_PER_SESSION));
	setup_signals(source_fd != -1);
	reader_watch();
	limit_descriptors();
	broker_read_own_addresses();
	if (source_fd == -1)
		systemd_notify_open();
	if (o->launched) {
		sandbox_drop_to(o->run_uid, o->run_gid);
		/* The switch cleared it: end with the launcher. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
			fatal("prctl PR_SET_PDEATHSIG");
	}
	else {
		if (o->user == NULL)
			ensure_default_user();
		sandbox_drop_privileges(o->user != NULL ? o->user :
		    DEFAULT_USER);
	}
	broker.uid = geteuid();
	resolver_start(o->sandbox);

	sandbox_limits();
	broker.may_listen = policy_may_listen(broker.policy);
	if (o->sandbox) {
		sb.listen = broker.may_listen;
		sb.session_fd = source_fd == -1 ? LISTEN_FD : -1;
		sb.source = source_fd != -1;
		sb.log_files = o->log_file != NULL || o->decision_log != NULL;
		sb.busy_poll = o->busy_poll_us > 0;
		sb.reader_fd = reader_socket();
		sb.control_fd = source_fd == -1 && o->control_path != NULL ?
		    CONTROL_FD : -1;
		sandbox_broker(&sb);
		broker.sandboxed = true;
	} else
		log_warnx("sandbox: disabled by --no-sandbox");

	if (source_fd == -1) {
		session_listen_socket(LISTEN_FD);
		if (o->control_path != NULL)
			control_listen(CONTROL_FD, control_gid);
		log_info("serving %s with policy %s (%zu rules)",
		    o->socket_path, broker.policy_path, broker.policy->nrules);
		systemd_notify("READY=1");
	} else {
		broker.private = true;
		struct ucred cred = { o->peer_pid, o->peer_uid, o->peer_gid };
		source_serve(source_fd, &cred);
		log_info("serving one command with policy %s (%zu rules)",
		    broker.policy_path, broker.policy->nrules);
	}

	if (o->busy_poll_us > 0) {
		log_info("busy polling for %u us after each event",
		    o->busy_poll_us);
		loop_busy_poll(o->busy_poll_us);
	}
	loop_run(session_reap);

	session_close_all();
	account_flush();
	quota_free_all();
	policy_free(broker.policy);
	log_info("stopped");
}

int
main(int argc, char *argv[])
{
	static const struct option	 options[] = {
		{ "policy",	required_argument,	NULL, 'p' },
		{ "socket",	required_argument,	NULL, 's' },
		{ "socket-mode", required_argument,	NULL, 'm' },
		{ "socket-owner", required_argument,	NULL, 'o' },
		{ "user",	required_argument,	NULL, 'u' },
		{ "log",	required_argument,	NULL, 'L' },
		{ "log-level",	required_argument,	NULL, 'l' },
		{ "decision-log", required_argument,	NULL, 'J' },
		{ "resolve-timeout", required_argument,	NULL, 'R' },
		{ "busy-poll",	required_argument,	NULL, 'B' },
		{ "control",	required_argument,	NULL, 'C' },
		{ "revoke-on-reload", no_argument,	NULL, 'K' },
		{ "control-group", required_argument,	NULL, 'G' },
		{ "no-sandbox",	no_argument,		NULL, 'N' },
		{ "sandbox-debug", no_argument,		NULL, 'D' },
		{ "check",	required_argument,	NULL, 'c' },
		{ "print-filter", no_argument,		NULL, 'P' },
		{ "list-syscalls", no_argument,		NULL, 'S' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct broker_options	 o = {
		.socket_path = TB_DEFAULT_SOCKET,
		.socket_mode = 0600,
		.log_level = LOG_LEVEL_INFO,
		.sandbox = true,
	};
	bool			 print_filter = false;
	const char		*passed;
	char			*end;
	long			 value;
	int			 ch;

	/*
	 * Names in the policy are users and groups of /etc/passwd and
	 * /etc/group only: the confined broker looks them up again at
	 * reload, and a module loaded then would need executable memory.
	 * --check and --explain see the same.
	 */
	__nss_configure_lookup("passwd", "files");
	__nss_configure_lookup("group", "files");
	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return launcher_main(argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "status") == 0 ||
	    strcmp(argv[1], "metrics") == 0))
		return status_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "--explain") == 0)
		return explain_main(argc - 1, argv + 1);
	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o.policy_path = optarg;
			break;
		case 's':
			o.socket_path = optarg;
			break;
		case 'm':
			errno = 0;
			value = strtol(optarg, &end, 8);
			if (errno != 0 || *end != '\0' || value < 0 ||
			    value > 0777)
				fatalx("--socket-mode: expected an octal mode");
			o.socket_mode = (mode_t)value;
			break;
		case 'o':
			o.socket_owner = optarg;
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'L':
			o.log_file = optarg;
			break;
		case 'J':
			o.decision_log = optarg;
			break;
		case 'C':
			o.control_path = optarg;
			break;
		case 'K':
			o.revoke = true;
			break;
		case 'G':
			o.control_group = optarg;
			break;
		case 'R':
			o.resolve_ms = broker_option_uint("--resolve-timeout",
			    optarg, 1, LIMIT_RESOLVE_MS_MAX, "milliseconds");
			break;
		case 'B':
			o.busy_poll_us = broker_option_uint("--busy-poll",
			    optarg, 0, LIMIT_BUSY_POLL_US_MAX, "microseconds");
			break;
		case 'l':
			if (log_level_parse(optarg, &o.log_level) != 0)
				fatalx("--log-level: expected error, warn, "
				    "info or debug");
			break;
		case 'N':
			o.sandbox = false;
			break;
		case 'D':
			o.sandbox_debug = true;
			break;
		case 'c':
			/* Every file named after it is checked too. */
			return check_policies(optarg, argv + optind,
			    argc - optind);
		case 'P':
			print_filter = true;
			break;
		case 'S':
			sandbox_list(stdout);
			return 0;
		case 'V':
			printf("tcpbroker %s, protocol version %d\n",
			    TB_VERSION, PROTO_VERSION);
			return 0;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc || o.policy_path == NULL)
		usage(2);
	if (print_filter) {
		struct policy		*policy;
		struct policy_error	 err;
		/* The reader's descriptor as it would be; any number does. */
		struct sandbox_broker	 sb = { .session_fd = LISTEN_FD,
					    .control_fd = -1,
					    .reader_fd = LISTEN_FD + 2 };

		if (policy_load(o.policy_path, &policy, &err) != 0)
			fatalx("%s", err.message);
		sb.listen = policy_may_listen(policy);
		sb.log_files = o.log_file != NULL || o.decision_log != NULL;
		sb.busy_poll = o.busy_poll_us > 0;
		policy_free(policy);
		return sandbox_print_broker(&sb, STDOUT_FILENO) == 0 ? 0 : 1;
	}
	/*
	 * Nothing inherited stays open but a socket systemd passed: the
	 * broker holds what it opens.
	 */
	if ((passed = systemd_listen_fd(LISTEN_FD)) != NULL) {
		o.socket_path = passed;
		o.socket_passed = true;
	}
	if (close_range(o.socket_passed ? LISTEN_FD + 1 : LISTEN_FD, ~0U,
	    0) == -1)
		fatal("close_range");
	broker_stdio();
	broker_serve(&o, -1);
	return 0;
}
