/*
 * Every limit tcpbroker enforces, in one place.  docs/protocol.md lists
 * the wire limits and docs/security.md the broker's; keep them in step.
 */
#ifndef TB_LIMITS_H
#define TB_LIMITS_H

/*
 * Wire protocol version; bumped whenever the method or notification
 * tables change.
 */
#define PROTO_VERSION			5
/* Oldest version a broker still speaks: its clients never stream. */
#define PROTO_VERSION_MIN		1
/*
 * The first version that streams, the first with close notes, the
 * first whose send windows grow, and the first whose receive windows
 * grow.
 */
#define PROTO_VERSION_STREAM		2
#define PROTO_VERSION_CLOSE_NOTE	3
#define PROTO_VERSION_WINDOW		4
#define PROTO_VERSION_RECV_GROWTH	5

/* Largest data payload (msgpack bin) in one request or response: bytes. */
#define PROTO_DATA_MAX			65536
/* Largest encoded message, payload plus envelope: bytes. */
#define PROTO_MESSAGE_MAX		(PROTO_DATA_MAX + 1024)
/* Largest string argument (host, address, method, shutdown mode): bytes. */
#define PROTO_STRING_MAX		255
/* Most msgpack objects (all levels counted) in one message: objects. */
#define PROTO_OBJECTS_MAX		32
/* Deepest nesting of arrays and maps in one message: levels. */
#define PROTO_DEPTH_MAX			4
/* Memory one message's objects are decoded into, kept and reused: bytes. */
#define PROTO_DECODE_ZONE		2048
/* Longest error message in a response: bytes. */
#define PROTO_ERROR_MESSAGE_MAX		255
/* Longest line read_line or read_until may return, delimiter included. */
#define PROTO_LINE_MAX			65536
/* Longest host name: bytes (RFC 1035, without the trailing dot). */
#define PROTO_HOST_NAME_MAX		253
/* Longest "ip:port" text local_addr and peer_addr return: bytes. */
#define PROTO_ADDR_STRLEN		64

/*
 * Streaming (docs/protocol.md, "Streams").  Receive window a client may
 * grant one connection, the most data it has asked for and not yet
 * read: bytes.
 */
#define PROTO_RECV_WINDOW_MAX		(1024 * 1024)
/* Smallest receive window: a whole line or data payload must fit. */
#define PROTO_RECV_WINDOW_MIN		PROTO_LINE_MAX
/*
 * Largest receive window a client may grow one connection's to with
 * credit, from version 5: bytes.
 */
#define PROTO_RECV_WINDOW_GROWN_MAX	(4 * 1024 * 1024)
/*
 * Send window of one connection at its start: data a client may send
 * behind (as send notifications) before the broker acks it, and the
 * most the broker holds for the connection when the peer is slow: bytes.
 */
#define LIMIT_SEND_WINDOW		(128 * 1024)
/*
 * Largest send window of a connection (version 4: the broker doubles
 * it while the socket takes at once what the client sends): bytes.
 */
#define PROTO_SEND_WINDOW_MAX		(1024 * 1024)
/*
 * The most the broker adds to the send windows of one session's
 * connections together, beyond LIMIT_SEND_WINDOW each; given back as
 * connections close: bytes.
 */
#define LIMIT_SESSION_WINDOW_GROWTH	(4 * 1024 * 1024)
/*
 * The ack of a connection whose written bytes are all in the socket,
 * less than a quarter window, waits at most this for the connection's
 * next data to ride with (as TCP's delayed ACK): milliseconds.
 */
#define LIMIT_ACK_DELAY_MS		1
/*
 * Receive window the client library grants each connection at first,
 * its buffer per connection; the most it grows one connection's to
 * (doubling it when it gives credit back with nothing of the connection
 * left unread; from version 5); and what the windows of one session
 * grow by together, given back as connections close: bytes.
 */
#define CLIENT_RECV_WINDOW		(1024 * 1024)
#define CLIENT_RECV_WINDOW_MAX		(4 * 1024 * 1024)
#define CLIENT_RECV_GROWTH_MAX		(12 * 1024 * 1024)
/*
 * Bytes read that the client library gives back as credit at once; and,
 * before it waits for more, bytes read it gives back at least (less
 * stays owed: the broker's credit still holds what one read waits for,
 * PROTO_LINE_MAX at most): bytes.
 */
#define CLIENT_GRANT_BATCH		(CLIENT_RECV_WINDOW / 2)
#define CLIENT_GRANT_BEFORE_WAIT	(CLIENT_RECV_WINDOW / 4)
/*
 * Socket buffer the broker asks for on each session's socket, toward its
 * client (SO_SNDBUF; the kernel caps it at net.core.wmem_max and
 * doubles it for its bookkeeping): bytes.
 */
#define LIMIT_SESSION_SOCKET_BUFFER	(1024 * 1024)
/* Bytes the client library reads from its session per wake-up. */
#define CLIENT_READ_BUFFER		(256 * 1024)
/*
 * Longest the client library polls its session for a message before it
 * sleeps, when the broker busy-polls (hello's busy_poll_us, clamped to
 * this): microseconds.
 */
#define CLIENT_BUSY_POLL_US_MAX		1000
/*
 * Longest a wait that signals may interrupt sleeps before it looks for
 * one with signals held, and then sleeps letting them in: ms.  A signal
 * that comes between the library's look and its sleep is seen after
 * this at most; shorter waits cost no more system calls than others.
 */
#define CLIENT_INTERRUPT_LOOK_MS	10
/*
 * TLS in the client library (client-stub/tls.c).  Ciphertext waiting to
 * be decrypted counts against the connection's receive window (which
 * does not grow for TLS, but keeps what it had grown to, at most
 * CLIENT_RECV_WINDOW_MAX, when STARTTLS upgrades a connection), and
 * decrypting stops while the plaintext buffer, at most
 * CLIENT_RECV_WINDOW, has no room for one more record: a TLS connection
 * buffers at most its window and CLIENT_RECV_WINDOW, plus OpenSSL's own
 * record.
 * Plaintext one TLS record carries (RFC 8446), the most one write seals
 * into a record: bytes.
 */
#define CLIENT_TLS_RECORD_PLAIN		16384
/* Room kept for a record's header, padding and tag: bytes. */
#define CLIENT_TLS_RECORD_OVERHEAD	512
/* Records sealed and sent at once, from a buffer on the stack: bytes. */
#define CLIENT_TLS_SEALED_MAX		(CLIENT_TLS_RECORD_PLAIN + 1024)
/* Longest certificate chain a peer may send: bytes. */
#define CLIENT_TLS_CERT_LIST_MAX	(100 * 1024)
/* Longest ALPN protocol list, in its wire form (RFC 7301): bytes. */
#define CLIENT_TLS_ALPN_MAX		1024
/* Longest a handshake waits when the connection has no timeout: ms. */
#define CLIENT_TLS_HANDSHAKE_MS		30000
/* How often a thread waiting to write while another writes looks: ms. */
#define CLIENT_TLS_WRITER_POLL_MS	50
/* Largest envelope of a request without its data: bytes. */
#define CLIENT_REQUEST_HEAD		512
/* Responses up to this size are kept without allocating: bytes. */
#define CLIENT_RESPONSE_INLINE		512

/*
 * Sessions (client connections on the Unix socket) at once: sessions.
 * Lowered at start when the descriptor limit cannot hold it.
 */
#define LIMIT_SESSIONS			512
/* Sessions of one uid at once: sessions. */
#define LIMIT_SESSIONS_PER_UID		32
/* Session slots only a uid with no session open may take: sessions. */
#define LIMIT_SESSIONS_RESERVE		64
/*
 * The session source of `tcpbroker run` (docs/protocol.md, "The session
 * source"): sessions it handed out that have not yet said hello, over
 * the whole launch: sessions.  At the limit the broker reads no more
 * requests until one says hello or closes.
 */
#define LIMIT_SOURCE_PENDING		8
/* Longest answer on the session source, error name and message: bytes. */
#define PROTO_SOURCE_ANSWER_MAX		(PROTO_ERROR_MESSAGE_MAX + 32)
/* Longest the client library waits for the source's answer: ms. */
#define CLIENT_SOURCE_MS		10000
/* Time a new session has to call hello before it is closed: ms. */
#define LIMIT_HELLO_MS			3000
/*
 * Open TCP connections plus listeners, all sessions: handles.  Lowered
 * at start when the descriptor limit cannot hold it.
 */
#define LIMIT_HANDLES			32768
/* Open TCP connections plus listeners of one uid, all sessions: handles. */
#define LIMIT_HANDLES_PER_UID		4096
/* Descriptors the broker keeps for itself (log, resolver, reserve). */
#define LIMIT_FD_SPARE			64
/* uids the broker keeps accounts of (sessions, handles, log budget). */
#define LIMIT_UIDS			1024
/* Open TCP connections plus listeners of one session: handles. */
#define LIMIT_HANDLES_PER_SESSION	128
/* Calls of one session waiting for a response at once: calls. */
#define LIMIT_CALLS_PER_SESSION		64
/* Requests of one session handled per turn of the loop: requests. */
#define LIMIT_SESSION_BATCH		64
/*
 * Decision log lines of one uid per second, over all its sessions; the
 * rest are counted in one summary line per second.
 */
#define LIMIT_LOG_DECISIONS		100
/* Broker log lines about one uid's sessions per second; likewise. */
#define LIMIT_LOG_LINES			100
/* Responses queued to a slow session before its requests stop being read. */
#define LIMIT_SESSION_OUTPUT		(1024 * 1024)
/*
 * Output buffer a session holds from its start and never gives back,
 * so that when memory is short its notifications still fit and its
 * data still flows, as fast as the client reads: bytes.
 */
#define LIMIT_SESSION_OUTPUT_KEEP	8192
/* Received TCP data buffered in the broker for one session: bytes. */
#define LIMIT_SESSION_BUFFERED		(2 * 1024 * 1024)
/* Received TCP data buffered for one connection: bytes. */
#define LIMIT_CONN_BUFFER		PROTO_LINE_MAX
/* Name lookups waiting for the resolver, all sessions: lookups. */
#define LIMIT_RESOLVER_PENDING		128
/*
 * Name lookups of one uid queued or running, including those its
 * clients gave up on whose worker is still busy: lookups.
 */
#define LIMIT_LOOKUPS_PER_UID		32
/* Of LIMIT_RESOLVER_PENDING, those only a uid with none may take. */
#define LIMIT_RESOLVER_QUEUE_RESERVE	32
/* Resolver worker processes, so lookups run side by side: processes. */
#define LIMIT_RESOLVER_WORKERS		4
/* Workers one uid may keep busy at once: workers. */
#define LIMIT_RESOLVER_WORKERS_PER_UID	2
/* Workers kept for uids with no lookup running: workers. */
#define LIMIT_RESOLVER_RESERVE		1
/* Default longest wait for one lookup (--resolve-timeout): ms. */
#define LIMIT_RESOLVE_MS		5000
/* Largest --resolve-timeout: milliseconds. */
#define LIMIT_RESOLVE_MS_MAX		30000
/*
 * Longest --busy-poll: microseconds.  For that long after its last
 * event the loop polls instead of sleeping, so one core may stay busy
 * while traffic comes at least that often.
 */
#define LIMIT_BUSY_POLL_US_MAX		1000
/* Addresses kept from one name lookup: addresses. */
#define LIMIT_RESOLVE_ADDRS		16
/* Backlog passed to listen(2) for TCP listeners: connections. */
#define LIMIT_LISTEN_BACKLOG		128
/* Largest policy file: bytes. */
#define LIMIT_POLICY_FILE		(1024 * 1024)
/* Most rules in a policy file: rules. */
#define LIMIT_POLICY_RULES		4096
/* Most tenants in a policy file: tenants. */
#define LIMIT_POLICY_TENANTS		256
/* Longest tenant name: bytes. */
#define LIMIT_POLICY_NAME		63
/* Most uid or gid ranges one tenant matches: ranges. */
#define LIMIT_POLICY_IDS		64
/* Most port ranges in one rule's port list: ranges. */
#define LIMIT_POLICY_PORTS		64
/* Supplementary groups of a client that count for `match gid`: groups. */
#define LIMIT_PEER_GROUPS		64
/* Longest user or group name in a match line: bytes. */
#define LIMIT_POLICY_ID_NAME		32
/*
 * Longest a close (or the end of a session) waits for data written
 * behind when the connection has no timeout: milliseconds.  A peer that
 * never reads cannot hold a script's close or exit longer.
 */
#define LIMIT_CLOSE_LINGER_MS		10000
/* Errors one parse of a policy file reports before it stops: errors. */
#define LIMIT_POLICY_ERRORS		20
/* Longest single token in a policy file: bytes. */
#define LIMIT_POLICY_TOKEN		512
/*
 * Longest the broker waits for its reader to open the policy or the
 * log files again (reload, rotation): milliseconds.
 */
#define LIMIT_READER_MS			2000
/* Late answers of the reader dropped before a reload gives up: answers. */
#define LIMIT_READER_STALE		4
/* Most of /etc/passwd or /etc/group read for the names in a policy: bytes. */
#define LIMIT_ID_FILE			(4 * 1024 * 1024)

#endif
