/*
 * tcpbroker status [--control PATH] [--json] [--watch SECONDS]
 * tcpbroker metrics [--control PATH] [--textfile PATH]
 *
 * Asks a running broker over its control socket (control.c) and prints
 * the answer: who is connected, what they hold and do, the recent
 * denials; or the metrics in Prometheus's text format, on stdout or
 * into a file for node_exporter's textfile collector.  The confined
 * broker opens no file, so the file is written here, by whoever runs
 * the command (a timer: dist/tcpbroker-metrics.timer).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

/* How long the broker may take to answer: milliseconds. */
#define STATUS_ANSWER_MS	5000
/* Longest --watch interval: seconds. */
#define STATUS_WATCH_MAX	3600

static int
status_usage(void)
{
	fprintf(stderr, "usage: tcpbroker status [--control PATH] [--json] "
	    "[--watch SECONDS]\n"
	    "       tcpbroker metrics [--control PATH] [--textfile PATH]\n");
	return 2;
}

/* The last bytes of the latest answer, to tell a whole one. */
static char	answer_tail[64];
static size_t	answer_tail_len;

/* Keeps the last bytes of what came, in answer_tail. */
static void
keep_tail(const char *buf, size_t n)
{
	size_t	keep;

	if (n >= sizeof(answer_tail)) {
		memcpy(answer_tail, buf + n - sizeof(answer_tail),
		    sizeof(answer_tail));
		answer_tail_len = sizeof(answer_tail);
		return;
	}
	keep = answer_tail_len + n > sizeof(answer_tail) ?
	    sizeof(answer_tail) - n : answer_tail_len;
	memmove(answer_tail, answer_tail + answer_tail_len - keep, keep);
	memcpy(answer_tail + keep, buf, n);
	answer_tail_len = keep + n;
}

/* Sends command and copies the answer to out; 0, or 1 on failure. */
static int
ask(const char *path, const char *command, FILE *out)
{
	struct sockaddr_un	sun = { .sun_family = AF_UNIX };
	struct pollfd		pfd;
	char			buf[65536];
	ssize_t			n;
	size_t			len = strlen(command);
	int			fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "tcpbroker: %s: path too long\n", path);
		return 1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "tcpbroker: cannot reach the broker's control "
		    "socket %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return 1;
	}
	if (send(fd, command, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		fprintf(stderr, "tcpbroker: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, STATUS_ANSWER_MS) != 1) {
			fprintf(stderr, "tcpbroker: no answer from the broker\n");
			close(fd);
			return 1;
		}
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		keep_tail(buf, (size_t)n);
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n)
			break;
	}
	close(fd);
	if (n == -1) {
		fprintf(stderr, "tcpbroker: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* A broker that refused us closed without a word. */
	return fflush(out) == 0 ? 0 : 1;
}

/*
 * The metrics into path, whole or not at all: written beside it and
 * renamed over it, as the textfile collector asks, so that it never
 * reads half a file.  An unreachable broker leaves the old file, whose
 * age node_exporter reports (node_textfile_mtime_seconds).
 */
static int
write_textfile(const char *control, const char *path)
{
	char	 tmp[PATH_MAX];
	FILE	*f;
	int	 fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >=
	    (int)sizeof(tmp)) {
		fprintf(stderr, "tcpbroker: %s: path too long\n", path);
		return 1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) ==
	    -1 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "tcpbroker: %s: %s\n", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return 1;
	}
	answer_tail_len = 0;
	rc = ask(control, "metrics", f);
	if (rc == 0 && ftell(f) == 0) {
		fprintf(stderr, "tcpbroker: the broker refused to answer\n");
		rc = 1;
	} else if (rc == 0 && (answer_tail_len < strlen(METRICS_END) ||
	    memcmp(answer_tail + answer_tail_len - strlen(METRICS_END),
	    METRICS_END, strlen(METRICS_END)) != 0)) {
		fprintf(stderr, "tcpbroker: the broker's answer was cut "
		    "short\n");
		rc = 1;
	}
	if (fsync(fileno(f)) == -1 && rc == 0) {
		fprintf(stderr, "tcpbroker: %s: %s\n", tmp, strerror(errno));
		rc = 1;
	}
	if (fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "tcpbroker: %s: %s\n", tmp, strerror(errno));
		rc = 1;
	}
	if (rc == 0 && rename(tmp, path) == -1) {
		fprintf(stderr, "tcpbroker: %s: %s\n", path, strerror(errno));
		rc = 1;
	}
	if (rc != 0)
		unlink(tmp);
	return rc;
}

int
status_main(int argc, char *argv[])
{
	static const struct option	 options[] = {
		{ "control",	required_argument,	NULL, 'C' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "watch",	required_argument,	NULL, 'w' },
		{ "textfile",	required_argument,	NULL, 't' },
		{ NULL,		0,			NULL, 0 }
	};
	const char	*path = BROKER_CONTROL_SOCKET, *textfile = NULL;
	bool		 metrics = strcmp(argv[0], "metrics") == 0, json = false;
	long		 watch = 0;
	char		*end;
	int		 ch, rc;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'C':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			textfile = optarg;
			break;
		case 'w':
			watch = strtol(optarg, &end, 10);
			if (*end != '\0' || watch < 1 ||
			    watch > STATUS_WATCH_MAX)
				return status_usage();
			break;
		default:
			return status_usage();
		}
	}
	if (optind != argc || (metrics && (json || watch != 0)) ||
	    (!metrics && textfile != NULL))
		return status_usage();
	if (textfile != NULL)
		return write_textfile(path, textfile);
	for (;;) {
		if (watch != 0)
			printf("\033[H\033[2J");	/* as watch(1) does */
		rc = ask(path, metrics ? "metrics" : json ? "status json" :
		    "status", stdout);
		if (watch == 0 || rc != 0)
			return rc;
		sleep((unsigned)watch);
	}
}
