/*
 * The session source of `tcpbroker run`: every process of the launched
 * command may have a session of its own.  The command inherits one end
 * of a SOCK_SEQPACKET pair (named by TCPBROKER_FD) and passes it on to
 * whatever it starts.  A request is one message; the answer carries the
 * client end of a new socketpair (SCM_RIGHTS), whose other end the
 * broker serves as a session.
 *
 * Every session the source gives is the same: the launch's credentials,
 * hence the launching user's tenant, whoever asked.  So it does not
 * matter which process reads which answer on the shared descriptor, and
 * SO_PEERCRED of the new pair (whose peer is the broker itself) is never
 * asked.
 *
 * Bounded: each session counts against its uid's cap like any other; at
 * most LIMIT_SOURCE_PENDING sessions handed out wait for their hello,
 * and one answer waits for room in the socket.  Past that the broker
 * reads no request, and they wait in the kernel's queue of the socket.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

static struct loop_io	source_io;
static struct ucred	source_cred;
static bool		source_watched;
static bool		source_rdhup;	/* shut for reading: 0 is the end */
/* Sessions handed out that have not said hello or closed yet. */
static unsigned		pending;
/* Reading resumes from the loop, never inside a session's callback. */
static struct timer	resume_timer;
/* The answer being sent: text, and the descriptor it carries, or -1. */
static char		answer[PROTO_SOURCE_ANSWER_MAX + 1];
static size_t		answer_len;
static int		answer_fd = -1;
static bool		answer_waiting;
/* It answers a read of 0, which may have been the end: see below. */
static bool		answer_to_empty;

static void
source_close(const char *why)
{
	if (!source_watched)
		return;
	log_info("session source closed: %s", why);
	source_watched = false;
	loop_remove(&source_io);
	timer_cancel(&resume_timer);
	if (answer_fd != -1)
		close(answer_fd);
	answer_fd = -1;
	answer_waiting = false;
	answer_to_empty = false;
	/* A broker of the launcher lives while the command may use it. */
	if (session_count() == 0)
		loop_stop();
}

static void __attribute__((format(printf, 2, 3)))
answer_error(int code, const char *fmt, ...)
{
	char	message[PROTO_ERROR_MESSAGE_MAX + 1];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	textf(answer, sizeof(answer), "%s %s", proto_err_name(code), message);
	answer_len = strlen(answer);
	answer_fd = -1;
	answer_waiting = true;
}

/*
 * Sends the answer waiting; false while the socket has no room, or once
 * the source has closed because nobody can read the answer.
 */
static bool
answer_send(void)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec	 iov = { answer, answer_len };
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (answer_fd != -1) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &answer_fd, sizeof(int));
	}
	do
		n = sendmsg(source_io.fd, &msg, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return false;
	if (n == -1 && (errno == EPIPE || errno == ECONNRESET ||
	    errno == ENOTCONN)) {
		/*
		 * Nobody holds the source (or it was shut down): what read
		 * as an empty request was its end.
		 */
		source_close("every process of the command closed it");
		return false;
	}
	if (n == -1)
		log_warnx("session source: sendmsg: %s", strerror(errno));
	else if (answer_to_empty)
		account_log(account_get(source_cred.uid), LOG_LEVEL_WARN,
		    "session source: an empty request");
	answer_to_empty = false;
	/*
	 * Sent, or lost (ENOBUFS and the like; the asker gives up after
	 * CLIENT_SOURCE_MS): either way the broker's end of the session
	 * sees when the last holder of the client's closes.
	 */
	if (answer_fd != -1)
		close(answer_fd);
	answer_fd = -1;
	answer_waiting = false;
	return true;
}

/* A request: a new session, or why not. */
static void
source_request(void)
{
	const char	*why;
	int		 sv[2], error;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		error = errno;
		log_warnx("session source: socketpair: %s", strerror(error));
		answer_error(error == EMFILE || error == ENFILE ? TB_ELIMIT :
		    TB_ENOMEM, "the broker cannot make a session: %s",
		    strerror(error));
		return;
	}
	if (session_open(sv[0], &source_cred, &why) != 0) {
		close(sv[1]);
		answer_error(TB_ELIMIT, "no new session: %s", why);
		return;
	}
	pending++;
	textf(answer, sizeof(answer), "%s", PROTO_SOURCE_OK);
	answer_len = strlen(answer);
	answer_fd = sv[1];
	answer_waiting = true;
}

/*
 * Answers requests until the socket is empty or full, or as many
 * sessions as may wait for their hello have been handed out.
 */
static void
source_serve_requests(void)
{
	char	request[sizeof(PROTO_SOURCE_REQUEST)];
	ssize_t	n;

	while (source_watched) {
		if (answer_waiting && !answer_send())
			return;	/* EPOLLOUT resumes, or the source closed */
		if (pending >= LIMIT_SOURCE_PENDING)
			return;			/* a hello or close resumes */
		n = recv(source_io.fd, request, sizeof(request), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1) {
			source_close(strerror(errno));
			return;
		}
		/*
		 * An empty message reads as the end does.  Once the socket
		 * said it was shut for reading (EPOLLRDHUP, which stays),
		 * it is the end; before, it is answered EPROTO as any bad
		 * request, and an end that came before its event is found
		 * by that answer, which then fails (answer_send()): only an
		 * answer that went out says it was an empty message.
		 */
		if (n == 0 && source_rdhup) {
			source_close("every process of the command closed it");
			return;
		}
		if (n == 0) {
			answer_error(TB_EPROTO, "the session source takes "
			    "only \"%s\"", PROTO_SOURCE_REQUEST);
			answer_to_empty = true;
			continue;
		}
		if ((size_t)n != strlen(PROTO_SOURCE_REQUEST) ||
		    memcmp(request, PROTO_SOURCE_REQUEST, (size_t)n) != 0) {
			account_log(account_get(source_cred.uid), LOG_LEVEL_WARN,
			    "session source: a request that is not \"%s\"",
			    PROTO_SOURCE_REQUEST);
			answer_error(TB_EPROTO, "the session source takes "
			    "only \"%s\"", PROTO_SOURCE_REQUEST);
			continue;
		}
		source_request();
	}
}

static void
source_event(struct loop_io *io, uint32_t events)
{
	(void)io;
	if (events & (EPOLLRDHUP | EPOLLHUP))
		source_rdhup = true;
	source_serve_requests();
	/* What was queued before the end has been answered, to nobody. */
	if (events & (EPOLLHUP | EPOLLERR))
		source_close("every process of the command closed it");
}

static void
source_resume(struct timer *timer)
{
	(void)timer;
	source_serve_requests();
}

void
source_serve(int fd, const struct ucred *cred)
{
	source_cred = *cred;
	if (loop_add(&source_io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
	    source_event, NULL) == -1)
		fatal("epoll_ctl");
	source_watched = true;
}

bool
source_alive(void)
{
	return source_watched;
}

void
source_settled(void)
{
	if (pending == 0)
		fatalx("session source: a session settled that was not "
		    "pending");
	if (pending-- == LIMIT_SOURCE_PENDING && source_watched)
		timer_set(&resume_timer, loop_now(), source_resume);
}
