/*
 * The isolation of a command run by `tcpbroker run`, in layers that do
 * not depend on one another: a uid of its own, namespaces (PID, network,
 * mount, IPC, UTS; a user namespace when the launcher is not root), a
 * mount namespace without the host's Unix sockets, Landlock scoping, and
 * the seccomp filter of sandbox.c.
 */
#ifndef TB_ISOLATE_H
#define TB_ISOLATE_H

#include <sys/types.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

/* The uids `tcpbroker run` takes commands' and brokers' uids from. */
#define ISOLATE_UID_RANGE	"2000000000-2000009999"
/* Where the launcher keeps a lock per uid in use; root's own. */
#define ISOLATE_LOCK_DIR	"/run/tcpbroker-run"
/* Most --bind-ro paths of one launch: paths. */
#define ISOLATE_BINDS_MAX	16

struct isolate_uid_range {
	uid_t	lo;
	uid_t	hi;
};

/* Reads "LO-HI"; 0, or -1 when it is not a range of non-root uids. */
int	isolate_parse_range(const char *text, struct isolate_uid_range *r);

/*
 * Takes a free uid of the range (no user has it, no launcher holds it)
 * and holds it while *lock_fd stays open in any process.  Returns 0, or
 * -1 with *why set.
 */
int	isolate_take_uid(const struct isolate_uid_range *r, uid_t *uid,
	    int *lock_fd, const char **why);

/* What the command is given. */
struct isolate_spec {
	bool		 root;		/* the launcher runs as root */
	uid_t		 uid;		/* the command's, when root */
	gid_t		 gid;
	const char	*binds[ISOLATE_BINDS_MAX];	/* --bind-ro */
	unsigned	 nbinds;
	bool		 seccomp;	/* false only with --no-sandbox */
	int		 lock_fd;	/* the uid's lock, or -1 */
	sigset_t	 sigmask;	/* the command's, unlike the launcher's */
};

/*
 * Starts the command in new namespaces: a process that is PID 1 there
 * starts the command as PID 2, forwards the signals a process sends it,
 * and ends with the command's status.  keep is the one descriptor (the
 * session source) the command inherits besides stdio.  Returns the pid of
 * that first process, or -1.
 */
pid_t	isolate_spawn(const struct isolate_spec *spec, char *argv[],
	    int keep);

/* Which layers this kernel gives, for --explain-sandbox. */
void	isolate_explain(FILE *out, const struct isolate_spec *spec,
	    const char *range);

/* The Landlock ABI version of the kernel, 0 when it has none. */
int	isolate_landlock_abi(void);

#endif
