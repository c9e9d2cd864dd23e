/*
 * The tcpbroker daemon's internal interfaces.  One file per concern:
 * main.c (set-up), loop.c (epoll and timers), session.c (Unix clients
 * and dispatch), connect.c (opening TCP connections), connection.c
 * (their streams and calls), listener.c (TCP listeners), resolver.c
 * (the DNS process), log.c.
 *
 * The data path is ours: a client holds only its Unix socket.  No TCP
 * descriptor is ever passed to a client; every byte crosses the broker.
 */
#ifndef TB_BROKER_H
#define TB_BROKER_H

#include <sys/queue.h>
#include <sys/types.h>

#include <fcntl.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "policy.h"
#include "proto.h"

/*
 * How --log and --decision-log are opened, at start and, by the reader,
 * again on SIGHUP and SIGUSR1: appending, created with LOG_FILE_MODE,
 * never through a symbolic link (the reader keeps root's uid: a link
 * put in the log directory must not hand the broker another file).  The
 * reader's filter allows an open with exactly these flags and mode
 * (sandbox.c).
 */
#define LOG_FILE_FLAGS	(O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW)
/* The same as the reader opens them: never waiting (a FIFO in place). */
#define READER_LOG_FLAGS	(LOG_FILE_FLAGS | O_NONBLOCK)
#define LOG_FILE_MODE	0640

/* log.c: one log for the daemon, on stderr. */
enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* Longest line of the broker's log: bytes. */
#define BROKER_LOG_LINE_MAX	1024

void	log_init(enum log_level level);
/* Makes path the log: it becomes stderr.  Fatal if it cannot. */
void	log_open(const char *path);
/*
 * Takes fd, the log's path opened again by the reader, as the log when
 * it is another file than the one open (rotated away): 1 when it did,
 * 0 when there was nothing to do (no --log, or the same file); fd is
 * consumed either way.  A file still in place is never replaced.
 */
int	log_reopen(int fd);
/* Whether fd is another file than the one open at old_fd. */
bool	log_file_moved(int old_fd, int fd);
int	log_level_parse(const char *name, enum log_level *level);
/* Whether a line of level would be written. */
bool	log_enabled(enum log_level level);
void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_warnx(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
/* Formats into buf, cutting what does not fit: messages are bounded. */
void	textf(char *buf, size_t cap, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* The one fatal path: logs (with errno's text for fatal) and exits 1. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * reader.c: the process that keeps the start-up privileges to open the
 * policy file (with /etc/passwd and /etc/group) and the log files again.
 * Request kinds:
 */
#define READER_POLICY	'p'
#define READER_LOGS	'l'
/* Forks the reader, before privileges are dropped.  Paths may be NULL. */
void	reader_start(const char *policy, const char *log,
	    const char *decisions);
/* The broker's end of the reader's socket, or -1 (for the filter). */
int	reader_socket(void);
/* Logs, once the event loop runs, when the reader is gone. */
void	reader_watch(void);
/* Reads and parses the policy again through the reader.  0 or -1. */
int	reader_policy(const char *path, struct policy **out,
	    struct policy_error *err);
/*
 * The log files opened again: descriptors or -1 each (failures are
 * logged).  -1 if the reader did not answer.
 */
int	reader_logs(int *log, int *decisions);

/* loop.c: one epoll loop, edge-triggered, with a timer heap. */
struct loop_io {
	int		 fd;
	bool		 dead;
	void		(*cb)(struct loop_io *io, uint32_t events);
	void		*owner;		/* freed once no event can name it */
	struct loop_io	*next_dead;
};

struct timer {
	uint64_t	 when;		/* loop_now() milliseconds */
	size_t		 slot;		/* heap index + 1; 0 when not armed */
	void		(*cb)(struct timer *timer);
};

void		loop_init(size_t max_timers);
/* Watches fd edge-triggered for events; returns 0 or -1 with errno. */
int		loop_add(struct loop_io *io, int fd, uint32_t events,
		    void (*cb)(struct loop_io *, uint32_t), void *owner);
/*
 * The events a stream socket (a TCP connection, a session) is watched
 * for, from <sys/epoll.h>.  An input event with none of
 * SOCKET_EVENTS_DRAIN lets its reader stop at a short read: the socket
 * is empty then.  Urgent data (EPOLLPRI) is not such an event, as TCP's
 * receive stops short at the urgent mark.
 */
#define SOCKET_EVENTS		(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)
#define SOCKET_EVENTS_DRAIN	(EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)
/*
 * Stops watching io, closes its descriptor, and frees io->owner once
 * the current batch of events can no longer name it.
 */
void		loop_release(struct loop_io *io);
/* Stops watching io and closes its descriptor; io stays usable. */
void		loop_remove(struct loop_io *io);
/* Milliseconds on the monotonic clock, read once per loop turn. */
uint64_t	loop_now(void);
void		timer_set(struct timer *timer, uint64_t when,
		    void (*cb)(struct timer *));
void		timer_cancel(struct timer *timer);
/*
 * Runs until loop_stop().  after_batch runs after every turn; when it
 * returns true, work is waiting and the next turn does not sleep.
 */
void		loop_run(bool (*after_batch)(void));
/*
 * Busy polling: for up to us microseconds after it handled its last
 * events (at most LIMIT_BUSY_POLL_US_MAX), loop_run polls instead of
 * sleeping, yielding the CPU before each poll.  0, the default, turns
 * it off.
 */
void		loop_busy_poll(uint32_t us);
/* What loop_busy_poll set: microseconds, 0 when off. */
uint32_t	loop_busy_poll_us(void);
/*
 * One turn of loop_run: waits up to timeout_ms (-1: for ever) for
 * events, handles them and the timers due, then after_batch.  Returns
 * what after_batch did and, in *nevents, how many events came.  For the
 * session fuzz target, which runs the loop without sleeping.
 */
bool		loop_turn(int timeout_ms, bool (*after_batch)(void),
		    int *nevents);
void		loop_stop(void);

/* Most addresses of the host's own interfaces kept: addresses. */
#define BROKER_OWN_ADDRS	64
/* A short reason a call failed, put into its error message; truncated. */
#define BROKER_WHY_MAX		200

/*
 * Limits that may be lowered at start, when the descriptor limit cannot
 * hold LIMIT_SESSIONS and LIMIT_HANDLES (main.c says which).
 */
struct broker_limits {
	unsigned	sessions;
	unsigned	sessions_per_uid;
	unsigned	sessions_reserve;
	unsigned	handles;
	unsigned	handles_per_uid;
};

/* The whole daemon's state that outlives a session. */
struct broker {
	struct host_addr	 own[BROKER_OWN_ADDRS];
	struct policy_context	 ctx;		/* own addresses, for policy */
	struct policy	*policy;
	const char	*policy_path;
	uint64_t	 next_session_id;
	struct broker_limits	 limits;
	uint32_t	 resolve_ms;	/* longest wait for one lookup */
	uid_t		 uid;		/* its own, after the switch */
	bool		 sandboxed;	/* the filter is installed */
	bool		 may_listen;	/* the filter allows listening */
	bool		 private;	/* one command's, from the launcher's source */
	bool		 revoke;	/* a reload closes what it denies */
	/* A launched session's tenant by name (--tenant), or NULL. */
	const char	*tenant;
	/* A launched session's supplementary groups: the launcher's. */
	uint32_t	 launched_groups[LIMIT_PEER_GROUPS];
	unsigned	 launched_ngroups;
};
extern struct broker broker;

/* How to run a broker: from the command line, or from the launcher. */
struct broker_options {
	const char	*policy_path;
	const char	*socket_path;
	const char	*socket_owner;	/* "user[:group]", or NULL */
	mode_t		 socket_mode;
	const char	*user;		/* run as, when started as root */
	const char	*log_file;	/* instead of stderr, or NULL */
	const char	*decision_log;	/* instead of the log, or NULL */
	bool		 socket_passed;	/* by systemd, at LISTEN_FD */
	const char	*control_path;	/* --control, or NULL */
	bool		 revoke;	/* --revoke-on-reload */
	const char	*control_group;	/* --control-group, or NULL */
	enum log_level	 log_level;
	uint32_t	 resolve_ms;	/* --resolve-timeout */
	uint32_t	 busy_poll_us;	/* --busy-poll, or 0 */
	bool		 sandbox;
	bool		 sandbox_debug;
	/* From the launcher: who the one session's peer is. */
	bool		 launched;
	uid_t		 peer_uid;
	gid_t		 peer_gid;
	pid_t		 peer_pid;
	const char	*tenant;	/* --tenant, or NULL */
	uint32_t	 peer_groups[LIMIT_PEER_GROUPS];
	unsigned	 peer_ngroups;
	uid_t		 run_uid;	/* launched: the broker's own uid */
	gid_t		 run_gid;
};

/*
 * main.c: sets up and runs a broker until it is told to stop.  With
 * source_fd -1 it serves a Unix socket; else the session source of a
 * launched command (source.c), and it stops when the source and every
 * session from it have ended.
 */
void	broker_serve(const struct broker_options *o, int source_fd);
/* The descriptor of a launcher's broker's session source. */
#define BROKER_SOURCE_FD	3

/*
 * An option's value: a decimal number from min to max, digits only.
 * Dies with "option: expected min to max unit" when text is not that.
 */
uint32_t broker_option_uint(const char *option, const char *text,
	    uint32_t min, uint32_t max, const char *unit);

/* Opens /dev/null on whichever of descriptors 0 to 2 is closed. */
void	broker_stdio(void);

/* Reads the host's own addresses into broker.ctx (they are internal). */
void	broker_read_own_addresses(void);

/*
 * source.c: the session source of `tcpbroker run`.  Serves requests on
 * fd (the broker's end of the command's SOCK_SEQPACKET pair) with new
 * sessions of cred.
 */
struct ucred;
void	source_serve(int fd, const struct ucred *cred);
/* Whether some process of the command may still ask. */
bool	source_alive(void);
/* A session the source handed out said hello, or closed before it. */
void	source_settled(void);

/* launcher.c: tcpbroker run [options] -- command [args] */
int	launcher_main(int argc, char *argv[]);

/* status.c: tcpbroker status|metrics [--control PATH] ... */
int	status_main(int argc, char *argv[]);
/* The control socket tcpbroker status asks unless --control says. */
#define BROKER_CONTROL_SOCKET	"/run/tcpbroker/control.sock"
/* The last line of the metrics: an answer without it was cut short. */
#define METRICS_END		"# end of tcpbroker metrics\n"

/* explain.c: tcpbroker --explain FILE [--uid N] [--gid N] ACTION TARGET */
int	explain_main(int argc, char *argv[]);

struct session;
struct conn;
struct listener;

/* A request, checked against the method table, on its way to a handler. */
struct request {
	struct session		*session;
	uint32_t		 msgid;
	enum proto_method	 method;
	const struct proto_arg	*args;
};

/* A call waiting for the network, on a queue of its connection or listener. */
struct call {
	TAILQ_ENTRY(call)	 entry;
	struct session		*session;
	void			*owner;		/* its conn or listener */
	uint32_t		 msgid;
	enum proto_method	 method;
	struct timer		 timer;
	void			(*expire)(struct call *call);
	size_t			 count;		/* read max, exact n, line max */
	size_t			 scanned;	/* bytes searched for delim */
	uint8_t			 delim;
	uint8_t			*data;		/* unsent write data, owned */
	size_t			 charged;	/* bytes of data charged */
	size_t			 base;		/* offset of data[0] in the write */
	size_t			 len;
	size_t			 done;		/* bytes written so far */
};
TAILQ_HEAD(call_queue, call);

/*
 * systemd.c: the service manager's protocols, by hand.  A socket passed
 * at fd (LISTEN_PID is ours and LISTEN_FDS is 1): its path for the log,
 * or NULL when none was passed; fatal when what was passed is not one
 * listening Unix stream socket.
 */
const char	*systemd_listen_fd(int fd);
/* Connects to NOTIFY_SOCKET, if set; before confinement. */
void		 systemd_notify_open(void);
/* Sends a state ("READY=1") when NOTIFY_SOCKET was set. */
void		 systemd_notify(const char *state);
/* Creates the socket's directory when it is missing, mode 0755. */
void		 systemd_runtime_dir(const char *socket_path);

/*
 * What the control socket reports (control.c).  Each module fills the
 * part it owns; nothing here is read by the data path.
 */
struct report_tenant {
	const char	*name;
	uint32_t	 held[3];		/* connections, listeners, lookups */
	uint64_t	 bytes[2];		/* QUOTA_IN, QUOTA_OUT */
	uint64_t	 allowed, denied;	/* decisions */
	uint64_t	 quota_hits;
};
struct report_session {
	uint64_t	 id;
	uid_t		 uid;
	pid_t		 pid;
	uint64_t	 age_ms;
	const char	*tenant;		/* NULL: none */
	unsigned	 handles;
};
struct report_handle {
	uint64_t	 session;
	uint32_t	 handle;
	bool		 listener;
	const char	*state;			/* "open", "connecting", ... */
	char		 local[PROTO_ADDR_STRLEN];
	char		 peer[PROTO_ADDR_STRLEN];	/* "" for a listener */
	uint64_t	 bytes_in, bytes_out;
	uint64_t	 age_ms;
};
/* Most recent denials the control socket shows: denials. */
#define REPORT_DENIALS		16
struct report_denial {
	char		 time[32];
	uid_t		 uid;
	char		 tenant[LIMIT_POLICY_NAME + 1];
	const char	*action;
	char		 host[PROTO_STRING_MAX + 1];
	uint16_t	 port;
	const char	*reason;
};
/* Counters of the whole broker, for metrics. */
struct broker_counters {
	uint64_t	 sessions_opened;
	uint64_t	 sessions_refused;
	uint64_t	 errors[TB__ERRNO_COUNT];	/* replies, by code */
	uint64_t	 no_tenant;			/* hellos refused */
	uint64_t	 lookups;			/* answered */
	uint64_t	 lookup_ms;			/* their time, summed */
	uint64_t	 lookup_le[8];			/* <= bucket (ms) */
};
extern struct broker_counters counters;
/* The upper bounds of the lookup time buckets: milliseconds. */
#define REPORT_LOOKUP_BUCKETS	{ 1, 5, 10, 50, 100, 500, 1000, 5000 }

void	quota_report(void (*fn)(void *, const struct report_tenant *),
	    void *arg);
/* Counts a decision for the tenant called name (none: NULL). */
void	quota_count_decision(const char *name, bool allowed);
void	session_report(void (*fn)(void *, const struct report_session *),
	    void (*handle)(void *, const struct report_handle *), void *arg);
void	conn_report(struct conn *conn, struct report_handle *r);
/*
 * After a reload with --revoke-on-reload: decides the open connection
 * or listener again and, when the new policy denies it, logs that and
 * closes it.  True when it was closed.
 */
bool	conn_revoke(struct conn *conn);
bool	listener_revoke(struct listener *l);
/* The same for every handle of every session; how many were closed. */
unsigned session_revoke(void);
void	audit_revoke(struct session *s, const struct policy_tenant *tn,
	    enum policy_action action, const char *name,
	    const struct host_addr *addr, uint16_t port, uint32_t handle,
	    const struct policy_decision *d);
void	listener_report(struct listener *l, struct report_handle *r);
/* The recent denials, oldest first; returns how many. */
unsigned audit_recent(struct report_denial *out, unsigned max);
/* Counts a lookup's time for the metrics. */
void	resolver_count(uint64_t ms);

/* control.c */
/* Serves the control socket at fd: root and members of group only. */
void	control_listen(int fd, gid_t group);

/* audit.c: the decision log, JSON lines. */
struct audit {
	const char			*tenant;
	bool				 hello;
	enum policy_action		 action;
	const char			*host;
	uint16_t			 port;
	const struct host_addr		*addrs;	/* a name's addresses */
	unsigned			 naddrs;
	const struct host_addr		*chosen;
	const struct policy_decision	*decision;
	/*
	 * Allowed by the policy but refused all the same, and why: "quota",
	 * "limit", "dns", "unspecified".  Logged as a denial.
	 */
	const char			*failed;
};
void		 audit_open(const char *path);
/* The same as log_reopen, for --decision-log. */
int		 audit_reopen(int fd);
void		 audit_decision(struct session *s, const struct audit *a);
void		 audit_close(struct session *s, const char *tenant,
		    uint32_t handle, const char *peer, uint64_t bytes_in,
		    uint64_t bytes_out, uint64_t duration_ms);
void		 audit_suppressed(uid_t uid, unsigned count);

/* account.c: what each uid holds, over all its sessions. */
enum account_log {
	ACCOUNT_LOG_DECISION,	/* the decision log */
	ACCOUNT_LOG_LINE,	/* the broker's log */
	ACCOUNT_LOGS
};
struct account;
/* The account of uid; NULL when LIMIT_UIDS accounts are in use. */
struct account	*account_get(uid_t uid);
uid_t		 account_uid(const struct account *a);
unsigned	 account_sessions(const struct account *a);
unsigned	 account_handles(const struct account *a);
/* Adds (or, negative, takes away) sessions and handles held. */
void		 account_add(struct account *a, int sessions, int handles);
/*
 * Whether one more line of the uid may be written this second: at most
 * LIMIT_LOG_DECISIONS or LIMIT_LOG_LINES; the rest are counted and
 * summarised once a second.  A NULL account may not log.
 */
bool		 account_may_log(struct account *a, enum account_log which);
/* A broker log line about a uid's session, within its budget. */
void		 account_log(struct account *a, enum log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes the summaries still due; at shutdown. */
void		 account_flush(void);

/* quota.c: tenant quotas, kept by tenant name across reloads. */
enum quota_kind {
	QUOTA_CONNECTION,
	QUOTA_LISTENER,
	QUOTA_LOOKUP,
	QUOTA_KINDS
};
#define QUOTA_IN	0
#define QUOTA_OUT	1
struct quota;
/* The quota of a tenant (NULL for none), with the current limits. */
struct quota	*quota_of(const struct policy_tenant *tn);
/* The name of the tenant whose quota q is; "-" for none. */
const char	*quota_name(const struct quota *q);
/* Takes one of kind; TB_EQUOTA with why filled when over the limit. */
int		 quota_acquire(struct quota *q, enum quota_kind kind, char *why,
		    size_t len);
void		 quota_release(struct quota *q, enum quota_kind kind);
/* Takes one new connection of the rate; TB_EQUOTA when too fast. */
int		 quota_rate(struct quota *q, char *why, size_t len);
/*
 * How many of want bytes may move now in direction dir; 0 with *retry
 * set to when to try again.
 */
size_t		 quota_bytes(struct quota *q, int dir, size_t want,
		    uint64_t *retry);
void		 quota_spend(struct quota *q, int dir, size_t n);
/*
 * After a reload: takes the new limits, and forgets tenants that are
 * gone from the policy and hold nothing.
 */
void		 quota_reload(const struct policy *policy);
void		 quota_free_all(void);

/* Waits for room in a session's output to push notifications. */
struct push_waiter {
	TAILQ_ENTRY(push_waiter)	 entry;
	bool				 queued;
	void				(*resume)(struct push_waiter *w);
};
TAILQ_HEAD(push_waiters, push_waiter);

/* Largest notification but data (an error with its message): bytes. */
#define NOTE_SMALL_MAX		(PROTO_ERROR_MESSAGE_MAX + 64)

/* session.c */
void		 session_listen_socket(int fd);
/*
 * Serves an already connected socket as a session of the launch (cred);
 * -1 with fd closed and *why set if it cannot.
 */
int		 session_open(int fd, const struct ucred *cred,
		    const char **why);
/* Sessions open now. */
unsigned	 session_count(void);
bool		 session_reap(void);
void		 session_close_all(void);
struct conn	*session_conn(struct request *req, uint32_t handle);
struct listener	*session_listener(struct request *req, uint32_t handle);
/*
 * Reserves a handle for a conn or listener; 0 when the session, its uid
 * or the broker holds as many as it may (session_handle_full says
 * which).  The client can use it only once it is published.
 */
uint32_t	 session_handle_new(struct session *s, struct conn *conn,
		    struct listener *listener);
/*
 * Counts a descriptor that is no handle yet (a connection a listener
 * accepted ahead) as one of the uid's and the broker's handles (+1), or
 * stops counting it (-1); false when there is no room for it.
 */
bool		 session_handle_extra(struct session *s, int delta);
/* Why session_handle_new() would fail now, for an error message. */
const char	*session_handle_full(struct session *s, char *buf, size_t cap);
void		 session_handle_publish(struct session *s, uint32_t handle);
void		 session_handle_free(struct session *s, uint32_t handle);
uint64_t	 session_id(const struct session *s);
uid_t		 session_uid(const struct session *s);
pid_t		 session_pid(const struct session *s);
/* The session's tenant in the current policy, or NULL. */
const struct policy_tenant *session_tenant(struct session *s);
/*
 * Streaming.  The receive window the client granted each connection,
 * or 0 when it does not stream.  Notifications are pushed only within
 * LIMIT_SESSION_OUTPUT: push_room says how many bytes fit now; when too
 * few do, push_wait has w resumed once the client has read.
 */
uint32_t	 session_recv_window(const struct session *s);
/* The protocol version the session said hello with. */
unsigned	 session_version(const struct session *s);
/*
 * Send windows beyond LIMIT_SEND_WINDOW come from the session's
 * LIMIT_SESSION_WINDOW_GROWTH: take returns up to want bytes of it
 * (0 when it is spent), give returns them.
 */
size_t		 session_window_take(struct session *s, size_t want);
void		 session_window_give(struct session *s, size_t n);
size_t		 session_push_room(const struct session *s);
/*
 * Room for *len bytes of output (within push_room).  When memory is
 * short, less: what the buffer has spare, keeping NOTE_SMALL_MAX for
 * notifications, and *len says how much; NULL when that is below min.
 */
uint8_t		*session_push_reserve(struct session *s, size_t min,
		    size_t *len);
/* Adds len filled bytes; they are sent after the batch of events. */
void		 session_push_commit(struct session *s, size_t len);
void		 session_push_wait(struct session *s, struct push_waiter *w);
void		 session_push_cancel(struct session *s, struct push_waiter *w);
/* A notification of at most NOTE_SMALL_MAX bytes, within push_room. */
msgpack_packer	*note_begin(struct session *s, enum proto_broker_note note,
		    uint32_t nparams);
void		 note_end(struct session *s);
/* The connection a notification names, or NULL (it may have closed). */
struct conn	*session_note_conn(struct session *s, uint32_t handle);
/* Logs why and ends the session. */
void		 session_protocol_error(struct session *s, const char *why);
/* Accounts n more (or, negative, fewer) buffered bytes; -1 if over. */
int		 session_charge(struct session *s, ssize_t n);
/* The account of the session's uid (NULL when the table was full). */
struct account	*session_account(const struct session *s);

void		 reply_error(struct session *s, uint32_t msgid, int code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
msgpack_packer	*reply_begin(struct session *s, uint32_t msgid);
void		 reply_end(struct session *s);
bool		 reply_data_end(struct session *s);
void		 reply_nil(struct session *s, uint32_t msgid);
void		 reply_uint(struct session *s, uint32_t msgid, uint64_t value);
void		 reply_str(struct session *s, uint32_t msgid, const char *str);

struct call	*call_new(struct request *req, void *owner, uint32_t timeout_ms,
		    void (*expire)(struct call *));
void		 call_free(struct call *call);
/* Replies with an error and frees the call (already off its queue). */
void		 call_fail(struct call *call, int code, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/* Frees every call on q without replying: the session is gone. */
void		 call_queue_drop(struct call_queue *q);
/* Fails every call on q with code. */
void		 call_queue_fail(struct call_queue *q, int code,
		    const char *msg);

/* Every method has a handler named method_<name>. */
#define BROKER__METHOD_PROTO(id, name, params)				\
	void method_##name(struct request *req);
PROTO_METHODS(BROKER__METHOD_PROTO)
#undef BROKER__METHOD_PROTO
/* Every client notification has a handler named note_<name>. */
#define BROKER__NOTE_PROTO(id, name, params)				\
	void note_##name(struct session *s, const struct proto_arg *args);
PROTO_CLIENT_NOTES(BROKER__NOTE_PROTO)
#undef BROKER__NOTE_PROTO

/* connection.c */
/*
 * Adopts an accepted socket that the caller counted as a connection in
 * q, its tenant's quota; on failure it closes the socket and returns
 * NULL, and the count is the caller's to release.
 */
struct conn	*conn_accepted(struct session *s, int fd, struct quota *q);
void		 conn_destroy(struct conn *conn, bool reply);
/*
 * Starts pushing a streaming session's connection, once it is known;
 * readable unless its last event said there was nothing to read (its
 * next input is an event of its own).
 */
void		 conn_stream_start(struct conn *conn, bool readable);
/* Acks the bytes of conn's write-behind the socket took, if any. */
void		 conn_ack(struct conn *conn);
/* Acks every connection of s that waits for one, LIMIT_ACK_DELAY_MS on. */
void		 session_ack_later(struct session *s);
uint32_t	 conn_handle(const struct conn *conn);
void		 conn_set_timeout(struct conn *conn, uint32_t ms);
int		 conn_local_addr(struct conn *conn, char *buf, size_t cap);
/* Maps an errno value to a TB_E* code. */
int		 errno_code(int error);

/* listener.c */
void		 listener_destroy(struct listener *l, bool reply);
void		 listener_set_timeout(struct listener *l, uint32_t ms);
int		 listener_local_addr(struct listener *l, char *buf, size_t cap);

/* Formats a socket's own or peer address as "ip:port". */
int		 sockaddr_text(int fd, bool peer, char *buf, size_t cap);

/* resolver.c: names are resolved in processes of their own. */
typedef void	(*resolver_done)(void *arg, int code,
		    const struct host_addr *addrs, unsigned naddrs);
/* Starts the resolver processes, confined unless sandbox is false. */
void		 resolver_start(bool sandbox);
/*
 * Starts a lookup for uid; done is called with its answer, unless it
 * is cancelled first.  Returns 0 with *id set, or a TB_E* code with
 * *why set.
 */
int		 resolver_lookup(const char *name, uid_t uid, resolver_done done,
		    void *arg, uint32_t *id, const char **why);
void		 resolver_cancel(uint32_t id);
/* How names are looked up: the same in the workers and in --explain. */
void		 resolver_configure(uint32_t resolve_ms);
/*
 * Looks a name up here and now, as a worker would (after
 * resolver_configure): 0, TB_ENOTFOUND or TB_ERESOLVE, with at most
 * LIMIT_RESOLVE_ADDRS addresses.
 */
int		 resolver_resolve(const char *name, struct host_addr *addrs,
		    unsigned *naddrs);

#endif
