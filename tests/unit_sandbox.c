/*
 * The broker's seccomp filter, as sandbox projects test theirs: in a
 * forked child, install the real filter, make one call, and see how the
 * child ends.  A forbidden call must kill it with SIGSYS; a call the
 * loop needs must work.
 */
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "broker.h"
#include "sandbox.h"

/* How long a child may take: milliseconds. */
#define CHILD_MS	5000

typedef int (*probe_fn)(void);

/* Whether the filter has the log files' rules (--log, --decision-log). */
static bool	with_logs;
/* Whether it has the session source's (a launcher's broker). */
static bool	with_source;
/*
 * The probe's end of a reader's socket, on which a descriptor of
 * /etc/hostname waits, as the reader (reader.c) passes files.
 */
static int	reader_fd = -1;

/* Queues a descriptor of path on fd, as the reader answers. */
static void
pass_file(int fd, const char *path)
{
	union {
		struct cmsghdr	h;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	struct msghdr	 msg = { 0 };
	struct iovec	 iov = { "f", 1 };
	struct cmsghdr	*c;
	int		 file;

	assert_true((file = open(path, O_RDONLY | O_CLOEXEC)) != -1);
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &file, sizeof(int));
	assert_int_equal(sendmsg(fd, &msg, 0), 1);
	close(file);
}

/* Receives the descriptor pass_file queued; -1 if none came. */
static int
take_file(int fd)
{
	union {
		struct cmsghdr	h;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	struct msghdr	 msg = { 0 };
	char		 byte;
	struct iovec	 iov = { &byte, 1 };
	struct cmsghdr	*c;
	int		 file = -1;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	if (recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	if ((c = CMSG_FIRSTHDR(&msg)) == NULL || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&file, CMSG_DATA(c), sizeof(int));
	return file;
}

/*
 * Runs probe in a child under the broker's filter (with listening
 * allowed or not) and returns the child's wait status.  The probe's
 * return value becomes the exit status: 0 for "worked as expected".
 */
static int
run_filtered(probe_fn probe, bool listen, bool debug, int errfd)
{
	struct sandbox_broker	sb = { .listen = listen, .session_fd = -1,
				    .debug = debug, .control_fd = -1,
				    .log_files = with_logs, .reader_fd = -1,
				    .source = with_source };
	pid_t			pid;
	int			status = 0, i, sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	pass_file(sv[1], "/etc/hostname");
	pass_file(sv[1], "/etc/hostname");
	sb.reader_fd = reader_fd = sv[0];
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (errfd != -1)
			dup2(errfd, STDERR_FILENO);
		sandbox_broker(&sb);
		_exit(probe());
	}
	close(sv[0]);
	close(sv[1]);
	reader_fd = -1;
	for (i = 0; i < CHILD_MS / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("the child did not end");
	return status;
}

static void
assert_killed(probe_fn probe, bool listen, const char *what)
{
	int	status = run_filtered(probe, listen, false, -1);

	unlink("/tmp/tcpbroker-sandbox-test");	/* if the probe got through */

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("%s: the child was not killed by SIGSYS (status %#x)",
		    what, status);
}

static void
assert_works(probe_fn probe, bool listen, const char *what)
{
	int	status = run_filtered(probe, listen, false, -1);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: status %#x, not a clean exit", what, status);
}

/* Calls that must kill. */
static int p_execve(void) { char *a[] = { "/bin/true", NULL };
	execve(a[0], a, NULL); return 1; }
static int p_open_write(void) {
	return open("/tmp/tcpbroker-sandbox-test", O_WRONLY | O_CREAT, 0600); }
static int p_open_append(void) {
	return open("/etc/hostname", O_WRONLY | O_APPEND); }
/* The reader opens files; the broker opens none, not even to read. */
static int p_open_read(void) {
	return open("/etc/hostname", O_RDONLY | O_CLOEXEC); }
/* Descriptors come on the reader's socket only, never from a client. */
static int p_recvmsg_elsewhere(void) { int sv[2];
	return socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 ?
	    take_file(sv[0]) : 1; }
static int p_packet(void) { return socket(AF_PACKET, SOCK_RAW, 0); }
static int p_raw(void) { return socket(AF_INET, SOCK_RAW, IPPROTO_TCP); }
static int p_netlink(void) { return socket(AF_NETLINK, SOCK_RAW, 0); }
static int p_unix(void) { return socket(AF_UNIX, SOCK_STREAM, 0); }
static int p_udp(void) { return socket(AF_INET, SOCK_DGRAM, 0); }
static int p_ptrace(void) {
	return (int)ptrace(PTRACE_ATTACH, getppid(), NULL, NULL); }
static int p_fork(void) { return (int)syscall(SYS_fork); }
static int p_clone(void) {
	return (int)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
static int p_mount(void) { return mount("none", "/mnt", "tmpfs", 0, NULL); }
static int p_kill(void) { return kill(getppid(), 0); }
static int p_setuid(void) { return setuid(0); }
static int p_unlink(void) { return unlink("/tmp/tcpbroker-no-such"); }
static int p_chmod(void) { return chmod("/tmp", 0777); }
static int p_socketpair(void) { int sv[2];
	return socketpair(AF_UNIX, SOCK_STREAM, 0, sv); }
static int p_exec_memory(void) {
	return mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED; }
static int p_mprotect_exec(void) {
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return mprotect(p, 4096, PROT_READ | PROT_EXEC); }
static int p_bind(void) {
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return bind(fd, (struct sockaddr *)&sin, sizeof(sin)); }
static int p_listen(void) { return listen(0, 1); }
static int p_accept(void) { return accept4(0, NULL, NULL, 0); }

#define DEATH(name, listen)						\
static void								\
test_kills_##name(void **state)						\
{									\
	(void)state;							\
	assert_killed(p_##name, listen, #name);				\
}
DEATH(execve, true)
DEATH(packet, true)
DEATH(raw, true)
DEATH(netlink, true)
DEATH(unix, true)
DEATH(udp, true)
DEATH(mount, true)
DEATH(setuid, true)
DEATH(unlink, true)
DEATH(chmod, true)
DEATH(socketpair, true)
DEATH(bind, false)
DEATH(listen, false)
DEATH(accept, false)

/*
 * What the sanitizer runtime needs (LeakSanitizer forks a tracer and
 * ptraces; the runtime opens files and maps memory as it likes) is
 * allowed in sanitizer builds only: these are tested in the normal
 * build.
 */
#ifdef TB_SANITIZER_BUILD
#define DEATH_RELEASE(name, listen)					\
static void								\
test_kills_##name(void **state)						\
{									\
	(void)state;							\
	(void)p_##name;							\
	skip();								\
}
#else
#define DEATH_RELEASE(name, listen) DEATH(name, listen)
#endif
DEATH_RELEASE(ptrace, true)
DEATH_RELEASE(fork, true)
DEATH_RELEASE(clone, true)
DEATH_RELEASE(kill, true)
DEATH_RELEASE(open_write, true)
DEATH_RELEASE(open_append, true)
DEATH_RELEASE(open_read, true)
DEATH(recvmsg_elsewhere, true)
DEATH_RELEASE(exec_memory, true)
DEATH_RELEASE(mprotect_exec, true)

/*
 * With log files, a log the reader passed takes the place of stderr
 * (dup3); the broker opens no log itself, and dup3 onto another
 * descriptor still kills.
 */
#define LOG_TEST_PATH	"/tmp/tcpbroker-sandbox-test"
static int p_log_reopen(void) {
	int fd = take_file(reader_fd);
	return fd == -1 || dup3(fd, STDERR_FILENO, 0) == -1; }
#ifndef TB_SANITIZER_BUILD	/* which allows every openat */
static int p_log_open(void) {
	return open(LOG_TEST_PATH, LOG_FILE_FLAGS, LOG_FILE_MODE); }
static int p_log_dup_elsewhere(void) { return dup3(0, 5, 0); }
#endif

static void
test_log_reopen(void **state)
{
	(void)state;
	unlink(LOG_TEST_PATH);
	with_logs = true;
	assert_works(p_log_reopen, false, "log reopen");
#ifndef TB_SANITIZER_BUILD
	assert_killed(p_log_open, false, "the broker opening its log");
	assert_killed(p_log_dup_elsewhere, false, "dup3 onto another fd");
	with_logs = false;
	assert_killed(p_log_reopen, false, "log reopen without log files");
#endif
	with_logs = false;
	unlink(LOG_TEST_PATH);
}

/*
 * The reader's filter: read-only opens and the log's append-only open,
 * passing descriptors; nothing else.
 */
static void
test_reader_filter(void **state)
{
	pid_t	pid;
	int	status, sv[2];

	(void)state;
	unlink(LOG_TEST_PATH);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (sandbox_reader() != 0)
			_exit(10);
		if (open("/etc/hostname", O_RDONLY | O_CLOEXEC) == -1)
			_exit(11);
		if (open(LOG_TEST_PATH, LOG_FILE_FLAGS, LOG_FILE_MODE) == -1)
			_exit(12);
		pass_file(sv[1], "/etc/hostname");
#ifndef TB_SANITIZER_BUILD
		/* Killed here. */
		(void)open(LOG_TEST_PATH, O_WRONLY | O_TRUNC);
#endif
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(take_file(sv[0]) >= 0);
	close(sv[0]);
	unlink(LOG_TEST_PATH);
#ifndef TB_SANITIZER_BUILD
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
#else
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

/*
 * Under tcpbroker run: a stream pair for a new session, and sendmsg on
 * the source (fd 3) to hand one end over; no other pair, no sendmsg on
 * any other descriptor.
 */
static int
send_fd(int on, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec	 iov = { "ok", 2 };
	struct msghdr	 msg = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf) };
	struct cmsghdr	*cmsg;

	memset(&control, 0, sizeof(control));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(on, &msg, MSG_NOSIGNAL) == 2 ? 0 : 1;
}
static int p_source_hands_over(void) { int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) != 0)
		return 2;
	return send_fd(3, sv[1]); }
static int p_source_sendmsg_elsewhere(void) { int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 2;
	return send_fd(sv[0], sv[1]); }
static int p_source_dgram_pair(void) { int sv[2];
	return socketpair(AF_UNIX, SOCK_DGRAM, 0, sv); }

static void
test_source_calls(void **state)
{
	int	sv[2];

	(void)state;
	/* The source at 3, as the launcher's broker has it. */
	close(3);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	if (sv[0] != 3) {
		assert_int_equal(dup2(sv[0], 3), 3);
		close(sv[0]);
	}
	with_source = true;
	assert_works(p_source_hands_over, false, "handing a session over");
	assert_killed(p_source_sendmsg_elsewhere, false,
	    "sendmsg on another descriptor");
	assert_killed(p_source_dgram_pair, false, "a datagram pair");
	with_source = false;
	assert_killed(p_source_hands_over, false, "a pair without a source");
	close(3);
	close(sv[1]);
}

/* clone3 is refused with ENOSYS, so that libc falls back, and lives. */
static int p_clone3(void) {
	return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : 1; }

/* What the loop does, all under the filter. */
static int
p_loop_calls(void)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	struct epoll_event	ev = { .events = EPOLLIN };
	socklen_t		len = sizeof(sin);
	char			buf[64];
	void			*big;
	int			fd, epfd = 0, on = 1, err;

	/* Made before the filter: an epoll set and a listener (fds 3, 4). */
	epfd = 3;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (getsockname(4, (struct sockaddr *)&sin, &len) != 0)
		return 2;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return 3;
	if (setsockopt(fd, IPPROTO_TCP, 1, &on, sizeof(on)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0)
		return 4;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS)
		return 5;
	ev.data.fd = fd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return 6;
	epoll_wait(epfd, &ev, 1, 100);
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
		return 7;
	len = sizeof(sin);
	if (getpeername(fd, (struct sockaddr *)&sin, &len) != 0)
		return 8;
	if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
		return 9;
	recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (shutdown(fd, SHUT_WR) != 0 || close(fd) != 0)
		return 10;
	/* malloc and free of large and small blocks. */
	if ((big = malloc(8 << 20)) == NULL)
		return 11;
	memset(big, 1, 8 << 20);
	free(big);
	free(realloc(malloc(10), 100000));
	/* Reading a policy file the reader passed, on SIGHUP. */
	if ((fd = take_file(reader_fd)) == -1)
		return 12;
	{
		struct stat st;
		if (fstat(fd, &st) != 0 || read(fd, buf, sizeof(buf)) < 0)
			return 13;
	}
	close(fd);
	fprintf(stderr, "log line under the filter\n");
	return 0;
}

static int
p_listen_allowed(void)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			fd, c;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 2;
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 4) != 0)
		return 3;
	c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
	return c == -1 && errno == EAGAIN ? 0 : 4;
}

static void
test_loop_calls_work(void **state)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			epfd, lfd;

	(void)state;
	/* Descriptors 3 and 4, as the probe expects them. */
	close(3);
	close(4);
	epfd = epoll_create1(0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(epfd, 3);
	assert_int_equal(lfd, 4);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_works(p_loop_calls, false, "the loop's calls");
	close(epfd);
	close(lfd);
}

static void
test_listen_calls_work_when_allowed(void **state)
{
	(void)state;
	assert_works(p_listen_allowed, true, "listening");
}

static void
test_clone3_is_enosys(void **state)
{
	(void)state;
	assert_works(p_clone3, true, "clone3");
}

/* --sandbox-debug names the call instead of dying silently. */
static void
test_debug_names_the_call(void **state)
{
	char	out[512] = "";
	int	p[2], status;
	ssize_t	n;

	(void)state;
	assert_int_equal(pipe(p), 0);
	status = run_filtered(p_unlink, true, true, p[1]);
	close(p[1]);
	n = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), SANDBOX_DEBUG_EXIT);
	assert_non_null(strstr(out, "system call unlink"));
}

/* The command of `tcpbroker run`: no socket of any family. */
static void
test_child_filter(void **state)
{
	static const int families[] = { AF_INET, AF_INET6, AF_UNIX,
	    AF_PACKET, AF_NETLINK };
	pid_t	pid;
	int	status, i, sv[2];

	(void)state;
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (sandbox_child() != 0)
			_exit(10);
		for (i = 0; i < 5; i++)
			if (socket(families[i], SOCK_STREAM, 0) != -1 ||
			    errno != EACCES)
				_exit(20 + i);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			_exit(30);
		if (syscall(SYS_io_uring_setup, 4, NULL) != -1 ||
		    errno != ENOSYS)
			_exit(31);
		if (ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) != -1 ||
		    errno != EPERM)
			_exit(32);
		/* Pushing input into a terminal, even with junk high bits. */
		if (syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI, "x") != -1 ||
		    errno != EPERM)
			_exit(33);
		if (syscall(SYS_ioctl, 0, 0xdead00000000ul | TIOCSTI, "x") !=
		    -1 || errno != EPERM)
			_exit(34);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kills_execve),
		cmocka_unit_test(test_source_calls),
		cmocka_unit_test(test_kills_open_write),
		cmocka_unit_test(test_kills_open_append),
		cmocka_unit_test(test_kills_open_read),
		cmocka_unit_test(test_kills_recvmsg_elsewhere),
		cmocka_unit_test(test_kills_packet),
		cmocka_unit_test(test_kills_raw),
		cmocka_unit_test(test_kills_netlink),
		cmocka_unit_test(test_kills_unix),
		cmocka_unit_test(test_kills_udp),
		cmocka_unit_test(test_kills_ptrace),
		cmocka_unit_test(test_kills_fork),
		cmocka_unit_test(test_kills_clone),
		cmocka_unit_test(test_kills_mount),
		cmocka_unit_test(test_kills_kill),
		cmocka_unit_test(test_kills_setuid),
		cmocka_unit_test(test_kills_unlink),
		cmocka_unit_test(test_kills_chmod),
		cmocka_unit_test(test_kills_socketpair),
		cmocka_unit_test(test_kills_exec_memory),
		cmocka_unit_test(test_kills_mprotect_exec),
		cmocka_unit_test(test_kills_bind),
		cmocka_unit_test(test_kills_listen),
		cmocka_unit_test(test_kills_accept),
		cmocka_unit_test(test_clone3_is_enosys),
		cmocka_unit_test(test_log_reopen),
		cmocka_unit_test(test_reader_filter),
		cmocka_unit_test(test_loop_calls_work),
		cmocka_unit_test(test_listen_calls_work_when_allowed),
		cmocka_unit_test(test_debug_names_the_call),
		cmocka_unit_test(test_child_filter),
	};

	log_init(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
