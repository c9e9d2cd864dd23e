/*
 * escape: run by it_isolation under `tcpbroker run`, as an attacker
 * would run it.  Each mode tries one way out of the command's isolation
 * and exits 0 when every try failed, or 1 naming the try that worked.
 *
 *   escape wait                      blocks until stdin closes (a victim)
 *   escape signal PID...             kill, pidfd and ptrace of others
 *   escape prlimit PID...            another process's descriptor limit
 *   escape mem PID...                /proc/PID/mem of others
 *   escape unix PATH NAME            datagrams to a host socket by path
 *                                    and abstract name; binding a name
 *   escape sockets                   socket() of every family and type
 *   escape abi                       the i386 and x32 system call ABIs
 *   escape kernel                    io_uring, namespaces, bpf
 *   escape setuid HELPER             a set-user-ID program gains nothing
 *   escape setuid-helper             (the helper: 42 if it runs as root)
 *   escape id                        prints its uid
 */
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT	0x40000000
#endif

static int	escaped;

static void
worked(const char *what)
{
	fprintf(stderr, "escape: %s WORKED\n", what);
	escaped = 1;
}

static pid_t
pid_arg(const char *s)
{
	return (pid_t)strtol(s, NULL, 10);
}

static void
try_signal(pid_t pid)
{
	struct iovec	local, remote;
	char		buf[16];
	long		fd;

	if (kill(pid, SIGSTOP) == 0)
		worked("kill SIGSTOP");
	if (kill(pid, 0) == 0)
		worked("kill 0 (the process is visible)");
	if ((fd = syscall(SYS_pidfd_open, pid, 0)) >= 0) {
		worked("pidfd_open");
		if (syscall(SYS_pidfd_getfd, fd, 3, 0) >= 0)
			worked("pidfd_getfd");
		close((int)fd);
	}
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0)
		worked("ptrace");
	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = (void *)0x400000;
	remote.iov_len = sizeof(buf);
	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) >= 0 ||
	    errno == EFAULT)
		worked("process_vm_readv");
}

static void
try_prlimit(pid_t pid)
{
	struct rlimit	rl = { 16, 16 }, old;

	if (prlimit(pid, RLIMIT_NOFILE, &rl, NULL) == 0)
		worked("prlimit of another process");
	if (prlimit(pid, RLIMIT_NOFILE, NULL, &old) == 0)
		worked("prlimit read of another process");
}

static void
try_mem(pid_t pid)
{
	char	path[64];
	int	fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if ((fd = open(path, O_RDWR)) >= 0) {
		worked(path);
		close(fd);
	}
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		worked(path);
		close(fd);
	}
}

static void
try_unix(const char *path, const char *name)
{
	struct sockaddr_un	 by_path = { .sun_family = AF_UNIX };
	struct sockaddr_un	 by_name = { .sun_family = AF_UNIX };
	struct msghdr		 msg = { 0 };
	struct iovec		 iov = { "x", 1 };
	socklen_t		 name_len;
	int			 sv[2], fd;

	snprintf(by_path.sun_path, sizeof(by_path.sun_path), "%s", path);
	/* An abstract name: a NUL, then the name. */
	snprintf(by_name.sun_path + 1, sizeof(by_name.sun_path) - 1, "%s",
	    name);
	name_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(name));
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0)
		worked("socketpair SOCK_DGRAM");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0)
		worked("socketpair SOCK_SEQPACKET");
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) >= 0)
		worked("socket AF_UNIX SOCK_DGRAM");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		worked("(socketpair SOCK_STREAM was refused: test broken)");
		return;
	}
	if (sendto(sv[0], "x", 1, 0, (struct sockaddr *)&by_path,
	    sizeof(by_path)) >= 0)
		worked("sendto by path");
	if (sendto(sv[0], "x", 1, 0, (struct sockaddr *)&by_name,
	    name_len) >= 0)
		worked("sendto by abstract name");
	msg.msg_name = &by_path;
	msg.msg_namelen = sizeof(by_path);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (sendmsg(sv[0], &msg, 0) >= 0)
		worked("sendmsg by path");
	if (connect(sv[0], (struct sockaddr *)&by_path, sizeof(by_path)) == 0)
		worked("connect by path");
	if (connect(sv[1], (struct sockaddr *)&by_name, name_len) == 0)
		worked("connect by abstract name");
	by_name.sun_path[1] = 'Z';
	if (bind(sv[1], (struct sockaddr *)&by_name, name_len) == 0)
		worked("bind an abstract name");
	if (listen(sv[1], 1) == 0)
		worked("listen");
}

static void
try_sockets(void)
{
	static const int	types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
				    SOCK_SEQPACKET, SOCK_PACKET };
	char			what[64];
	size_t			t;
	int			family, fd;

	for (family = 0; family < AF_MAX; family++)
		for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			fd = socket(family, types[t], 0);
			if (fd >= 0 || errno != EACCES) {
				snprintf(what, sizeof(what), "socket(%d, %d): "
				    "%s", family, types[t], fd >= 0 ? "opened" :
				    strerror(errno));
				worked(what);
				if (fd >= 0)
					close(fd);
			}
		}
}

/* Runs fn in a child; true when the child said the call worked. */
static int
in_child(long (*fn)(void))
{
	pid_t	pid;
	int	status;

	if ((pid = fork()) == 0)
		_exit(fn() >= 0 ? 42 : 0);
	if (pid == -1 || waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 42;
}

/* socket(AF_INET, SOCK_STREAM) through the i386 ABI (number 359). */
static long
socket_i386(void)
{
	long	ret;

	__asm__ volatile ("int $0x80" : "=a"(ret)
	    : "a"(359L), "b"(2L), "c"(1L), "d"(0L) : "memory");
	return ret;
}

/* The same through the x32 ABI (socket is 41 with the x32 bit). */
static long
socket_x32(void)
{
	return syscall(__X32_SYSCALL_BIT | 41, 2, 1, 0);
}

static void
try_abi(void)
{
	if (in_child(socket_i386))
		worked("socket through the i386 ABI");
	if (in_child(socket_x32))
		worked("socket through the x32 ABI");
}

static void
try_kernel(void)
{
	char	params[120], dir[] = "/tmp/escape-mount-XXXXXX";

	memset(params, 0, sizeof(params));
	if (syscall(SYS_io_uring_setup, 4, params) >= 0)
		worked("io_uring_setup");
	if (unshare(CLONE_NEWUSER) == 0)
		worked("unshare CLONE_NEWUSER");
	if (unshare(CLONE_NEWNET) == 0)
		worked("unshare CLONE_NEWNET");
	if (unshare(CLONE_NEWNS) == 0)
		worked("unshare CLONE_NEWNS");
	if (syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL,
	    NULL) == 0)
		_exit(0);	/* the child of a clone that worked */
	else if (errno != EPERM)
		worked("clone CLONE_NEWUSER");
	if (syscall(SYS_bpf, 0, NULL, 0) >= 0 || errno != EPERM)
		worked("bpf");
	if (syscall(SYS_userfaultfd, 0) >= 0)
		worked("userfaultfd");
	/* Onto a directory of its own, so that it harms nothing if it works. */
	if (mkdtemp(dir) != NULL) {
		if (mount("none", dir, "tmpfs", 0, NULL) == 0) {
			worked("mount");
			umount(dir);
		}
		rmdir(dir);
	}
}

static void
try_setuid(const char *helper)
{
	pid_t	pid;
	int	status;

	if ((pid = fork()) == 0) {
		execl(helper, helper, "setuid-helper", (char *)NULL);
		_exit(3);
	}
	if (pid == -1 || waitpid(pid, &status, 0) != pid) {
		worked("(the helper did not run: test broken)");
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		worked("a set-user-ID program ran as root");
}

int
main(int argc, char *argv[])
{
	char	buf[64];
	int	i;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "setuid-helper") == 0)
		return geteuid() == 0 ? 42 : 0;
	if (strcmp(argv[1], "id") == 0) {
		printf("%u\n", (unsigned)getuid());
		return 0;
	}
	if (strcmp(argv[1], "wait") == 0) {
		/* A victim: alive until the test closes our stdin. */
		printf("waiting\n");
		fflush(stdout);
		while (read(0, buf, sizeof(buf)) > 0)
			;
		return 0;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[1], "signal") == 0)
			try_signal(pid_arg(argv[i]));
		else if (strcmp(argv[1], "prlimit") == 0)
			try_prlimit(pid_arg(argv[i]));
		else if (strcmp(argv[1], "mem") == 0)
			try_mem(pid_arg(argv[i]));
	}
	if (strcmp(argv[1], "unix") == 0 && argc == 4)
		try_unix(argv[2], argv[3]);
	else if (strcmp(argv[1], "sockets") == 0)
		try_sockets();
	else if (strcmp(argv[1], "abi") == 0)
		try_abi();
	else if (strcmp(argv[1], "kernel") == 0)
		try_kernel();
	else if (strcmp(argv[1], "setuid") == 0 && argc == 3)
		try_setuid(argv[2]);
	return escaped;
}
