/*
 * The session source of `tcpbroker run`, from the client's side: one
 * request, one answer that carries a new session's socket.  The source
 * is shared by every process of the command, so another process may
 * read the answer to this one's request; every answer is as good as
 * any other (the same tenant), so this process takes whichever comes.
 *
 * send() and recvmsg() only: the command's filter refuses sendmsg().
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "source.h"

/* Descriptors an answer may carry before it is known to be bad. */
#define SOURCE_FDS_MAX	4

static int __attribute__((format(printf, 3, 4)))
source_error(struct tb_error *err, int code, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

static uint64_t
source_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads one answer; 1 when another process took it first. */
static int
source_answer(int source, int *fd, struct tb_error *err)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * SOURCE_FDS_MAX)];
	} control;
	char		 text[PROTO_SOURCE_ANSWER_MAX + 1];
	struct iovec	 iov = { text, sizeof(text) - 1 };
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	const char	*space;
	int		 fds[SOURCE_FDS_MAX], nfds = 0, code, i;
	ssize_t		 n;
	size_t		 k;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	/* Close-on-exec from the start: a child never shares a session. */
	n = recvmsg(source, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n == -1)
		return source_error(err, TB_EBROKER, "the session source: %s",
		    strerror(errno));
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		for (k = 0; CMSG_LEN((k + 1) * sizeof(int)) <= cmsg->cmsg_len &&
		    nfds < SOURCE_FDS_MAX; k++)
			memcpy(&fds[nfds++], CMSG_DATA(cmsg) + k * sizeof(int),
			    sizeof(int));
	}
	if (n == 0 && nfds == 0)
		return source_error(err, TB_EBROKER, "the broker closed the "
		    "session source");
	text[n] = '\0';
	if (nfds == 1 && (size_t)n == strlen(PROTO_SOURCE_OK) &&
	    memcmp(text, PROTO_SOURCE_OK, (size_t)n) == 0 &&
	    (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0) {
		*fd = fds[0];
		return 0;
	}
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	if (nfds == 0 && (space = memchr(text, ' ', (size_t)n)) != NULL &&
	    (code = proto_err_lookup(text, (size_t)(space - text))) != 0)
		return source_error(err, code, "%s", space + 1);
	return source_error(err, TB_EPROTO, "the session source answered "
	    "%zd bytes and %d descriptors", n, nfds);
}

int
tb__source_session(int source, int *fd, struct tb_error *err)
{
	struct pollfd	 pfd = { source, POLLIN, 0 };
	const char	*request = PROTO_SOURCE_REQUEST;
	uint64_t	 deadline, now;
	ssize_t		 n;
	int		 rc;

	do
		n = send(source, request, strlen(request), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)strlen(request))
		return source_error(err, TB_EBROKER, "the session source: %s",
		    n == -1 ? strerror(errno) : "short send");
	deadline = source_now_ms() + CLIENT_SOURCE_MS;
	while ((now = source_now_ms()) < deadline) {
		rc = poll(&pfd, 1, (int)(deadline - now));
		if (rc == -1 && errno != EINTR)
			return source_error(err, TB_EBROKER, "the session "
			    "source: poll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		if ((rc = source_answer(source, fd, err)) != 1)
			return rc;
	}
	/* The answer, when it comes, serves whichever process asks next. */
	return source_error(err, TB_EBROKER, "the session source gave no "
	    "session within %d ms", CLIENT_SOURCE_MS);
}
