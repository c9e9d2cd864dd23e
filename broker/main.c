/*
 * tcpbroker: owns the TCP sockets of untrusted script interpreters and
 * opens them only where the administrator's policy allows.
 *
 * Set-up runs in a fixed order: read the policy, start the resolver,
 * bind the Unix socket, then serve.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

struct broker	broker;

static struct loop_io	signal_io;
static const char	*socket_path;

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: tcpbroker --policy FILE [--socket PATH] [--socket-mode MODE]\n"
	    "                 [--log-level error|warn|info|debug]\n"
	    "       tcpbroker --check FILE\n"
	    "       tcpbroker --version\n");
	exit(status);
}

static int
check_policy(const char *path)
{
	struct policy		*policy;
	struct policy_error	 err;

	if (policy_load(path, &policy, &err) != 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	printf("%s: %zu rule%s, OK\n", path, policy->nrules,
	    policy->nrules == 1 ? "" : "s");
	policy_free(policy);
	return 0;
}

static void
reload_policy(void)
{
	struct policy		*policy;
	struct policy_error	 err;

	if (policy_load(broker.policy_path, &policy, &err) != 0) {
		log_warnx("reload refused, keeping the current policy: %s",
		    err.message);
		return;
	}
	policy_free(broker.policy);
	broker.policy = policy;
	log_info("policy reloaded from %s: %zu rules", broker.policy_path,
	    policy->nrules);
}

static void
signal_event(struct loop_io *io, uint32_t events)
{
	struct signalfd_siginfo	info;

	(void)events;
	while (read(io->fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
		switch (info.ssi_signo) {
		case SIGHUP:
			reload_policy();
			break;
		default:
			log_info("signal %u: shutting down", info.ssi_signo);
			loop_stop();
			break;
		}
	}
}

static void
setup_signals(void)
{
	sigset_t	set;
	int		fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	if (loop_add(&signal_io, fd, EPOLLIN, signal_event, NULL) == -1)
		fatal("epoll_ctl");
}

/* Binds the Unix socket, refusing to steal one a live broker serves. */
static int
bind_socket(const char *path, mode_t mode)
{
	struct sockaddr_un	sun;
	struct stat		st;
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
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", path);
	if (chmod(path, mode) == -1)
		fatal("chmod %s", path);
	if (listen(fd, SOMAXCONN) == -1)
		fatal("listen %s", path);
	return fd;
}

static void
raise_fd_limit(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char *argv[])
{
	static const struct option	 options[] = {
		{ "policy",	required_argument,	NULL, 'p' },
		{ "socket",	required_argument,	NULL, 's' },
		{ "socket-mode", required_argument,	NULL, 'm' },
		{ "log-level",	required_argument,	NULL, 'l' },
		{ "check",	required_argument,	NULL, 'c' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct policy_error	 err;
	enum log_level		 level = LOG_LEVEL_INFO;
	mode_t			 mode = 0600;
	char			*end;
	long			 value;
	int			 ch, fd;

	socket_path = TB_DEFAULT_SOCKET;
	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'p':
			broker.policy_path = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'm':
			errno = 0;
			value = strtol(optarg, &end, 8);
			if (errno != 0 || *end != '\0' || value < 0 ||
			    value > 0777)
				fatalx("--socket-mode: expected an octal mode");
			mode = (mode_t)value;
			break;
		case 'l':
			if (log_level_parse(optarg, &level) != 0)
				fatalx("--log-level: expected error, warn, "
				    "info or debug");
			break;
		case 'c':
			return check_policy(optarg);
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
	if (optind != argc || broker.policy_path == NULL)
		usage(2);
	log_init(level);

	if (policy_load(broker.policy_path, &broker.policy, &err) != 0)
		fatalx("%s", err.message);
	loop_init((size_t)LIMIT_SESSIONS * LIMIT_CALLS_PER_SESSION);
	setup_signals();
	raise_fd_limit();
	resolver_start();
	fd = bind_socket(socket_path, mode);
	session_listen_socket(fd);
	log_info("serving %s with policy %s (%zu rules)", socket_path,
	    broker.policy_path, broker.policy->nrules);

	loop_run(session_reap);

	session_close_all();
	unlink(socket_path);
	policy_free(broker.policy);
	log_info("stopped");
	return 0;
}
