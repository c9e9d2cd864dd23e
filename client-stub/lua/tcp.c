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
 * as tables { code = "EPOLICY", message = "...", where = "file:line",
 * traceback = "..." } with a __tostring; argument errors too (EINVAL).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "tcp.h"
#include "tcpbroker.h"

#define SESSION_META	"tcp.session"
#define ERROR_META	"tcp.error"

/* Largest n read_exact takes in one call: bytes. */
#define LUA_READ_EXACT_MAX	(16 * 1024 * 1024)
/* Largest result of read_all, and its default max: bytes. */
#define LUA_READ_ALL_MAX	(16 * 1024 * 1024)
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
	lua_State	*main;		/* the state's main thread */
	char		 scratch[TB_LINE_MAX];
};
_Static_assert(TB_DATA_MAX <= TB_LINE_MAX, "reads fit the scratch buffer");

/*
 * The place in the script a call came from: the nearest Lua function on
 * the stack, as error(msg, 2) names it ("script.lua:12"), or "" when
 * there is none (a call from C).
 */
static void
push_where(lua_State *L)
{
	lua_Debug	ar;
	int		level;

	for (level = 1; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			lua_pushfstring(L, "%s:%d", ar.short_src,
			    ar.currentline);
			return;
		}
	}
	lua_pushliteral(L, "");
}

/*
 * Raises { code = name, message = text, where = "file:line", traceback
 * = "stack traceback: ..." } as the Lua error.  The table is returned
 * as it is by debug.traceback (which passes every non-string value
 * through), so the stack is kept in it here, where it is still known.
 */
static void
push_error(lua_State *L, int code, const char *message)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, tb_err_name(code));
	lua_setfield(L, -2, "code");
	lua_pushstring(L, message);
	lua_setfield(L, -2, "message");
	push_where(L);
	lua_setfield(L, -2, "where");
	luaL_traceback(L, L, NULL, 1);
	lua_setfield(L, -2, "traceback");
	luaL_setmetatable(L, ERROR_META);
}

int
tcp_raise(lua_State *L, int code, const char *message)
{
	push_error(L, code, message);
	return lua_error(L);
}

/* As tcp_raise, with the string at index partial as the error's partial. */
static int
tcp_raise_partial(lua_State *L, const struct tb_error *err, int partial)
{
	push_error(L, err->code, err->message);
	lua_pushvalue(L, partial);
	lua_setfield(L, -2, "partial");
	return lua_error(L);
}

static int tcp_raise_interrupted(lua_State *, const struct tb_error *);

int
tcp_raise_err(lua_State *L, const struct tb_error *err)
{
	if (err->code == TB_EINTR)
		return tcp_raise_interrupted(L, err);
	return tcp_raise(L, err->code, err->message);
}

/* "script.lua:12: ECONNREFUSED: connect to ...: connection refused" */
static int
error_tostring(lua_State *L)
{
	const char	*where;

	lua_getfield(L, 1, "where");
	lua_getfield(L, 1, "code");
	lua_getfield(L, 1, "message");
	where = lua_tostring(L, -3);
	lua_pushfstring(L, "%s%s%s: %s", where != NULL ? where : "",
	    where != NULL && *where != '\0' ? ": " : "",
	    luaL_optstring(L, -2, "?"), luaL_optstring(L, -1, ""));
	return 1;
}

/*
 * The stand-alone interpreter's SIGINT handler (lua.c) sets a hook on
 * the main thread, with this mask and a count of 1, that raises
 * "interrupted!" at the next instruction.  A signal is wanted when that
 * hook is there: a call waiting on the broker then stops at once.
 */
#define INTERRUPT_HOOK_MASK	(LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | \
				    LUA_MASKCOUNT)

static bool
interrupt_wanted(void *arg)
{
	lua_State	*main = arg;

	return lua_gethook(main) != NULL &&
	    lua_gethookmask(main) == INTERRUPT_HOOK_MASK &&
	    lua_gethookcount(main) == 1;
}

/*
 * A call interrupted by a signal: run the interpreter's hook now, which
 * raises its usual "interrupted!"; else raise EINTR.
 */
static int
tcp_raise_interrupted(lua_State *L, const struct tb_error *err)
{
	lua_State	*main;
	lua_Hook	 hook;
	lua_Debug	 ar;

	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	main = lua_tothread(L, -1);
	lua_pop(L, 1);
	if (interrupt_wanted(main)) {
		hook = lua_gethook(main);
		lua_sethook(main, NULL, 0, 0);
		memset(&ar, 0, sizeof(ar));
		ar.event = LUA_HOOKCOUNT;
		hook(L, &ar);
	}
	return tcp_raise(L, err->code, err->message);
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
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	s->main = lua_tothread(L, -1);
	lua_pop(L, 1);
	tb_client_set_interrupt(s->client, interrupt_wanted, s->main);
	return s;
}

tb_client *
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

/*
 * A new handle userdata that keeps the session alive (user value 1);
 * user value 2 holds a TlsListener's options.
 */
void
push_handle(lua_State *L, tb_handle h, const char *meta)
{
	struct handle	*u = lua_newuserdatauv(L, sizeof(*u), 2);

	u->h = h;
	u->open = true;
	u->name[0] = '\0';
	lua_rawgetp(L, LUA_REGISTRYINDEX, &session_key);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, meta);
}

/* Raises EINVAL with "fn: " and the formatted text. */
int
arg_error(lua_State *L, const char *fn, const char *fmt, ...)
{
	va_list	ap;

	lua_pushfstring(L, "%s: ", fn);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	return tcp_raise(L, TB_EINVAL, lua_tostring(L, -1));
}

/* What a wrong argument is, for messages: "nothing", "a string", ... */
const char *
arg_kind(lua_State *L, int i)
{
	switch (lua_type(L, i)) {
	case LUA_TNONE:
	case LUA_TNIL:
		return "nothing";
	case LUA_TNUMBER:
		return lua_isinteger(L, i) ? "an integer" : "a number";
	case LUA_TUSERDATA:
		if (luaL_testudata(L, i, CONN_META) != NULL)
			return "a TcpClient";
		if (luaL_testudata(L, i, LISTENER_META) != NULL)
			return "a TcpListener";
		return "a userdata";
	default:
		return lua_pushfstring(L, "a %s", luaL_typename(L, i));
	}
}

/*
 * Argument 1 of a method as an open handle: a connection, a listener
 * (meta NULL: either).  A method called with a dot instead of a colon
 * lands here with its first real argument.
 */
struct handle *
check_handle(lua_State *L, const char *meta, const char *fn)
{
	struct handle	*u = NULL;
	const char	*want = meta == NULL ? "a TcpClient or TcpListener" :
			    strcmp(meta, CONN_META) == 0 ? "a TcpClient" :
			    "a TcpListener";

	if (meta != NULL)
		u = luaL_testudata(L, 1, meta);
	else if ((u = luaL_testudata(L, 1, CONN_META)) == NULL)
		u = luaL_testudata(L, 1, LISTENER_META);
	if (u == NULL)
		arg_error(L, fn, "expected %s as the object, got %s (call "
		    "methods with a colon: obj:%s(...))", want, arg_kind(L, 1),
		    fn);
	if (!u->open)
		tcp_raise(L, TB_EBADHANDLE, lua_pushfstring(L, "%s: the %s is "
		    "closed", fn, luaL_testudata(L, 1, CONN_META) != NULL ?
		    "connection" : "listener"));
	return u;
}


/* An integer argument in [lo, hi], or EINVAL saying which and why. */
lua_Integer
check_range(lua_State *L, int i, lua_Integer lo, lua_Integer hi,
    const char *fn, const char *what)
{
	lua_Integer	v;
	int		ok;

	v = lua_tointegerx(L, i, &ok);
	if (lua_isnoneornil(L, i))
		arg_error(L, fn, "%s is missing", what);
	if (!ok)
		arg_error(L, fn, "%s must be an integer, got %s", what,
		    arg_kind(L, i));
	if (v < lo || v > hi) {
		if (hi == LUA_MAXINTEGER)
			arg_error(L, fn, "%s must be at least %I, got %I", what,
			    (LUAI_UACINT)lo, (LUAI_UACINT)v);
		arg_error(L, fn, "%s must be from %I to %I, got %I", what,
		    (LUAI_UACINT)lo, (LUAI_UACINT)hi, (LUAI_UACINT)v);
	}
	return v;
}

static bool
check_bool(lua_State *L, int i, const char *fn, const char *what)
{
	if (!lua_isboolean(L, i))
		arg_error(L, fn, "%s must be true or false, got %s", what,
		    arg_kind(L, i));
	return lua_toboolean(L, i);
}

const char *
check_string(lua_State *L, int i, size_t *len, const char *fn,
    const char *what)
{
	if (lua_type(L, i) != LUA_TSTRING)
		arg_error(L, fn, "%s must be a string, got %s", what,
		    arg_kind(L, i));
	return lua_tolstring(L, i, len);
}

/*
 * Data for write_bytes and write_all: a string, or a table of byte
 * values such as {0x48, 0x69}, which is packed into a new string.
 */
static const char *
check_data(lua_State *L, int i, size_t *len, const char *fn)
{
	luaL_Buffer	b;
	lua_Integer	n, k, v;
	int		ok;

	if (lua_type(L, i) == LUA_TSTRING)
		return lua_tolstring(L, i, len);
	if (lua_type(L, i) != LUA_TTABLE)
		arg_error(L, fn, "data must be a string or a table of byte "
		    "values, got %s", arg_kind(L, i));
	n = luaL_len(L, i);
	if (n < 0 || n > LUA_BYTES_MAX)
		tcp_raise(L, TB_ELIMIT, lua_pushfstring(L, "%s: more than %d "
		    "byte values", fn, LUA_BYTES_MAX));
	luaL_buffinit(L, &b);
	for (k = 1; k <= n; k++) {
		lua_geti(L, i, k);
		v = lua_tointegerx(L, -1, &ok);
		lua_pop(L, 1);
		if (!ok || v < 0 || v > 255)
			arg_error(L, fn, "byte %I is not an integer from 0 to "
			    "255", (LUAI_UACINT)k);
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
	const char	*fn = timed ? "connect_timeout" : "TcpClient";
	struct tb_error	 err;
	tb_client	*c;
	const char	*host;
	tb_handle	 h;
	lua_Integer	 port, ms = 0;
	int		 rc;

	host = check_string(L, first, NULL, fn, "host");
	port = check_range(L, first + 1, 1, 65535, fn, "port");
	if (timed)
		ms = check_range(L, first + 2, 1, UINT32_MAX, fn,
		    "ms (the timeout in milliseconds)");
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
	const char	*addr = check_string(L, 1, NULL, "TcpListener",
			    "the address (\"ip:port\")");
	tb_client	*c = get_client(L);
	tb_handle	 h;

	if (tb_listen(c, addr, &h, &err) != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, LISTENER_META);
	return 1;
}

/* Connection methods. */

static int
write_common(lua_State *L, const char *fn, bool bytes)
{
	struct handle	*u = check_conn(L, fn);
	struct tb_error	 err;
	const char	*data;
	size_t		 len, n;
	int		 rc;

	data = bytes ? check_data(L, 2, &len, fn) : check_string(L, 2, &len,
	    fn, "data");
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
	return write_common(L, "write", false);
}

static int
l_write_bytes(lua_State *L)
{
	return write_common(L, "write_bytes", true);
}

static int
l_write_all(lua_State *L)
{
	struct handle	*u = check_conn(L, "write_all");
	struct tb_error	 err;
	const char	*data;
	size_t		 len;

	data = check_data(L, 2, &len, "write_all");
	if (tb_write_all(get_client(L), u->h, data, len, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

/* read and peek: up to max bytes, "" at end of stream. */
static int
read_common(lua_State *L, const char *fn, bool peek)
{
	struct handle	*u = check_conn(L, fn);
	lua_Integer	 max = check_range(L, 2, 0, LUA_MAXINTEGER, fn,
			    "max (the most bytes to return)");
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
	return read_common(L, "read", false);
}

static int
l_peek(lua_State *L)
{
	return read_common(L, "peek", true);
}

/*
 * read_all([max]): every byte up to the end of the stream, at most max
 * (default and limit LUA_READ_ALL_MAX).  Bytes read before an error
 * (ELIMIT when more than max come, ETIMEDOUT, ECONNRESET) are consumed
 * and handed over in the error's `partial` field.
 */
static int
l_read_all(lua_State *L)
{
	struct handle	*u = check_conn(L, "read_all");
	lua_Integer	 max = LUA_READ_ALL_MAX;
	struct session	*s;
	struct tb_error	 err;
	luaL_Buffer	 b;
	size_t		 got = 0, want, n;
	int		 rc;

	if (!lua_isnoneornil(L, 2))
		max = check_range(L, 2, 0, LUA_READ_ALL_MAX, "read_all",
		    "max (the most bytes to return)");
	s = get_session(L);
	lua_settop(L, 1);
	luaL_buffinit(L, &b);
	for (;;) {
		want = (size_t)max - got;
		if (want > TB_DATA_MAX)
			want = TB_DATA_MAX;
		if (want > 0)
			rc = tb_read(s->client, u->h, s->scratch, want, &n,
			    &err);
		else if ((rc = tb_peek(s->client, u->h, s->scratch, 1, &n,
		    &err)) == 0 && n > 0) {
			rc = TB_ELIMIT;
			snprintf(err.message, sizeof(err.message), "read_all: "
			    "the stream goes on past %zu bytes; they are in "
			    "the error's partial field, the rest is unread",
			    got);
			err.code = rc;
		}
		if (rc != 0)
			break;
		if (n == 0) {
			luaL_pushresult(&b);
			return 1;
		}
		luaL_addlstring(&b, s->scratch, n);
		got += n;
	}
	luaL_pushresult(&b);
	if (got > 0 && rc != TB_ELIMIT) {
		size_t len = strlen(err.message);
		snprintf(err.message + len, sizeof(err.message) - len,
		    " (%zu bytes read before it are in the error's partial "
		    "field)", got);
	}
	return tcp_raise_partial(L, &err, lua_gettop(L));
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
	return read_delimited(L, check_conn(L, "read_line"), -1);
}

static int
l_read_exact(lua_State *L)
{
	struct handle	*u = check_conn(L, "read_exact");
	lua_Integer	 n = check_range(L, 2, 0, LUA_READ_EXACT_MAX,
			    "read_exact", "n (the bytes to read)");
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
	struct handle	*u = check_conn(L, "read_until");
	lua_Integer	 delim;
	size_t		 len;
	const char	*s;

	if (lua_type(L, 2) == LUA_TSTRING) {
		s = lua_tolstring(L, 2, &len);
		if (len != 1)
			return arg_error(L, "read_until", "the delimiter must be "
			    "one byte, got a string of %d", (int)len);
		delim = (unsigned char)s[0];
	} else
		delim = check_range(L, 2, 0, 255, "read_until",
		    "the delimiter (a byte value or a one-byte string)");
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
	check_conn(L, "lines");
	lua_settop(L, 1);
	lua_pushcclosure(L, lines_next, 1);
	return 1;
}

static int
l_set_nodelay(lua_State *L)
{
	struct handle	*u = check_conn(L, "set_nodelay");
	bool		 on = check_bool(L, 2, "set_nodelay", "the flag");
	struct tb_error	 err;

	if (tb_set_nodelay(get_client(L), u->h, on, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_set_keepalive(lua_State *L)
{
	struct handle	*u = check_conn(L, "set_keepalive");
	bool		 on = check_bool(L, 2, "set_keepalive", "the flag");
	struct tb_error	 err;

	if (tb_set_keepalive(get_client(L), u->h, on, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

static int
l_shutdown(lua_State *L)
{
	static const char *const modes[] = { "read", "write", "both", NULL };
	struct handle	*u = check_conn(L, "shutdown");
	struct tb_error	 err;
	const char	*how = check_string(L, 2, NULL, "shutdown", "how");
	int		 i;

	for (i = 0; modes[i] != NULL; i++)
		if (strcmp(how, modes[i]) == 0)
			break;
	if (modes[i] == NULL)
		return arg_error(L, "shutdown", "how must be \"read\", "
		    "\"write\" or \"both\", got \"%s\"", how);
	if (tb_shutdown(get_client(L), u->h, (tb_shutdown_how)i, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

/* Addresses. */

static void
addr_call(lua_State *L, struct handle *u, bool peer, char *addr)
{
	struct tb_error	 err;
	int		 rc;

	rc = peer ? tb_peer_addr(get_client(L), u->h, addr, TB_ADDR_STRLEN,
	    &err) : tb_local_addr(get_client(L), u->h, addr, TB_ADDR_STRLEN,
	    &err);
	if (rc != 0)
		tcp_raise_err(L, &err);
}

static int
l_peer_addr(lua_State *L)
{
	char	addr[TB_ADDR_STRLEN];

	addr_call(L, check_conn(L, "peer_addr"), true, addr);
	lua_pushstring(L, addr);
	return 1;
}

static int
l_local_addr(lua_State *L)
{
	char	addr[TB_ADDR_STRLEN];

	addr_call(L, check_any(L, "local_addr"), false, addr);
	lua_pushstring(L, addr);
	return 1;
}

/* getpeername and getsockname, as LuaSocket: host, port, family. */
static int
push_name(lua_State *L, const char *addr)
{
	struct tb_error	err;
	char		host[TB_ADDR_STRLEN];
	uint16_t	port;

	if (tb_addr_split(addr, host, sizeof(host), &port, &err) != 0)
		return tcp_raise_err(L, &err);
	lua_pushstring(L, host);
	lua_pushinteger(L, port);
	lua_pushstring(L, strchr(host, ':') != NULL ? "inet6" : "inet");
	return 3;
}

static int
l_getpeername(lua_State *L)
{
	char	addr[TB_ADDR_STRLEN];

	addr_call(L, check_conn(L, "getpeername"), true, addr);
	return push_name(L, addr);
}

static int
l_getsockname(lua_State *L)
{
	char	addr[TB_ADDR_STRLEN];

	addr_call(L, check_any(L, "getsockname"), false, addr);
	return push_name(L, addr);
}

/* Methods of both kinds. */

static int
l_set_timeout_ms(lua_State *L)
{
	struct handle	*u = check_any(L, "set_timeout_ms");
	lua_Integer	 ms = check_range(L, 2, 0, UINT32_MAX, "set_timeout_ms",
			    "ms (milliseconds, 0 for none)");
	struct tb_error	 err;

	if (tb_set_timeout_ms(get_client(L), u->h, (uint32_t)ms, &err) != 0)
		return tcp_raise_err(L, &err);
	return 0;
}

/* close: a handle closed already is left as it is, as LuaSocket does. */
static int
l_close(lua_State *L)
{
	struct handle	*u;
	struct tb_error	 err;

	if ((u = luaL_testudata(L, 1, CONN_META)) == NULL &&
	    (u = luaL_testudata(L, 1, LISTENER_META)) == NULL)
		check_any(L, "close");		/* raises EINVAL */
	if (!u->open)
		return 0;
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
	struct handle	*u = check_listener(L, "accept");
	struct tb_error	 err;
	tb_handle	 h;

	if (tls_accept(L, get_client(L), u->h, &h, &err) != 0)
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
	if (!lua_istable(L, i))
		arg_error(L, "select", "%s must be a table or nil, got %s",
		    i == 1 ? "recvt" : "sendt", arg_kind(L, i));
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
	int		 ms = -1, isnum;

	nrecv = select_collect(L, 1, hs, at, 0);
	nall = select_collect(L, 2, hs, at, nrecv);
	if (!lua_isnoneornil(L, 3)) {
		secs = lua_tonumberx(L, 3, &isnum);
		if (!isnum)
			arg_error(L, "select", "timeout must be a number of "
			    "seconds or nil, got %s", arg_kind(L, 3));
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

/*
 * "TcpClient (peer 127.0.0.1:9000)", "TcpListener (on 127.0.0.1:5000)".
 * The address is asked for once, then kept; it is never an error here.
 */
static int
l_tostring(lua_State *L)
{
	struct handle	*u = lua_touserdata(L, 1);
	struct session	*s;
	struct tb_error	 err;
	bool		 conn = luaL_testudata(L, 1, CONN_META) != NULL;
	int		 rc = -1;

	if (u->name[0] == '\0' && u->open &&
	    lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA &&
	    (s = lua_touserdata(L, -1))->client != NULL) {
		rc = conn ? tb_peer_addr(s->client, u->h, u->name,
		    sizeof(u->name), &err) : tb_local_addr(s->client, u->h,
		    u->name, sizeof(u->name), &err);
		if (rc != 0)
			u->name[0] = '\0';
	}
	if (u->name[0] == '\0')
		lua_pushfstring(L, "%s (%s %I)", conn ? "TcpClient" :
		    "TcpListener", u->open ? "handle" : "closed handle",
		    (LUAI_UACINT)u->h);
	else
		lua_pushfstring(L, "%s (%s%s %s)", conn ? "TcpClient" :
		    "TcpListener", u->open ? "" : "closed, ", conn ? "peer" :
		    "on", u->name);
	return 1;
}

static const luaL_Reg conn_methods[] = {
	{ "write",		l_write },
	{ "write_bytes",	l_write_bytes },
	{ "write_all",		l_write_all },
	{ "read",		l_read },
	{ "read_all",		l_read_all },
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
	{ "getsockname",	l_getsockname },
	{ "getpeername",	l_getpeername },
	{ "tls",		l_tls },
	{ "alpn",		l_alpn },
	{ NULL,			NULL }
};

static const luaL_Reg listener_methods[] = {
	{ "accept",		l_accept },
	{ "set_timeout_ms",	l_set_timeout_ms },
	{ "close",		l_close },
	{ "local_addr",		l_local_addr },
	{ "getsockname",	l_getsockname },
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

#include "socket_lua.h"

int luaopen_tcp(lua_State *L) __attribute__((visibility("default")));
int luaopen_tcp_socket(lua_State *L) __attribute__((visibility("default")));

/*
 * require "tcp.socket": LuaSocket's calls over the plugin (lua/socket.lua,
 * built in), found by Lua's all-in-one loader in tcp.so.
 */
int
luaopen_tcp_socket(lua_State *L)
{
	if (luaL_loadbufferx(L, socket_lua, sizeof(socket_lua), "=tcp.socket",
	    "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	return 1;
}

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
	lua_pushcfunction(L, l_tlsclient);
	lua_setfield(L, -2, "TlsClient");
	lua_pushcfunction(L, l_tlslistener);
	lua_setfield(L, -2, "TlsListener");
	return 1;
}
