/*
 * spawned_client MODE: run by it_launcher under `tcpbroker run`, whose
 * session source (TCPBROKER_FD) gives each process a session of its own.
 *
 *   children	the process and CHILDREN children of it, forked and
 *		exec'd, echo at the same time, each through its own
 *		session; a child holds no descriptor of its parent's
 *		session, and its policy denial is the parent's, word for
 *		word
 *   cap	a child's sessions count against the uid's cap: with the
 *		parent's one open, a child gets LIMIT_SESSIONS_PER_UID - 1,
 *		then ELIMIT; once it is gone, the parent opens more
 *   flood	a process that floods the source with requests and never
 *		says hello gets LIMIT_SOURCE_PENDING sessions and no more;
 *		each hello lets one more through, and another process
 *		still gets a working session
 *   orphan	(outside tcpbroker run) TCPBROKER_FD names a session of
 *		its parent's that was not inherited: a clear error
 *
 * Environment: ECHO_PORT (an echo server the policy allows), DENIED_PORT
 * (one it denies).  Exit status: 0 when all behaved, else the step that
 * did not, said on stderr.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "tcpbroker.h"

/* Children of the children mode: processes. */
#define CHILDREN	4
/* Lines each process echoes: lines. */
#define ROUNDS		50
/* Longest wait for an answer that must come, or a child: ms. */
#define WAIT_MS		10000
/* How long an answer that must not come is waited for: ms. */
#define QUIET_MS	1000
/* Requests the flood sends, at most: requests. */
#define FLOOD_MAX	5000

static const char	*self;

static int __attribute__((format(printf, 2, 3)))
failed(int step, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "spawned_client[%d]: step %d: ", (int)getpid(), step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return step;
}

static uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint16_t
port(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL ? (uint16_t)atoi(v) : 0;
}

/* Echoes ROUNDS lines tagged with name; 0 or the failing step. */
static int
echo_rounds(tb_client *c, const char *name)
{
	struct tb_error	 err;
	tb_handle	 h;
	char		 line[64], got[64];
	size_t		 n;
	int		 i;

	if (tb_connect(c, "127.0.0.1", port("ECHO_PORT"), &h, &err) != 0)
		return failed(20, "connect: %s", err.message);
	for (i = 0; i < ROUNDS; i++) {
		snprintf(line, sizeof(line), "%s %d\n", name, i);
		if (tb_write_all(c, h, line, strlen(line), &err) != 0 ||
		    tb_read_line(c, h, got, sizeof(got), &n, &err) != 0)
			return failed(21, "echo: %s", err.message);
		line[strlen(line) - 1] = '\0';
		if (strcmp(got, line) != 0)
			return failed(22, "echo of %s came back as %s", line,
			    got);
	}
	return tb_close(c, h, &err) == 0 ? 0 : failed(23, "close: %s",
	    err.message);
}

/* The message of the policy's denial of DENIED_PORT, into buf. */
static int
denial(tb_client *c, char *buf, size_t cap)
{
	struct tb_error	err;
	tb_handle	h;

	if (tb_connect(c, "127.0.0.1", port("DENIED_PORT"), &h, &err) !=
	    TB_EPOLICY)
		return failed(30, "the denied connect gave %s",
		    tb_err_name(err.code));
	snprintf(buf, cap, "%s", err.message);
	return 0;
}

/*
 * A child (exec'd): only stdio and the source are open, so no session
 * of the parent's came along; its own session echoes, and its denial
 * goes to stdout for the parent to compare.
 */
static int
child_main(const char *name)
{
	struct tb_error	 err;
	struct dirent	*d;
	tb_client	*c;
	DIR		*dir;
	char		 why[TB_ERROR_MESSAGE_MAX + 1];
	int		 fd, source = atoi(getenv("TCPBROKER_FD")), rc;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return failed(10, "/proc/self/fd: %s", strerror(errno));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		fd = atoi(d->d_name);
		if (fd > 2 && fd != source && fd != dirfd(dir))
			return failed(11, "descriptor %d was inherited", fd);
	}
	closedir(dir);
	if (tb_client_open(&c, &err) != 0)
		return failed(12, "open: %s", err.message);
	if ((rc = echo_rounds(c, name)) != 0 ||
	    (rc = denial(c, why, sizeof(why))) != 0)
		return rc;
	printf("%s\n", why);
	tb_client_close(c);
	return 0;
}

static int
children(void)
{
	struct tb_error	 err;
	tb_client	*c;
	FILE		*out[CHILDREN];
	char		 name[16], mine[TB_ERROR_MESSAGE_MAX + 1];
	char		 theirs[TB_ERROR_MESSAGE_MAX + 2];
	pid_t		 pid[CHILDREN];
	int		 i, p[2], rc, status;

	/* The parent's session is open while the children start. */
	if (tb_client_open(&c, &err) != 0)
		return failed(40, "open: %s", err.message);
	for (i = 0; i < CHILDREN; i++) {
		if (pipe2(p, O_CLOEXEC) != 0 || (pid[i] = fork()) == -1)
			return failed(41, "fork: %s", strerror(errno));
		if (pid[i] == 0) {
			snprintf(name, sizeof(name), "child%d", i);
			dup2(p[1], STDOUT_FILENO);
			close(p[0]);
			close(p[1]);
			execl(self, self, "child", name, (char *)NULL);
			_exit(126);
		}
		close(p[1]);
		out[i] = fdopen(p[0], "r");
	}
	/* The children echo meanwhile. */
	if ((rc = echo_rounds(c, "parent")) != 0 ||
	    (rc = denial(c, mine, sizeof(mine))) != 0)
		return rc;
	for (i = 0; i < CHILDREN; i++) {
		if (fgets(theirs, sizeof(theirs), out[i]) == NULL)
			return failed(42, "child %d said nothing", i);
		theirs[strcspn(theirs, "\n")] = '\0';
		if (strcmp(theirs, mine) != 0)
			return failed(43, "child %d was denied with \"%s\", "
			    "the parent with \"%s\"", i, theirs, mine);
		fclose(out[i]);
		if (waitpid(pid[i], &status, 0) != pid[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			return failed(44, "child %d ended with %#x", i, status);
	}
	/* The parent's session outlived them all. */
	if ((rc = echo_rounds(c, "parent again")) != 0)
		return rc;
	tb_client_close(c);
	printf("children: %d children and the parent echoed %d lines each\n",
	    CHILDREN, ROUNDS);
	return 0;
}

static int
cap(void)
{
	struct tb_error	 err;
	tb_client	*c, *more[LIMIT_SESSIONS_PER_UID + 1];
	uint64_t	 deadline;
	pid_t		 pid;
	int		 n, status;

	if (tb_client_open(&c, &err) != 0)
		return failed(50, "open: %s", err.message);
	if ((pid = fork()) == -1)
		return failed(51, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (n = 0; n <= LIMIT_SESSIONS_PER_UID; n++)
			if (tb_client_open(&more[n], &err) != 0)
				break;
		if (n != LIMIT_SESSIONS_PER_UID - 1)
			_exit(failed(52, "the child opened %d sessions beside "
			    "its parent's, not %d", n,
			    LIMIT_SESSIONS_PER_UID - 1));
		if (err.code != TB_ELIMIT ||
		    strstr(err.message, "all the sessions it may") == NULL)
			_exit(failed(53, "the refusal was %s: %s",
			    tb_err_name(err.code), err.message));
		printf("cap: %s\n", err.message);
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 54;
	/*
	 * The child's sessions are gone with it: there is room again, once
	 * the broker has seen them end.
	 */
	deadline = now_ms() + WAIT_MS;
	for (n = 0; n < LIMIT_SESSIONS_PER_UID - 1; ) {
		if (tb_client_open(&more[n], &err) == 0)
			n++;
		else if (err.code != TB_ELIMIT || now_ms() > deadline)
			return failed(55, "session %d after the child: %s", n,
			    err.message);
		else
			usleep(10000);
	}
	while (n-- > 0)
		tb_client_close(more[n]);
	tb_client_close(c);
	return 0;
}

/* Takes one answer within ms: 1 with *fd, 0 when none came. */
static int
take_answer(int source, int ms, int *fd, char *text, size_t cap)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct pollfd	 pfd = { source, POLLIN, 0 };
	struct iovec	 iov = { text, cap - 1 };
	struct msghdr	 msg = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf) };
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	*fd = -1;
	if (poll(&pfd, 1, ms) != 1)
		return 0;
	if ((n = recvmsg(source, &msg, MSG_CMSG_CLOEXEC)) < 0)
		return 0;
	text[n] = '\0';
	if ((cmsg = CMSG_FIRSTHDR(&msg)) != NULL &&
	    cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	return 1;
}

static int
flood(void)
{
	struct tb_error	 err;
	tb_client	*c;
	char		 text[PROTO_SOURCE_ANSWER_MAX + 1];
	int		 source = atoi(getenv("TCPBROKER_FD"));
	int		 held[LIMIT_SOURCE_PENDING + 1], fd, n, sent, rc;
	pid_t		 pid;
	int		 status;

	/* Garbage is answered with EPROTO, and the source goes on. */
	if (send(source, "give me a socket", 16, 0) != 16 ||
	    take_answer(source, WAIT_MS, &fd, text, sizeof(text)) != 1 ||
	    fd != -1 || strncmp(text, "EPROTO ", 7) != 0)
		return failed(60, "garbage was answered with \"%s\"", text);
	for (sent = 0; sent < FLOOD_MAX; sent++)
		if (send(source, PROTO_SOURCE_REQUEST,
		    strlen(PROTO_SOURCE_REQUEST), MSG_DONTWAIT) == -1)
			break;
	if (sent <= LIMIT_SOURCE_PENDING)
		return failed(61, "only %d requests went out", sent);
	/* Sessions that never say hello: LIMIT_SOURCE_PENDING, no more. */
	for (n = 0; n < LIMIT_SOURCE_PENDING; n++) {
		if (take_answer(source, WAIT_MS, &held[n], text,
		    sizeof(text)) != 1 || held[n] == -1)
			return failed(62, "answer %d of %d: \"%s\"", n, sent,
			    text);
	}
	if (take_answer(source, QUIET_MS, &fd, text, sizeof(text)) != 0)
		return failed(63, "a session past %d waiting for hello",
		    LIMIT_SOURCE_PENDING);
	/* One says hello: one more comes. */
	if (tb_client_open_fd(&c, held[0], &err) != 0)
		return failed(64, "hello on a flooded session: %s",
		    err.message);
	if (take_answer(source, WAIT_MS, &held[0], text, sizeof(text)) != 1 ||
	    held[0] == -1)
		return failed(65, "no answer after a hello");
	if ((rc = echo_rounds(c, "flooder")) != 0)
		return rc;
	/*
	 * Another process still gets a session that works, once the ones
	 * held without a hello are closed.
	 */
	for (n = 0; n < LIMIT_SOURCE_PENDING; n++)
		close(held[n]);
	if ((pid = fork()) == -1)
		return failed(66, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (tb_client_open(&c, &err) != 0)
			_exit(failed(67, "open after the flood: %s",
			    err.message));
		_exit(echo_rounds(c, "after the flood"));
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return failed(68, "the child ended with %#x", status);
	if (WEXITSTATUS(status) != 0)
		return WEXITSTATUS(status);
	printf("flood: %d requests, %d sessions handed out before a "
	    "hello\n", sent, LIMIT_SOURCE_PENDING);
	tb_client_close(c);
	return 0;
}

static int
orphan(void)
{
	struct tb_error	 err;
	tb_client	*c;

	if (tb_client_open(&c, &err) != TB_EBROKER ||
	    strstr(err.message, "a session is not inherited") == NULL)
		return failed(70, "an inherited TCPBROKER_FD gave %s: %s",
		    tb_err_name(err.code), err.message);
	printf("orphan: %s\n", err.message);
	return 0;
}

int
main(int argc, char *argv[])
{
	self = argv[0];
	if (getenv("TCPBROKER_FD") == NULL || port("ECHO_PORT") == 0 ||
	    port("DENIED_PORT") == 0)
		return failed(1, "TCPBROKER_FD, ECHO_PORT and DENIED_PORT "
		    "must be set");
	if (argc == 3 && strcmp(argv[1], "child") == 0)
		return child_main(argv[2]);
	if (argc == 2 && strcmp(argv[1], "children") == 0)
		return children();
	if (argc == 2 && strcmp(argv[1], "cap") == 0)
		return cap();
	if (argc == 2 && strcmp(argv[1], "flood") == 0)
		return flood();
	if (argc == 2 && strcmp(argv[1], "orphan") == 0)
		return orphan();
	return failed(2, "usage: spawned_client children|cap|flood|orphan");
}
