/*
 * launched_client: run by it_launcher under `tcpbroker run`.  Its own
 * sockets must fail with EACCES while the plugin, through a session
 * from the source the launcher handed it, connects where the policy
 * allows.
 *
 * Environment: ECHO_PORT (an allowed echo server), DENIED_PORT.
 * Exit status: 0 when everything behaved, else the step that did not.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcpbroker.h"

static int
failed(int step, const char *what)
{
	fprintf(stderr, "launched_client: step %d: %s\n", step, what);
	return step;
}

int
main(void)
{
	static const int families[] = { AF_INET, AF_INET6, AF_UNIX,
	    AF_PACKET, AF_NETLINK };
	struct tb_error	 err;
	tb_client	*c;
	tb_handle	 h;
	char		 line[64];
	size_t		 i, n;
	int		 sv[2];
	const char	*echo = getenv("ECHO_PORT"), *denied = getenv("DENIED_PORT");

	if (echo == NULL || denied == NULL)
		return failed(1, "ECHO_PORT and DENIED_PORT must be set");
	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (socket(families[i], SOCK_STREAM, 0) != -1 || errno != EACCES)
			return failed(2, "a socket of its own was not refused");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return failed(3, "socketpair was refused");
	if (getenv("TCPBROKER_FD") == NULL)
		return failed(4, "TCPBROKER_FD is not set");
	if (tb_client_open(&c, &err) != 0)
		return failed(5, err.message);
	if (tb_connect(c, "127.0.0.1", (uint16_t)atoi(echo), &h, &err) != 0)
		return failed(6, err.message);
	if (tb_write_all(c, h, "launched\n", 9, &err) != 0 ||
	    tb_read_line(c, h, line, sizeof(line), &n, &err) != 0 ||
	    strcmp(line, "launched") != 0)
		return failed(7, "no echo through the broker");
	if (tb_connect(c, "127.0.0.1", (uint16_t)atoi(denied), &h, &err) !=
	    TB_EPOLICY)
		return failed(8, "the denied connect was not EPOLICY");
	printf("launched_client: %s\n", err.message);
	tb_client_close(c);
	return 0;
}
