/*
 * The isolation of a command run by `tcpbroker run`.  Each layer holds
 * on its own, so that one missing (an old kernel) or broken does not
 * open the others:
 *
 *  1. a uid of its own, taken from a range and held by a lock while the
 *     launch lasts, so no other launched command and no broker shares it
 *     (started as root; otherwise the launcher's uid, in a user
 *     namespace);
 *  2. new PID, IPC and UTS namespaces, with a /proc of its own: it sees
 *     and signals only its own processes;
 *  3. a new network namespace: no route anywhere, and abstract Unix
 *     sockets are per network namespace;
 *  4. a mount namespace in which /run, /var/run, /tmp, /var/tmp,
 *     /dev/shm and /dev/log (the host's Unix sockets) are empty;
 *  5. Landlock: no signals to and no abstract sockets of processes
 *     outside its domain (ABI 6), no TCP bind or connect (ABI 4);
 *  6. the seccomp filter of sandbox.c, with no_new_privs.
 * What the kernel lacks is said at start, and by --explain-sandbox.
 */
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolate.h"
#include "sandbox.h"

/* Uids of the range tried before giving up: uids. */
#define ISOLATE_UID_TRIES	4096
/* Size of each empty tmpfs put over a directory of sockets. */
#define ISOLATE_TMPFS_OPTIONS	"size=64m,nr_inodes=16k"

/*
 * Landlock beyond the kernel headers of Debian 12: the attribute grew
 * handled_access_net in ABI 4 and scoped in ABI 6.
 */
struct isolate_landlock_attr {
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;
	uint64_t	scoped;
};
#define LL_ACCESS_NET_BIND_TCP		(1ULL << 0)
#define LL_ACCESS_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)
#define LL_SCOPE_SIGNAL			(1ULL << 1)

/* The directories that hold the host's Unix sockets, emptied. */
static const char *const hidden_dirs[] = {
	"/run", "/var/run", "/tmp", "/var/tmp", "/dev/shm",
};

static void __attribute__((format(printf, 1, 2)))
warn(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "tcpbroker run: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

int
isolate_parse_range(const char *text, struct isolate_uid_range *r)
{
	unsigned long	lo, hi;
	char		*end;

	errno = 0;
	lo = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '-' || text[0] == '-')
		return -1;
	text = end + 1;
	hi = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
	    lo == 0 || hi < lo || hi >= (unsigned long)UINT32_MAX - 1)
		return -1;
	r->lo = (uid_t)lo;
	r->hi = (uid_t)hi;
	return 0;
}

/* The lock directory, root's own and nobody else's. */
static int
lock_dir(const char **why)
{
	struct stat	st;
	int		fd;

	if (mkdir(ISOLATE_LOCK_DIR, 0700) == -1 && errno != EEXIST) {
		*why = "cannot make " ISOLATE_LOCK_DIR;
		return -1;
	}
	fd = open(ISOLATE_LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1 || st.st_uid != 0 ||
	    (st.st_mode & 0022) != 0) {
		if (fd != -1)
			close(fd);
		*why = ISOLATE_LOCK_DIR " must be a directory of root's that "
		    "only root may write";
		return -1;
	}
	return fd;
}

int
isolate_take_uid(const struct isolate_uid_range *r, uid_t *uid, int *lock_fd,
    const char **why)
{
	uint64_t	n = (uint64_t)r->hi - r->lo + 1, i, start;
	char		name[16];
	uid_t		u;
	int		dir, fd;

	if ((dir = lock_dir(why)) == -1)
		return -1;
	/* Spread the launches over the range, so they rarely collide. */
	start = ((uint64_t)getpid() * 2654435761u) % n;
	for (i = 0; i < n && i < ISOLATE_UID_TRIES; i++) {
		u = (uid_t)(r->lo + (start + i) % n);
		/* Never a uid or gid that belongs to someone. */
		if (getpwuid(u) != NULL || getgrgid((gid_t)u) != NULL)
			continue;
		snprintf(name, sizeof(name), "%u", (unsigned)u);
		fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd == -1)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			close(dir);
			*uid = u;
			*lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	close(dir);
	*why = "no free uid in the range (see --uid-range)";
	return -1;
}

int
isolate_landlock_abi(void)
{
	long	abi;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

/*
 * No signals to, and no abstract sockets of, processes outside the
 * command's domain (ABI 6); no TCP bind or connect at all (ABI 4).
 * Returns the ABI used, 0 when the kernel has too little.
 */
static int
landlock(void)
{
	struct isolate_landlock_attr	attr;
	size_t				size;
	int				abi = isolate_landlock_abi(), fd;

	if (abi < 4)
		return 0;
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_net = LL_ACCESS_NET_BIND_TCP |
	    LL_ACCESS_NET_CONNECT_TCP;
	size = offsetof(struct isolate_landlock_attr, scoped);
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd == -1)
		return -1;
	if (syscall(SYS_landlock_restrict_self, fd, 0) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return abi;
}

static int __attribute__((format(printf, 2, 3)))
write_text(const char *path, const char *fmt, ...)
{
	char	buf[64];
	va_list	ap;
	int	fd, n, ok;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/*
 * In a new user namespace: the launcher's uid and gid, and no others.
 * The files are ours to write only while we are dumpable, for this
 * moment alone.
 */
static int
map_ids(uid_t uid, gid_t gid)
{
	int	rc = 0;

	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == -1)
		return -1;
	if (write_text("/proc/self/setgroups", "deny") == -1 ||
	    write_text("/proc/self/uid_map", "%u %u 1", (unsigned)uid,
	    (unsigned)uid) == -1 ||
	    write_text("/proc/self/gid_map", "%u %u 1", (unsigned)gid,
	    (unsigned)gid) == -1)
		rc = -1;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		rc = -1;
	return rc;
}

/* Makes path (and its parents) inside the new tmpfs, as a mount point. */
static int
make_mount_point(const char *path, bool dir)
{
	char	buf[4096], *p;
	int	fd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (dir)
		return mkdir(buf, 0755) == -1 && errno != EEXIST ? -1 : 0;
	/* Made only where nothing is: never open what is there already. */
	if ((fd = open(buf, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) == -1)
		return errno == EEXIST ? 0 : -1;
	close(fd);
	return 0;
}

/* The mount flags a remount must keep, read off the source. */
static unsigned long
locked_flags(int fd)
{
	struct statvfs	sv;
	unsigned long	flags = 0;

	if (fstatvfs(fd, &sv) == -1)
		return MS_NOSUID | MS_NODEV;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	return flags;
}

/*
 * The command's mounts: none shared back to the host, the directories
 * of the host's sockets empty, the --bind-ro paths visible read-only,
 * and a /proc of the new PID namespace.  Returns 0 or -1 (errno says).
 */
static int
setup_mounts(const struct isolate_spec *spec)
{
	int		 fds[ISOLATE_BINDS_MAX];
	char		 src[64];
	struct stat	 st;
	unsigned	 i;
	size_t		 d;
	int		 rc = -1;

	for (i = 0; i < spec->nbinds; i++)
		fds[i] = -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		return -1;
	for (i = 0; i < spec->nbinds; i++)
		if ((fds[i] = open(spec->binds[i], O_PATH | O_CLOEXEC)) == -1) {
			warn("--bind-ro %s: %s", spec->binds[i],
			    strerror(errno));
			goto out;
		}
	for (d = 0; d < sizeof(hidden_dirs) / sizeof(hidden_dirs[0]); d++) {
		/* /var/run is mostly a link to /run, hidden already. */
		if (lstat(hidden_dirs[d], &st) == -1 || !S_ISDIR(st.st_mode))
			continue;
		if (mount("tmpfs", hidden_dirs[d], "tmpfs", MS_NOSUID |
		    MS_NODEV, strcmp(hidden_dirs[d], "/run") == 0 ?
		    "mode=0755," ISOLATE_TMPFS_OPTIONS :
		    "mode=1777," ISOLATE_TMPFS_OPTIONS) == -1) {
			warn("cannot hide %s: %s", hidden_dirs[d],
			    strerror(errno));
			goto out;
		}
	}
	/* The log socket itself, where it is not a link into /run. */
	if (lstat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode) &&
	    mount("/dev/null", "/dev/log", NULL, MS_BIND, NULL) == -1) {
		warn("cannot hide /dev/log: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < spec->nbinds; i++) {
		snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
		if (fstat(fds[i], &st) == -1 ||
		    make_mount_point(spec->binds[i], S_ISDIR(st.st_mode)) ==
		    -1 ||
		    mount(src, spec->binds[i], NULL, MS_BIND | MS_REC,
		    NULL) == -1 ||
		    mount(NULL, spec->binds[i], NULL, MS_BIND | MS_REMOUNT |
		    MS_RDONLY | locked_flags(fds[i]), NULL) == -1) {
			warn("--bind-ro %s: %s", spec->binds[i],
			    strerror(errno));
			goto out;
		}
	}
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    NULL) == -1) {
		warn("cannot mount /proc for the PID namespace: %s",
		    strerror(errno));
		goto out;
	}
	rc = 0;
 out:
	for (i = 0; i < spec->nbinds; i++)
		if (fds[i] != -1)
			close(fds[i]);
	return rc;
}

/* Descriptors 0 to 2, a and b stay open (-1: none); no other. */
static int
close_all_but(int a, int b)
{
	unsigned	from = 3;
	int		lo = a < b ? a : b, hi = a < b ? b : a, keep[2], i;

	keep[0] = lo;
	keep[1] = hi;
	for (i = 0; i < 2; i++) {
		if (keep[i] < (int)from)
			continue;
		if (keep[i] > (int)from &&
		    close_range(from, (unsigned)keep[i] - 1, 0) == -1)
			return -1;
		from = (unsigned)keep[i] + 1;
	}
	return close_range(from, ~0U, 0);
}

/* The search path when PATH is unset or empty, as the shell's. */
#define EXEC_DEFAULT_PATH	"/usr/local/bin:/usr/bin:/bin"

/*
 * execvp(3), but a command found in no directory of PATH is "not found"
 * (status 127) even when some directory cannot be searched by the
 * command's uid (root's PATH often holds such), where execvp would say
 * EACCES.  A file that is there but cannot be run stays 126.
 */
static void __attribute__((noreturn))
exec_command(char *argv[])
{
	char		 file[PATH_MAX];
	const char	*path, *dir, *end;
	struct stat	 st;
	size_t		 len;
	int		 error = ENOENT;

	if (strchr(argv[0], '/') != NULL) {
		execv(argv[0], argv);
		error = errno;
	} else {
		if ((path = getenv("PATH")) == NULL || *path == '\0')
			path = EXEC_DEFAULT_PATH;
		for (dir = path; ; dir = end + 1) {
			if ((end = strchr(dir, ':')) == NULL)
				end = dir + strlen(dir);
			len = (size_t)(end - dir);
			if (snprintf(file, sizeof(file), "%.*s/%s",
			    len > 0 ? (int)len : 1, len > 0 ? dir : ".",
			    argv[0]) < (int)sizeof(file)) {
				execv(file, argv);
				/* Not there, or a directory we cannot enter. */
				if (errno != ENOENT && errno != ENOTDIR &&
				    !(errno == EACCES && stat(file, &st) == -1))
					error = errno;
			}
			if (*end == '\0')
				break;
		}
	}
	if (error == ENOENT)
		warn("%s: command not found", argv[0]);
	else
		warn("%s: %s", argv[0], strerror(error));
	_exit(error == ENOENT ? 127 : 126);
}

/* PID 2: the command, confined layer by layer, then run. */
static void __attribute__((noreturn))
run_command(const struct isolate_spec *spec, char *argv[], int keep)
{
	char	value[16];
	int	abi;

	snprintf(value, sizeof(value), "%d", keep);
	if (setenv("TCPBROKER_FD", value, 1) == -1 ||
	    unsetenv("TCPBROKER_SOCKET") == -1 ||
	    fcntl(keep, F_SETFD, 0) == -1 || close_all_but(keep, -1) == -1)
		_exit(126);
	if (spec->root && (setgroups(0, NULL) == -1 ||
	    setresgid(spec->gid, spec->gid, spec->gid) == -1 ||
	    setresuid(spec->uid, spec->uid, spec->uid) == -1 ||
	    setuid(0) != -1)) {
		warn("cannot switch to uid %u", (unsigned)spec->uid);
		_exit(126);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		_exit(126);
	if ((abi = landlock()) == -1) {
		warn("cannot install the Landlock rules: %s", strerror(errno));
		_exit(126);
	}
	if (spec->seccomp && sandbox_child() != 0) {
		warn("cannot confine the command");
		_exit(126);
	}
	exec_command(argv);
}

static volatile sig_atomic_t	command_pid;

/* Signals a process sent (the launcher's) go on to the command. */
static void
forward(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	/* A terminal's signal reached the command's group already. */
	if (info->si_code != SI_USER && info->si_code != SI_QUEUE)
		return;
	if (command_pid > 0)
		kill(command_pid, sig);
}

/* PID 1 of the namespace: starts the command, reaps, ends as it ends. */
static void __attribute__((noreturn))
init_main(const struct isolate_spec *spec, char *argv[], int keep)
{
	static const int	 signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGUSR1, SIGUSR2, SIGWINCH };
	struct sigaction	 sa;
	pid_t			 pid;
	size_t			 i;
	int			 status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
	switch (pid = fork()) {
	case -1:
		_exit(126);
	case 0:
		for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			signal(signals[i], SIG_DFL);
		if (sigprocmask(SIG_SETMASK, &spec->sigmask, NULL) == -1)
			_exit(126);
		run_command(spec, argv, keep);
	}
	command_pid = pid;
	/*
	 * What the launcher forwarded while there was no command yet was
	 * held blocked (a namespace's PID 1 drops a signal it has no
	 * handler for): it goes on to the command now.
	 */
	if (sigprocmask(SIG_SETMASK, &spec->sigmask, NULL) == -1)
		_exit(126);
	close(keep);
	/* No longer root here either, and nothing to attach to. */
	if (spec->root && (setgroups(0, NULL) == -1 ||
	    setresgid(spec->gid, spec->gid, spec->gid) == -1 ||
	    setresuid(spec->uid, spec->uid, spec->uid) == -1))
		_exit(126);
	/* The switch cleared it; the namespace ends with the launcher. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		_exit(126);
	for (;;) {
		if ((pid = waitpid(-1, &status, 0)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(126);
		}
		if (pid != command_pid)
			continue;	/* an orphan of the command's */
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 126);
	}
}

pid_t
isolate_spawn(const struct isolate_spec *spec, char *argv[], int keep)
{
	unsigned long	flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS |
			    CLONE_NEWIPC | CLONE_NEWUTS;
	uid_t		uid = geteuid();
	gid_t		gid = getegid();
	pid_t		pid;

	if (!spec->root)
		flags |= CLONE_NEWUSER;
	/* A fork into new namespaces: the child runs on a copy of our stack. */
	pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL,
	    NULL);
	if (pid != 0)
		return pid;
	/*
	 * The signals the launcher forwards stay blocked, as it blocked
	 * them, until the command has a pid (init_main); the uid's lock
	 * while it lives, and the session source.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
	    close_all_but(keep, spec->lock_fd) == -1)
		_exit(126);
	if (!spec->root && map_ids(uid, gid) == -1) {
		warn("cannot map the user namespace: %s", strerror(errno));
		_exit(126);
	}
	if (setup_mounts(spec) == -1)
		_exit(126);
	init_main(spec, argv, keep);
}

/* Whether this process could make the namespaces, tried in a child. */
static bool
namespaces_work(bool root)
{
	unsigned long	flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS |
			    CLONE_NEWIPC | CLONE_NEWUTS;
	pid_t		pid;
	int		status;

	if (!root)
		flags |= CLONE_NEWUSER;
	pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL,
	    NULL);
	if (pid == 0)
		_exit(0);
	if (pid == -1)
		return false;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void
isolate_explain(FILE *out, const struct isolate_spec *spec, const char *range)
{
	int	abi = isolate_landlock_abi();
	bool	ns = namespaces_work(spec->root);

	fprintf(out, "tcpbroker run: how a command is confined on this host\n");
	if (spec->root)
		fprintf(out, "  uid: yes, a uid of its own from %s, another "
		    "for its broker\n", range);
	else
		fprintf(out, "  uid: no, the launcher's own (start it as root "
		    "for a uid of its own); a user namespace instead\n");
	fprintf(out, "  pid, ipc, uts namespaces: %s\n", ns ? "yes" :
	    "NO: the kernel refused them");
	fprintf(out, "  network namespace: %s\n", ns ? "yes, empty" :
	    "NO: the kernel refused it");
	fprintf(out, "  mount namespace: %s\n", ns ? "yes, /run /var/run /tmp "
	    "/var/tmp /dev/shm /dev/log empty" : "NO: the kernel refused it");
	if (abi >= 6)
		fprintf(out, "  landlock: ABI %d: signals and abstract sockets "
		    "scoped, TCP bind and connect denied\n", abi);
	else if (abi >= 4)
		fprintf(out, "  landlock: ABI %d: TCP bind and connect denied; "
		    "NO scoping of signals and abstract sockets (ABI 6)\n", abi);
	else
		fprintf(out, "  landlock: NO (ABI %d; 4 or later is used)\n",
		    abi);
	fprintf(out, "  seccomp: %s\n", spec->seccomp ? "yes (tcpbroker "
	    "--list-syscalls shows the command's table)" :
	    "NO: --no-sandbox");
	fprintf(out, "  no_new_privs: yes\n");
}
