/*
 * A TCP connection, shared by connect.c (resolving, deciding, dialing)
 * and connection.c (the stream once it is open); no other file sees it.
 */
#ifndef TB_CONNECTION_H
#define TB_CONNECTION_H

#include <sys/epoll.h>

#include "broker.h"

enum conn_state {
	CONN_RESOLVING,
	CONN_CONNECTING,
	CONN_OPEN
};

/* What only opening a connection needs. */
struct dial {
	struct conn		*conn;
	struct call		*connect;
	uint32_t		 resolve_id;
	struct timer		 resolve_timer;
	char			 host[PROTO_STRING_MAX + 1];	/* as asked */
	char			 name[PROTO_HOST_NAME_MAX + 1];	/* normalised */
	uint16_t		 port;
	struct host_addr	 addrs[LIMIT_RESOLVE_ADDRS];
	unsigned		 naddrs;
	unsigned		 next_addr;
	int			 last_error;
};

/*
 * One for every open connection, idle ones too: the fields are grouped
 * by size so that no padding is left between them (docs/performance.md,
 * memory per idle connection).
 */
struct conn {
	struct loop_io		 io;
	struct session		*session;
	struct push_waiter	 push_wait;
	/*
	 * Write-behind: sent by the client, not yet taken by the socket.
	 * The counts are at most the window, PROTO_SEND_WINDOW_MAX.
	 */
	uint8_t			*wbuf;
	uint32_t		 woff;
	uint32_t		 wlen;
	uint32_t		 wout;		/* sent by the client, not acked */
	uint32_t		 unacked;	/* written, not acked yet */
	uint8_t			*buf;		/* received, not yet read */
	size_t			 buflen;
	size_t			 bufcap;
	struct call_queue	 readers;
	struct call_queue	 writers;

	/*
	 * The tenant's quota this connection counts in (its name is the
	 * tenant's), and its traffic.
	 */
	struct quota		*quota;
	struct timer		 throttle_in;	/* bandwidth used up: wait */
	struct timer		 throttle_out;
	uint64_t		 opened_ms;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	/* The name it was connected to, for --revoke; NULL for an address. */
	char			*name;
	/* While connecting: freed once the connection is open. */
	struct dial		*dial;

	uint32_t		 handle;
	enum conn_state		 state;
	uint32_t		 timeout_ms;
	int			 error;		/* sticky TB_E* code */
	uint32_t		 credit;	/* bytes the client may take */
	uint32_t		 window;	/* the send window, once streaming */
	uint32_t		 grow_taken;	/* see behind_taken() */
	bool			 eof;		/* the peer sent FIN */
	bool			 read_shut;
	bool			 write_shut;
	bool			 shut_pending;	/* SHUT_WR once wbuf drains */
	bool			 streaming;
	bool			 ended;		/* end or error pushed */
	bool			 error_told;	/* error pushed */
	bool			 counted;	/* holds a connection */
	bool			 looking_up;	/* holds a lookup */
	bool			 accepted;	/* from a listener */
	bool			 ack_asked;	/* a credit came: ack at once */
};

/* connection.c: a new connection with a handle of s, not yet published. */
struct conn	*conn__new(struct session *s);
/* connection.c: the connection's events, once it has a socket. */
void		 conn__event(struct loop_io *io, uint32_t events);
/* connect.c: an event while connecting. */
void		 connect__event(struct conn *conn, uint32_t events);
/* connect.c: stops connecting (fails its call when reply) and frees dial. */
void		 connect__abandon(struct conn *conn, bool reply);

#endif
