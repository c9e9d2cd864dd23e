/*
 * The reader: a small process that keeps the privileges the broker
 * started with, to open the files the confined broker needs again
 * after start-up: the policy file with /etc/passwd and /etc/group (for
 * the user and group names in it) on reload, and the log files after
 * rotation.  So the policy may be readable by root alone, and the
 * broker's own filter has no open() at all.
 *
 * As in OpenBSD's privilege-separated daemons, the paths are fixed when
 * the reader starts; the broker asks by kind (one byte) and receives
 * descriptors (SCM_RIGHTS), never names a path.  The reader keeps only
 * the capabilities that opening files needs, runs a filter of its own,
 * and ends when the broker closes its end.
 */
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

#define PASSWD_FILE	"/etc/passwd"
#define GROUP_FILE	"/etc/group"

/* How the policy, passwd and group are opened: never waiting (a FIFO). */
#define READER_READ_FLAGS	(O_RDONLY | O_CLOEXEC | O_NONBLOCK)

/* The files of each kind, in the order their descriptors travel. */
enum {
	READ_POLICY, READ_PASSWD, READ_GROUP,		/* READER_POLICY */
};
enum {
	READ_LOG, READ_DECISIONS,			/* READER_LOGS */
};
#define READER_FILES	3

/* A request: a kind and a number the answer repeats. */
struct reader_request {
	uint32_t	seq;
	uint8_t		kind;
};

/* An answer: for each file, 0 and a descriptor, or an errno. */
struct reader_answer {
	uint32_t	seq;
	int32_t		err[READER_FILES];
};

/*
 * The reader's descriptors, after the others are closed: its end of the
 * socket, then the directory of each log file (READ_LOG, READ_DECISIONS),
 * opened at start, in which the log is opened again by its last name.
 */
#define READER_OWN_FD	3
#define READER_DIR_FD	4

static int		reader_fd = -1;		/* the broker's end */
static uint32_t		reader_seq;
static const char	*paths[2][READER_FILES];
static struct loop_io	reader_io;

/* --- in the reader --- */

/* Keeps CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, and only when root. */
static void
reader_capabilities(void)
{
	struct __user_cap_header_struct	hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct	data[2];
	uint32_t			keep;
	int				cap;

	if (geteuid() != 0)
		return;
	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (cap != CAP_DAC_OVERRIDE && cap != CAP_DAC_READ_SEARCH &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 &&
		    errno != EINVAL)
			fatal("reader: PR_CAPBSET_DROP");
	keep = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = keep;
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("reader: capset");
}

/* The last component of path. */
static const char *
base_name(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/*
 * Opens one file without waiting (a FIFO put in its place must not hang
 * the reader): only a regular file is passed.  A log is opened by its
 * last name in the directory opened at start (dirfd), so that
 * a directory on its path renamed or replaced by a symbolic link since
 * cannot lead elsewhere, and only when it has no other name, so that
 * neither a symbolic nor a hard link put in that directory hands the
 * broker another file.
 */
static int
open_one(int dirfd, const char *path, int flags, mode_t mode, int32_t *err)
{
	struct stat	st;
	int		fd;

	*err = 0;
	if (path == NULL) {
		*err = ENOENT;
		return -1;
	}
	if (dirfd != -1)
		fd = openat(dirfd, base_name(path), flags, mode);
	else
		fd = open(path, flags, mode);
	if (fd == -1) {
		*err = errno;
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    ((flags & O_ACCMODE) != O_RDONLY && st.st_nlink != 1)) {
		*err = EINVAL;
		close(fd);
		return -1;
	}
	return fd;
}

static void
reader_answer(const struct reader_request *rq)
{
	struct reader_answer	 a = { .seq = rq->seq };
	union {
		struct cmsghdr	 h;
		char		 buf[CMSG_SPACE(READER_FILES * sizeof(int))];
	}			 cm;
	struct msghdr		 msg = { 0 };
	struct iovec		 iov = { &a, sizeof(a) };
	struct cmsghdr		*c;
	int			 fds[READER_FILES], n = 0, fd, i, kind;

	kind = rq->kind == READER_LOGS ? 1 : 0;
	for (i = 0; i < READER_FILES; i++) {
		if (kind == 1)
			fd = open_one(i < 2 && paths[1][i] != NULL ?
			    READER_DIR_FD + i : -1, paths[1][i],
			    READER_LOG_FLAGS, LOG_FILE_MODE, &a.err[i]);
		else
			fd = open_one(-1, paths[kind][i], READER_READ_FLAGS, 0,
			    &a.err[i]);
		if (fd != -1)
			fds[n++] = fd;
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (n > 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	}
	/* A broker gone or stuck loses the answer; it asks again. */
	(void)sendmsg(READER_OWN_FD, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	for (i = 0; i < n; i++)
		close(fds[i]);
}

/* The directory of a log's path, opened to find the log in later. */
static int
open_log_dir(const char *path)
{
	char	dir[PATH_MAX];
	size_t	len;
	int	fd;

	len = (size_t)(base_name(path) - path);
	if (len == 0)
		snprintf(dir, sizeof(dir), ".");
	else if (len >= sizeof(dir))
		fatalx("reader: %s: path too long", path);
	else {
		memcpy(dir, path, len);
		dir[len] = '\0';
	}
	if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("the directory of %s", path);
	return fd;
}

/* Moves fd to the number want, which nothing else uses yet. */
static void
move_fd(int fd, int want)
{
	if (fd != want && (dup2(fd, want) == -1 || close(fd) == -1))
		fatal("reader: dup2");
}

/*
 * The reader: fd is its end of the broker's socket, dirs the log
 * directories the broker opened before it said it was serving (-1 for
 * a log it has not).
 */
static void __attribute__((noreturn))
reader_main(int fd, const int dirs[2])
{
	struct reader_request	rq;
	sigset_t		all;
	ssize_t			n;
	int			i, high[2] = { -1, -1 };

	/*
	 * Only the broker's end, the log directories and stderr (the log)
	 * stay open, at fixed numbers: first out of their way, then there.
	 */
	if ((fd = fcntl(fd, F_DUPFD_CLOEXEC, READER_DIR_FD + 2)) == -1)
		fatal("reader: fcntl");
	for (i = 0; i < 2; i++)
		if (dirs[i] != -1 && (high[i] = fcntl(dirs[i],
		    F_DUPFD_CLOEXEC, READER_DIR_FD + 2)) == -1)
			fatal("reader: fcntl");
	move_fd(fd, READER_OWN_FD);
	for (i = 0; i < 2; i++)
		if (high[i] != -1)
			move_fd(high[i], READER_DIR_FD + i);
		else
			(void)close(READER_DIR_FD + i);	/* whatever was there */
	if (close_range(READER_DIR_FD + 2, ~0U, 0) == -1)
		fatal("reader: close_range");
	/*
	 * Signals are for the broker; the reader ends when the broker's
	 * end of its socket closes (a death signal from a broker that has
	 * switched users would not reach a reader that kept root's uid).
	 */
	sigfillset(&all);
	if (sigprocmask(SIG_BLOCK, &all, NULL) == -1)
		fatal("reader: sigprocmask");
	prctl(PR_SET_NAME, "tcpbroker-read");
	reader_capabilities();
	if (sandbox_reader() == -1)
		fatalx("reader: cannot install its filter");
	for (;;) {
		n = recv(READER_OWN_FD, &rq, sizeof(rq), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if ((size_t)n != sizeof(rq) || (rq.kind != READER_POLICY &&
		    rq.kind != READER_LOGS))
			_exit(1);
		reader_answer(&rq);
	}
}

/* --- in the broker --- */

void
reader_start(const char *policy, const char *log, const char *decisions)
{
	struct timeval	tv = { LIMIT_READER_MS / 1000,
			    (LIMIT_READER_MS % 1000) * 1000 };
	int		sv[2], dirs[2], i;
	pid_t		pid;

	paths[0][READ_POLICY] = policy;
	paths[0][READ_PASSWD] = PASSWD_FILE;
	paths[0][READ_GROUP] = GROUP_FILE;
	paths[1][READ_LOG] = log;
	paths[1][READ_DECISIONS] = decisions;
	/*
	 * The log directories are opened here, before the broker says it
	 * is serving, so that what is done to their paths after that
	 * (rotation, a directory replaced by a link) cannot redirect them.
	 */
	for (i = 0; i < 2; i++)
		dirs[i] = paths[1][i] != NULL ? open_log_dir(paths[1][i]) : -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("reader socketpair");
	if ((pid = fork()) == -1)
		fatal("reader fork");
	if (pid == 0) {
		close(sv[0]);
		reader_main(sv[1], dirs);
	}
	close(sv[1]);
	for (i = 0; i < 2; i++)
		if (dirs[i] != -1)
			close(dirs[i]);
	if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		fatal("reader SO_RCVTIMEO");
	reader_fd = sv[0];
}

int
reader_socket(void)
{
	return reader_fd;
}

/* The reader ended: what it did for the broker is refused from now on. */
static void
reader_event(struct loop_io *io, uint32_t events)
{
	(void)events;
	log_warnx("the reader is gone: policy reloads and log rotation are "
	    "refused until the broker is restarted");
	loop_remove(io);
}

void
reader_watch(void)
{
	if (loop_add(&reader_io, reader_fd, EPOLLRDHUP, reader_event, NULL) ==
	    -1)
		fatal("epoll_ctl");
}

static void
close_passed(struct msghdr *msg)
{
	struct cmsghdr	*c;
	int		 fd;
	size_t		 i, n;

	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
}

/*
 * Asks for the files of kind; fds[i] is a descriptor or -1 with err[i]
 * its errno.  Returns 0, or -1 with errno when the reader did not
 * answer within LIMIT_READER_MS.
 */
static int
reader_ask(uint8_t kind, int fds[READER_FILES], int err[READER_FILES])
{
	struct reader_request	 rq = { .seq = ++reader_seq, .kind = kind };
	struct reader_answer	 a;
	union {
		struct cmsghdr	 h;
		char		 buf[CMSG_SPACE(READER_FILES * sizeof(int))];
	}			 cm;
	struct msghdr		 msg;
	struct iovec		 iov;
	struct cmsghdr		*c;
	ssize_t			 n;
	size_t			 got, k;
	int			 i, tries, passed[READER_FILES];

	for (i = 0; i < READER_FILES; i++) {
		fds[i] = -1;
		err[i] = ENOENT;
	}
	if (reader_fd == -1) {
		errno = ENOTCONN;
		return -1;
	}
	/* Never waits for room: a reader that stopped answering is gone. */
	if (send(reader_fd, &rq, sizeof(rq), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    sizeof(rq))
		return -1;
	/* Answers to requests that timed out before are dropped. */
	for (tries = 0; tries < LIMIT_READER_STALE; tries++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = &a;
		iov.iov_len = sizeof(a);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		n = recvmsg(reader_fd, &msg, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		if ((size_t)n == sizeof(a) && a.seq == rq.seq &&
		    (msg.msg_flags & MSG_CTRUNC)) {
			/* The broker had no room for the descriptors. */
			close_passed(&msg);
			errno = EMFILE;
			return -1;
		}
		if ((size_t)n != sizeof(a) || a.seq != rq.seq) {
			close_passed(&msg);
			continue;
		}
		got = 0;
		c = CMSG_FIRSTHDR(&msg);
		if (c != NULL && c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_RIGHTS) {
			got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (got > READER_FILES) {
				close_passed(&msg);
				got = 0;
			}
			memcpy(passed, CMSG_DATA(c), got * sizeof(int));
		}
		/* The descriptors come in the order of the files opened. */
		for (i = 0, k = 0; i < READER_FILES; i++) {
			err[i] = a.err[i];
			if (a.err[i] == 0 && k < got)
				fds[i] = passed[k++];
			else if (a.err[i] == 0)
				err[i] = EPROTO;
		}
		while (k < got)
			close(passed[k++]);
		return 0;
	}
	errno = EPROTO;
	return -1;
}

/*
 * User and group names from the reader's copies of /etc/passwd and
 * /etc/group: "name:password:id:...", the files that the broker's NSS
 * is limited to (main.c), so that a name means the same at start and
 * on reload.
 */
struct id_files {
	char	*text[2];	/* passwd, group */
	size_t	 len[2];
};

static int
id_lookup(void *arg, bool group, const char *name, uint64_t *id)
{
	const struct id_files	*f = arg;
	const char		*p, *end, *line, *field, *colon;
	size_t			 nlen = strlen(name);
	unsigned long long	 v;
	char			 digits[16], *stop;
	int			 k = group ? 1 : 0;

	if (f->text[k] == NULL)
		return -1;
	p = f->text[k];
	end = p + f->len[k];
	while (p < end) {
		line = p;
		if ((p = memchr(line, '\n', (size_t)(end - line))) == NULL)
			p = end;
		else
			p++;
		if ((size_t)(p - line) <= nlen || memcmp(line, name, nlen) != 0 ||
		    line[nlen] != ':')
			continue;
		/* Skip the password field to the id. */
		field = line + nlen + 1;
		if ((colon = memchr(field, ':', (size_t)(p - field))) == NULL)
			continue;
		field = colon + 1;
		if ((colon = memchr(field, ':', (size_t)(p - field))) == NULL ||
		    colon == field || (size_t)(colon - field) >= sizeof(digits))
			continue;
		memcpy(digits, field, (size_t)(colon - field));
		digits[colon - field] = '\0';
		errno = 0;
		v = strtoull(digits, &stop, 10);
		if (errno != 0 || *stop != '\0' || v > UINT32_MAX)
			continue;
		*id = v;
		return 0;
	}
	return -1;
}

/* Reads a whole id file, up to LIMIT_ID_FILE bytes; NULL if it cannot. */
static char *
slurp(int fd, size_t *len)
{
	char	*text;
	ssize_t	 n;

	*len = 0;
	if (fd == -1 || (text = malloc(LIMIT_ID_FILE)) == NULL)
		return NULL;
	while (*len < LIMIT_ID_FILE) {
		n = read(fd, text + *len, LIMIT_ID_FILE - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	return text;
}

int
reader_policy(const char *path, struct policy **out, struct policy_error *err)
{
	struct id_files		 ids = { { NULL, NULL }, { 0, 0 } };
	struct policy_names	 names = { id_lookup, &ids };
	int			 fds[READER_FILES], errs[READER_FILES];
	int			 rc, i;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	if (reader_ask(READER_POLICY, fds, errs) == -1) {
		textf(err->message, sizeof(err->message), "%s: the reader "
		    "did not answer: %s", path, strerror(errno));
		return -1;
	}
	if (fds[READ_POLICY] == -1) {
		textf(err->message, sizeof(err->message), "%s: cannot open: "
		    "%s", path, strerror(errs[READ_POLICY]));
		rc = -1;
		goto done;
	}
	ids.text[0] = slurp(fds[READ_PASSWD], &ids.len[0]);
	ids.text[1] = slurp(fds[READ_GROUP], &ids.len[1]);
	rc = policy_read(fds[READ_POLICY], path, &names, out, err);
 done:
	for (i = 0; i < READER_FILES; i++)
		if (fds[i] != -1)
			close(fds[i]);
	free(ids.text[0]);
	free(ids.text[1]);
	return rc;
}

int
reader_logs(int *log, int *decisions)
{
	int	fds[READER_FILES], errs[READER_FILES], i;

	*log = *decisions = -1;
	if (reader_ask(READER_LOGS, fds, errs) == -1) {
		log_warnx("cannot reopen the log files: the reader did not "
		    "answer: %s", strerror(errno));
		return -1;
	}
	if (paths[1][READ_LOG] != NULL && fds[READ_LOG] == -1)
		log_warnx("cannot reopen the log %s, keeping the old file: %s",
		    paths[1][READ_LOG], strerror(errs[READ_LOG]));
	if (paths[1][READ_DECISIONS] != NULL && fds[READ_DECISIONS] == -1)
		log_warnx("cannot reopen the decision log %s, keeping the old "
		    "file: %s", paths[1][READ_DECISIONS],
		    strerror(errs[READ_DECISIONS]));
	*log = fds[READ_LOG];
	*decisions = fds[READ_DECISIONS];
	for (i = READ_DECISIONS + 1; i < READER_FILES; i++)
		if (fds[i] != -1)
			close(fds[i]);
	return 0;
}
