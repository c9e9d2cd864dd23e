/*
 * Internal to the client library: the session source of `tcpbroker run`
 * (docs/protocol.md, "The session source").
 */
#ifndef TB_CLIENT_SOURCE_H
#define TB_CLIENT_SOURCE_H

#include "tcpbroker.h"

/*
 * Asks the source (a SOCK_SEQPACKET socket shared by every process of
 * the command) for a session of this process's own: 0 with *fd set to
 * its socket (close-on-exec, and non-blocking as the broker made it),
 * or a TB_E* code with err filled.  Waits at most CLIENT_SOURCE_MS.
 */
int	tb__source_session(int source, int *fd, struct tb_error *err);

#endif
