/*
 * The Lua module's pieces shared by tcp.c and the TLS bindings in
 * tls.c.  Internal: the module exports luaopen_* only (tcp.map).
 */
#ifndef LUA_TCP_H
#define LUA_TCP_H

#include <stdbool.h>

#include <lua.h>

#include "tcpbroker.h"

#define CONN_META	"tcp.TcpClient"
#define LISTENER_META	"tcp.TcpListener"

/* A connection or listener; the session is its first user value. */
struct handle {
	tb_handle	 h;
	bool		 open;
	char		 name[TB_ADDR_STRLEN];	/* for tostring, once known */
};

/* tcp.c */
int		 tcp_raise(lua_State *, int, const char *);
int		 tcp_raise_err(lua_State *, const struct tb_error *);
int		 arg_error(lua_State *, const char *, const char *, ...);
const char	*arg_kind(lua_State *, int);
tb_client	*get_client(lua_State *);
void		 push_handle(lua_State *, tb_handle, const char *);
struct handle	*check_handle(lua_State *, const char *, const char *);
lua_Integer	 check_range(lua_State *, int, lua_Integer, lua_Integer,
		    const char *, const char *);
const char	*check_string(lua_State *, int, size_t *, const char *,
		    const char *);
#define check_conn(L, fn)	check_handle(L, CONN_META, fn)
#define check_listener(L, fn)	check_handle(L, LISTENER_META, fn)
#define check_any(L, fn)	check_handle(L, NULL, fn)

/* tls.c */
int	l_tlsclient(lua_State *);
int	l_tlslistener(lua_State *);
int	l_tls(lua_State *);
int	l_alpn(lua_State *);
/* A listener's accept: with the server handshake for a TlsListener. */
int	tls_accept(lua_State *, tb_client *, tb_handle, tb_handle *,
	    struct tb_error *);

#endif
