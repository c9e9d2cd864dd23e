/*
 * The wire contract shared by the broker and the client library:
 * the method table, the frame scanner, and the msgpack-RPC codec.
 * docs/protocol.md describes the same contract for other clients.
 */
#ifndef TB_PROTO_H
#define TB_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "tb_limits.h"
#include "tcpbroker.h"

/*
 * The method table.  Each entry is (ID, wire name, parameter types); one
 * letter per positional parameter:
 *   u  unsigned 32-bit integer      h  handle (non-zero, 32-bit)
 *   p  TCP port 1..65535            m  milliseconds (32-bit)
 *   n  byte count 0..PROTO_DATA_MAX y  byte value 0..255
 *   b  boolean                      s  string, 1..PROTO_STRING_MAX bytes
 *   d  data (bin), 0..PROTO_DATA_MAX bytes
 *   w  shutdown mode: "read", "write" or "both"
 * The broker's handler for `name` is method_name(); bump PROTO_VERSION
 * whenever this list changes.  The notification tables below use the
 * same letters, and e for an error [code name, message].
 */
#define PROTO_METHODS(X)					\
	X(HELLO,		hello,			"u")	\
	X(CONNECT,		connect,		"sp")	\
	X(CONNECT_TIMEOUT,	connect_timeout,	"spm")	\
	X(WRITE,		write,			"hd")	\
	X(WRITE_BYTES,		write_bytes,		"hd")	\
	X(WRITE_ALL,		write_all,		"hd")	\
	X(READ,			read,			"hn")	\
	X(READ_LINE,		read_line,		"hn")	\
	X(READ_EXACT,		read_exact,		"hn")	\
	X(READ_UNTIL,		read_until,		"hyn")	\
	X(PEEK,			peek,			"hn")	\
	X(SET_TIMEOUT_MS,	set_timeout_ms,		"hm")	\
	X(SET_NODELAY,		set_nodelay,		"hb")	\
	X(SET_KEEPALIVE,	set_keepalive,		"hb")	\
	X(SHUTDOWN,		shutdown,		"hw")	\
	X(CLOSE,		close,			"h")	\
	X(LISTEN,		listen,			"s")	\
	X(ACCEPT,		accept,			"h")	\
	X(LOCAL_ADDR,		local_addr,		"h")	\
	X(PEER_ADDR,		peer_addr,		"h")	\
	X(STREAM,		stream,			"u")

/*
 * Notifications ([2, name, params], no response) of a streaming session
 * (docs/protocol.md, "Streams").  From the client, handled by the
 * broker's note_name():
 */
#define PROTO_CLIENT_NOTES(X)					\
	X(CREDIT,		credit,			"hu")	\
	X(SEND,			send,			"hd")	\
	X(CLOSE,		close,			"h")

/* From the broker: */
#define PROTO_BROKER_NOTES(X)					\
	X(DATA,			data,			"hd")	\
	X(END,			end,			"h")	\
	X(ERROR,		error,			"he")	\
	X(ACK,			ack,			"hu")	\
	X(ACCEPTABLE,		acceptable,		"h")	\
	X(WINDOW,		window,			"hu")

enum proto_client_note {
#define PROTO__NOTE_ENUM(id, name, params) PROTO_CNOTE_##id,
	PROTO_CLIENT_NOTES(PROTO__NOTE_ENUM)
	PROTO_CNOTE_COUNT
};

#undef PROTO__NOTE_ENUM

enum proto_broker_note {
#define PROTO__NOTE_ENUM(id, name, params) PROTO_BNOTE_##id,
	PROTO_BROKER_NOTES(PROTO__NOTE_ENUM)
#undef PROTO__NOTE_ENUM
	PROTO_BNOTE_COUNT
};

enum proto_method {
#define PROTO__METHOD_ENUM(id, name, params) PROTO_METHOD_##id,
	PROTO_METHODS(PROTO__METHOD_ENUM)
#undef PROTO__METHOD_ENUM
	PROTO_METHOD_COUNT
};

/*
 * The session source (docs/protocol.md): a SOCK_SEQPACKET socket on
 * which a process of a launched command asks for a session of its own
 * with this one message.  The answer is PROTO_SOURCE_OK with the new
 * session's socket attached (SCM_RIGHTS), or an error's name, a space
 * and its message, with no descriptor.
 */
#define PROTO_SOURCE_REQUEST	"session"
#define PROTO_SOURCE_OK		"ok"

/* Most parameters any method takes. */
#define PROTO_PARAMS_MAX	3

struct proto_method_info {
	const char	*name;
	const char	*params;
};

extern const struct proto_method_info proto_methods[PROTO_METHOD_COUNT];
extern const struct proto_method_info proto_client_notes[PROTO_CNOTE_COUNT];
extern const struct proto_method_info proto_broker_notes[PROTO_BNOTE_COUNT];

/* The method called name (len bytes), or -1. */
int	proto_method_lookup(const char *name, size_t len);
/* The entry of table (of count) called name (len bytes), or -1. */
int	proto_table_lookup(const struct proto_method_info *table, int count,
	    const char *name, size_t len);

/* msgpack-RPC message types. */
#define PROTO_REQUEST		0
#define PROTO_RESPONSE		1
#define PROTO_NOTIFY		2

/* Values of a 'w' parameter. */
enum proto_shutdown {
	PROTO_SHUTDOWN_READ,
	PROTO_SHUTDOWN_WRITE,
	PROTO_SHUTDOWN_BOTH
};

/* One checked parameter: u for u h p m n y w, b for b, bytes for s d e. */
struct proto_arg {
	uint64_t	 u;
	bool		 b;
	const uint8_t	*ptr;
	size_t		 len;
};

/* The stable name of an error code ("EPOLICY"). */
const char	*proto_err_name(int code);
/* A short description of an error code. */
const char	*proto_err_text(int code);
/* The code named name (len bytes), or 0 when there is none. */
int		 proto_err_lookup(const char *name, size_t len);

/*
 * Finds where the first message in buf ends, without allocating and
 * without trusting any declared size: every length and count is checked
 * against PROTO_MESSAGE_MAX, PROTO_OBJECTS_MAX and PROTO_DEPTH_MAX
 * before msgpack-c sees the bytes.
 */
enum proto_scan {
	PROTO_SCAN_MORE,	/* a prefix of a valid message; read more */
	PROTO_SCAN_DONE,	/* *msg_len bytes form one message */
	PROTO_SCAN_BAD		/* never a valid message; *why says why */
};
enum proto_scan	 proto_scan(const uint8_t *buf, size_t len, size_t *msg_len,
		    const char **why);

/* A decoded message; its pointers live as long as the msgpack_unpacked. */
struct proto_msg {
	int			 type;
	uint32_t		 msgid;
	/* requests and notifications */
	const char		*method;
	size_t			 method_len;
	const msgpack_object	*params;
	uint32_t		 nparams;
	/* responses */
	const msgpack_object	*error;
	const msgpack_object	*result;
};

/*
 * Decodes one whole message that proto_scan() accepted and checks its
 * envelope.  Returns 0, or -1 with *why set.
 */
int	proto_decode(msgpack_unpacked *unpacked, const uint8_t *buf,
	    size_t len, struct proto_msg *msg, const char **why);

/*
 * Checks a request's parameters against the method table and fills
 * args.  Returns 0, or TB_EINVAL or TB_ELIMIT with why filled.
 */
int	proto_check_args(enum proto_method method, const msgpack_object *params,
	    uint32_t nparams, struct proto_arg args[PROTO_PARAMS_MAX],
	    char *why, size_t whylen);
/* The same for an entry of any table (a notification's). */
int	proto_check_params(const struct proto_method_info *info,
	    const msgpack_object *params, uint32_t nparams,
	    struct proto_arg args[PROTO_PARAMS_MAX], char *why, size_t whylen);

/*
 * A cursor over one message that proto_scan() accepted, read value by
 * value without allocating.  Each proto_get_* takes the next value if it
 * has that type, else returns -1.
 */
struct proto_cursor {
	const uint8_t	*p;
	size_t		 len;
};
int	proto_get_nil(struct proto_cursor *c);
int	proto_get_uint(struct proto_cursor *c, uint64_t *v);
int	proto_get_array(struct proto_cursor *c, uint32_t *n);
/* A map of *n pairs: the caller reads 2 * *n values. */
int	proto_get_map(struct proto_cursor *c, uint32_t *n);
int	proto_get_str(struct proto_cursor *c, const char **ptr, size_t *len);
int	proto_get_bin(struct proto_cursor *c, const uint8_t **ptr, size_t *len);
/*
 * A response's error: nil gives *code 0; [name, message] its code, the
 * message copied into message (cap bytes, NUL-terminated).
 */
int	proto_get_error(struct proto_cursor *c, int *code, char *message,
	    size_t cap);

/*
 * A byte buffer that msgpack packs into.  It never grows past max; an
 * append that would is refused and remembered in failed.
 */
struct proto_buf {
	uint8_t	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
	bool	 failed;
};

void	proto_buf_init(struct proto_buf *buf, size_t max);
void	proto_buf_free(struct proto_buf *buf);
int	proto_buf_append(struct proto_buf *buf, const void *data, size_t len);
/* Drops the first n bytes. */
void	proto_buf_consume(struct proto_buf *buf, size_t n);
/*
 * Room for len more bytes at data + len, which the caller fills and
 * then adds to len; NULL (and failed) when max would be passed.
 */
uint8_t	*proto_buf_reserve(struct proto_buf *buf, size_t len);
/* A packer that writes into buf. */
void	proto_packer_init(msgpack_packer *pk, struct proto_buf *buf);

/* [0, msgid, method, [...]]: the caller then packs nparams values. */
void	proto_pack_request(msgpack_packer *pk, uint32_t msgid,
	    enum proto_method method, uint32_t nparams);
/* [2, name, [...]]: the caller then packs nparams values. */
void	proto_pack_note(msgpack_packer *pk, const char *name,
	    uint32_t nparams);
/* [1, msgid, nil, ...]: the caller then packs the result. */
void	proto_pack_result(msgpack_packer *pk, uint32_t msgid);
/*
 * Copies len bytes of in to out, each byte that is not part of a valid
 * UTF-8 sequence replaced by '?'; returns len.
 */
size_t	proto_utf8_clean(const char *in, size_t len, char *out);
/* [1, msgid, [code name, message], nil]; the message made valid UTF-8. */
void	proto_pack_error(msgpack_packer *pk, uint32_t msgid, int code,
	    const char *message);

/*
 * Reads the error of a response: 0 when it is nil, else the code, with
 * its message copied into message (cap bytes, NUL-terminated).  A
 * malformed error gives TB_EPROTO.
 */
int	proto_read_error(const msgpack_object *error, char *message,
	    size_t cap);

#endif
