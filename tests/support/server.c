/*
 * Real TCP servers on loopback, each a thread of the test process with
 * a thread per connection.  Every wait polls in short steps and stops
 * when the server stops, so nothing here can hang a test.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Poll step of server threads: milliseconds. */
#define SERVER_STEP_MS	20

struct conn_arg {
	struct test_server	*srv;
	int			 fd;
};

static void *
conn_main(void *p)
{
	struct conn_arg	*a = p;

	a->srv->handler(a->srv, a->fd);
	close(a->fd);
	free(a);
	return NULL;
}

static void *
acceptor_main(void *p)
{
	struct test_server	*srv = p;
	struct pollfd		 pfd = { srv->fd, POLLIN, 0 };
	struct conn_arg		*a;
	int			 fd, n;

	while (!atomic_load(&srv->stopping)) {
		if (poll(&pfd, 1, SERVER_STEP_MS) <= 0)
			continue;
		if ((fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		n = atomic_load(&srv->nthreads);
		if (n == SERVER_CONNS_MAX || (a = malloc(sizeof(*a))) == NULL) {
			close(fd);
			continue;
		}
		a->srv = srv;
		a->fd = fd;
		if (pthread_create(&srv->threads[n], NULL, conn_main, a) != 0) {
			free(a);
			close(fd);
			continue;
		}
		atomic_store(&srv->nthreads, n + 1);
		atomic_fetch_add(&srv->accepted, 1);
	}
	return NULL;
}

void
server_start(struct test_server *srv, int family, server_handler handler,
    const void *arg, size_t arglen)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			on = 1;

	memset(srv, 0, sizeof(*srv));
	srv->family = family;
	srv->handler = handler;
	srv->arg = arg;
	srv->arglen = arglen;
	pthread_mutex_init(&srv->lock, NULL);
	srv->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv->fd != -1);
	setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	assert_int_equal(bind(srv->fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(srv->fd, 128), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(srv->fd, (struct sockaddr *)&ss, &len), 0);
	srv->port = ntohs(family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	assert_int_equal(pthread_create(&srv->acceptor, NULL, acceptor_main,
	    srv), 0);
}

void
server_stop(struct test_server *srv)
{
	int	i;

	atomic_store(&srv->stopping, true);
	pthread_join(srv->acceptor, NULL);
	for (i = 0; i < atomic_load(&srv->nthreads); i++)
		pthread_join(srv->threads[i], NULL);
	close(srv->fd);
	free(srv->rx);
	pthread_mutex_destroy(&srv->lock);
}

bool
server_wait(atomic_int *counter, int want, unsigned ms)
{
	uint64_t	deadline = harness_now_ms() + ms;

	while (atomic_load(counter) < want) {
		if (harness_now_ms() > deadline)
			return false;
		harness_sleep_ms(5);
	}
	return true;
}

size_t
server_received(struct test_server *srv, void *buf, size_t cap)
{
	size_t	n;

	pthread_mutex_lock(&srv->lock);
	n = srv->rxlen < cap ? srv->rxlen : cap;
	if (n > 0)
		memcpy(buf, srv->rx, n);
	pthread_mutex_unlock(&srv->lock);
	return n;
}

/* Waits for fd to be readable; false when the server stops first. */
static bool
wait_readable(struct test_server *srv, int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };

	while (!atomic_load(&srv->stopping)) {
		if (poll(&pfd, 1, SERVER_STEP_MS) > 0)
			return true;
	}
	return false;
}

static void
send_all(int fd, const void *data, size_t len)
{
	const uint8_t	*p = data;
	ssize_t		 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void
serve_echo(struct test_server *srv, int fd)
{
	uint8_t	buf[65536];
	ssize_t	n;

	while (wait_readable(srv, fd)) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) <= 0) {
			atomic_fetch_add(&srv->eofs, 1);
			return;
		}
		send_all(fd, buf, (size_t)n);
	}
}

void
serve_send(struct test_server *srv, int fd)
{
	send_all(fd, srv->arg, srv->arglen);
}

void
serve_send_hold(struct test_server *srv, int fd)
{
	uint8_t	buf[4096];

	send_all(fd, srv->arg, srv->arglen);
	while (wait_readable(srv, fd)) {
		if (recv(fd, buf, sizeof(buf), 0) <= 0) {
			atomic_fetch_add(&srv->eofs, 1);
			return;
		}
	}
}

void
serve_sink(struct test_server *srv, int fd)
{
	uint8_t	 buf[65536];
	uint8_t	*p;
	ssize_t	 n;

	while (wait_readable(srv, fd)) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) <= 0) {
			atomic_fetch_add(&srv->eofs, 1);
			return;
		}
		pthread_mutex_lock(&srv->lock);
		if (srv->rxlen + (size_t)n <= SERVER_RX_MAX) {
			p = realloc(srv->rx, srv->rxlen + (size_t)n);
			if (p != NULL) {
				memcpy(p + srv->rxlen, buf, (size_t)n);
				srv->rx = p;
				srv->rxlen += (size_t)n;
			}
		}
		pthread_mutex_unlock(&srv->lock);
	}
}

void
serve_hold(struct test_server *srv, int fd)
{
	uint8_t		buf[4096];
	struct pollfd	pfd = { fd, POLLIN, 0 };

	while (!atomic_load(&srv->stopping) && !atomic_load(&srv->release)) {
		if (poll(&pfd, 1, SERVER_STEP_MS) > 0 &&
		    recv(fd, buf, sizeof(buf), 0) <= 0) {
			atomic_fetch_add(&srv->eofs, 1);
			return;
		}
	}
	send_all(fd, srv->arg, srv->arglen);
}

void
serve_silent(struct test_server *srv, int fd)
{
	(void)fd;
	while (!atomic_load(&srv->stopping))
		harness_sleep_ms(SERVER_STEP_MS);
}
