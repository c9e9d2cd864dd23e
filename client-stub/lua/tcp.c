/*
 * The `tcp` plugin for Lua 5.4, on top of libtcpbroker-client.
 *
 *	local tcp = require "tcp"
 *	local conn = tcp.TcpClient("127.0.0.1", 9000)
 *	conn:write("PING\r\n")		-- or conn.write(conn, ...)
 *	print(conn:read_line())
 *	conn:close()
 *
 * Every call goes to the broker over the state's one session, opened on
 * first use from TCPBROKER_FD or TCPBROKER_SOCKET.  Errors are raised
 * as tables { code = "EPOLICY", message = "..." } with a __tostring.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "tcpbroker.h"

#define SESSION_META	"tcp.session"
#define CONN_META	"tcp.TcpClient"
#define LISTENER_META	"tcp.TcpListener"
#define ERROR_META	"tcp.error"

/* Largest n read_exact takes in one call: bytes. */
#define LUA_READ_EXACT_MAX	(16 * 1024 * 1024)
/* Largest byte table write_bytes takes: elements. */
#define LUA_BYTES_MAX		(16 * 1024 * 1024)
/* Most objects one tcp.select looks at, in both tables: objects. */
#define LUA_SELECT_MAX		256
#define LUA_SELECT_MAX_TEXT	"256"

/* The registry key of the state's session. */
static const char	session_key = 0;

/*
 * The state's session, with the one buffer reads land in before they
 * become Lua strings: no allocation per read beyond the string.
 */
struct session {
	tb_client	*client;
	char		 scratch[TB_LINE_MAX];
};
_Static_assert(TB_DATA_MAX <= TB_LINE_MAX, "reads fit the scratch buffer");

/* A connection or listener; the session is its first user value. */
struct handle {
	tb_handle	 h;
	bool		 open;
};

/* Raises { code = name, message = text } as the Lua error. */
static int
tcp_raise(lua_State *L, int code, const char *message)
{
	lua_createtable(L, 0, 2);
	lua_pushstring(L, tb_err_name(code));
	lua_setfield(L, -2, "code");
	lua_pushstring(L, message);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, ERROR_META);
	return lua_error(L);
}

static int
tcp_raise_err(lua_State *L, const struct tb_error *err)
{
	return tcp_raise(L, err->code, err->message);
}

static int
error_tostring(lua_State *L)
{
	lua_getfield(L, 1, "code");
	lua_getfield(L, 1, "message");
	lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "?"),
	    luaL_optstring(L, -1, ""));
	return 1;
}

/* The state's session, opened on first use. */
static struct session *
get_session(lua_State *L)
{
	struct session	*s;
	struct tb_error	 err;

	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &session_key) == LUA_TUSERDATA) {
		s = lua_touserdata(L, -1);
		lua_pop(L, 1);
		if (s->client != NULL)
			return s;
	} else
		lua_pop(L, 1);
	s = lua_newuserdatauv(L, sizeof(*s), 0);
	s->client = NULL;
	luaL_setmetatable(L, SESSION_META);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &session_key);
	if (tb_client_open(&s->client, &err) != 0)
		tcp_raise_err(L, &err);
	return s;
}

static tb_client *
get_client(lua_State *L)
{
	return get_session(L)->client;
}

static int
session_gc(lua_State *L)
{
	struct session	*s = luaL_checkudata(L, 1, SESSION_META);

	tb_client_close(s->client);
	s->client = NULL;
	return 0;
}

/* A new handle userdata that keeps the session alive. */
static void
push_handle(lua_State *L, tb_handle h, const char *meta)
{
	struct handle	*u = lua_newuserdatauv(L, sizeof(*u), 1);

	u->h = h;
	u->open = true;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &session_key);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, meta);
}

/* Argument i as an open handle of the given kind. */
static struct handle *
check_handle(lua_State *L, int i, const char *meta)
{
	struct handle	*u = luaL_checkudata(L, i, meta);

	if (!u->open)
		tcp_raise(L, TB_EBADHANDLE, "the handle is closed");
	return u;
}

#define check_conn(L, i)	check_handle(L, i, CONN_META)
#define check_listener(L, i)	check_handle(L, i, LISTENER_META)

/* An integer argument in [lo, hi], or EINVAL. */
static lua_Integer
check_range(lua_State *L, int i, lua_Integer lo, lua_Integer hi,
    const char *what)
{
	lua_Integer	v;
	int		ok;

	v = lua_tointegerx(L, i, &ok);
	if (!ok || v < lo || v > hi)
		tcp_raise(L, TB_EINVAL, lua_pushfstring(L, "%s must be an integer "
		    "from %I to %I", what, (LUAI_UACINT)lo, (LUAI_UACINT)hi));
	return v;
}

static bool
check_bool(lua_State *L, int i, const char *what)
{
	if (!lua_isboolean(L, i))
		tcp_raise(L, TB_EINVAL, lua_pushfstring(L, "%s must be a boolean",
		    what));
	return lua_toboolean(L, i);
}

static const char *
check_string(lua_State *L, int i, size_t *len, const char *what)
{
	if (lua_type(L, i) != LUA_TSTRING)
		tcp_raise(L, TB_EINVAL, lua_pushfstring(L, "%s must be a string",
		    what));
	return lua_tolstring(L, i, len);
}

/*
 * Data for write_bytes and write_all: a string, or a table of byte
 * values such as {0x48, 0x69}, which is packed into a new string.
 */
static const char *
check_data(lua_State *L, int i, size_t *len)
{
	luaL_Buffer	b;
	lua_Integer	n, k, v;
	int		ok;

	if (lua_type(L, i) == LUA_TSTRING)
		return lua_tolstring(L, i, len);
	if (lua_type(L, i) != LUA_TTABLE)
		tcp_raise(L, TB_EINVAL, "data must be a string or a table of "
		    "byte values");
	n = luaL_len(L, i);
	if (n < 0 || n > LUA_BYTES_MAX)
		tcp_raise(L, TB_ELIMIT, "too many byte values");
	luaL_buffinit(L, &b);
	for (k = 1; k <= n; k++) {
		lua_geti(L, i, k);
		v = lua_tointegerx(L, -1, &ok);
		lua_pop(L, 1);
		if (!ok || v < 0 || v > 255)
			tcp_raise(L, TB_EINVAL, lua_pushfstring(L, "byte %I is not "
			    "an integer from 0 to 255", (LUAI_UACINT)k));
		luaL_addchar(&b, (char)v);
	}
	luaL_pushresult(&b);
	lua_replace(L, i);
	return lua_tolstring(L, i, len);
}

/* Constructors. */

static int
l_connect(lua_State *L, int first, bool timed)
{
	struct tb_error	 err;
	tb_client	*c;
	const char	*host;
	tb_handle	 h;
	lua_Integer	 port, ms = 0;
	int		 rc;

	host = check_string(L, first, NULL, "host");
	port = check_range(L, first + 1, 1, 65535, "port");
	if (timed)
		ms = check_range(L, first + 2, 1, UINT32_MAX, "timeout");
	c = get_client(L);
	rc = timed ? tb_connect_timeout(c, host, (uint16_t)port, (uint32_t)ms,
	    &h, &err) : tb_connect(c, host, (uint16_t)port, &h, &err);
	if (rc != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, CONN_META);
	return 1;
}

/* tcp.TcpClient(host, port): the table is called, so skip it. */
static int
l_tcpclient_call(lua_State *L)
{
	return l_connect(L, 2, false);
}

static int
l_connect_timeout(lua_State *L)
{
	return l_connect(L, 1, true);
}

static int
l_tcplistener(lua_State *L)
{
	struct tb_error	 err;
	const char	*addr = check_string(L, 1, NULL, "address");
	tb_client	*c = get_client(L);
	tb_handle	 h;

	if (tb_listen(c, addr, &h, &err) != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, LISTENER_META);
	return 1;
}

/* Connection methods. */

static int
write_common(lua_State *L, bool bytes)
{
	struct handle	*u = check_conn(L, 1);
	struct tb_error	 err;
	const char	*data;
	size_t		 len, n;
	int		 rc;

	data = bytes ? check_data(L, 2, &len) : check_string(L, 2, &len,
	    "data");
	rc = bytes ? tb_write_bytes(get_client(L), u->h, data, len, &n, &err) :
	    tb_write(get_client(L), u->h, data, len, &n, &err);
	if (rc != 0)
		return tcp_raise_err(L, &err);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

static int
l_write(lua_State *L)
{
	return write_common(L, false);
}

static int
l_write_bytes(lua_State *L)
{
	return write_common(L, true);
}

static int
l_write_all(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	struct tb_error	 err;
	const char	*data;
	size_t		 len;

	data = check_data(L, 2, &len);
	if (tb_write_all(get_client(L), u->h, data, len, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

/* read and peek: up to max bytes, "" at end of stream. */
static int
read_common(lua_State *L, bool peek)
{
	struct handle	*u = check_conn(L, 1);
	lua_Integer	 max = check_range(L, 2, 0, LUA_MAXINTEGER, "max_bytes");
	struct session	*s = get_session(L);
	struct tb_error	 err;
	size_t		 n;
	int		 rc;

	if (max > TB_DATA_MAX)
		max = TB_DATA_MAX;	/* read may return fewer bytes */
	rc = peek ? tb_peek(s->client, u->h, s->scratch, (size_t)max, &n,
	    &err) : tb_read(s->client, u->h, s->scratch, (size_t)max, &n, &err);
	if (rc != 0)
		return tcp_raise_err(L, &err);
	lua_pushlstring(L, s->scratch, n);
	return 1;
}

static int
l_read(lua_State *L)
{
	return read_common(L, false);
}

static int
l_peek(lua_State *L)
{
	return read_common(L, true);
}

/*
 * read_line and read_until: a line of at most TB_LINE_MAX bytes; nil at
 * end of stream.  delim < 0 is read_line.
 */
static int
read_delimited(lua_State *L, struct handle *u, int delim)
{
	struct session	*s = get_session(L);
	struct tb_error	 err;
	size_t		 n;
	int		 rc;

	rc = delim < 0 ? tb_read_line(s->client, u->h, s->scratch,
	    sizeof(s->scratch), &n, &err) : tb_read_until(s->client, u->h,
	    (uint8_t)delim, s->scratch, sizeof(s->scratch), &n, &err);
	if (rc == TB_EOF) {
		lua_pushnil(L);
		return 1;
	}
	if (rc != 0)
		return tcp_raise_err(L, &err);
	lua_pushlstring(L, s->scratch, n);
	return 1;
}

/* read_line: the line without "\n" or "\r\n". */
static int
l_read_line(lua_State *L)
{
	return read_delimited(L, check_conn(L, 1), -1);
}

static int
l_read_exact(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	lua_Integer	 n = check_range(L, 2, 0, LUA_READ_EXACT_MAX, "n");
	struct tb_error	 err;
	luaL_Buffer	 b;
	char		*p;

	p = luaL_buffinitsize(L, &b, (size_t)n);
	if (tb_read_exact(get_client(L), u->h, p, (size_t)n, &err) != 0)
		return tcp_raise_err(L, &err);
	luaL_pushresultsize(&b, (size_t)n);
	return 1;
}

/* read_until(byte): up to and including byte. */
static int
l_read_until(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	lua_Integer	 delim;
	size_t		 len;
	const char	*s;

	if (lua_type(L, 2) == LUA_TSTRING) {
		s = lua_tolstring(L, 2, &len);
		if (len != 1)
			return tcp_raise(L, TB_EINVAL, "the delimiter must be one "
			    "byte");
		delim = (unsigned char)s[0];
	} else
		delim = check_range(L, 2, 0, 255, "the delimiter");
	return read_delimited(L, u, (int)delim);
}

static int
lines_next(lua_State *L)
{
	lua_settop(L, 0);
	lua_pushvalue(L, lua_upvalueindex(1));
	return l_read_line(L);
}

/* for line in conn:lines() do ... end */
static int
l_lines(lua_State *L)
{
	check_conn(L, 1);
	lua_settop(L, 1);
	lua_pushcclosure(L, lines_next, 1);
	return 1;
}

static int
l_set_nodelay(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	bool		 on = check_bool(L, 2, "the flag");
	struct tb_error	 err;

	if (tb_set_nodelay(get_client(L), u->h, on, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_set_keepalive(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	bool		 on = check_bool(L, 2, "the flag");
	struct tb_error	 err;

	if (tb_set_keepalive(get_client(L), u->h, on, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_shutdown(lua_State *L)
{
	static const char *const modes[] = { "read", "write", "both", NULL };
	struct handle	*u = check_conn(L, 1);
	struct tb_error	 err;
	const char	*how = check_string(L, 2, NULL, "how");
	int		 i;

	for (i = 0; modes[i] != NULL; i++)
		if (strcmp(how, modes[i]) == 0)
			break;
	if (modes[i] == NULL)
		return tcp_raise(L, TB_EINVAL, "how must be \"read\", \"write\" or "
		    "\"both\"");
	if (tb_shutdown(get_client(L), u->h, (tb_shutdown_how)i, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_peer_addr(lua_State *L)
{
	struct handle	*u = check_conn(L, 1);
	struct tb_error	 err;
	char		 addr[TB_ADDR_STRLEN];

	if (tb_peer_addr(get_client(L), u->h, addr, sizeof(addr), &err) != 0)
		return tcp_raise_err(L, &err);
	lua_pushstring(L, addr);
	return 1;
}

/* Methods of both kinds. */

static struct handle *
check_any(lua_State *L, int i)
{
	struct handle	*u;

	if ((u = luaL_testudata(L, i, CONN_META)) == NULL &&
	    (u = luaL_testudata(L, i, LISTENER_META)) == NULL)
		luaL_typeerror(L, i, "TcpClient or TcpListener");
	if (!u->open)
		tcp_raise(L, TB_EBADHANDLE, "the handle is closed");
	return u;
}

static int
l_set_timeout_ms(lua_State *L)
{
	struct handle	*u = check_any(L, 1);
	lua_Integer	 ms = check_range(L, 2, 0, UINT32_MAX, "ms");
	struct tb_error	 err;

	if (tb_set_timeout_ms(get_client(L), u->h, (uint32_t)ms, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_local_addr(lua_State *L)
{
	struct handle	*u = check_any(L, 1);
	struct tb_error	 err;
	char		 addr[TB_ADDR_STRLEN];

	if (tb_local_addr(get_client(L), u->h, addr, sizeof(addr), &err) != 0)
		return tcp_raise_err(L, &err);
	lua_pushstring(L, addr);
	return 1;
}

static int
l_close(lua_State *L)
{
	struct handle	*u = check_any(L, 1);
	struct tb_error	 err;

	u->open = false;
	if (tb_close(get_client(L), u->h, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

/*
 * __gc and __close: close quietly if still open.  At state close the
 * session may be gone already; then the broker has closed everything.
 */
static int
l_release(lua_State *L)
{
	struct handle	*u = lua_touserdata(L, 1);
	struct session	*s;
	struct tb_error	 err;

	if (u == NULL || !u->open)
		return 0;
	u->open = false;
	if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) {
		s = lua_touserdata(L, -1);
		if (s->client != NULL)
			tb_close(s->client, u->h, &err);
	}
	return 0;
}

static int
l_accept(lua_State *L)
{
	struct handle	*u = check_listener(L, 1);
	struct tb_error	 err;
	tb_handle	 h;

	if (tb_accept(get_client(L), u->h, &h, &err) != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, CONN_META);
	return 1;
}

/*
 * Collects the open connections and listeners of table i (nil is an
 * empty one); other values are ignored, as LuaSocket does.  Keeps each
 * one's index in the table.
 */
static size_t
select_collect(lua_State *L, int i, tb_handle *hs, lua_Integer *at,
    size_t n)
{
	struct handle	*u;
	lua_Integer	 k, len;

	if (lua_isnoneornil(L, i))
		return n;
	luaL_checktype(L, i, LUA_TTABLE);
	len = luaL_len(L, i);
	for (k = 1; k <= len; k++) {
		lua_rawgeti(L, i, k);
		if ((u = luaL_testudata(L, -1, CONN_META)) == NULL)
			u = luaL_testudata(L, -1, LISTENER_META);
		lua_pop(L, 1);
		if (u == NULL || !u->open)
			continue;
		if (n == LUA_SELECT_MAX)
			tcp_raise(L, TB_ELIMIT, "select: more than "
			    LUA_SELECT_MAX_TEXT " objects");
		hs[n] = u->h;
		at[n++] = k;
	}
	return n;
}

/* Pushes the objects of table i that are ready, keyed both ways. */
static void
select_result(lua_State *L, int i, const lua_Integer *at,
    const bool *ready, size_t from, size_t to)
{
	lua_Integer	n = 0;
	size_t		j;

	lua_newtable(L);
	for (j = from; j < to; j++) {
		if (!ready[j])
			continue;
		lua_rawgeti(L, i, at[j]);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, ++n);
		lua_pushboolean(L, 1);
		lua_rawset(L, -3);
	}
}

/*
 * tcp.select(recvt, sendt [, timeout]), as LuaSocket's socket.select:
 * the connections and listeners of recvt that can be read (or accepted)
 * without waiting, those of sendt that can be written, and "timeout"
 * when none are, after timeout seconds (nil or negative: no limit).
 * Writes never wait for the peer here, so every connection of sendt is
 * writable.
 */
static int
l_select(lua_State *L)
{
	tb_handle	 hs[LUA_SELECT_MAX];
	lua_Integer	 at[LUA_SELECT_MAX];
	bool		 ready[LUA_SELECT_MAX];
	struct tb_error	 err;
	lua_Number	 secs;
	size_t		 nrecv, nall, nready, j;
	int		 ms = -1;

	nrecv = select_collect(L, 1, hs, at, 0);
	nall = select_collect(L, 2, hs, at, nrecv);
	if (!lua_isnoneornil(L, 3)) {
		secs = luaL_checknumber(L, 3);
		if (secs >= 0)
			ms = secs * 1000 >= INT_MAX ? INT_MAX :
			    (int)(secs * 1000 + 0.999);
	}
	for (j = nrecv; j < nall; j++)
		ready[j] = true;
	if (nall > nrecv)
		ms = 0;
	if (tb_select(get_client(L), hs, nrecv, ready, ms, &nready, &err) != 0)
		return tcp_raise_err(L, &err);
	select_result(L, 1, at, ready, 0, nrecv);
	select_result(L, 2, at, ready, nrecv, nall);
	if (nready == 0 && nall == nrecv)
		lua_pushstring(L, "timeout");
	else
		lua_pushnil(L);
	return 3;
}

static int
l_tostring(lua_State *L)
{
	struct handle	*u = lua_touserdata(L, 1);
	const char	*kind = luaL_testudata(L, 1, CONN_META) != NULL ?
			    "TcpClient" : "TcpListener";

	lua_pushfstring(L, "%s (%s %I)", kind, u->open ? "handle" :
	    "closed handle", (LUAI_UACINT)u->h);
	return 1;
}

static const luaL_Reg conn_methods[] = {
	{ "write",		l_write },
	{ "write_bytes",	l_write_bytes },
	{ "write_all",		l_write_all },
	{ "read",		l_read },
	{ "read_line",		l_read_line },
	{ "read_exact",		l_read_exact },
	{ "read_until",		l_read_until },
	{ "peek",		l_peek },
	{ "lines",		l_lines },
	{ "set_timeout_ms",	l_set_timeout_ms },
	{ "set_nodelay",	l_set_nodelay },
	{ "set_keepalive",	l_set_keepalive },
	{ "shutdown",		l_shutdown },
	{ "close",		l_close },
	{ "local_addr",		l_local_addr },
	{ "peer_addr",		l_peer_addr },
	{ NULL,			NULL }
};

static const luaL_Reg listener_methods[] = {
	{ "accept",		l_accept },
	{ "set_timeout_ms",	l_set_timeout_ms },
	{ "close",		l_close },
	{ "local_addr",		l_local_addr },
	{ NULL,			NULL }
};

static const luaL_Reg handle_metamethods[] = {
	{ "__gc",		l_release },
	{ "__close",		l_release },
	{ "__tostring",		l_tostring },
	{ NULL,			NULL }
};

static void
new_class(lua_State *L, const char *meta, const luaL_Reg *methods)
{
	luaL_newmetatable(L, meta);
	luaL_setfuncs(L, handle_metamethods, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

int luaopen_tcp(lua_State *L) __attribute__((visibility("default")));

int
luaopen_tcp(lua_State *L)
{
	new_class(L, CONN_META, conn_methods);
	new_class(L, LISTENER_META, listener_methods);
	luaL_newmetatable(L, SESSION_META);
	lua_pushcfunction(L, session_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newmetatable(L, ERROR_META);
	lua_pushcfunction(L, error_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);

	lua_createtable(L, 0, 3);
	/* TcpClient is a table: callable, with connect_timeout in it. */
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_connect_timeout);
	lua_setfield(L, -2, "connect_timeout");
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_tcpclient_call);
	lua_setfield(L, -2, "__call");
	lua_setmetatable(L, -2);
	lua_setfield(L, -2, "TcpClient");
	lua_pushcfunction(L, l_tcplistener);
	lua_setfield(L, -2, "TcpListener");
	lua_pushcfunction(L, l_select);
	lua_setfield(L, -2, "select");
	return 1;
}
