/*
 * Helper processes: each is started by fork and exec, remembered by
 * PID, and stopped by that PID, also when the benchmark fails.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Processes the benchmark has running at once. */
#define TRACKED_MAX	32
/* Grace between SIGTERM and SIGKILL: milliseconds. */
#define STOP_GRACE_MS	3000
/* Poll step while waiting for a helper: milliseconds. */
#define WAIT_STEP_MS	10

static struct {
	pid_t	pid;
	char	name[32];
} tracked[TRACKED_MAX];

uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t
now_ms(void)
{
	return now_ns() / 1000000;
}

void
sleep_ms(unsigned ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void
warnx_(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	proc_stop_all();
	exit(1);
}

void
proc_track(pid_t pid, const char *name)
{
	int	i;

	for (i = 0; i < TRACKED_MAX; i++)
		if (tracked[i].pid == 0) {
			tracked[i].pid = pid;
			snprintf(tracked[i].name, sizeof(tracked[i].name),
			    "%s", name);
			return;
		}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	die("more than %d helper processes", TRACKED_MAX);
}

void
proc_untrack(pid_t pid)
{
	int	i;

	for (i = 0; i < TRACKED_MAX; i++)
		if (tracked[i].pid == pid)
			tracked[i].pid = 0;
}

static void
stop_pid(pid_t pid)
{
	uint64_t	deadline = now_ms() + STOP_GRACE_MS;

	if (kill(pid, SIGTERM) == -1 && errno == ESRCH) {
		waitpid(pid, NULL, WNOHANG);
		return;
	}
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			break;
		}
		sleep_ms(WAIT_STEP_MS);
	}
}

void
proc_stop_all(void)
{
	int	i;

	/* Newest first: proxies and the broker before the servers. */
	for (i = TRACKED_MAX - 1; i >= 0; i--)
		if (tracked[i].pid > 0) {
			stop_pid(tracked[i].pid);
			tracked[i].pid = 0;
		}
}

void
proc_spawn(struct proc *p, const char *name, char *const argv[],
    const char *log)
{
	int	fd;

	snprintf(p->name, sizeof(p->name), "%s", name);
	if ((p->pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (p->pid == 0) {
		if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
		    dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	proc_track(p->pid, name);
}

void
proc_stop(struct proc *p)
{
	if (p->pid <= 0)
		return;
	stop_pid(p->pid);
	proc_untrack(p->pid);
	p->pid = 0;
}

static int
try_connect(const struct sockaddr *sa, socklen_t len)
{
	int	fd, ok;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = connect(fd, sa, len) == 0;
	close(fd);
	return ok;
}

static void
wait_ready(struct proc *p, const struct sockaddr *sa, socklen_t len)
{
	uint64_t	deadline = now_ms() + BENCH_READY_MS;
	int		status;

	while (!try_connect(sa, len)) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			proc_untrack(p->pid);
			p->pid = 0;
			die("%s exited at start (status %d)", p->name, status);
		}
		if (now_ms() > deadline)
			die("%s did not get ready in %d ms", p->name,
			    BENCH_READY_MS);
		sleep_ms(WAIT_STEP_MS);
	}
}

void
proc_wait_tcp(struct proc *p, uint16_t port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	wait_ready(p, (struct sockaddr *)&sin, sizeof(sin));
}

void
proc_wait_unix(struct proc *p, const char *path)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	wait_ready(p, (struct sockaddr *)&sun, sizeof(sun));
}

uint16_t
free_port(void)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	socklen_t		len = sizeof(sin);
	int			fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		die("free port: %s", strerror(errno));
	close(fd);
	return ntohs(sin.sin_port);
}

uint64_t
proc_rss(pid_t pid)
{
	char		path[64], line[256];
	unsigned long	kb = 0;
	FILE		*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/*
 * The build's broker, started as root as the tests start it: it drops
 * to nobody, so its directory is world-readable and its socket open to
 * the uids the idle connections come from.
 */
void
broker_start(struct broker *b, const char *policy, const char *busy_poll)
{
	char	*argv[] = { TB_BROKER_BIN, "--policy", (char *)policy,
		    "--socket", b->socket, "--socket-mode", "0666",
		    "--log", b->log, "--busy-poll",
		    (char *)(busy_poll != NULL ? busy_poll : "0"), NULL };

	snprintf(b->dir, sizeof(b->dir), "/tmp/tcpbroker-bench-XXXXXX");
	if (mkdtemp(b->dir) == NULL || chmod(b->dir, 0755) == -1)
		die("broker directory: %s", strerror(errno));
	snprintf(b->socket, sizeof(b->socket), "%s/broker.sock", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	proc_spawn(&b->proc, "tcpbroker", argv, "/dev/null");
	proc_wait_unix(&b->proc, b->socket);
}

void
broker_stop(struct broker *b)
{
	proc_stop(&b->proc);
	unlink(b->socket);
	unlink(b->log);
	rmdir(b->dir);
}

int
loopback_listen(uint16_t *port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	socklen_t		len = sizeof(sin);
	int			fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, SOMAXCONN) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		die("server listener: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

int
loopback_dial(uint16_t port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The benchmark runs in a network namespace of its own with only
 * loopback up: no helper, Dante included, can reach anything else, nor
 * ask a real DNS server.  Its TIME_WAIT is bounded there
 * (BENCH_TIME_WAIT_MAX); the machine's own setting is not touched.
 */
void
net_isolate(void)
{
	const char *const	 tw = "/proc/sys/net/ipv4/tcp_max_tw_buckets";
	struct ifreq		 ifr;
	FILE			*f;
	int			 fd;

	if (unshare(CLONE_NEWNET) == -1)
		die("unshare(CLONE_NEWNET): %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		die("lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		die("lo up: %s", strerror(errno));
	close(fd);
	if ((f = fopen(tw, "w")) == NULL ||
	    fprintf(f, "%d\n", BENCH_TIME_WAIT_MAX) < 0 || fclose(f) != 0)
		die("%s: %s", tw, strerror(errno));
}
