/*
 * Test support: a real tcpbroker process per test group, and real TCP
 * servers on loopback in threads of the test process.
 */
#ifndef TB_HARNESS_H
#define TB_HARNESS_H

#include <sys/types.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tcpbroker.h"

/*
 * A policy of one tenant for every uid that opens loopback ports 1024
 * and up, and listening on port 0; rules in extra come after these, so
 * the first of them is on line 8.
 */
#define HARNESS_POLICY_WITH(extra)					\
	"tenant everyone {\n"						\
	"    match uid *\n"						\
	"    connect allow 127.0.0.1:1024-65535\n"			\
	"    connect allow [::1]:1024-65535\n"				\
	"    connect allow localhost:1024-65535\n"			\
	"    listen allow 127.0.0.1:0\n"				\
	"    listen allow [::1]:0\n"					\
	extra								\
	"}\n"
#define HARNESS_POLICY	HARNESS_POLICY_WITH("")

struct broker_proc {
	pid_t	pid;
	char	dir[64];
	char	socket[100];	/* fits sun_path */
	char	policy[128];
	char	log[128];
};

/* Starts a broker with the policy text; fails the test if it cannot. */
void	harness_broker_start(struct broker_proc *b, const char *policy);
/*
 * The same, with hosts as the broker's /etc/hosts: it runs in a mount
 * namespace of its own where a file of the test is bound over it.
 */
void	harness_broker_start_hosts(struct broker_proc *b, const char *policy,
	    const char *hosts);

struct harness_options {
	const char	*hosts;		/* the broker's /etc/hosts, or NULL */
	const char	*args[8];	/* more arguments, NULL-terminated */
	const char	*user;		/* start it as this user, not root */
	unsigned	 nofile;	/* its descriptor limit, or 0 */
	size_t		 address_space;	/* its RLIMIT_AS: bytes, or 0 */
};
void	harness_broker_start_opts(struct broker_proc *b, const char *policy,
	    const struct harness_options *opts);
/*
 * Writes a new policy and sends SIGHUP; true when the broker took it,
 * false when it refused it (the log says why).
 */
bool	harness_broker_reload(struct broker_proc *b, const char *policy);
/* The same, with the policy file's mode (0600: root alone reads it). */
bool	harness_broker_reload_mode(struct broker_proc *b, const char *policy,
	    mode_t mode);
/*
 * Stops it by PID with SIGTERM and returns its wait status.  A broker a
 * failed test left running is killed by PID when the test program
 * exits.
 */
int	harness_broker_stop(struct broker_proc *b);
/* Kills it by PID with SIGKILL at once; returns its wait status. */
int	harness_broker_kill(struct broker_proc *b);
/* Whether the broker's log holds needle. */
bool	harness_log_contains(struct broker_proc *b, const char *needle);
/* Fills pids with the children of pid (at most max); returns how many. */
int	harness_children(pid_t pid, pid_t *pids, int max);
/*
 * The number after field (e.g. "VmRSS:", "Uid:") in /proc/PID/status,
 * or -1 when the process or the field is not there.
 */
long	harness_status_field(pid_t pid, const char *field);
/* The same, once pid has want children (within 5 s, or the test fails). */
int	harness_wait_children(pid_t pid, pid_t *pids, int max, int want);
/*
 * The child of pid whose name (comm) is name, once there is one (within
 * 5 s, or the test fails): "tcpbroker-dns" is the resolver's keeper,
 * "tcpbroker-read" the broker's reader.
 */
pid_t	harness_wait_child(pid_t pid, const char *name);
/* Copies an executable to to, mode 0755 (for other users to run). */
void	harness_copy(const char *from, const char *to);
/* Opens a session, failing the test if it cannot. */
tb_client *harness_client(struct broker_proc *b);
/*
 * A socket connected to the broker by a process of uid (gid the same),
 * so that the broker sees that uid; the broker's socket must let others
 * in (--socket-mode 0666).  Returns the descriptor, or -1 when the
 * connect failed.
 */
int	harness_connect_as(struct broker_proc *b, uid_t uid);
/* A session of uid through the client library, or NULL with *err. */
tb_client *harness_client_as(struct broker_proc *b, uid_t uid,
	    struct tb_error *err);
/* Milliseconds on the monotonic clock. */
uint64_t harness_now_ms(void);
void	harness_sleep_ms(unsigned ms);
/* The calling thread's id, for harness_wait_blocked(). */
pid_t	harness_gettid(void);
/*
 * Waits until thread tid of process pid sleeps in a system call that
 * waits for something (futex, poll, recvfrom, accept, ...), which a
 * thread blocked in a tb_* call does once its request, if it has one,
 * is out: the state a test of "close under a blocked call" needs, where
 * a fixed sleep would only guess it.  A futex may be any lock, so the
 * caller must hold none the thread could want.  False after timeout_ms,
 * or at once, with a message, when /proc cannot tell.
 */
bool	harness_wait_blocked(pid_t pid, pid_t tid, unsigned timeout_ms);
/*
 * The same for a thread of this process that stores its id in *tid
 * (harness_gettid()) before the call that blocks: waits for the id,
 * then for the thread to block.
 */
bool	harness_wait_thread_blocked(atomic_int *tid, unsigned timeout_ms);

/* Asserts a call's result code, printing the message when it differs. */
#define assert_rc(expr, want, err) do {					\
	int rc__ = (expr);						\
	if (rc__ != (want))						\
		print_error("%s -> %s (%s), want %s\n", #expr,		\
		    tb_err_name(rc__), (err)->message, tb_err_name(want)); \
	assert_int_equal(rc__, (want));					\
} while (0)
#define assert_ok(expr, err) assert_rc(expr, 0, err)

/* Servers. */
#define SERVER_CONNS_MAX	256
#define SERVER_RX_MAX		(4 * 1024 * 1024)

struct test_server;
typedef void (*server_handler)(struct test_server *srv, int fd);

struct test_server {
	int		 fd;
	int		 family;
	uint16_t	 port;
	server_handler	 handler;
	const void	*arg;		/* for the handler */
	size_t		 arglen;
	pthread_t	 acceptor;
	pthread_t	 threads[SERVER_CONNS_MAX];
	atomic_int	 nthreads;
	atomic_bool	 stopping;
	atomic_bool	 release;	/* handlers that hold may finish */
	atomic_int	 accepted;
	atomic_int	 eofs;		/* connections that saw end of stream */
	pthread_mutex_t	 lock;
	uint8_t		*rx;		/* bytes received, all connections */
	size_t		 rxlen;
};

/* Listens on 127.0.0.1 (or ::1) port 0 and serves each connection. */
void	server_start(struct test_server *srv, int family,
	    server_handler handler, const void *arg, size_t arglen);
void	server_stop(struct test_server *srv);
/* Waits until counter reaches want, for at most ms; true if it did. */
bool	server_wait(atomic_int *counter, int want, unsigned ms);

/* Handlers. */
void	serve_echo(struct test_server *srv, int fd);	/* echoes until EOF */
void	serve_send(struct test_server *srv, int fd);	/* sends arg, closes */
void	serve_send_hold(struct test_server *srv, int fd); /* sends arg, waits */
void	serve_sink(struct test_server *srv, int fd);	/* keeps what comes */
/* Never reads nor writes, until the server stops. */
void	serve_silent(struct test_server *srv, int fd);
/* Holds the connection silent until release, then sends arg and closes. */
void	serve_hold(struct test_server *srv, int fd);

/* Copies the bytes a server received so far into buf. */
size_t	server_received(struct test_server *srv, void *buf, size_t cap);

#endif
