/*
 * TLS for Lua scripts: the library's TLS (client-stub/tls.c) on the
 * module's connections.
 *
 *	local conn = tcp.TlsClient("example.org", 443)
 *	local conn = tcp.TcpClient(host, 25) ... conn:tls { server_name = host }
 *	local l = tcp.TlsListener("127.0.0.1:0", { certificate = c, key = k })
 *	conn:alpn()
 *
 * A TLS connection is a TcpClient like any other: the same methods
 * read and write its plaintext.
 */
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "tcp.h"
#include "tcpbroker.h"

/* Most ALPN protocols one options table names: protocols. */
#define LUA_TLS_ALPN_MAX	16

struct options {
	struct tb_tls_options	 o;
	const char		*alpn[LUA_TLS_ALPN_MAX + 1];
};

static const struct {
	const char	*name;
	size_t		 offset;
} string_options[] = {
	{ "server_name",	offsetof(struct tb_tls_options, server_name) },
	{ "ca_file",		offsetof(struct tb_tls_options, ca_file) },
	{ "ca_dir",		offsetof(struct tb_tls_options, ca_dir) },
	{ "certificate",	offsetof(struct tb_tls_options, certificate) },
	{ "key",		offsetof(struct tb_tls_options, key) },
};

static void
check_alpn(lua_State *L, const char *fn, struct options *t)
{
	lua_Integer	n, k;

	if (!lua_istable(L, -1))
		arg_error(L, fn, "alpn must be a list of strings, got %s",
		    arg_kind(L, -1));
	n = luaL_len(L, -1);
	if (n < 0 || n > LUA_TLS_ALPN_MAX)
		arg_error(L, fn, "alpn names at most %d protocols",
		    LUA_TLS_ALPN_MAX);
	for (k = 1; k <= n; k++) {
		if (lua_geti(L, -1, k) != LUA_TSTRING)
			arg_error(L, fn, "alpn[%I] must be a string, got %s",
			    (LUAI_UACINT)k, arg_kind(L, -1));
		/* The list, in the options table, keeps the string. */
		t->alpn[k - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	t->alpn[n] = NULL;
	t->o.alpn = t->alpn;
}

/*
 * The options table at index i (none or nil: the defaults) into t.  Its
 * strings stay in the table, which must stay on the stack while t is
 * used.  An unknown field is EINVAL: a misspelt option must not pass
 * silently.
 */
static void
check_options(lua_State *L, int i, const char *fn, struct options *t)
{
	const char	*key;
	size_t		 k;
	bool		*flag;

	memset(t, 0, sizeof(*t));
	if (lua_isnoneornil(L, i))
		return;
	if (!lua_istable(L, i))
		arg_error(L, fn, "the options must be a table, got %s",
		    arg_kind(L, i));
	i = lua_absindex(L, i);
	lua_pushnil(L);
	while (lua_next(L, i) != 0) {
		if (lua_type(L, -2) != LUA_TSTRING)
			arg_error(L, fn, "an option's name must be a string");
		key = lua_tostring(L, -2);
		for (k = 0; k < sizeof(string_options) /
		    sizeof(string_options[0]); k++)
			if (strcmp(key, string_options[k].name) == 0)
				break;
		flag = strcmp(key, "server") == 0 ? &t->o.server :
		    strcmp(key, "insecure_no_verify") == 0 ?
		    &t->o.insecure_no_verify : NULL;
		if (k < sizeof(string_options) / sizeof(string_options[0])) {
			if (lua_type(L, -1) != LUA_TSTRING)
				arg_error(L, fn, "%s must be a string, got %s",
				    key, arg_kind(L, -1));
			*(const char **)((char *)&t->o +
			    string_options[k].offset) = lua_tostring(L, -1);
		} else if (flag != NULL) {
			if (!lua_isboolean(L, -1))
				arg_error(L, fn, "%s must be true or false, "
				    "got %s", key, arg_kind(L, -1));
			*flag = lua_toboolean(L, -1);
		} else if (strcmp(key, "alpn") == 0)
			check_alpn(L, fn, t);
		else
			arg_error(L, fn, "unknown option \"%s\" (options: "
			    "server_name, ca_file, ca_dir, certificate, key, "
			    "alpn, server, insecure_no_verify)", key);
		lua_pop(L, 1);
	}
}

/* tcp.TlsClient(host, port [, options]) */
int
l_tlsclient(lua_State *L)
{
	struct options	 t;
	struct tb_error	 err;
	const char	*host;
	lua_Integer	 port;
	tb_handle	 h;

	host = check_string(L, 1, NULL, "TlsClient", "host");
	port = check_range(L, 2, 1, 65535, "TlsClient", "port");
	check_options(L, 3, "TlsClient", &t);
	if (t.o.server)
		arg_error(L, "TlsClient", "a client has no server option");
	if (tb_tls_connect(get_client(L), host, (uint16_t)port, &t.o, &h,
	    &err) != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, CONN_META);
	return 1;
}

/* conn:tls([options]): starts TLS on the connection; returns it. */
int
l_tls(lua_State *L)
{
	struct handle	*u = check_conn(L, "tls");
	struct options	 t;
	struct tb_error	 err;

	check_options(L, 2, "tls", &t);
	if (tb_tls_upgrade(get_client(L), u->h, &t.o, &err) != 0)
		return tcp_raise_err(L, &err);
	lua_settop(L, 1);
	return 1;
}

/* conn:alpn(): the protocol the handshake chose, or nil. */
int
l_alpn(lua_State *L)
{
	struct handle	*u = check_conn(L, "alpn");
	struct tb_error	 err;
	char		 buf[TB_TLS_ALPN_STRLEN];

	if (tb_tls_alpn(get_client(L), u->h, buf, sizeof(buf), &err) != 0)
		return tcp_raise_err(L, &err);
	if (buf[0] == '\0')
		lua_pushnil(L);
	else
		lua_pushstring(L, buf);
	return 1;
}

/*
 * tcp.TlsListener(address, options): a TcpListener whose accept runs
 * the server handshake with options (certificate and key required;
 * server is implied).
 */
int
l_tlslistener(lua_State *L)
{
	struct options	 t;
	struct tb_error	 err;
	const char	*addr = check_string(L, 1, NULL, "TlsListener",
			    "the address (\"ip:port\")");
	tb_handle	 h;

	check_options(L, 2, "TlsListener", &t);
	if (t.o.certificate == NULL || t.o.key == NULL)
		arg_error(L, "TlsListener", "the options need certificate "
		    "and key");
	if (tb_listen(get_client(L), addr, &h, &err) != 0)
		return tcp_raise_err(L, &err);
	push_handle(L, h, LISTENER_META);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 2);
	return 1;
}

/* The listener is argument 1. */
int
tls_accept(lua_State *L, tb_client *c, tb_handle listener, tb_handle *out,
    struct tb_error *err)
{
	struct options	t;
	int		rc;

	if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) {
		lua_pop(L, 1);
		return tb_accept(c, listener, out, err);
	}
	check_options(L, -1, "accept", &t);
	t.o.server = true;
	rc = tb_tls_accept(c, listener, &t.o, out, err);
	lua_pop(L, 1);
	return rc;
}
