/*
 * The client library's session and streams, shared by client.c and the
 * TLS layer (tls.c), which runs on a stream's buffer and write path.
 * Internal: not installed.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpbroker.h"

struct waiter;
struct tls;

/*
 * Streams are found by a handle's low 8 bits: the broker promises that
 * no two open handles of a session share them (docs/protocol.md).
 */
#define STREAM_SLOTS	256
#define STREAM_SLOT(h)	((h) & (STREAM_SLOTS - 1))
/* First size of a connection's receive buffer, which grows to the window. */
#define STREAM_BUFFER_MIN	4096

/* What the broker pushed for one connection, or a listener's readiness. */
struct stream {
	tb_handle	 handle;	/* 0: never used */
	bool		 open;		/* false once closed here */
	bool		 listener;
	bool		 acceptable;	/* a connection waits to be accepted */
	bool		 eof;		/* end pushed */
	bool		 read_shut;
	int		 error;		/* error pushed, a TB_E* code */
	bool		 error_reported; /* a call has returned it */
	bool		 write_lost;	/* it came with writes behind */
	bool		 write_shut;
	size_t		 wout;		/* written behind, not acked */
	size_t		 send_window;	/* the broker's for it; grows */
	uint32_t	 timeout_ms;
	uint8_t		*buf;		/* received and unread: buf[off, len) */
	size_t		 off;
	size_t		 len;
	size_t		 cap;
	size_t		 owed;		/* read, not yet granted back */
	size_t		 recv_window;	/* granted the broker; grows */
	struct tls	*tls;		/* or NULL; with TLS buf is plaintext */
};

struct tb_client {
	int		 fd;
	uint64_t	 session;
	pthread_mutex_t	 lock;		/* guards all below but in/inlen */
	pthread_cond_t	 cond;
	pthread_mutex_t	 send_lock;
	bool		 reading;
	int		 broken;	/* 0, or why the session is unusable */
	uint32_t	 next_msgid;
	struct waiter	*waiters;
	size_t		 send_window;	/* the broker's first, per connection */
	size_t		 recv_grown;	/* of CLIENT_RECV_GROWTH_MAX, lent */
	uint32_t	 version;	/* of the protocol, from hello */
	uint32_t	 busy_poll_us;	/* from hello, clamped */
	struct stream	 streams[STREAM_SLOTS];
	uint8_t		*in;		/* the reader's, CLIENT_READ_BUFFER */
	size_t		 inlen;
	bool		(*interrupt)(void *);	/* a signal wants control */
	void		*interrupt_arg;
};

/* Shared with tls.c; the session lock is held where noted. */
/*
 * With the lock: waits for more messages until a deadline; true when a
 * signal interrupted a wait that may be (never when not).
 */
bool	 client_wait(tb_client *, uint64_t, bool);
#define WAIT_INTERRUPTIBLE	true
#define WAIT_UNINTERRUPTED	false
/* With the lock: the open stream of h, or NULL. */
struct stream *stream_of(tb_client *, tb_handle);
/* With the lock: makes room for n more bytes in the buffer; -1 if not. */
int	 stream_reserve(struct stream *, size_t);
/* With the lock (let go while sending): gives back what was read. */
bool	 stream_grant(tb_client *, struct stream *, bool);
/* Without the lock: sends data behind on h. */
int	 send_behind(tb_client *, tb_handle, const uint8_t *, size_t);

#endif
