/*
 * The benchmark: tcpbroker against the ways a script reaches TCP
 * without it (plain sockets, SOCKS5 proxies, LuaSocket), all on
 * loopback, in one interleaved run.
 */
#ifndef TB_BENCH_H
#define TB_BENCH_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpbroker.h"

/* Payload of one echo round trip: bytes. */
#define BENCH_ECHO_SIZE		64
/* One bulk write or read: bytes. */
#define BENCH_CHUNK		65536
/* One line of the line source, newline included: bytes. */
#define BENCH_LINE_SIZE		100
/* Handles one idle session opens, below LIMIT_HANDLES_PER_SESSION. */
#define BENCH_IDLE_PER_SESSION	125
/* Longest any helper process may take to get ready: milliseconds. */
#define BENCH_READY_MS		10000
/* Longest a measurement process may run: milliseconds. */
#define BENCH_CHILD_MS		120000
/* Longest the servers live, should the benchmark die: seconds. */
#define BENCH_SERVER_LIFE_S	3600
/* Descriptors beyond the idle connections the servers may hold. */
#define BENCH_NOFILE_SPARE	1024
/*
 * Closed connections the benchmark's network namespace keeps in
 * TIME_WAIT (net.ipv4.tcp_max_tw_buckets there); later ones close at
 * once.  Tens of thousands of connects a round to the same server
 * otherwise leave the ports a proxy binds before it connects all taken.
 */
#define BENCH_TIME_WAIT_MAX	4096

/* Monotonic clock. */
uint64_t	now_ns(void);
uint64_t	now_ms(void);
void		sleep_ms(unsigned ms);
void		die(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
void		warnx_(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));

/* The loopback servers, one process with a listener per kind. */
enum server_kind {
	SERVER_ECHO,	/* echoes what it reads */
	SERVER_SINK,	/* reads and drops */
	SERVER_SOURCE,	/* writes without end */
	SERVER_LINES,	/* writes 100-byte lines without end */
	SERVER_IDLE,	/* accepts and holds */
	SERVER_KINDS
};
struct servers {
	pid_t		pid;
	uint16_t	port[SERVER_KINDS];
};
void	servers_start(struct servers *s);

/* Helper processes, started and stopped by PID. */
struct proc {
	pid_t	pid;
	char	name[32];
};
/* Forks and execs argv with stdout and stderr to log; dies on failure. */
void	proc_spawn(struct proc *p, const char *name, char *const argv[],
	    const char *log);
/* Waits until 127.0.0.1:port or the Unix socket path accepts. */
void	proc_wait_tcp(struct proc *p, uint16_t port);
void	proc_wait_unix(struct proc *p, const char *path);
/* SIGTERM, then SIGKILL after a grace period; reaps it.  Idempotent. */
void	proc_stop(struct proc *p);
/* Stops every process proc_spawn or servers_start started. */
void	proc_stop_all(void);
void	proc_track(pid_t pid, const char *name);
void	proc_untrack(pid_t pid);
/* A free port on 127.0.0.1, for a program that binds it itself. */
uint16_t free_port(void);
/* A non-blocking listener on 127.0.0.1 and a free port; dies on failure. */
int	loopback_listen(uint16_t *port);
/* A blocking connection to 127.0.0.1:port, or -1. */
int	loopback_dial(uint16_t port);
/*
 * Moves this process into a network namespace of its own with only
 * loopback up; dies on failure.
 */
void	net_isolate(void);
/* Resident memory of pid: bytes; 0 if unknown. */
uint64_t proc_rss(pid_t pid);

struct broker {
	struct proc	proc;
	char		dir[64];
	char		socket[108];
	char		log[128];
};
/* busy_poll: the broker's --busy-poll, or NULL for none. */
void	broker_start(struct broker *b, const char *policy,
	    const char *busy_poll);
void	broker_stop(struct broker *b);

/*
 * A way to reach a TCP server: every measurement takes one, so that a
 * new kind of client, or a new call such as select, is one function.
 */
struct conn {
	int		 fd;		/* plain and SOCKS paths */
	tb_handle	 h;		/* tcpbroker path */
	uint8_t		*rbuf;		/* buffered line reader */
	size_t		 rstart, rend;
};
struct path;
struct path_ops {
	int	(*open)(struct path *, uint16_t port, struct conn *);
	void	(*close)(struct path *, struct conn *);
	int	(*write_all)(struct path *, struct conn *, const void *,
		    size_t);
	/* >0 bytes, 0 at end of stream, -1 on error. */
	ssize_t	(*read)(struct path *, struct conn *, void *, size_t);
	/* 0 and the line's length without its newline, or -1. */
	int	(*read_line)(struct path *, struct conn *, char *, size_t,
		    size_t *);
	/*
	 * Waits until one of n connections is readable; its index, or -1.
	 * NULL where the path has no such call: the figure is n/a.
	 */
	int	(*select)(struct path *, struct conn *, int n, int timeout_ms);
};
struct path {
	const char		*name;	/* column of the table */
	const struct path_ops	*ops;
	uint16_t		 proxy_port;	/* SOCKS paths */
	tb_client		*client;	/* tcpbroker path */
};
extern const struct path_ops path_direct_ops, path_socks_ops,
	    path_tcpbroker_ops;
void	conn_init(struct conn *);

/* How long and how many times each measurement runs. */
struct budget {
	unsigned	ms;		/* time per measurement */
	unsigned	count;		/* most operations per measurement */
};
/* Each returns a figure, or NAN when it cannot be measured. */
double	measure_connect_close(struct path *, const struct servers *,
	    const struct budget *);
/* Echo round trips: p50 and p99 in microseconds. */
int	measure_echo(struct path *, uint16_t port, const struct budget *,
	    double *p50, double *p99);
double	measure_bulk_write(struct path *, const struct servers *,
	    const struct budget *);
double	measure_bulk_read(struct path *, const struct servers *,
	    const struct budget *);
double	measure_read_line(struct path *, const struct servers *,
	    const struct budget *);
double	measure_select_ratio(struct path *, const struct servers *,
	    const struct budget *);

/*
 * Idle connections through the broker, opened by child processes that
 * each switch to one of uids, so that no uid meets a per-uid limit.
 */
#define IDLE_UIDS_MAX	8
struct idle_group {
	pid_t	 pid[IDLE_UIDS_MAX];
	int	 ctl[IDLE_UIDS_MAX];	/* closing it tells the child to exit */
	int	 n;
};
/* Opens count idle connections spread over nuids uids; 0 or -1. */
int	idle_open(struct idle_group *g, const char *socket, uint16_t port,
	    const uid_t *uids, int nuids, int count);
void	idle_close(struct idle_group *g);
/* Picks n uids with no passwd entry; 0 or -1. */
int	idle_pick_uids(uid_t *uids, int n);

#endif
