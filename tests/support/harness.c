/* A real broker process for the tests, started and stopped by PID. */
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* How long a broker may take to start or to stop: milliseconds. */
#define BROKER_START_MS	5000
#define BROKER_STOP_MS	5000
/* How much longer the broker takes to start under valgrind. */
#define VALGRIND_SLOWER	6
#define VALGRIND_BIN	"/usr/bin/valgrind"

uint64_t
harness_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
harness_sleep_ms(unsigned ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

pid_t
harness_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* System calls a thread blocked in a tb_* call may sleep in. */
static const long	waiting_calls[] = {
	SYS_recvfrom, SYS_recvmsg, SYS_read, SYS_accept4, SYS_epoll_pwait,
#ifdef SYS_futex
	SYS_futex,
#endif
#ifdef SYS_futex_time64
	SYS_futex_time64,
#endif
#ifdef SYS_ppoll
	SYS_ppoll,
#endif
#ifdef SYS_ppoll_time64
	SYS_ppoll_time64,
#endif
#ifdef SYS_poll
	SYS_poll,
#endif
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
};

/*
 * 1 when thread tid of pid sleeps in one of waiting_calls, 0 when not
 * (yet), -1 when /proc does not say (no such thread, or no access).
 */
static int
blocked_now(pid_t pid, pid_t tid)
{
	char	 path[64], buf[256], *p;
	long	 nr;
	FILE	*f;
	size_t	 i;
	bool	 sleeping = false;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
	    (int)tid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	/* The state follows the command's closing parenthesis. */
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'S')
		sleeping = true;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid,
	    (int)tid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;	/* "running" */
	fclose(f);
	if (!sleeping)
		return 0;
	for (i = 0; i < sizeof(waiting_calls) / sizeof(waiting_calls[0]); i++)
		if (nr == waiting_calls[i])
			return 1;
	return 0;
}

bool
harness_wait_blocked(pid_t pid, pid_t tid, unsigned timeout_ms)
{
	uint64_t	end;
	int		rc;

	end = harness_now_ms() + timeout_ms;
	while ((rc = blocked_now(pid, tid)) == 0) {
		if (harness_now_ms() >= end)
			return false;
		harness_sleep_ms(1);
	}
	if (rc == -1)
		print_error("/proc/%d/task/%d cannot be read: %s\n", (int)pid,
		    (int)tid, strerror(errno));
	return rc == 1;
}

bool
harness_wait_thread_blocked(atomic_int *tid, unsigned timeout_ms)
{
	uint64_t	end, now;

	end = harness_now_ms() + timeout_ms;
	while (atomic_load(tid) == 0) {
		if (harness_now_ms() >= end)
			return false;
		harness_sleep_ms(1);
	}
	now = harness_now_ms();
	return harness_wait_blocked(getpid(), (pid_t)atomic_load(tid),
	    now < end ? (unsigned)(end - now) : 0);
}

void
harness_copy(const char *from, const char *to)
{
	char	cmd[512];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 0755 '%s'", from,
	    to, to);
	assert_int_equal(system(cmd), 0);
}

static void
write_file_mode(const char *path, const char *text, mode_t mode)
{
	char	tmp[160];
	FILE	*f;

	/* Written aside and renamed, so a reader never sees half a file. */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	assert_non_null(f = fopen(tmp, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void
write_file(const char *path, const char *text)
{
	write_file_mode(path, text, 0644);
}

/* How many lines of the broker's log hold needle. */
static int
log_count(struct broker_proc *b, const char *needle)
{
	FILE	*f = fopen(b->log, "r");
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

bool
harness_broker_reload(struct broker_proc *b, const char *policy)
{
	return harness_broker_reload_mode(b, policy, 0644);
}

bool
harness_broker_reload_mode(struct broker_proc *b, const char *policy,
    mode_t mode)
{
	int	done = log_count(b, "policy reloaded");
	int	refused = log_count(b, "reload refused");
	int	i;

	write_file_mode(b->policy, policy, mode);
	assert_int_equal(kill(b->pid, SIGHUP), 0);
	for (i = 0; i < 500; i++) {
		if (log_count(b, "policy reloaded") > done)
			return true;
		if (log_count(b, "reload refused") > refused)
			return false;
		harness_sleep_ms(10);
	}
	fail_msg("the broker did not answer SIGHUP");
	return false;
}

static bool
socket_ready(const char *path)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	int			fd, ok;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return false;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

void
harness_broker_start(struct broker_proc *b, const char *policy)
{
	harness_broker_start_hosts(b, policy, NULL);
}

void
harness_broker_start_hosts(struct broker_proc *b, const char *policy,
    const char *hosts)
{
	struct harness_options	opts = { .hosts = hosts };

	harness_broker_start_opts(b, policy, &opts);
}

/*
 * Under tests/valgrind.sh (TB_VALGRIND_DIR set, a -DTB_VALGRIND=ON
 * build): the broker runs under memcheck, a report per process in that
 * directory, which the script reads.
 */
static void
exec_valgrind(const char *dir, const char *binary, const char **argv)
{
	const char	*vargv[64];
	char		 logfile[PATH_MAX];
	int		 n = 0, i;

	snprintf(logfile, sizeof(logfile), "--log-file=%s/vg.%%p.log", dir);
	vargv[n++] = "valgrind";
	vargv[n++] = "--error-exitcode=99";
	vargv[n++] = "--leak-check=full";
	vargv[n++] = "--errors-for-leak-kinds=definite";
	vargv[n++] = "--show-leak-kinds=definite";
	vargv[n++] = "--vgdb=no";
	vargv[n++] = logfile;
	vargv[n++] = binary;
	for (i = 1; argv[i] != NULL && n < 63; i++)
		vargv[n++] = argv[i];
	vargv[n] = NULL;
	execv(VALGRIND_BIN, (char *const *)vargv);
	_exit(127);
}

/*
 * Brokers started and not yet stopped, killed by PID when the test
 * program exits: a failed assertion leaves the test before its
 * harness_broker_stop(), and a broker must not outlive its test.
 */
#define LEFT_BROKERS_MAX	32
static pid_t	left_brokers[LEFT_BROKERS_MAX];
static pid_t	left_owner;	/* not a child forked by the test */

static void
kill_left_brokers(void)
{
	size_t	i;

	if (getpid() != left_owner)
		return;
	for (i = 0; i < LEFT_BROKERS_MAX; i++)
		if (left_brokers[i] > 0 &&
		    waitpid(left_brokers[i], NULL, WNOHANG) == 0) {
			fprintf(stderr, "killing broker %d, left running\n",
			    (int)left_brokers[i]);
			kill(left_brokers[i], SIGKILL);
			waitpid(left_brokers[i], NULL, 0);
			left_brokers[i] = 0;
		}
}

static void
track_broker(pid_t pid, pid_t was)
{
	size_t	i;

	if (left_owner == 0) {
		left_owner = getpid();
		atexit(kill_left_brokers);
	}
	for (i = 0; i < LEFT_BROKERS_MAX; i++)
		if (left_brokers[i] == was) {
			left_brokers[i] = pid;
			return;
		}
}

/* Fails the test before a fork when one more broker would go untracked. */
static void
track_room(void)
{
	size_t	i;

	for (i = 0; i < LEFT_BROKERS_MAX; i++)
		if (left_brokers[i] == 0)
			return;
	fail_msg("more than %d brokers at once", LEFT_BROKERS_MAX);
}

void
harness_broker_start_opts(struct broker_proc *b, const char *policy,
    const struct harness_options *o)
{
	const char	*argv[24];
	const char	*valgrind = getenv("TB_VALGRIND_DIR");
	char		 binary[160];
	struct passwd	*pw = NULL;
	uint64_t	 deadline;
	char		 hosts_path[128];
	int		 fd, status, n = 0, i;
	bool		 quiet = false;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/tcpbroker-test-XXXXXX");
	assert_non_null(mkdtemp(b->dir));
	/* The broker drops to nobody, who must read the policy on SIGHUP. */
	assert_int_equal(chmod(b->dir, 0755), 0);
	if (o->user != NULL) {
		/* A broker started as a user binds its socket as that user. */
		assert_non_null(pw = getpwnam(o->user));
		assert_int_equal(chown(b->dir, pw->pw_uid, pw->pw_gid), 0);
	}
	/*
	 * A broker started as a user runs a copy in its own directory: the
	 * build's may be where that user cannot go (a clone under /root).
	 */
	snprintf(binary, sizeof(binary), "%s", TB_BROKER_BIN);
	if (o->user != NULL) {
		snprintf(binary, sizeof(binary), "%s/tcpbroker", b->dir);
		harness_copy(TB_BROKER_BIN, binary);
	}
	snprintf(b->socket, sizeof(b->socket), "%s/broker.sock", b->dir);
	snprintf(b->policy, sizeof(b->policy), "%s/policy.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	write_file(b->policy, policy);
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", b->dir);
	if (o->hosts != NULL)
		write_file(hosts_path, o->hosts);

	argv[n++] = "tcpbroker";
	argv[n++] = "--policy";
	argv[n++] = b->policy;
	argv[n++] = "--socket";
	argv[n++] = b->socket;
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (i = 0; i < 8 && o->args[i] != NULL; i++) {
		argv[n++] = o->args[i];
		/*
		 * A quieter log, or one in a file of its own, has no
		 * readiness line to wait for.
		 */
		if (strcmp(o->args[i], "--log-level") == 0 ||
		    strcmp(o->args[i], "--log") == 0)
			quiet = true;
	}
	argv[n] = NULL;

	track_room();
	b->pid = fork();
	assert_true(b->pid != -1);
	if (b->pid == 0) {
		fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd == -1 || dup2(fd, 2) == -1)
			_exit(127);
		if (o->hosts != NULL && (unshare(CLONE_NEWNS) == -1 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
		    mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) == -1)) {
			perror("test hosts file");
			_exit(127);
		}
		if (o->nofile != 0 && setrlimit(RLIMIT_NOFILE, &(struct rlimit){
		    o->nofile, o->nofile }) == -1) {
			perror("test descriptor limit");
			_exit(127);
		}
		if (o->address_space != 0 && setrlimit(RLIMIT_AS,
		    &(struct rlimit){ o->address_space, o->address_space }) ==
		    -1) {
			perror("test address space limit");
			_exit(127);
		}
		if (pw != NULL && (setgroups(0, NULL) == -1 ||
		    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)) {
			perror("test user");
			_exit(127);
		}
		/*
		 * In sanitizer builds the broker's filter forbids running a
		 * symbolizer; reports come out with raw addresses instead.
		 */
		setenv("ASAN_OPTIONS", "symbolize=0", 0);
		if (valgrind != NULL)
			exec_valgrind(valgrind, binary, argv);
		execv(binary, (char *const *)argv);
		_exit(127);
	}
	track_broker(b->pid, 0);
	deadline = harness_now_ms() + BROKER_START_MS *
	    (valgrind != NULL ? VALGRIND_SLOWER : 1);
	/*
	 * Ready once it says it serves: that comes after the filter, so
	 * a test never sees the broker half set up.
	 */
	while ((!quiet && !harness_log_contains(b, "info: serving ")) ||
	    !socket_ready(b->socket)) {
		if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
			track_broker(0, b->pid);
			b->pid = 0;
			fail_msg("the broker exited at start; see %s", b->log);
		}
		if (harness_now_ms() > deadline)
			fail_msg("the broker did not start; see %s", b->log);
		harness_sleep_ms(10);
	}
}

int
harness_broker_stop(struct broker_proc *b)
{
	uint64_t	deadline;
	int		status = -1;
	char		cmd[128];

	if (b->pid <= 0)
		return -1;
	kill(b->pid, SIGTERM);
	deadline = harness_now_ms() + BROKER_STOP_MS;
	while (waitpid(b->pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &status, 0);
			break;
		}
		harness_sleep_ms(10);
	}
	track_broker(0, b->pid);
	b->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    getenv("TB_KEEP_LOGS") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", b->dir);
	} else
		fprintf(stderr, "broker log kept in %s\n", b->log);
	return status;
}

int
harness_broker_kill(struct broker_proc *b)
{
	int	status = -1;

	assert_true(b->pid > 0);
	assert_int_equal(kill(b->pid, SIGKILL), 0);
	assert_int_equal(waitpid(b->pid, &status, 0), b->pid);
	track_broker(0, b->pid);
	b->pid = 0;
	return status;
}

bool
harness_log_contains(struct broker_proc *b, const char *needle)
{
	FILE	*f = fopen(b->log, "r");
	char	 line[2048];
	bool	 found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

int
harness_children(pid_t pid, pid_t *pids, int max)
{
	struct dirent	*d;
	char		 path[300], buf[512], *p;
	DIR		*dir;
	FILE		*f;
	int		 n = 0, ppid;

	assert_non_null(dir = opendir("/proc"));
	while (n < max && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		/* pid (comm) state ppid ...: comm may hold spaces. */
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			pids[n++] = atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return n;
}

int
harness_wait_children(pid_t pid, pid_t *pids, int max, int want)
{
	uint64_t	deadline = harness_now_ms() + BROKER_START_MS;
	int		n;

	while ((n = harness_children(pid, pids, max)) != want) {
		if (harness_now_ms() > deadline)
			fail_msg("process %d has %d children, not %d", (int)pid,
			    n, want);
		harness_sleep_ms(10);
	}
	return n;
}

/* Whether /proc/PID/comm is name. */
static bool
comm_is(pid_t pid, const char *name)
{
	char	path[64], comm[32] = "";
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, name) == 0;
}

pid_t
harness_wait_child(pid_t pid, const char *name)
{
	uint64_t	deadline = harness_now_ms() + BROKER_START_MS;
	pid_t		pids[16];
	int		n, i;

	for (;;) {
		n = harness_children(pid, pids, 16);
		for (i = 0; i < n; i++)
			if (comm_is(pids[i], name))
				return pids[i];
		if (harness_now_ms() > deadline)
			fail_msg("process %d has no child called %s", (int)pid,
			    name);
		harness_sleep_ms(10);
	}
}

tb_client *
harness_client(struct broker_proc *b)
{
	struct tb_error	 err;
	tb_client	*c = NULL;

	assert_ok(tb_client_open_path(&c, b->socket, &err), &err);
	assert_non_null(c);
	return c;
}

int
harness_connect_as(struct broker_proc *b, uid_t uid)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	struct msghdr		 msg = { 0 };
	struct cmsghdr		*cm;
	struct iovec		 iov;
	union {
		char		 buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	 align;
	}			 u;
	pid_t			 pid;
	char			 byte = 0;
	int			 sv[2], fd = -1, status;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", b->socket);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		/* The peer credentials are taken at connect(). */
		if (setgroups(0, NULL) == -1 || setresgid(uid, uid, uid) == -1 ||
		    setresuid(uid, uid, uid) == -1)
			_exit(1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd != -1 && connect(fd, (struct sockaddr *)&sun,
		    sizeof(sun)) == -1) {
			close(fd);
			fd = -1;
		}
		iov.iov_base = &byte;
		iov.iov_len = 1;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if (fd != -1) {
			msg.msg_control = u.buf;
			msg.msg_controllen = sizeof(u.buf);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		_exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 1);
	}
	close(sv[1]);
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	if (recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC) == 1 &&
	    (cm = CMSG_FIRSTHDR(&msg)) != NULL && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return fd;
}

tb_client *
harness_client_as(struct broker_proc *b, uid_t uid, struct tb_error *err)
{
	tb_client	*c = NULL;
	int		 fd;

	if ((fd = harness_connect_as(b, uid)) == -1) {
		err->code = TB_EBROKER;
		snprintf(err->message, sizeof(err->message), "connect as %u",
		    (unsigned)uid);
		return NULL;
	}
	if (tb_client_open_fd(&c, fd, err) != 0)
		return NULL;
	return c;
}

long
harness_status_field(pid_t pid, const char *field)
{
	char	 path[64], line[256];
	long	 v = -1;
	size_t	 len = strlen(field);
	FILE	*f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, len) == 0) {
			v = atol(line + len);
			break;
		}
	fclose(f);
	return v;
}
