/*
 * tcpbroker-readme: the README's C snippet as a program, so that the
 * tests run it, with a broker and without one.  The lines between the
 * README markers are the README's, word for word (tests/readme.cmake
 * checks it).  The server's port is ECHO_PORT's, else 9000.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tcpbroker.h"

int
main(void)
{
	const char	*env = getenv("ECHO_PORT");
	uint16_t	 port = env != NULL ? (uint16_t)atoi(env) : 9000;

	/* README begin */
	tb_client *c;
	struct tb_error err;
	tb_handle conn;
	char line[256];
	size_t n;

	if (tb_client_open(&c, &err) != 0) {	/* TCPBROKER_FD, TCPBROKER_SOCKET, or the default path */
		fprintf(stderr, "%s: %s\n", tb_err_name(err.code), err.message);
		return 1;			/* EBROKER: cannot reach the broker at ... */
	}
	if (tb_connect(c, "127.0.0.1", port, &conn, &err) != 0 ||	/* EPOLICY: ... denied by ... */
	    tb_write_all(c, conn, "PING\r\n", 6, &err) != 0 ||
	    tb_read_line(c, conn, line, sizeof(line), &n, &err) != 0 ||
	    tb_close(c, conn, &err) != 0) {
		fprintf(stderr, "%s: %s\n", tb_err_name(err.code), err.message);
		tb_client_close(c);	/* closes what is still open */
		return 1;
	}
	printf("%s\n", line);
	tb_client_close(c);
	/* README end */
	return 0;
}
