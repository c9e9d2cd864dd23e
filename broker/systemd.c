/*
 * What a service manager expects of a daemon, spoken by hand so that
 * the broker needs no libsystemd: the socket it passes (LISTEN_FDS and
 * LISTEN_PID, sd_listen_fds(3)), readiness on NOTIFY_SOCKET
 * (sd_notify(3)), and the runtime directory, made here when the broker
 * runs without one.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

static int	notify_fd = -1;
/* The passed socket's path, for the log. */
static char	listen_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

static int
sockopt(int fd, int name)
{
	socklen_t	len = sizeof(int);
	int		value;

	if (getsockopt(fd, SOL_SOCKET, name, &value, &len) == -1)
		return -1;
	return value;
}

const char *
systemd_listen_fd(int fd)
{
	struct sockaddr_un	sun;
	socklen_t		len = sizeof(sun);
	const char		*pid, *fds;
	char			*end;
	long			 value;

	pid = getenv("LISTEN_PID");
	fds = getenv("LISTEN_FDS");
	if (pid == NULL || fds == NULL)
		return NULL;
	/* Meant for this process only, whatever happens next. */
	errno = 0;
	value = strtol(pid, &end, 10);
	if (errno != 0 || *end != '\0' || value != (long)getpid()) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		return NULL;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strcmp(fds, "1") != 0)
		fatalx("LISTEN_FDS=%s: expected one socket", fds);
	if (sockopt(fd, SO_DOMAIN) != AF_UNIX ||
	    sockopt(fd, SO_TYPE) != SOCK_STREAM ||
	    sockopt(fd, SO_ACCEPTCONN) != 1)
		fatalx("descriptor %d from the service manager is not a "
		    "listening Unix stream socket", fd);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		fatal("the passed socket");
	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1 ||
	    len <= offsetof(struct sockaddr_un, sun_path) ||
	    sun.sun_path[0] == '\0')
		strcpy(listen_path, "the socket passed by the service manager");
	else
		memcpy(listen_path, sun.sun_path, len -
		    offsetof(struct sockaddr_un, sun_path));
	return listen_path;
}

void
systemd_notify_open(void)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	size_t			 len;
	int			 fd;

	if (path == NULL)
		return;
	len = strlen(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((path[0] != '/' && path[0] != '@') || len < 2 ||
	    len > sizeof(sun.sun_path)) {
		log_warnx("NOTIFY_SOCKET=%s: not a socket path; no readiness "
		    "notification", path);
		return;
	}
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';		/* abstract */
	/* Opened now: the filter has no Unix datagram sockets. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) == -1) {
		log_warnx("NOTIFY_SOCKET=%s: %s; no readiness notification",
		    path, strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	notify_fd = fd;
	unsetenv("NOTIFY_SOCKET");
}

void
systemd_notify(const char *state)
{
	size_t	len = strlen(state);

	if (notify_fd == -1)
		return;
	if (send(notify_fd, state, len, MSG_NOSIGNAL) != (ssize_t)len)
		log_warnx("NOTIFY_SOCKET: %s: %s", state, strerror(errno));
}

void
systemd_runtime_dir(const char *socket_path)
{
	char	dir[PATH_MAX], *slash;

	if (strlen(socket_path) >= sizeof(dir))
		fatalx("socket path too long: %s", socket_path);
	strcpy(dir, socket_path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	/* Only the last component; a missing parent is the admin's error. */
	if (mkdir(dir, 0755) == 0)
		log_info("created %s", dir);
	else if (errno != EEXIST)
		fatal("mkdir %s", dir);
}
