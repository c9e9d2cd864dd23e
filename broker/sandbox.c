/*
 * Confinement.  The broker parses untrusted bytes; if a bug in it is
 * ever exploited, the attacker must find nothing to use.  After set-up
 * the broker allows itself only the system calls in broker_rules below;
 * anything else kills the whole process.  The resolver processes and
 * the command run by `tcpbroker run` get filters of their own.
 *
 * Every rule says why it is there.  docs/security.md lists them too.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "broker.h"
#include "sandbox.h"

/* When a rule applies. */
#define W_ALWAYS	0x1	/* in every broker */
#define W_LISTEN	0x2	/* only if the policy lets someone listen */
#define W_SESSIONS	0x4	/* only if there is a Unix socket to accept on */
#define W_CONTROL	0x8	/* only with a control socket (--control) */
#define W_LOGS		0x20	/* only with --log or --decision-log */
#define W_SOURCE	0x40	/* only a launcher's, with its session source */
#define W_BUSY_POLL	0x80	/* only with --busy-poll */

/* What a rule does. */
#define R_ALLOW		0
#define R_ENOSYS	1	/* glibc probes these and falls back */
#define R_EACCES	2
#define R_EPERM		3
/* EACCES unless the type (argument 1) is SOCK_STREAM; socketpair only. */
#define R_STREAM_ONLY	4

/* An argument check: arg n, compared with op to a (masked by b). */
#define ARG(n, op, a, b)	{ (n), (op), (scmp_datum_t)(a), (scmp_datum_t)(b) }
#define EQ(n, a)		ARG(n, SCMP_CMP_EQ, a, 0)
#define NE(n, a)		ARG(n, SCMP_CMP_NE, a, 0)
/* Argument n has every bit of flag set. */
#define HAS(n, flag)		ARG(n, SCMP_CMP_MASKED_EQ, flag, flag)
#define MASKED(n, mask, a)	ARG(n, SCMP_CMP_MASKED_EQ, mask, a)

/* The descriptor an accept4 on the control socket names (W_CONTROL). */
#define CONTROL_FD_PLACEHOLDER	((scmp_datum_t)-2)
/* The descriptor an accept4 on the Unix socket names (W_SESSIONS). */
#define SESSION_FD_PLACEHOLDER	((scmp_datum_t)-1)
/* The broker's end of the reader's socket. */
#define READER_FD_PLACEHOLDER	((scmp_datum_t)-3)

struct rule {
	const char		*name;
	unsigned		 when;
	int			 action;
	unsigned		 nargs;
	struct scmp_arg_cmp	 args[3];
	const char		*reason;
};

#define SOCK_FLAGS	(SOCK_NONBLOCK | SOCK_CLOEXEC)
/* Flags a plain fork never has. */
#define CLONE_NO_FORK	(CLONE_VM | CLONE_THREAD | CLONE_NEWNS |	\
			 CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID |	\
			 CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)
#define OPEN_WRITES	(O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE)

/*
 * The broker, after set-up.  Default: kill the process.
 */
static const struct rule broker_rules[] = {
	/* The event loop. */
	{ "epoll_wait",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the event loop waits for events" },
	{ "epoll_pwait", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the same, as some libc versions call it" },
	{ "epoll_ctl",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "sockets are added to and removed from the loop" },
	{ "clock_gettime", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "timers and log time stamps, when the vDSO is not used" },
	{ "sched_yield", W_BUSY_POLL, R_ALLOW, 0, { { 0 } },
	    "a busy-polling loop gives way before each poll" },
	{ "read",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "signals (signalfd), and the files the reader passes on SIGHUP" },
	{ "write",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the log on stderr" },
	{ "writev",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the log, when stdio gathers a line" },
	{ "close",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "sockets and the files the reader passed are closed" },
	/* Sessions and TCP. */
	{ "recvfrom",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "recv() on sessions, TCP connections and the resolver socket" },
	{ "sendto",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "send() on sessions, TCP connections and the resolver socket" },
	{ "socket",	W_ALWAYS, R_ALLOW, 3, { EQ(0, AF_INET),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_STREAM), EQ(2, 0) },
	    "TCP over IPv4 for connect and listen; no other family or type" },
	{ "socket",	W_ALWAYS, R_ALLOW, 3, { EQ(0, AF_INET6),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_STREAM), EQ(2, 0) },
	    "TCP over IPv6, likewise" },
	{ "connect",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "TCP connections the policy allowed" },
	{ "getsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_ERROR) }, "SO_ERROR, how a connect ended" },
	{ "getsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_PEERCRED) }, "SO_PEERCRED, who a new session is" },
	{ "getsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_PEERGROUPS) },
	    "SO_PEERGROUPS, its supplementary groups, for match gid" },
	{ "setsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, IPPROTO_TCP),
	    EQ(2, TCP_NODELAY) }, "TCP_NODELAY, for set_nodelay" },
	{ "setsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_KEEPALIVE) }, "SO_KEEPALIVE, for set_keepalive" },
	{ "setsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, IPPROTO_IPV6),
	    EQ(2, IPV6_V6ONLY) }, "IPV6_V6ONLY on every IPv6 socket" },
	{ "setsockopt",	W_ALWAYS, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_SNDBUF) }, "SO_SNDBUF, a new session's socket buffer" },
	{ "setsockopt",	W_LISTEN, R_ALLOW, 2, { EQ(1, SOL_SOCKET),
	    EQ(2, SO_REUSEADDR) }, "SO_REUSEADDR on listeners" },
	{ "getsockname", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "local_addr" },
	{ "getpeername", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "peer_addr, and telling a finished connect" },
	{ "shutdown",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the shutdown method" },
	{ "accept4",	W_SESSIONS, R_ALLOW, 1, { EQ(0,
	    SESSION_FD_PLACEHOLDER) }, "new sessions on the Unix socket" },
	{ "accept4",	W_LISTEN, R_ALLOW, 0, { { 0 } },
	    "connections to TCP listeners the policy allowed" },
	{ "bind",	W_LISTEN, R_ALLOW, 0, { { 0 } },
	    "TCP listeners the policy allowed" },
	{ "listen",	W_LISTEN, R_ALLOW, 0, { { 0 } },
	    "TCP listeners the policy allowed" },
	{ "accept4",	W_CONTROL, R_ALLOW, 1, { EQ(0,
	    CONTROL_FD_PLACEHOLDER) }, "administrators on the control socket" },
	{ "eventfd2",	W_SESSIONS, R_ALLOW, 0, { { 0 } },
	    "the reserve descriptor, renewed after refusing a client" },
	{ "socketpair",	W_SOURCE, R_ALLOW, 3, { EQ(0, AF_UNIX),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_STREAM), EQ(2, 0) },
	    "a new session for a process of the launched command" },
	{ "sendmsg",	W_SOURCE, R_ALLOW, 1, { EQ(0, BROKER_SOURCE_FD) },
	    "handing that session over on the session source (SCM_RIGHTS)" },
	/*
	 * No open(): the reader (reader.c) opens the policy file, the user
	 * and group files and the log files, and passes them.
	 */
	{ "recvmsg",	W_ALWAYS, R_ALLOW, 1, { EQ(0, READER_FD_PLACEHOLDER) },
	    "descriptors from the reader, on its socket only" },
	{ "dup3",	W_LOGS, R_ALLOW, 2, { EQ(1, STDERR_FILENO), EQ(2, 0) },
	    "the reopened log takes the place of stderr" },
	{ "fstat",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the policy file must be a regular file; a log file rotated?" },
	{ "newfstatat",	W_ALWAYS, R_ALLOW, 1, { MASKED(3, AT_EMPTY_PATH,
	    AT_EMPTY_PATH) }, "the same, as libc calls it; the flag does not "
	    "stop a path, but a stat reads no file" },
	/* Memory, never executable. */
	{ "brk",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "malloc" },
	{ "mmap",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, PROT_EXEC, 0) },
	    "malloc, for large blocks; never executable" },
	{ "mprotect",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, PROT_EXEC, 0) },
	    "malloc arenas; never executable" },
	{ "munmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "free" },
	{ "mremap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "realloc of large blocks" },
	{ "madvise",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "free returns memory to the kernel" },
	{ "futex",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "libc's internal locks" },
	/* Signals and the end. */
	{ "rt_sigreturn", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "returning from the SIGSYS handler of --sandbox-debug" },
	{ "rt_sigprocmask", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "libc masks signals in some calls" },
	{ "restart_syscall", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the kernel restarts an interrupted call" },
	{ "exit_group",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
	{ "exit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
	/* Probed by libc, which falls back when they are missing. */
	{ "clone3",	W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "libc tries it first; ENOSYS, and the fallback is refused too" },
	{ "openat2",	W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "probed by libc" },
	{ "faccessat2",	W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "probed by libc" },
	{ "statx",	W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "probed by libc; it falls back to newfstatat" },
};

/*
 * Sanitizer builds only (-DTB_SANITIZE=ON, for the tests): what the
 * AddressSanitizer runtime needs, in every filter, and LeakSanitizer at
 * exit.  A release build has none of these.
 */
#ifdef TB_SANITIZER_BUILD
static const struct rule sanitizer_rules[] = {
	{ "clone",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "LeakSanitizer stops the world in a task of its own" },
	{ "ptrace",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "LeakSanitizer reads the registers of the stopped threads" },
	{ "wait4",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "LeakSanitizer" },
	{ "prctl",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "sched_yield", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "sigaltstack", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "rt_sigaction", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "rt_sigprocmask", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "set_robust_list", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "getpid",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "getppid",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "LeakSanitizer's tracer checks on its parent" },
	{ "gettid",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "kill",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "sched_getaffinity", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "tgkill",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "readlink",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "getdents64",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "LeakSanitizer lists /proc/self/task" },
	{ "getdents",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "open",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the runtime opens /proc/self files with the old call" },
	{ "openat",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the runtime reads /proc/self" },
	{ "read",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "write",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime's reports" },
	{ "close",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "lseek",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "sysinfo",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "ioctl",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the runtime asks whether stderr is a terminal" },
	{ "getrlimit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "prlimit64",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "mmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "mprotect",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "munmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "madvise",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "futex",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "nanosleep",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "clock_nanosleep", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "exit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
	{ "exit_group",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the runtime" },
};
#endif

/*
 * Valgrind builds only (-DTB_VALGRIND=ON, for tests/valgrind.sh): what
 * valgrind itself calls while it runs the broker, in every filter.  Its
 * translations of the code are executable memory it maps as it goes.
 * A build without the option has none of these, whatever its flags.
 */
#ifdef TB_VALGRIND_BUILD
/*
 * Valgrind (3.19) has no seccomp(2): libseccomp falls back to prctl and
 * to the older action, which kills the thread (each filtered process
 * has one).
 */
#define SANDBOX_KILL	SCMP_ACT_KILL
#else
/* A refused call kills the whole process. */
#define SANDBOX_KILL	SCMP_ACT_KILL_PROCESS
#endif

#ifdef TB_VALGRIND_BUILD
static const struct rule valgrind_rules[] = {
	{ "mmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind: code translations, executable" },
	{ "mprotect",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "getpid",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "gettid",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "tgkill",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind delivers signals to itself" },
	{ "rt_sigaction", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "rt_sigtimedwait", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind polls for signals" },
	{ "readlink",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "open",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind reads /proc/self and its debug information" },
	{ "openat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "read",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "pread64",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind reads debug information" },
	{ "write",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind's report, in its log file" },
	{ "close",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "fcntl",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind moves its descriptors out of the way" },
	{ "getrlimit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "prlimit64",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "sched_yield", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "getcwd",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "lseek",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "newfstatat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "fstat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "stat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "kill",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "pipe",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind's lock, made again in a forked process" },
	{ "pipe2",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "rt_sigprocmask", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind masks signals around every call" },
	{ "rt_sigreturn", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "sigaltstack", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "munmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "brk",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "madvise",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "futex",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "valgrind" },
	{ "exit_group",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "valgrind's report at the end" },
	{ "prctl",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "libseccomp loads the workers' filters with prctl under "
	    "valgrind, which has no seccomp(2)" },
};
#endif

/*
 * The resolver: the keeper and its workers.  getaddrinfo() reads /etc,
 * asks DNS over UDP or TCP, and asks the kernel for the local addresses
 * over netlink to sort its answers.  Default: kill the process.
 */
#define W_KEEPER	0x10	/* the keeper only: it forks workers */

static const struct rule resolver_rules[] = {
	{ "recvfrom",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "queries from the broker, DNS answers" },
	{ "sendto",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "answers to the broker, DNS queries, netlink requests" },
	{ "recvmsg",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "netlink answers (local addresses, to sort results)" },
	{ "sendmmsg",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "DNS queries for A and AAAA at once" },
	{ "socket",	W_ALWAYS, R_ALLOW, 2, { EQ(0, AF_INET),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_DGRAM) },
	    "DNS over UDP, and probing routes to sort results" },
	{ "socket",	W_ALWAYS, R_ALLOW, 2, { EQ(0, AF_INET),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_STREAM) },
	    "DNS over TCP, for long answers" },
	{ "socket",	W_ALWAYS, R_ALLOW, 2, { EQ(0, AF_INET6),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_DGRAM) },
	    "the same over IPv6" },
	{ "socket",	W_ALWAYS, R_ALLOW, 2, { EQ(0, AF_INET6),
	    MASKED(1, ~(scmp_datum_t)SOCK_FLAGS, SOCK_STREAM) },
	    "the same over IPv6" },
	{ "socket",	W_ALWAYS, R_ALLOW, 2, { EQ(0, AF_NETLINK),
	    EQ(2, NETLINK_ROUTE) }, "the local addresses, to sort results" },
	{ "socket",	W_ALWAYS, R_EACCES, 1, { EQ(0, AF_UNIX) },
	    "libc tries nscd first; refusing it makes libc resolve itself" },
	{ "connect",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "DNS servers, and route probes (UDP connect sends nothing)" },
	{ "bind",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the netlink socket" },
	{ "getsockname", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the netlink socket, and the source of a route probe" },
	{ "setsockopt",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "IP_RECVERR on DNS sockets" },
	{ "poll",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "waiting for DNS answers" },
	{ "ppoll",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the same, on other libc versions" },
	{ "ioctl",	W_ALWAYS, R_ALLOW, 1, { EQ(1, FIONREAD) },
	    "the size of a DNS answer" },
	{ "openat",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, OPEN_WRITES, 0) },
	    "reading /etc/hosts, /etc/resolv.conf and the like; no writes" },
	{ "read",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "those files, and DNS answers over TCP" },
	{ "writev",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "DNS queries over TCP" },
	{ "pread64",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "those files" },
	{ "lseek",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "those files" },
	{ "newfstatat",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "whether those files changed" },
	{ "fstat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "close",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "files and sockets" },
	{ "uname",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the resolver's default domain" },
	{ "getrandom",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "DNS query ids" },
	{ "clock_gettime", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "DNS time-outs, when the vDSO is not used" },
	{ "write",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "messages on stderr" },
	{ "brk",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "malloc" },
	{ "mmap",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, PROT_EXEC, 0) },
	    "malloc; never executable" },
	{ "mprotect",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, PROT_EXEC, 0) },
	    "malloc arenas; never executable" },
	{ "munmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "free" },
	{ "madvise",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "free" },
	{ "futex",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "libc's locks" },
	{ "getppid",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "a worker checks that its keeper is still there" },
	{ "alarm",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "a worker that outlasts the broker's wait ends (SIGALRM)" },
	{ "setitimer",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the same, as some libc versions set the alarm" },
	{ "prctl",	W_ALWAYS, R_ALLOW, 1, { EQ(0, PR_SET_PDEATHSIG) },
	    "a new worker dies with its keeper" },
	{ "rt_sigprocmask", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "libc" },
	{ "rt_sigreturn", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "libc" },
	{ "restart_syscall", W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the kernel" },
	{ "exit_group",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
	{ "exit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
	{ "clone3",	W_ALWAYS, R_ENOSYS, 0, { { 0 } }, "probed by libc" },
	{ "statx",	W_ALWAYS, R_ENOSYS, 0, { { 0 } }, "probed by libc" },
	/* The keeper forks workers and waits for them. */
	{ "clone",	W_KEEPER, R_ALLOW, 1, { MASKED(0, CLONE_NO_FORK, 0) },
	    "forking a worker: a plain fork, no threads, no namespaces" },
	{ "set_robust_list", W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "libc, in a new worker" },
	{ "dup2",	W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "a new worker puts its own socket in place" },
	{ "close_range", W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "a new worker closes the other workers' sockets" },
	{ "wait4",	W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "noticing that a worker died" },
	{ "clock_nanosleep", W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "waiting before restarting a worker that keeps dying" },
	{ "nanosleep",	W_KEEPER, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "getpid",	W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "the keeper tells its workers who their keeper is" },
	{ "prctl",	W_KEEPER, R_ALLOW, 1, { EQ(0, PR_SET_NO_NEW_PRIVS) },
	    "a new worker installs its own, tighter filter" },
	{ "seccomp",	W_KEEPER, R_ALLOW, 0, { { 0 } },
	    "the same; a filter can only take rights away" },
};

/*
 * The command `tcpbroker run` confines: everything is allowed but what
 * would give it a network of its own, reach other processes or local
 * sockets, or make namespaces.  Default: allow.  The other layers
 * (isolate.c) hold each of these too.
 */
/*
 * The reader (reader.c): opens the broker's files again, by paths fixed
 * at start, and passes them.  Default: kill the process.
 */
static const struct rule reader_rules[] = {
	{ "recvfrom",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the broker's requests" },
	{ "sendmsg",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the descriptors, to the broker" },
	{ "openat",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, OPEN_WRITES, 0) },
	    "the policy file, /etc/passwd and /etc/group: read only" },
	{ "openat",	W_ALWAYS, R_ALLOW, 2, { EQ(2, READER_LOG_FLAGS),
	    EQ(3, LOG_FILE_MODE) }, "the log files: append only" },
	{ "newfstatat",	W_ALWAYS, R_ALLOW, 1, { MASKED(3, AT_EMPTY_PATH,
	    AT_EMPTY_PATH) }, "only regular files are passed" },
	{ "fstat",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the same" },
	{ "close",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "its copies of what it passed" },
	{ "write",	W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "a message on stderr before it ends" },
	{ "brk",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "libc" },
	{ "mmap",	W_ALWAYS, R_ALLOW, 1, { MASKED(2, PROT_EXEC, 0) },
	    "libc; never executable" },
	{ "munmap",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "libc" },
	{ "clock_gettime", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the time stamp of that message" },
	{ "rt_sigreturn", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "returning from a signal" },
	{ "restart_syscall", W_ALWAYS, R_ALLOW, 0, { { 0 } },
	    "the kernel restarts an interrupted call" },
	{ "exit_group",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
	{ "exit",	W_ALWAYS, R_ALLOW, 0, { { 0 } }, "the end" },
};

static const struct rule child_rules[] = {
	{ "socket",	W_ALWAYS, R_EACCES, 0, { { 0 } },
	    "no socket of any family: the network goes through the broker" },
	{ "socketpair",	W_ALWAYS, R_STREAM_ONLY, 0, { { 0 } },
	    "stream pairs only: a datagram socket could be sent to by name" },
	{ "connect",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "no reaching a Unix socket by path or abstract name" },
	{ "bind",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "no name of its own for others to reach" },
	{ "listen",	W_ALWAYS, R_EPERM, 0, { { 0 } }, "likewise" },
	{ "sendto",	W_ALWAYS, R_EPERM, 1, { NE(4, 0) },
	    "no datagram to an address; send() on a connected socket stays" },
	{ "sendmsg",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "its address cannot be checked here; send() does the work" },
	{ "sendmmsg",	W_ALWAYS, R_EPERM, 0, { { 0 } }, "likewise" },
	{ "io_uring_setup", W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "io_uring can open sockets itself" },
	{ "io_uring_enter", W_ALWAYS, R_ENOSYS, 0, { { 0 } }, "likewise" },
	{ "io_uring_register", W_ALWAYS, R_ENOSYS, 0, { { 0 } }, "likewise" },
	{ "ptrace",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "the broker's sockets must not be reached through it" },
	{ "process_vm_readv", W_ALWAYS, R_EPERM, 0, { { 0 } }, "likewise" },
	{ "process_vm_writev", W_ALWAYS, R_EPERM, 0, { { 0 } }, "likewise" },
	{ "pidfd_open",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "a handle on another process" },
	{ "pidfd_getfd", W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "taking a descriptor of the broker" },
	{ "pidfd_send_signal", W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "signals through a handle" },
	{ "prlimit64",	W_ALWAYS, R_EPERM, 1, { NE(0, 0) },
	    "no changing another process's limits; its own stay" },
	{ "unshare",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "no namespaces: a user namespace would bring capabilities" },
	{ "setns",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "no joining another namespace" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWUSER) },
	    "fork and threads stay; no new namespaces" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWNS) }, "likewise" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWNET) }, "likewise" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWPID) }, "likewise" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWIPC) }, "likewise" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWUTS) }, "likewise" },
	{ "clone",	W_ALWAYS, R_EPERM, 1, { HAS(0, CLONE_NEWCGROUP) },
	    "likewise" },
	{ "clone3",	W_ALWAYS, R_ENOSYS, 0, { { 0 } },
	    "its flags cannot be checked; libc falls back to clone" },
	{ "bpf",	W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "kernel programs a script has no use for" },
	{ "userfaultfd", W_ALWAYS, R_EPERM, 0, { { 0 } },
	    "a tool of kernel exploits, of no use to a script" },
	{ "ioctl",	W_ALWAYS, R_EPERM, 1, { MASKED(1, 0xffffffff, TIOCSTI) },
	    "pushing input into the terminal of whoever started it" },
	{ "ioctl",	W_ALWAYS, R_EPERM, 1, { MASKED(1, 0xffffffff,
	    TIOCLINUX) }, "the same, through the Linux console" },
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static uint32_t
action_of(int action)
{
	switch (action) {
	case R_ENOSYS:	return SCMP_ACT_ERRNO(ENOSYS);
	case R_EACCES:	return SCMP_ACT_ERRNO(EACCES);
	case R_EPERM:	return SCMP_ACT_ERRNO(EPERM);
	case R_STREAM_ONLY: return SCMP_ACT_ERRNO(EACCES);
	}
	return SCMP_ACT_ALLOW;
}

/* The kernel's mask of a socket type without its flags. */
#define SOCK_TYPE_BITS	0xf

/* EACCES for every socket type but SOCK_STREAM, as argument 1 of nr. */
static int
add_stream_only(scmp_filter_ctx ctx, int nr)
{
	scmp_datum_t	type;

	for (type = 0; type <= SOCK_TYPE_BITS; type++) {
		if (type == SOCK_STREAM)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, SOCK_TYPE_BITS, type)) != 0)
			return -1;
	}
	return 0;
}

/* Builds a filter from a table; NULL with *why set on failure. */
static scmp_filter_ctx
build(const struct rule *rules, size_t n, unsigned when, uint32_t defact,
    const struct sandbox_broker *fds, const char **why)
{
	struct scmp_arg_cmp	 args[3];
	scmp_filter_ctx		 ctx;
	unsigned		 j;
	size_t			 i;
	int			 nr;

	if ((ctx = seccomp_init(defact)) == NULL) {
		*why = "seccomp_init failed";
		return NULL;
	}
	/* Another architecture's system calls (i386, x32) kill. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SANDBOX_KILL) != 0) {
		*why = "cannot set the action for other architectures";
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((rules[i].when & when) == 0)
			continue;
		nr = seccomp_syscall_resolve_name(rules[i].name);
		if (nr == __NR_SCMP_ERROR) {
			*why = rules[i].name;
			goto fail;
		}
		for (j = 0; j < rules[i].nargs; j++) {
			args[j] = rules[i].args[j];
			if (fds == NULL)
				continue;
			if (args[j].datum_a == SESSION_FD_PLACEHOLDER)
				args[j].datum_a = (scmp_datum_t)fds->session_fd;
			else if (args[j].datum_a == CONTROL_FD_PLACEHOLDER)
				args[j].datum_a = (scmp_datum_t)fds->control_fd;
			else if (args[j].datum_a == READER_FD_PLACEHOLDER)
				args[j].datum_a = (scmp_datum_t)fds->reader_fd;
		}
		if (rules[i].action == R_STREAM_ONLY) {
			if (add_stream_only(ctx, nr) != 0) {
				*why = rules[i].name;
				goto fail;
			}
			continue;
		}
		if (seccomp_rule_add_array(ctx, action_of(rules[i].action), nr,
		    rules[i].nargs, args) != 0) {
			*why = rules[i].name;
			goto fail;
		}
	}
#ifdef TB_VALGRIND_BUILD
	if (defact != SCMP_ACT_ALLOW) {
		for (i = 0; i < NELEM(valgrind_rules); i++) {
			nr = seccomp_syscall_resolve_name(valgrind_rules[i].name);
			if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) {
				*why = valgrind_rules[i].name;
				goto fail;
			}
		}
	}
#endif
#ifdef TB_SANITIZER_BUILD
	if (defact != SCMP_ACT_ALLOW) {
		for (i = 0; i < NELEM(sanitizer_rules); i++) {
			nr = seccomp_syscall_resolve_name(sanitizer_rules[i].name);
			if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) {
				*why = sanitizer_rules[i].name;
				goto fail;
			}
		}
	}
#endif
	return ctx;
 fail:
	seccomp_release(ctx);
	return NULL;
}

static unsigned
broker_when(const struct sandbox_broker *sb)
{
	unsigned	when = W_ALWAYS;

	if (sb->listen)
		when |= W_LISTEN;
	if (sb->session_fd != -1)
		when |= W_SESSIONS;
	if (sb->control_fd != -1)
		when |= W_CONTROL;
	if (sb->log_files)
		when |= W_LOGS;
	if (sb->source)
		when |= W_SOURCE;
	if (sb->busy_poll)
		when |= W_BUSY_POLL;
	return when;
}

/* For --sandbox-debug: the names of the calls, looked up beforehand. */
#define SYSCALL_NAMES	512
static char	*syscall_names[SYSCALL_NAMES];

static void
sigsys_handler(int sig, siginfo_t *info, void *ctx)
{
	char		 line[160];
	const char	*name = NULL;
	int		 nr = info->si_syscall, n;

	(void)sig;
	(void)ctx;
	if (nr >= 0 && nr < SYSCALL_NAMES)
		name = syscall_names[nr];
	n = snprintf(line, sizeof(line), "tcpbroker: sandbox: system call %s "
	    "(%d) refused\n", name != NULL ? name : "?", nr);
	if (n > 0)
		(void)!write(STDERR_FILENO, line, (size_t)n);
	_exit(SANDBOX_DEBUG_EXIT);
}

static void
install_debug_handler(void)
{
	struct sigaction	sa;
	int			i;

	for (i = 0; i < SYSCALL_NAMES; i++)
		syscall_names[i] = seccomp_syscall_resolve_num_arch(
		    SCMP_ARCH_NATIVE, i);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		fatal("sigaction SIGSYS");
}

void
sandbox_broker(const struct sandbox_broker *sb)
{
	scmp_filter_ctx	 ctx;
	const char	*why;

	if (sb->debug)
		install_debug_handler();
	ctx = build(broker_rules, NELEM(broker_rules), broker_when(sb),
	    sb->debug ? SCMP_ACT_TRAP : SANDBOX_KILL, sb, &why);
	if (ctx == NULL)
		fatalx("sandbox: cannot build the filter: %s", why);
	if (seccomp_load(ctx) != 0)
		fatalx("sandbox: cannot install the filter");
	seccomp_release(ctx);
	log_info("sandbox: filter installed%s%s", sb->listen ? "" :
	    " (no listening: the policy allows none)",
	    sb->debug ? " in debug mode" : "");
}

int
sandbox_print_broker(const struct sandbox_broker *sb, int fd)
{
	scmp_filter_ctx	 ctx;
	const char	*why;
	int		 rc;

	ctx = build(broker_rules, NELEM(broker_rules), broker_when(sb),
	    SANDBOX_KILL, sb, &why);
	if (ctx == NULL) {
		fprintf(stderr, "tcpbroker: cannot build the filter: %s\n",
		    why);
		return -1;
	}
	rc = seccomp_export_pfc(ctx, fd);
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

static void
list_table(FILE *out, const char *title, const struct rule *rules, size_t n)
{
	static const char *const actions[] = {
		[R_ALLOW] = "allow", [R_ENOSYS] = "ENOSYS",
		[R_EACCES] = "EACCES", [R_EPERM] = "EPERM",
		[R_STREAM_ONLY] = "EACCES",
	};
	size_t	i;

	fprintf(out, "%s\n", title);
	for (i = 0; i < n; i++)
		fprintf(out, "  %-17s %-6s %s%s\n", rules[i].name,
		    actions[rules[i].action],
		    rules[i].when & W_LISTEN ? "[if the policy allows listening] " :
		    rules[i].when & W_SESSIONS ? "[with a Unix socket] " :
		    rules[i].when & W_CONTROL ? "[with a control socket] " :
		    rules[i].when & W_LOGS ? "[with log files] " :
		    rules[i].when & W_SOURCE ? "[under tcpbroker run] " :
		    rules[i].when & W_BUSY_POLL ? "[with --busy-poll] " :
		    rules[i].when & W_KEEPER ? "[keeper only] " : "",
		    rules[i].reason);
}

void
sandbox_list(FILE *out)
{
	list_table(out, "broker (anything else kills the process):",
	    broker_rules, NELEM(broker_rules));
	list_table(out, "resolver keeper and workers (anything else kills):",
	    resolver_rules, NELEM(resolver_rules));
	list_table(out, "reader (anything else kills the process):",
	    reader_rules, NELEM(reader_rules));
	list_table(out, "command run by `tcpbroker run` (anything else is "
	    "allowed):", child_rules, NELEM(child_rules));
}

/* In a resolver process (keeper or worker): never fails silently. */
int
sandbox_resolver(bool keeper)
{
	scmp_filter_ctx	 ctx;
	const char	*why;
	int		 rc;

	ctx = build(resolver_rules, NELEM(resolver_rules),
	    W_ALWAYS | (keeper ? W_KEEPER : 0), SANDBOX_KILL, NULL,
	    &why);
	if (ctx == NULL)
		return -1;
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

int
sandbox_reader(void)
{
	scmp_filter_ctx	 ctx;
	const char	*why;
	int		 rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	ctx = build(reader_rules, NELEM(reader_rules), W_ALWAYS,
	    SANDBOX_KILL, NULL, &why);
	if (ctx == NULL)
		return -1;
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

int
sandbox_child(void)
{
	scmp_filter_ctx	 ctx;
	const char	*why;
	int		 rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	ctx = build(child_rules, NELEM(child_rules), W_ALWAYS, SCMP_ACT_ALLOW,
	    NULL, &why);
	if (ctx == NULL)
		return -1;
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc == 0 ? 0 : -1;
}

void
sandbox_drop_privileges(const char *user)
{
	struct passwd	*pw;

	if (getuid() != 0 && geteuid() != 0)
		return;		/* nothing to drop */
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s (see --user)", user);
	if (pw->pw_uid == 0)
		fatalx("--user %s: the broker never runs as root", user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
	if (setuid(0) != -1 || geteuid() == 0)
		fatalx("privileges were not dropped");
	log_info("running as %s (uid %u)", user, (unsigned)pw->pw_uid);
}

void
sandbox_drop_to(uid_t uid, gid_t gid)
{
	if (getuid() != 0 && geteuid() != 0)
		return;		/* nothing to drop */
	if (uid == 0)
		fatalx("the broker never runs as root");
	if (setgroups(0, NULL) == -1 ||
	    setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		fatal("cannot drop privileges to uid %u", (unsigned)uid);
	if (setuid(0) != -1 || geteuid() == 0)
		fatalx("privileges were not dropped");
	log_info("running as uid %u gid %u", (unsigned)uid, (unsigned)gid);
}

void
sandbox_undumpable(void)
{
#ifndef TB_SANITIZER_BUILD
	/*
	 * (LeakSanitizer must attach to the process at exit, so sanitizer
	 * builds stay dumpable.)
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
#endif
}

void
sandbox_limits(void)
{
	struct rlimit	rl = { 0, 0 };

	/* No core files of a process that held other people's data. */
	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit RLIMIT_CORE");
#ifndef TB_SANITIZER_BUILD
	/* No processes: the resolver is already running. */
	if (geteuid() != 0 && setrlimit(RLIMIT_NPROC, &rl) == -1)
		fatal("setrlimit RLIMIT_NPROC");
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
}
