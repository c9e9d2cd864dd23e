/*
 * tcpbroker-demo: a client doing allowed and denied work through the
 * broker, the way a script's plugin calls would.  Every socket below
 * lives in the broker; this process holds only its Unix socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpbroker.h"

static int	failures;

static void
show(const char *what, int rc, const struct tb_error *err)
{
	if (rc == 0)
		printf("  ok       %s\n", what);
	else
		printf("  %-8s %s\n           %s\n", tb_err_name(rc), what,
		    err->message);
}

/* A call the policy must allow. */
static int
allowed(const char *what, int rc, const struct tb_error *err)
{
	show(what, rc, err);
	if (rc != 0)
		failures++;
	return rc;
}

/* A call the policy must deny. */
static void
denied(const char *what, int rc, const struct tb_error *err)
{
	show(what, rc, err);
	if (rc != TB_EPOLICY)
		failures++;
}

int
main(void)
{
	tb_client	*c;
	struct tb_error	 err;
	tb_handle	 server, conn, accepted, h;
	char		 addr[TB_ADDR_STRLEN], line[256], what[300];
	const char	*port;
	size_t		 n;

	if (tb_client_open(&c, &err) != 0) {
		fprintf(stderr, "tcpbroker-demo: %s\n", err.message);
		return 1;
	}
	printf("session %llu with the broker\n\n",
	    (unsigned long long)tb_client_session_id(c));

	printf("A listener and a client, both through the broker:\n");
	if (allowed("TcpListener(\"127.0.0.1:0\")",
	    tb_listen(c, "127.0.0.1:0", &server, &err), &err) != 0)
		return 1;
	tb_local_addr(c, server, addr, sizeof(addr), &err);
	printf("           listening on %s\n", addr);
	port = strrchr(addr, ':') + 1;
	snprintf(what, sizeof(what), "TcpClient(\"localhost\", %s)", port);
	if (allowed(what, tb_connect(c, "localhost", (uint16_t)atoi(port),
	    &conn, &err), &err) != 0)
		return 1;
	allowed("accept(server)", tb_accept(c, server, &accepted, &err), &err);
	allowed("write(conn, \"PING\\r\\n\")", tb_write(c, conn, "PING\r\n", 6,
	    &n, &err), &err);
	allowed("read_line(client)", tb_read_line(c, accepted, line,
	    sizeof(line), &n, &err), &err);
	printf("           the server read \"%s\"\n", line);
	allowed("write_all(client, \"PONG\\n\")", tb_write_all(c, accepted,
	    "PONG\n", 5, &err), &err);
	allowed("read_line(conn)", tb_read_line(c, conn, line, sizeof(line),
	    &n, &err), &err);
	printf("           the client read \"%s\"\n", line);
	allowed("close(conn)", tb_close(c, conn, &err), &err);
	allowed("read(client, 64) at end of stream", tb_read(c, accepted, line,
	    64, &n, &err), &err);
	printf("           %zu bytes: the stream ended\n", n);

	printf("\nWhat the policy denies:\n");
	denied("TcpClient(\"127.0.0.1\", 22)",
	    tb_connect(c, "127.0.0.1", 22, &h, &err), &err);
	denied("TcpClient(\"169.254.169.254\", 80)",
	    tb_connect(c, "169.254.169.254", 80, &h, &err), &err);
	denied("TcpClient(\"10.0.0.1\", 5432)",
	    tb_connect(c, "10.0.0.1", 5432, &h, &err), &err);
	denied("TcpListener(\"0.0.0.0:8080\")",
	    tb_listen(c, "0.0.0.0:8080", &h, &err), &err);

	printf("\nWhat the broker refuses as malformed:\n");
	show("TcpClient(\"2130706433\", 80)",
	    tb_connect(c, "2130706433", 80, &h, &err), &err);
	show("read(12345, 10)", tb_read(c, 12345, line, 10, &n, &err), &err);

	tb_client_close(c);
	printf("\n%s\n", failures == 0 ? "demo finished as expected" :
	    "demo: some steps did not go as expected");
	return failures == 0 ? 0 : 1;
}
