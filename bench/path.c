/*
 * The paths a measurement can take to a server: plain sockets, plain
 * sockets through a SOCKS5 proxy, and the tcpbroker client library.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

void
conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int
fd_write_all(int fd, const void *data, size_t len)
{
	const uint8_t	*p = data;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fd_read_exact(int fd, void *buf, size_t len)
{
	uint8_t	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		if ((n = read(fd, p, len)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
direct_open(struct path *p, uint16_t port, struct conn *c)
{
	(void)p;
	conn_init(c);
	return (c->fd = loopback_dial(port)) == -1 ? -1 : 0;
}

static void
direct_close(struct path *p, struct conn *c)
{
	(void)p;
	if (c->fd != -1)
		close(c->fd);
	free(c->rbuf);
	conn_init(c);
}

static int
direct_write_all(struct path *p, struct conn *c, const void *data,
    size_t len)
{
	(void)p;
	return fd_write_all(c->fd, data, len);
}

static ssize_t
direct_read(struct path *p, struct conn *c, void *buf, size_t max)
{
	ssize_t	n;

	(void)p;
	while ((n = read(c->fd, buf, max)) == -1 && errno == EINTR)
		;
	return n;
}

/* A buffered reader, as a script's runtime would have. */
static int
direct_read_line(struct path *p, struct conn *c, char *line, size_t cap,
    size_t *len)
{
	uint8_t	*nl;
	size_t	 n;
	ssize_t	 got;

	(void)p;
	if (c->rbuf == NULL && (c->rbuf = malloc(BENCH_CHUNK)) == NULL)
		return -1;
	for (;;) {
		nl = memchr(c->rbuf + c->rstart, '\n', c->rend - c->rstart);
		if (nl != NULL) {
			n = (size_t)(nl - (c->rbuf + c->rstart));
			if (n >= cap)
				return -1;
			memcpy(line, c->rbuf + c->rstart, n);
			line[n] = '\0';
			*len = n;
			c->rstart += n + 1;
			return 0;
		}
		if (c->rstart > 0) {
			memmove(c->rbuf, c->rbuf + c->rstart,
			    c->rend - c->rstart);
			c->rend -= c->rstart;
			c->rstart = 0;
		}
		if (c->rend == BENCH_CHUNK)
			return -1;
		got = direct_read(p, c, c->rbuf + c->rend,
		    BENCH_CHUNK - c->rend);
		if (got <= 0)
			return -1;
		c->rend += (size_t)got;
	}
}

static int
direct_select(struct path *p, struct conn *conns, int n, int timeout_ms)
{
	struct pollfd	pfd[128];
	int		i;

	(void)p;
	if (n > (int)(sizeof(pfd) / sizeof(pfd[0])))
		return -1;
	for (i = 0; i < n; i++) {
		pfd[i].fd = conns[i].fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
		return -1;
	for (i = 0; i < n; i++)
		if (pfd[i].revents != 0)
			return i;
	return -1;
}

const struct path_ops path_direct_ops = {
	direct_open, direct_close, direct_write_all, direct_read,
	direct_read_line, direct_select,
};

/*
 * SOCKS5 (RFC 1928) without authentication, CONNECT to 127.0.0.1.  A
 * failure is reported with its step: an I/O error or the proxy closing,
 * the method it chose, or its reply code (RFC 1928, 6).
 */
static int
socks_open(struct path *p, uint16_t port, struct conn *c)
{
	uint8_t		 hello[3] = { 5, 1, 0 }, choice[2], reply[10];
	uint8_t		 req[10] = { 5, 1, 0, 1, 127, 0, 0, 1 };
	const char	*step;

	conn_init(c);
	if ((c->fd = loopback_dial(p->proxy_port)) == -1) {
		warnx_("%s: connect: %s", p->name, strerror(errno));
		return -1;
	}
	req[8] = (uint8_t)(port >> 8);
	req[9] = (uint8_t)port;
	errno = 0;	/* a read that meets the end leaves it so */
	step = "greeting";
	if (fd_write_all(c->fd, hello, sizeof(hello)) == -1 ||
	    fd_read_exact(c->fd, choice, sizeof(choice)) == -1)
		goto io;
	if (choice[0] != 5 || choice[1] != 0) {
		warnx_("%s: SOCKS method refused: the proxy chose %d",
		    p->name, choice[1]);
		goto fail;
	}
	step = "request";
	if (fd_write_all(c->fd, req, sizeof(req)) == -1 ||
	    fd_read_exact(c->fd, reply, sizeof(reply)) == -1)
		goto io;
	if (reply[0] != 5 || reply[1] != 0 || reply[3] != 1) {
		warnx_("%s: SOCKS request refused: reply code %d", p->name,
		    reply[1]);
		goto fail;
	}
	return 0;
io:
	warnx_("%s: SOCKS %s: %s", p->name, step, errno != 0 ?
	    strerror(errno) : "the proxy closed the connection");
fail:
	direct_close(p, c);
	return -1;
}

const struct path_ops path_socks_ops = {
	socks_open, direct_close, direct_write_all, direct_read,
	direct_read_line, direct_select,
};

static int
tcpbroker_open(struct path *p, uint16_t port, struct conn *c)
{
	struct tb_error	err;

	conn_init(c);
	if (tb_connect(p->client, "127.0.0.1", port, &c->h, &err) != 0) {
		warnx_("tb_connect: %s", err.message);
		return -1;
	}
	return 0;
}

static void
tcpbroker_close(struct path *p, struct conn *c)
{
	struct tb_error	err;

	if (c->h != 0)
		tb_close(p->client, c->h, &err);
	conn_init(c);
}

static int
tcpbroker_write_all(struct path *p, struct conn *c, const void *data,
    size_t len)
{
	struct tb_error	err;

	return tb_write_all(p->client, c->h, data, len, &err) == 0 ? 0 : -1;
}

static ssize_t
tcpbroker_read(struct path *p, struct conn *c, void *buf, size_t max)
{
	struct tb_error	err;
	size_t		len;

	if (tb_read(p->client, c->h, buf, max, &len, &err) != 0)
		return -1;
	return (ssize_t)len;
}

static int
tcpbroker_read_line(struct path *p, struct conn *c, char *line, size_t cap,
    size_t *len)
{
	struct tb_error	err;

	return tb_read_line(p->client, c->h, line, cap, len, &err) == 0 ?
	    0 : -1;
}

static int
tcpbroker_select(struct path *p, struct conn *conns, int n, int timeout_ms)
{
	struct tb_error	err;
	tb_handle	hs[128];
	bool		ready[128];
	size_t		nready;
	int		i;

	if (n > (int)(sizeof(hs) / sizeof(hs[0])))
		return -1;
	for (i = 0; i < n; i++)
		hs[i] = conns[i].h;
	if (tb_select(p->client, hs, (size_t)n, ready, timeout_ms, &nready,
	    &err) != 0 || nready == 0)
		return -1;
	for (i = 0; i < n; i++)
		if (ready[i])
			return i;
	return -1;
}

const struct path_ops path_tcpbroker_ops = {
	tcpbroker_open, tcpbroker_close, tcpbroker_write_all, tcpbroker_read,
	tcpbroker_read_line, tcpbroker_select,
};
