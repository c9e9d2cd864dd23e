/*
 * tcpbroker client library: the `tcp` plugin's functions as C calls.
 *
 * Every call is forwarded to the tcpbroker daemon over one Unix socket
 * (a "session"); the process never holds a TCP socket of its own.  The
 * session streams: received data is pushed by the broker into a buffer
 * per connection, so reads wait only when that buffer cannot serve
 * them.  A session may be used from several threads at once: each call
 * blocks only its own thread.
 *
 * Every function returns 0 on success or a negative TB_E* code, and
 * fills *err (when err is not NULL) with that code and a message.
 *
 * Coming from POSIX sockets:
 *	socket + connect	tb_connect, tb_connect_timeout (names too)
 *	socket + bind + listen	tb_listen("ip:port")
 *	accept			tb_accept
 *	send / write		tb_write (a count), tb_write_all (every byte)
 *	recv / read		tb_read (0 bytes: end of stream)
 *	recv(MSG_PEEK)		tb_peek
 *	recv(MSG_WAITALL)	tb_read_exact
 *	read until EOF		tb_read_all
 *	fgets on fdopen		tb_read_line, tb_read_until
 *	SO_RCVTIMEO/SNDTIMEO	tb_set_timeout_ms (ETIMEDOUT, not EAGAIN)
 *	TCP_NODELAY, SO_KEEPALIVE  tb_set_nodelay, tb_set_keepalive
 *	shutdown		tb_shutdown
 *	close			tb_close (twice: a no-op)
 *	getsockname, getpeername  tb_local_addr, tb_peer_addr, tb_addr_split
 *	poll / select (POLLIN)	tb_select; writes never wait for the peer
 *	errno			the TB_E* code and err->message
 *	SSL_connect, SSL_accept	tb_tls_connect, tb_tls_upgrade, tb_tls_accept
 */
#ifndef TCPBROKER_H
#define TCPBROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TB_EXTERN __attribute__((visibility("default")))
#else
#define TB_EXTERN
#endif

/*
 * The stable error codes.  On the wire a code travels as its name
 * ("EPOLICY"); in C it is the negative constant TB_EPOLICY.
 */
#define TB_ERRNO_MAP(XX)						\
	XX(EINVAL, "invalid argument")					\
	XX(EPROTO, "protocol error")					\
	XX(EVERSION, "protocol version not supported")			\
	XX(ENOMETHOD, "unknown method")					\
	XX(EBADHANDLE, "no such handle in this session")		\
	XX(EPOLICY, "denied by policy")					\
	XX(ELIMIT, "a limit of the broker was reached")			\
	XX(EQUOTA, "over a quota of the tenant")			\
	XX(ETIMEDOUT, "timed out")					\
	XX(EOF, "end of stream")					\
	XX(ECLOSED, "handle closed while the call was waiting")	\
	XX(ECONNREFUSED, "connection refused")				\
	XX(ECONNRESET, "connection reset by peer")			\
	XX(EHOSTUNREACH, "host unreachable")				\
	XX(ENETUNREACH, "network unreachable")				\
	XX(EADDRINUSE, "address already in use")			\
	XX(EADDRNOTAVAIL, "address not available")			\
	XX(EPIPE, "the stream cannot be written")			\
	XX(ENOTFOUND, "host name not found")				\
	XX(ERESOLVE, "name resolution failed")				\
	XX(EBROKER, "connection to the broker failed or was lost")	\
	XX(ENOMEM, "out of memory")					\
	XX(EIO, "input/output error")					\
	XX(EINTR, "interrupted by a signal")				\
	XX(ETLS, "TLS handshake or verification failed")

enum tb__errno_index {
	TB__ERRNO_NONE,
#define TB__ERRNO_INDEX(name, text) TB__ERRNO_INDEX_##name,
	TB_ERRNO_MAP(TB__ERRNO_INDEX)
#undef TB__ERRNO_INDEX
	TB__ERRNO_COUNT
};

typedef enum {
	TB_OK = 0,
#define TB__ERRNO_CODE(name, text) TB_##name = -TB__ERRNO_INDEX_##name,
	TB_ERRNO_MAP(TB__ERRNO_CODE)
#undef TB__ERRNO_CODE
} tb_errno_t;

/* Longest message in struct tb_error, without its terminating NUL. */
#define TB_ERROR_MESSAGE_MAX	255
/* Longest line tb_read_line returns, counting its newline: bytes. */
#define TB_LINE_MAX		65536
/* Largest data one call moves over the wire; larger writes are split. */
#define TB_DATA_MAX		65536
/* Buffer size that always holds an "ip:port" address text. */
#define TB_ADDR_STRLEN		64

struct tb_error {
	int	code;		/* TB_OK or a negative TB_E* code */
	char	message[TB_ERROR_MESSAGE_MAX + 1];
};

/* A connection or listener, valid only in the session that made it. */
typedef uint32_t tb_handle;

typedef struct tb_client tb_client;

typedef enum {
	TB_SHUTDOWN_READ,
	TB_SHUTDOWN_WRITE,
	TB_SHUTDOWN_BOTH
} tb_shutdown_how;

/* The stable name of a code ("EPOLICY"), or "EUNKNOWN". */
TB_EXTERN const char *tb_err_name(int code);
/* A short description of a code. */
TB_EXTERN const char *tb_strerror(int code);

/*
 * Opens a session with the broker.  Uses the descriptor named by
 * TCPBROKER_FD when set: under `tcpbroker run` a session source, which
 * every process of the command inherits and asks for a session of its
 * own (docs/protocol.md); else a session handed over, which serves this
 * process only.  Else the socket path in TCPBROKER_SOCKET, else
 * TB_DEFAULT_SOCKET.  The session's socket is close-on-exec: a program
 * this process runs opens a session of its own, and so must a child
 * that fork() made (never calling through its parent's tb_client).
 */
#define TB_DEFAULT_SOCKET	"/run/tcpbroker/tcpbroker.sock"
TB_EXTERN int tb_client_open(tb_client **out, struct tb_error *err);
/* Opens a session on the broker's Unix socket at path. */
TB_EXTERN int tb_client_open_path(tb_client **out, const char *path,
    struct tb_error *err);
/*
 * Opens a session on an already connected stream socket; takes it over
 * (and makes it blocking and close-on-exec).
 */
TB_EXTERN int tb_client_open_fd(tb_client **out, int fd,
    struct tb_error *err);
/*
 * Ends the session; the broker closes every handle it still has.  First
 * waits, as tb_close does (10 s at most for a connection without a
 * timeout), until what was written behind is out of the broker.
 */
TB_EXTERN void tb_client_close(tb_client *client);
/*
 * Lets signals interrupt this session's waits.  When a signal arrives
 * while a call waits (in a read, a write waiting for the send window,
 * tb_select, tb_accept) and wanted(arg) returns true, the call fails
 * with TB_EINTR and the session stays usable: nothing is consumed, and
 * a write says how many bytes went; an interrupted TLS handshake leaves
 * its connection fit only to be closed.  Calls that wait only for the
 * broker's answer (tb_connect, tb_listen, the options) are not
 * interrupted, nor are tb_close and tb_client_close while they hand
 * over what was written behind (a TLS close_notify too), nor an accept
 * whose waiting peer a reloaded policy refused: they read on.  Only a
 * signal delivered to the thread that reads for the session at that
 * moment is seen.  wanted is asked before every wait, with or without a
 * signal, and once more when an interruptible wait has slept 10 ms: it
 * must be cheap and must return.  A signal that comes just after wanted
 * looked, before the thread sleeps, ends the wait within those 10 ms:
 * the thread looks again then, with its signals held, and lets them in
 * only as it sleeps on, so wanted may run with signals held.  Set it
 * before threads share the session.  With wanted NULL, the default,
 * calls go on waiting.
 */
TB_EXTERN void tb_client_set_interrupt(tb_client *client,
    bool (*wanted)(void *arg), void *arg);
/* The broker's name for this session, for logs. */
TB_EXTERN uint64_t tb_client_session_id(const tb_client *client);

/* TcpClient(host, port): connect to a host name or IP literal. */
TB_EXTERN int tb_connect(tb_client *client, const char *host, uint16_t port,
    tb_handle *out, struct tb_error *err);
/* TcpClient.connect_timeout: as tb_connect, failing after ms. */
TB_EXTERN int tb_connect_timeout(tb_client *client, const char *host,
    uint16_t port, uint32_t ms, tb_handle *out, struct tb_error *err);

/*
 * write and write_bytes: send data; *written gets the bytes accepted,
 * which is less than len only when the timeout expired part way.
 * Writes return once the data is within the connection's send window
 * (write-behind), as write(2) returns once the kernel has it; an error
 * met later (TB_ECONNRESET, TB_EPIPE) is returned by the next call on
 * the connection, or by tb_close.
 */
TB_EXTERN int tb_write(tb_client *client, tb_handle conn, const void *data,
    size_t len, size_t *written, struct tb_error *err);
TB_EXTERN int tb_write_bytes(tb_client *client, tb_handle conn,
    const void *data, size_t len, size_t *written, struct tb_error *err);
/* write_all: send every byte or fail. */
TB_EXTERN int tb_write_all(tb_client *client, tb_handle conn,
    const void *data, size_t len, struct tb_error *err);

/* read: up to max bytes (at most TB_DATA_MAX); *len is 0 at end of stream. */
TB_EXTERN int tb_read(tb_client *client, tb_handle conn, void *buf,
    size_t max, size_t *len, struct tb_error *err);
/*
 * read_line: one line without its "\n" or "\r\n", NUL-terminated in buf.
 * The line with its newline must fit in min(cap, TB_LINE_MAX) bytes, or
 * the call fails with TB_ELIMIT and leaves the data unread.  At end of
 * stream with nothing left it fails with TB_EOF; a last line without a
 * newline is returned as it is.
 */
TB_EXTERN int tb_read_line(tb_client *client, tb_handle conn, char *buf,
    size_t cap, size_t *len, struct tb_error *err);
/*
 * read_exact: exactly n bytes, or TB_EOF if the stream ends first.  Up to
 * TB_DATA_MAX bytes it is all or nothing: on failure nothing is consumed.
 * A larger n is read in pieces of TB_DATA_MAX; a failure part way loses
 * the pieces already read, and the message says how many bytes.
 */
TB_EXTERN int tb_read_exact(tb_client *client, tb_handle conn, void *buf,
    size_t n, struct tb_error *err);
/*
 * read_until: bytes up to and including delim, within min(cap,
 * TB_LINE_MAX) bytes, else TB_ELIMIT.  TB_EOF at end of stream with
 * nothing left; trailing bytes without delim are returned as they are.
 */
TB_EXTERN int tb_read_until(tb_client *client, tb_handle conn, uint8_t delim,
    void *buf, size_t cap, size_t *len, struct tb_error *err);
/*
 * read_all: every byte up to the end of the stream, into buf of cap
 * bytes; *len gets the count.  Fails with TB_ELIMIT when the stream goes
 * on past cap bytes.  The handle's timeout limits each wait for more
 * data, not the whole call.  On any failure the *len bytes already in
 * buf are consumed (they are the stream's next bytes), the rest unread.
 */
TB_EXTERN int tb_read_all(tb_client *client, tb_handle conn, void *buf,
    size_t cap, size_t *len, struct tb_error *err);
/* peek: as tb_read, but the next read sees the same bytes again. */
TB_EXTERN int tb_peek(tb_client *client, tb_handle conn, void *buf,
    size_t max, size_t *len, struct tb_error *err);

/* Read and write timeout (accept timeout on a listener); 0 disables. */
TB_EXTERN int tb_set_timeout_ms(tb_client *client, tb_handle h, uint32_t ms,
    struct tb_error *err);
TB_EXTERN int tb_set_nodelay(tb_client *client, tb_handle conn, bool on,
    struct tb_error *err);
TB_EXTERN int tb_set_keepalive(tb_client *client, tb_handle conn, bool on,
    struct tb_error *err);
TB_EXTERN int tb_shutdown(tb_client *client, tb_handle conn,
    tb_shutdown_how how, struct tb_error *err);
/*
 * Closes a connection or listener; calls waiting on it fail TB_ECLOSED.
 * Closing a handle this session has closed already does nothing and
 * returns 0, as closing twice does in LuaSocket and Python; a handle the
 * session never had is TB_EBADHANDLE.
 * First waits (within the handle's timeout, or 10 s without one) until
 * the broker has handed every byte written behind to the network; fails
 * with the error that lost some of them, or TB_ETIMEDOUT, but closes the
 * handle all the same.
 */
TB_EXTERN int tb_close(tb_client *client, tb_handle h, struct tb_error *err);

/* TcpListener("ip:port"); port 0 asks for any free port. */
TB_EXTERN int tb_listen(tb_client *client, const char *addr, tb_handle *out,
    struct tb_error *err);
TB_EXTERN int tb_accept(tb_client *client, tb_handle listener,
    tb_handle *out, struct tb_error *err);

/*
 * select: waits until a read on one of the n connections would not wait
 * (data, end of stream or an error is there) or one of the listeners
 * has a connection to accept, for at most timeout_ms (-1: no limit, 0:
 * only look).  Sets ready[i] for each handle that is ready and *nready
 * to their count, 0 when the time ran out.  A peer the accept rules
 * refuse after a listener was found ready may make accept wait.
 */
TB_EXTERN int tb_select(tb_client *client, const tb_handle *handles,
    size_t n, bool *ready, int timeout_ms, size_t *nready,
    struct tb_error *err);

/*
 * "ip:port" of either end, "[v6]:port" for IPv6; cap >= TB_ADDR_STRLEN.
 * tb_addr_split makes host and port of it, as getpeername(2) would.
 */
TB_EXTERN int tb_local_addr(tb_client *client, tb_handle h, char *buf,
    size_t cap, struct tb_error *err);
TB_EXTERN int tb_peer_addr(tb_client *client, tb_handle conn, char *buf,
    size_t cap, struct tb_error *err);
/*
 * Splits "ip:port" or "[v6]:port" into the address without brackets
 * (host, cap >= TB_ADDR_STRLEN) and the port.  No call to the broker.
 */
TB_EXTERN int tb_addr_split(const char *addr, char *host, size_t cap,
    uint16_t *port, struct tb_error *err);

/*
 * TLS.  The library runs TLS itself (OpenSSL) over the connection's
 * stream: the broker relays the ciphertext under the policy and never
 * sees keys or plaintext.  Once a connection has TLS, every function
 * above (reads, writes, tb_select, tb_shutdown, tb_close) works on the
 * plaintext as it does on a plain connection; tb_shutdown and tb_close
 * send close_notify first.  A handshake or verification failure is
 * TB_ETLS with the reason in the message ("certificate has expired",
 * "hostname mismatch", "unknown CA", "the peer closed the connection
 * during the handshake", or the alert the peer sent); the connection
 * then fails every read and write with it, and only tb_close is left.
 * The peer's end of stream without close_notify reads as the end, as
 * a plain stream's: a protocol that needs to tell truncation from the
 * end frames its data (HTTP's Content-Length does).
 */
struct tb_tls_options {
	/*
	 * Name the peer's certificate must carry (a host name or an IP
	 * address) and, for a host name, the SNI sent.  Default: the host
	 * of tb_tls_connect; tb_tls_upgrade of a client needs it.
	 */
	const char	*server_name;
	/*
	 * Trusted CAs: a PEM file, an OpenSSL hashed directory, or both;
	 * neither: the system store (SSL_CTX_set_default_verify_paths).
	 */
	const char	*ca_file;
	const char	*ca_dir;
	/*
	 * Own certificate chain and private key, PEM files: a server's,
	 * or a client's for servers that ask for one.
	 */
	const char	*certificate;
	const char	*key;
	/* ALPN protocols in order of preference, NULL-terminated, or NULL. */
	const char	*const *alpn;
	/*
	 * The server side: certificate and key are required; a CA given
	 * makes it require and verify a client certificate.
	 */
	bool		 server;
	/* UNSAFE: accept any certificate, for any name (tests only). */
	bool		 insecure_no_verify;
};

/*
 * Connects as tb_connect, then runs the client handshake.  On failure
 * the connection is closed and *out left alone.  opts NULL: the
 * defaults (verified for host, against the system store).
 */
TB_EXTERN int tb_tls_connect(tb_client *client, const char *host,
    uint16_t port, const struct tb_tls_options *opts, tb_handle *out,
    struct tb_error *err);
/*
 * Starts TLS on an open connection (STARTTLS) and runs the handshake,
 * as a client or (opts->server) a server.  Bytes received and not read
 * before the call are taken as TLS: read the plaintext protocol's last
 * reply first.  The handshake waits within the connection's timeout,
 * or CLIENT_TLS_HANDSHAKE_MS (30 s) without one.
 */
TB_EXTERN int tb_tls_upgrade(tb_client *client, tb_handle conn,
    const struct tb_tls_options *opts, struct tb_error *err);
/*
 * tb_accept, then the server handshake; a failed one closes the
 * accepted connection.
 */
TB_EXTERN int tb_tls_accept(tb_client *client, tb_handle listener,
    const struct tb_tls_options *opts, tb_handle *out, struct tb_error *err);
/* Buffer size that always holds an ALPN protocol name. */
#define TB_TLS_ALPN_STRLEN	256
/* The ALPN protocol the handshake chose, "" for none. */
TB_EXTERN int tb_tls_alpn(tb_client *client, tb_handle conn, char *buf,
    size_t cap, struct tb_error *err);

#ifdef __cplusplus
}
#endif

#endif
