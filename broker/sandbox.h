/*
 * Confinement of the broker, its resolver processes, and the command
 * that `tcpbroker run` starts.
 */
#ifndef TB_SANDBOX_H
#define TB_SANDBOX_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdio.h>

/* The exit status of a process killed by --sandbox-debug. */
#define SANDBOX_DEBUG_EXIT	159

struct sandbox_broker {
	bool	listen;		/* the policy lets someone listen */
	int	session_fd;	/* the Unix socket accepted on, or -1 */
	bool	debug;		/* name a refused call instead of dying */
	int	control_fd;	/* the control socket, or -1 */
	bool	log_files;	/* --log or --decision-log: reopened */
	int	reader_fd;	/* the reader's socket (reader.c), or -1 */
	bool	source;		/* a launcher's: hands out sessions on fd 3 */
	bool	busy_poll;	/* --busy-poll: the loop yields */
};

/* Installs the broker's filter; fatal if it cannot. */
void	sandbox_broker(const struct sandbox_broker *sb);
/* Writes the broker's filter in libseccomp's PFC form to fd. */
int	sandbox_print_broker(const struct sandbox_broker *sb, int fd);
/* Lists the allowed calls with their reasons. */
void	sandbox_list(FILE *out);
/* Installs a resolver process's filter; -1 if it cannot. */
int	sandbox_resolver(bool keeper);
/* Installs the reader's filter; -1 if it cannot. */
int	sandbox_reader(void);
/* Installs the filter of a command run by the launcher; -1 if it cannot. */
int	sandbox_child(void);
/* Switches to user when started as root; fatal if it cannot. */
void	sandbox_drop_privileges(const char *user);
/* The same, to a uid and gid of no user (the launcher's range). */
void	sandbox_drop_to(uid_t uid, gid_t gid);
/* Core files, process creation, new privileges. */
void	sandbox_limits(void);
/*
 * No ptrace and no /proc/PID/mem by other processes of the same uid;
 * inherited by the processes forked afterwards.
 */
void	sandbox_undumpable(void);

#endif
