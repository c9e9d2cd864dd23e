/* The sockmap shape of tcpbroker-relay-floor. */
#ifndef TB_BENCH_SOCKMAP_H
#define TB_BENCH_SOCKMAP_H

/*
 * Puts the three sockets in a sockmap whose program moves what tcp
 * receives to client_end's receive queue, and what relay_end receives
 * (the client's writes) out on tcp.  The map's descriptor, which must
 * stay open while the data moves, or -1 with errno and *why (the
 * step, or the verifier's log).
 */
int	sockmap_join(int tcp, int relay_end, int client_end,
	    const char **why);

#endif
