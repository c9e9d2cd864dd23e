/*
 * Idle connections through the broker.  A uid has a cap on sessions and
 * on handles, and a session on handles, so the connections are opened
 * by one child process per uid, each holding several sessions.  A child
 * reports on its pipe when its connections are open and exits when the
 * benchmark closes the other pipe, or dies.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* First uid tried for the idle children: an unused range. */
#define IDLE_UID_BASE	61000
/* Uids looked at to find unused ones. */
#define IDLE_UID_TRIES	1000
/* Sessions one child may hold. */
#define IDLE_SESSIONS_MAX	64

int
idle_pick_uids(uid_t *uids, int n)
{
	uid_t	uid;
	int	found = 0;

	for (uid = IDLE_UID_BASE; uid < IDLE_UID_BASE + IDLE_UID_TRIES &&
	    found < n; uid++)
		if (getpwuid(uid) == NULL)
			uids[found++] = uid;
	return found == n ? 0 : -1;
}

static void __attribute__((noreturn))
child_main(const char *socket, uint16_t port, uid_t uid, int count,
    int report, int ctl)
{
	tb_client	*sessions[IDLE_SESSIONS_MAX];
	struct tb_error	 err;
	tb_handle	 h;
	char		 msg[TB_ERROR_MESSAGE_MAX + 64] = "ok";
	int		 nsessions = 0, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setgroups(0, NULL) == -1 || setresgid(uid, uid, uid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		snprintf(msg, sizeof(msg), "uid %u: %s", (unsigned)uid,
		    strerror(errno));
		goto report;
	}
	for (i = 0; i < count; i++) {
		if (i % BENCH_IDLE_PER_SESSION == 0) {
			if (nsessions == IDLE_SESSIONS_MAX) {
				snprintf(msg, sizeof(msg), "too many sessions");
				goto report;
			}
			if (tb_client_open_path(&sessions[nsessions], socket,
			    &err) != 0) {
				snprintf(msg, sizeof(msg), "session %d: %s",
				    nsessions, err.message);
				goto report;
			}
			nsessions++;
		}
		if (tb_connect(sessions[nsessions - 1], "127.0.0.1", port, &h,
		    &err) != 0) {
			snprintf(msg, sizeof(msg), "connection %d: %s", i,
			    err.message);
			goto report;
		}
	}
 report:
	if (write(report, msg, strlen(msg)) == -1)
		_exit(1);
	/* Holds everything until the benchmark closes ctl or dies. */
	while (read(ctl, msg, 1) == -1 && errno == EINTR)
		;
	_exit(0);
}

int
idle_open(struct idle_group *g, const char *socket, uint16_t port,
    const uid_t *uids, int nuids, int count)
{
	char		msg[TB_ERROR_MESSAGE_MAX + 64];
	uint64_t	deadline = now_ms() + BENCH_CHILD_MS;
	int		report[2], ctl[2], i, each, rc = 0;
	ssize_t		n;
	struct pollfd	pfd;

	memset(g, 0, sizeof(*g));
	if (nuids > (int)(sizeof(g->pid) / sizeof(g->pid[0])))
		return -1;
	for (i = 0; i < nuids; i++) {
		each = count / nuids + (i < count % nuids);
		if (pipe2(report, O_CLOEXEC) == -1 ||
		    pipe2(ctl, O_CLOEXEC) == -1)
			die("pipe: %s", strerror(errno));
		if ((g->pid[i] = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (g->pid[i] == 0) {
			close(report[0]);
			close(ctl[1]);
			child_main(socket, port, uids[i], each, report[1],
			    ctl[0]);
		}
		proc_track(g->pid[i], "idle");
		close(report[1]);
		close(ctl[0]);
		g->ctl[i] = ctl[1];
		g->n++;

		pfd.fd = report[0];
		pfd.events = POLLIN;
		n = -1;
		if (poll(&pfd, 1, (int)(deadline - now_ms())) == 1)
			n = read(report[0], msg, sizeof(msg) - 1);
		close(report[0]);
		if (n <= 0) {
			warnx_("idle child for uid %u did not report",
			    (unsigned)uids[i]);
			rc = -1;
			break;
		}
		msg[n] = '\0';
		if (strcmp(msg, "ok") != 0) {
			warnx_("idle connections: %s", msg);
			rc = -1;
			break;
		}
	}
	return rc;
}

void
idle_close(struct idle_group *g)
{
	uint64_t	deadline = now_ms() + BENCH_READY_MS;
	pid_t		reaped;
	int		i;

	for (i = 0; i < g->n; i++)
		close(g->ctl[i]);
	for (i = 0; i < g->n; i++) {
		while ((reaped = waitpid(g->pid[i], NULL, WNOHANG)) == 0 &&
		    now_ms() < deadline)
			sleep_ms(5);
		if (reaped == 0) {
			kill(g->pid[i], SIGKILL);
			waitpid(g->pid[i], NULL, 0);
		}
		proc_untrack(g->pid[i]);
	}
	g->n = 0;
}
