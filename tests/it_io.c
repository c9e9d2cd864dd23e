/*
 * The data functions through a real broker: write, write_bytes,
 * write_all, read, read_line, read_exact, read_until, peek, time-outs,
 * socket options, shutdown and close, with their end-of-stream and
 * error behaviour.
 */
#include <sys/pidfd.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct broker_proc	broker;

static int
setup(void **state)
{
	(void)state;
	harness_broker_start(&broker, HARNESS_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

static tb_handle
connect_to(tb_client *c, struct test_server *srv)
{
	struct tb_error	err;
	tb_handle	h;

	assert_ok(tb_connect(c, srv->family == AF_INET ? "127.0.0.1" : "::1",
	    srv->port, &h, &err), &err);
	return h;
}

static void
test_write_read_echo(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n, got = 0;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_write(c, h, "PING\r\n", 6, &n, &err), &err);
	assert_int_equal(n, 6);
	/* read may return fewer bytes than asked; gather the echo. */
	while (got < 6) {
		assert_ok(tb_read(c, h, buf + got, sizeof(buf) - got, &n,
		    &err), &err);
		assert_true(n > 0);
		got += n;
	}
	assert_memory_equal(buf, "PING\r\n", 6);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_write_bytes_binary(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	uint8_t			 all[512], got[512];
	size_t			 n, i;

	(void)state;
	for (i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)(i % 256);
	server_start(&srv, AF_INET, serve_sink, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_write_bytes(c, h, all, sizeof(all), &n, &err), &err);
	assert_int_equal(n, sizeof(all));
	assert_ok(tb_close(c, h, &err), &err);
	assert_true(server_wait(&srv.eofs, 1, 5000));
	assert_int_equal(server_received(&srv, got, sizeof(got)), sizeof(all));
	assert_memory_equal(got, all, sizeof(all));
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_write_all_large(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	size_t			 len = 1024 * 1024 + 17, i;
	uint8_t			*data = malloc(len), *got = malloc(len);

	(void)state;
	assert_non_null(data);
	assert_non_null(got);
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	server_start(&srv, AF_INET, serve_sink, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_write_all(c, h, data, len, &err), &err);
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_WRITE, &err), &err);
	assert_true(server_wait(&srv.eofs, 1, 10000));
	assert_int_equal(server_received(&srv, got, len), len);
	assert_memory_equal(got, data, len);
	tb_client_close(c);
	server_stop(&srv);
	free(data);
	free(got);
}

static void
test_read_fewer_and_eof(void **state)
{
	static const char	 text[] = "HELLO";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[1024];
	size_t			 n, got = 0;
	int			 i;

	(void)state;
	server_start(&srv, AF_INET, serve_send, text, 5);
	h = connect_to(c, &srv);
	for (i = 0; i < 10 && got < 5; i++) {
		assert_ok(tb_read(c, h, buf + got, sizeof(buf) - got, &n,
		    &err), &err);
		got += n;
	}
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "HELLO", 5);
	/* End of stream: read returns 0 bytes, again and again. */
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_ok(tb_peek(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err), TB_EOF,
	    &err);
	assert_rc(tb_read_exact(c, h, buf, 1, &err), TB_EOF, &err);
	assert_rc(tb_read_until(c, h, 'x', buf, sizeof(buf), &n, &err),
	    TB_EOF, &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_line(void **state)
{
	static const char	 text[] = "hello\r\nworld\n\nlast";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_send, text, strlen(text));
	h = connect_to(c, &srv);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "hello");
	assert_int_equal(n, 5);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "world");
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "");
	/* The last line has no newline: returned as it is at EOF. */
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "last");
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err), TB_EOF,
	    &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_line_too_long(void **state)
{
	static char		 text[200];
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[256];
	size_t			 n, got = 0;
	int			 i;

	(void)state;
	memset(text, 'a', sizeof(text));
	text[150] = '\n';
	server_start(&srv, AF_INET, serve_send_hold, text, sizeof(text));
	h = connect_to(c, &srv);
	/* 150 bytes and a newline do not fit in 100: refused, kept. */
	assert_rc(tb_read_line(c, h, buf, 100, &n, &err), TB_ELIMIT, &err);
	assert_non_null(strstr(err.message, "left unread"));
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 150);
	for (i = 0; i < 10 && got < 49; i++) {
		assert_ok(tb_read(c, h, buf + got, sizeof(buf) - got, &n,
		    &err), &err);
		got += n;
	}
	assert_int_equal(got, 49);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_exact(void **state)
{
	static const char	 text[] = "0123456789";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_send, text, 10);
	h = connect_to(c, &srv);
	assert_ok(tb_read_exact(c, h, buf, 4, &err), &err);
	assert_memory_equal(buf, "0123", 4);
	/* Only 6 bytes remain: EOF, and the 6 bytes stay readable. */
	assert_rc(tb_read_exact(c, h, buf, 8, &err), TB_EOF, &err);
	assert_non_null(strstr(err.message, "6 of 8"));
	assert_ok(tb_read_exact(c, h, buf, 6, &err), &err);
	assert_memory_equal(buf, "456789", 6);
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_until(void **state)
{
	static const uint8_t	 text[] = { 'a', 0, 'b', 'c', 0, 'd' };
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	uint8_t			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_send, text, sizeof(text));
	h = connect_to(c, &srv);
	assert_ok(tb_read_until(c, h, 0, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 2);
	assert_memory_equal(buf, "a\0", 2);
	assert_ok(tb_read_until(c, h, 0, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "bc\0", 3);
	/* Trailing bytes without the delimiter come back at EOF. */
	assert_ok(tb_read_until(c, h, 0, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 1);
	assert_int_equal(buf[0], 'd');
	assert_rc(tb_read_until(c, h, 0, buf, sizeof(buf), &n, &err), TB_EOF,
	    &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_peek_then_read(void **state)
{
	static const char	 text[] = "abcdefgh";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_send_hold, text, 8);
	h = connect_to(c, &srv);
	assert_ok(tb_read_exact(c, h, buf, 2, &err), &err);
	assert_ok(tb_peek(c, h, buf, 4, &n, &err), &err);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "cdef", 4);
	assert_ok(tb_peek(c, h, buf, 4, &n, &err), &err);
	assert_memory_equal(buf, "cdef", 4);
	assert_ok(tb_read_exact(c, h, buf, 6, &err), &err);
	assert_memory_equal(buf, "cdefgh", 6);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_timeout_keeps_connection(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;
	uint64_t		 start;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_set_timeout_ms(c, h, 150, &err), &err);
	start = harness_now_ms();
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	assert_true(harness_now_ms() - start >= 100);
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err),
	    TB_ETIMEDOUT, &err);
	assert_rc(tb_read_exact(c, h, buf, 4, &err), TB_ETIMEDOUT, &err);
	/* Still usable: a round trip works after the time-outs. */
	assert_ok(tb_write_all(c, h, "again\n", 6, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "again");
	/* Part of a line, then a time-out: the part is not lost. */
	assert_ok(tb_write_all(c, h, "par", 3, &err), &err);
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err),
	    TB_ETIMEDOUT, &err);
	assert_ok(tb_write_all(c, h, "tial\n", 5, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "partial");
	tb_client_close(c);
	server_stop(&srv);
}

static void
serve_late(struct test_server *srv, int fd)
{
	harness_sleep_ms(400);
	if (!atomic_load(&srv->stopping))
		(void)!write(fd, "late\n", 5);
}

static void
test_timeout_zero_disables(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_late, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_set_timeout_ms(c, h, 100, &err), &err);
	assert_ok(tb_set_timeout_ms(c, h, 0, &err), &err);
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "late");
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_write_timeout(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	size_t			 len = 64 * 1024 * 1024, n;
	uint8_t			*data = calloc(1, len);

	(void)state;
	assert_non_null(data);
	/* The peer never reads: its window and both buffers fill up. */
	server_start(&srv, AF_INET, serve_silent, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_set_timeout_ms(c, h, 300, &err), &err);
	/*
	 * write reports a short count, as write(2) does: the empty buffers
	 * take some, never 64 MiB.
	 */
	assert_ok(tb_write(c, h, data, len, &n, &err), &err);
	assert_true(n > 0 && n < len);
	/* With the buffers full, write_all times out. */
	assert_rc(tb_write_all(c, h, data, len, &err), TB_ETIMEDOUT, &err);
	tb_client_close(c);
	server_stop(&srv);
	free(data);
}

/* Finds the broker's socket whose local address is addr, via pidfd. */
static int
broker_socket(const char *addr)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	struct dirent		*d;
	char			path[64], text[TB_ADDR_STRLEN];
	DIR			*dir;
	int			pidfd, fd, found = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)broker.pid);
	assert_non_null(dir = opendir(path));
	assert_true((pidfd = pidfd_open(broker.pid, 0)) != -1);
	while (found == -1 && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		fd = pidfd_getfd(pidfd, atoi(d->d_name), 0);
		if (fd == -1)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
		    ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			char ip[16];
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			snprintf(text, sizeof(text), "%s:%u", ip,
			    ntohs(sin->sin_port));
			if (strcmp(text, addr) == 0) {
				found = fd;
				continue;
			}
		}
		close(fd);
	}
	closedir(dir);
	close(pidfd);
	return found;
}

static int
sockopt(int fd, int level, int name)
{
	int		value = -1;
	socklen_t	len = sizeof(value);

	assert_int_equal(getsockopt(fd, level, name, &value, &len), 0);
	return value != 0;
}

static void
test_socket_options(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 local[TB_ADDR_STRLEN];
	int			 fd;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_local_addr(c, h, local, sizeof(local), &err), &err);
	/* The broker's own socket, looked at from outside. */
	fd = broker_socket(local);
	assert_true(fd != -1);
	assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	assert_ok(tb_set_nodelay(c, h, true, &err), &err);
	assert_ok(tb_set_keepalive(c, h, true, &err), &err);
	assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_ok(tb_set_nodelay(c, h, false, &err), &err);
	assert_ok(tb_set_keepalive(c, h, false, &err), &err);
	assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	close(fd);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_shutdown_write(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &srv);
	assert_ok(tb_write_all(c, h, "BYE\n", 4, &err), &err);
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_WRITE, &err), &err);
	/* The peer sees the end, and its echo still arrives. */
	assert_true(server_wait(&srv.eofs, 1, 5000));
	assert_ok(tb_read_line(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_string_equal(buf, "BYE");
	assert_rc(tb_write(c, h, "x", 1, &n, &err), TB_EPIPE, &err);
	assert_rc(tb_write_all(c, h, "x", 1, &err), TB_EPIPE, &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_shutdown_read_and_both(void **state)
{
	static const char	 text[] = "unread data\n";
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_send_hold, text, strlen(text));
	h = connect_to(c, &srv);
	assert_ok(tb_peek(c, h, buf, 1, &n, &err), &err);
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_READ, &err), &err);
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_rc(tb_read_line(c, h, buf, sizeof(buf), &n, &err), TB_EOF,
	    &err);
	assert_ok(tb_write_all(c, h, "still writable", 14, &err), &err);
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_BOTH, &err), &err);
	assert_rc(tb_write_all(c, h, "x", 1, &err), TB_EPIPE, &err);
	assert_true(server_wait(&srv.eofs, 1, 5000));
	assert_rc(tb_shutdown(c, h, (tb_shutdown_how)7, &err), TB_EINVAL, &err);
	tb_client_close(c);
	server_stop(&srv);
}

struct blocked_read {
	tb_client	*c;
	tb_handle	 h;
	atomic_int	 tid;
	int		 rc;
	struct tb_error	 err;
};

static void *
blocked_read_main(void *p)
{
	struct blocked_read	*b = p;
	char			 buf[16];
	size_t			 n;

	atomic_store(&b->tid, harness_gettid());
	b->rc = tb_read(b->c, b->h, buf, sizeof(buf), &n, &b->err);
	return NULL;
}

static void
test_close(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct blocked_read	 b = { 0 };
	struct tb_error		 err;
	pthread_t		 t;
	tb_handle		 h;
	char			 buf[16];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_hold, NULL, 0);
	h = connect_to(c, &srv);
	b.c = c;
	b.h = h;
	/* The wait tells a running thread (this one) from a blocked one. */
	assert_false(harness_wait_blocked(getpid(), harness_gettid(), 0));
	assert_int_equal(pthread_create(&t, NULL, blocked_read_main, &b), 0);
	assert_true(harness_wait_thread_blocked(&b.tid, 5000));
	/* Closing fails the call that waits on it, and the peer sees EOF. */
	assert_ok(tb_close(c, h, &err), &err);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, TB_ECLOSED);
	assert_true(server_wait(&srv.eofs, 1, 5000));
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_EBADHANDLE,
	    &err);
	/* Closing again does nothing, as in LuaSocket and Python. */
	assert_ok(tb_close(c, h, &err), &err);
	assert_ok(tb_close(c, h, &err), &err);
	assert_rc(tb_write(c, h, "x", 1, &n, &err), TB_EBADHANDLE, &err);
	tb_client_close(c);
	server_stop(&srv);
}

/* A second close is a no-op even once the handle's slot is used again. */
static void
test_close_twice(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h, again;
	char			 buf[16];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &srv);
	/* Nobody waits on it: the close goes without a round trip. */
	assert_ok(tb_close(c, h, &err), &err);
	assert_true(server_wait(&srv.eofs, 1, 5000));
	again = connect_to(c, &srv);
	assert_int_equal(again & 0xff, h & 0xff);
	assert_true(again > h);
	assert_ok(tb_close(c, h, &err), &err);
	/* The new one was not touched. */
	assert_ok(tb_write_all(c, again, "ok", 2, &err), &err);
	assert_ok(tb_read_exact(c, again, buf, 2, &err), &err);
	assert_ok(tb_close(c, again, &err), &err);
	assert_ok(tb_close(c, again, &err), &err);
	/* Handles the session never had are still unknown. */
	assert_rc(tb_close(c, again + 256, &err), TB_EBADHANDLE, &err);
	assert_rc(tb_close(c, 0x3039, &err), TB_EBADHANDLE, &err);
	assert_rc(tb_read(c, again, buf, sizeof(buf), &n, &err),
	    TB_EBADHANDLE, &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_read_all(void **state)
{
	static const char	 text[] = "line one\nline two\nno newline";
	struct test_server	 srv, echo;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[64];
	size_t			 n, len = strlen(text);

	(void)state;
	server_start(&srv, AF_INET, serve_send, text, len);
	h = connect_to(c, &srv);
	assert_ok(tb_read_all(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, len);
	assert_memory_equal(buf, text, len);
	assert_ok(tb_read_all(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_ok(tb_close(c, h, &err), &err);

	/* Exactly cap bytes fit; one more is ELIMIT, the rest unread. */
	h = connect_to(c, &srv);
	assert_ok(tb_read_all(c, h, buf, len, &n, &err), &err);
	assert_int_equal(n, len);
	assert_ok(tb_close(c, h, &err), &err);
	h = connect_to(c, &srv);
	assert_rc(tb_read_all(c, h, buf, 8, &n, &err), TB_ELIMIT, &err);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "line one", 8);
	assert_ok(tb_read_all(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, len - 8);
	assert_memory_equal(buf, text + 8, len - 8);
	assert_ok(tb_close(c, h, &err), &err);
	server_stop(&srv);

	/* A timeout part way keeps what came, and says how much. */
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &echo);
	assert_ok(tb_set_timeout_ms(c, h, 200, &err), &err);
	assert_ok(tb_write_all(c, h, "abc", 3, &err), &err);
	assert_rc(tb_read_all(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "abc", 3);
	assert_non_null(strstr(err.message, "after 3 bytes"));
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
	server_stop(&echo);
}

static volatile sig_atomic_t	signalled;

static void
on_usr1(int sig)
{
	(void)sig;
	signalled = 1;
}

static bool
wants_usr1(void *arg)
{
	(void)arg;
	return signalled != 0;
}

/* SIGUSR1 sets signalled, restarting what it interrupts; old: before. */
static void
catch_usr1(struct sigaction *old)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(SIGUSR1, &sa, old), 0);
}

/*
 * wants_usr1, and a SIGUSR1 sent to this thread just after it looked:
 * a signal in the gap between the library's look and its sleep.  The
 * first time it looks; or, with held, the first time it looks with
 * SIGUSR1 held, when the signal stays pending until the sleep.
 */
static volatile sig_atomic_t	raised;

static bool
usr1_after_look(bool held)
{
	sigset_t	cur;
	bool		was = signalled != 0;

	if (held && (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 ||
	    !sigismember(&cur, SIGUSR1)))
		return was;
	if (!raised) {
		raised = 1;
		raise(SIGUSR1);
	}
	return was;
}

static bool
wants_usr1_then_raises(void *arg)
{
	(void)arg;
	return usr1_after_look(false);
}

static bool
wants_usr1_then_raises_held(void *arg)
{
	(void)arg;
	return usr1_after_look(true);
}

/* A signal wants control all the time. */
static bool
always_wanted(void *arg)
{
	(void)arg;
	return true;
}

/* Sends SIGUSR1 to a thread every 20 ms until told to stop, 10 s at most. */
struct pester {
	pthread_t	target, thread;
	atomic_bool	stop;
};

static void *
pester_main(void *p)
{
	struct pester	*ps = p;
	int		 i;

	for (i = 0; i < 500 && !atomic_load(&ps->stop); i++) {
		pthread_kill(ps->target, SIGUSR1);
		harness_sleep_ms(20);
	}
	return NULL;
}

/*
 * A signal interrupts a waiting read with TB_EINTR when the session
 * wants it, and the session goes on; without that, calls go on waiting.
 */
static void
test_interrupt(void **state)
{
	struct test_server	 silent, echo;
	tb_client		*c = harness_client(&broker);
	struct sigaction	 old;
	struct pester		 ps;
	struct tb_error		 err;
	tb_handle		 h, e;
	char			 buf[16];
	size_t			 n;

	(void)state;
	catch_usr1(&old);
	server_start(&silent, AF_INET, serve_silent, NULL, 0);
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	h = connect_to(c, &silent);
	e = connect_to(c, &echo);

	/* Not asked for: the signals change nothing, the timeout ends it. */
	assert_ok(tb_set_timeout_ms(c, h, 300, &err), &err);
	ps.target = pthread_self();
	atomic_store(&ps.stop, false);
	assert_int_equal(pthread_create(&ps.thread, NULL, pester_main, &ps), 0);
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	atomic_store(&ps.stop, true);
	pthread_join(ps.thread, NULL);
	assert_true(signalled);

	/* Asked for: a read with no timeout returns TB_EINTR. */
	signalled = 0;
	tb_client_set_interrupt(c, wants_usr1, NULL);
	assert_ok(tb_set_timeout_ms(c, h, 0, &err), &err);
	atomic_store(&ps.stop, false);
	assert_int_equal(pthread_create(&ps.thread, NULL, pester_main, &ps), 0);
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_EINTR, &err);
	assert_non_null(strstr(err.message, "still usable"));
	signalled = 0;
	assert_rc(tb_select(c, &h, 1, (bool[1]){ false }, -1, &n, &err),
	    TB_EINTR, &err);
	atomic_store(&ps.stop, true);
	pthread_join(ps.thread, NULL);

	/* The session is still usable. */
	signalled = 0;
	assert_ok(tb_write_all(c, e, "ok", 2, &err), &err);
	assert_ok(tb_read_exact(c, e, buf, 2, &err), &err);
	assert_memory_equal(buf, "ok", 2);
	tb_client_close(c);
	server_stop(&silent);
	server_stop(&echo);
	sigaction(SIGUSR1, &old, NULL);
}

/*
 * One signal, coming after the library looked at wanted() and before it
 * slept, still ends the wait: the read returns TB_EINTR within
 * CLIENT_INTERRUPT_LOOK_MS, not at its timeout.  Once when the signal
 * comes at the first look; once when it comes, held, at the look the
 * library makes with signals held, and only an atomic sleep lets it in.
 * Afterwards the thread's signal mask is as it was.
 */
static void
test_interrupt_between_look_and_sleep(void **state)
{
	bool			 (*const hooks[2])(void *) = {
		wants_usr1_then_raises, wants_usr1_then_raises_held
	};
	struct test_server	 silent;
	tb_client		*c = harness_client(&broker);
	struct sigaction	 old;
	struct tb_error		 err;
	sigset_t		 cur;
	tb_handle		 h;
	uint64_t		 start;
	char			 buf[16];
	size_t			 i, n;

	(void)state;
	catch_usr1(&old);
	server_start(&silent, AF_INET, serve_silent, NULL, 0);
	h = connect_to(c, &silent);
	assert_ok(tb_set_timeout_ms(c, h, 3000, &err), &err);
	for (i = 0; i < 2; i++) {
		signalled = 0;
		raised = 0;
		tb_client_set_interrupt(c, hooks[i], NULL);
		start = harness_now_ms();
		assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_EINTR,
		    &err);
		assert_true(raised);
		assert_true(harness_now_ms() - start < 1000);
		assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
		assert_false(sigismember(&cur, SIGUSR1));
		tb_client_set_interrupt(c, NULL, NULL);
	}
	tb_client_close(c);
	server_stop(&silent);
	sigaction(SIGUSR1, &old, NULL);
}

struct uninterrupted {
	tb_client		*c;
	struct test_server	*srv;
	int			 connected, timed, wrote, closed;
};

static void *
connect_write_close(void *arg)
{
	struct uninterrupted	*u = arg;
	struct tb_error		 err;
	tb_handle		 h = 0;

	u->connected = tb_connect(u->c, "127.0.0.1", u->srv->port, &h, &err);
	if (u->connected == 0) {
		/* A close that spun would end at this, not in 10 s. */
		u->timed = tb_set_timeout_ms(u->c, h, 2000, &err);
		u->wrote = tb_write_all(u->c, h, "hello", 5, &err);
		u->closed = tb_close(u->c, h, &err);
	}
	return NULL;
}

/*
 * A signal that wants control does not stop a wait that may not be
 * interrupted (connect, close handing over what was written behind):
 * the call reads on and ends, rather than spinning without reading.
 * Static: a thread that never ended must not be left a dead stack.
 */
static void
test_uninterrupted_calls_under_a_signal(void **state)
{
	static struct test_server	sink;
	static struct uninterrupted	u;
	struct timespec			until;
	pthread_t			t;

	(void)state;
	u = (struct uninterrupted){ NULL, &sink, -1, -1, -1, -1 };
	server_start(&sink, AF_INET, serve_silent, NULL, 0);
	u.c = harness_client(&broker);
	tb_client_set_interrupt(u.c, always_wanted, NULL);
	assert_int_equal(pthread_create(&t, NULL, connect_write_close, &u),
	    0);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &until), 0);
	until.tv_sec += 10;
	if (pthread_timedjoin_np(t, NULL, &until) != 0)
		fail_msg("connect, write and close under a wanted signal did "
		    "not end in 10 s");
	assert_int_equal(u.connected, 0);
	assert_int_equal(u.timed, 0);
	assert_int_equal(u.wrote, 0);
	assert_int_equal(u.closed, 0);
	tb_client_close(u.c);
	server_stop(&sink);
}

static void
test_addr_split(void **state)
{
	struct tb_error	err;
	char		host[TB_ADDR_STRLEN];
	uint16_t	port;

	(void)state;
	assert_ok(tb_addr_split("127.0.0.1:9000", host, sizeof(host), &port,
	    &err), &err);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9000);
	assert_ok(tb_addr_split("[::1]:65535", host, sizeof(host), &port,
	    &err), &err);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
	assert_rc(tb_addr_split("::1:80", host, sizeof(host), &port, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_addr_split("[::1]80", host, sizeof(host), &port, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_addr_split("1.2.3.4:65536", host, sizeof(host), &port,
	    &err), TB_EINVAL, &err);
	assert_rc(tb_addr_split("1.2.3.4:", host, sizeof(host), &port, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_addr_split(":80", host, sizeof(host), &port, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_addr_split("1.2.3.4:80", host, 4, &port, &err),
	    TB_EINVAL, &err);
}

static void
serve_reset(struct test_server *srv, int fd)
{
	struct linger	lg = { 1, 0 };

	(void)srv;
	(void)!write(fd, "x", 1);
	harness_sleep_ms(50);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void
test_connection_reset(void **state)
{
	struct test_server	 srv;
	tb_client		*c = harness_client(&broker);
	struct tb_error		 err;
	tb_handle		 h;
	char			 buf[16];
	size_t			 n;

	(void)state;
	server_start(&srv, AF_INET, serve_reset, NULL, 0);
	h = connect_to(c, &srv);
	assert_true(server_wait(&srv.accepted, 1, 5000));
	harness_sleep_ms(200);
	assert_rc(tb_read_exact(c, h, buf, 2, &err), TB_ECONNRESET, &err);
	/* The byte sent before the reset may survive it; then the error. */
	if (tb_read(c, h, buf, sizeof(buf), &n, &err) == 0) {
		assert_int_equal(n, 1);
		assert_int_equal(buf[0], 'x');
	}
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_ECONNRESET,
	    &err);
	assert_rc(tb_write(c, h, "x", 1, &n, &err), TB_ECONNRESET, &err);
	tb_client_close(c);
	server_stop(&srv);
}

static void
test_bad_handles(void **state)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 l;
	char		 buf[16];
	size_t		 n;

	(void)state;
	assert_rc(tb_read(c, 12345, buf, sizeof(buf), &n, &err),
	    TB_EBADHANDLE, &err);
	assert_rc(tb_set_timeout_ms(c, 0xffffffff, 10, &err), TB_EBADHANDLE,
	    &err);
	assert_rc(tb_set_nodelay(c, 7, true, &err), TB_EBADHANDLE, &err);
	/* A listener is not a connection. */
	assert_ok(tb_listen(c, "127.0.0.1:0", &l, &err), &err);
	assert_rc(tb_read(c, l, buf, sizeof(buf), &n, &err), TB_EBADHANDLE,
	    &err);
	assert_rc(tb_peer_addr(c, l, buf, sizeof(buf), &err), TB_EBADHANDLE,
	    &err);
	tb_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_echo),
		cmocka_unit_test(test_write_bytes_binary),
		cmocka_unit_test(test_write_all_large),
		cmocka_unit_test(test_read_fewer_and_eof),
		cmocka_unit_test(test_read_line),
		cmocka_unit_test(test_read_line_too_long),
		cmocka_unit_test(test_read_exact),
		cmocka_unit_test(test_read_until),
		cmocka_unit_test(test_peek_then_read),
		cmocka_unit_test(test_read_timeout_keeps_connection),
		cmocka_unit_test(test_timeout_zero_disables),
		cmocka_unit_test(test_write_timeout),
		cmocka_unit_test(test_socket_options),
		cmocka_unit_test(test_shutdown_write),
		cmocka_unit_test(test_shutdown_read_and_both),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_close_twice),
		cmocka_unit_test(test_read_all),
		cmocka_unit_test(test_addr_split),
		cmocka_unit_test(test_interrupt),
		cmocka_unit_test(test_interrupt_between_look_and_sleep),
		cmocka_unit_test(test_uninterrupted_calls_under_a_signal),
		cmocka_unit_test(test_connection_reset),
		cmocka_unit_test(test_bad_handles),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
