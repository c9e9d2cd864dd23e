-- What a script author meets: errors that say where they came from
-- and what happened, xpcall with debug.traceback, argument errors,
-- close twice, read_all, and addresses as host and port.
local tcp = require "tcp"
local T = require "testlib"

local function line() return debug.getinfo(2, "l").currentline end

T.test("an error names the script's file and line", function()
    local at
    local ok, err = pcall(function()
        at = line(); tcp.TcpClient("127.0.0.1", T.port "CLOSED_PORT")
    end)
    assert(not ok)
    T.eq(err.code, "ECONNREFUSED", "code")
    assert(err.where:match "test_errors%.lua:%d+$", err.where)
    T.eq(err.where:match ":(%d+)$", tostring(at), "the caller's line")
    T.eq(tostring(err), err.where .. ": ECONNREFUSED: " .. err.message,
        "tostring")
    assert(not err.message:find "test_errors", "message stays plain")
end)

T.test("a call from C is placed at the nearest Lua line", function()
    local at = line(); local ok, err = pcall(tcp.TcpClient, 127, 80)
    assert(not ok)
    T.eq(err.code, "EINVAL", "code")
    T.eq(err.where:match ":(%d+)$", tostring(at), "the pcall's line")
end)

T.test("xpcall with debug.traceback keeps the table and its stack", function()
    local at
    local function inner()
        at = line(); tcp.TcpClient("127.0.0.1", T.port "CLOSED_PORT")
    end
    local ok, err = xpcall(function() inner() end, debug.traceback)
    assert(not ok)
    -- debug.traceback passes a non-string value through untouched ...
    T.eq(type(err), "table", "the error is still the table")
    T.eq(debug.traceback(err), err, "debug.traceback(err)")
    T.eq(err.code, "ECONNREFUSED", "code")
    -- ... so the table carries the stack of the failing call.
    assert(err.traceback:match "^stack traceback:", err.traceback)
    assert(err.traceback:find("test_errors.lua:" .. at .. ": in", 1, true),
        err.traceback)
    assert(err.traceback:find "'inner'", err.traceback)
end)

T.test("an uncaught error shows where it came from", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('local tcp = require "tcp"\n',
        'tcp.TcpClient("127.0.0.1", ', T.port "CLOSED_PORT", ')\n')
    f:close()
    local p = assert(io.popen(string.format("%q %q 2>&1", arg[-1], path)))
    local out = p:read "a"
    local ok, how, status = p:close()
    os.remove(path)
    T.eq(ok, nil, "the script fails")
    T.eq(how .. status, "exit1", "exit status")
    local name = path:match "[^/]+$"
    assert(out:find(name .. ":2: ECONNREFUSED: connect to 127.0.0.1:", 1,
        true), out)
end)

T.test("argument errors are EINVAL tables that say what is wrong", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    local err = T.raises("EINVAL", function() conn.write("x") end)
    assert(err.message:find "write: expected a TcpClient" and
        err.message:find "got a string" and err.message:find "colon",
        err.message)
    err = T.raises("EINVAL", function() conn:read() end)
    T.eq(err.message, "read: max (the most bytes to return) is missing",
        "read without max")
    err = T.raises("EINVAL", conn.read, conn, -1)
    assert(err.message:find "at least 0, got %-1" and
        not err.message:find "9223372036854775807", err.message)
    err = T.raises("EINVAL", conn.read, conn, 1.5)
    assert(err.message:find "must be an integer, got a number", err.message)
    err = T.raises("EINVAL", conn.set_nodelay, conn, "yes")
    assert(err.message:find "true or false, got a string", err.message)
    err = T.raises("EINVAL", tcp.TcpClient, "127.0.0.1", 70000)
    T.eq(err.message, "TcpClient: port must be from 1 to 65535, got 70000",
        "port")
    T.raises("EINVAL", tcp.select, "x")
    T.raises("EINVAL", tcp.select, {}, nil, "soon")
    T.raises("EINVAL", conn.close, "x")
    local server = tcp.TcpListener "127.0.0.1:0"
    err = T.raises("EINVAL", conn.read, server, 1)
    assert(err.message:find "got a TcpListener", err.message)
    server:close()
    conn:close()
    err = T.raises("EBADHANDLE", conn.read, conn, 1)
    T.eq(err.message, "read: the connection is closed", "closed")
end)

T.test("close twice is a no-op", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:close()
    T.eq(conn:close(), nil, "second close")
    T.eq(conn:close(), nil, "third close")
    local server = tcp.TcpListener "127.0.0.1:0"
    server:close()
    server:close()
    do local c <close> = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
        c:close() end
end)

T.test("read_all reads to the end of the stream", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    T.eq(conn:read_all(), "hello\r\nworld\n\nlast", "all of it")
    T.eq(conn:read_all(), "", "then nothing")
    conn:close()

    conn = tcp.TcpClient("127.0.0.1", T.port "BINARY_PORT")
    T.eq(#conn:read_all(256), 256, "exactly max")
    conn:close()

    conn = tcp.TcpClient("127.0.0.1", T.port "BINARY_PORT")
    local err = T.raises("ELIMIT", conn.read_all, conn, 5)
    T.eq(err.partial, "\0\1\2\3\4", "the bytes read are handed over")
    local rest = conn:read_all()
    T.eq(#rest, 251, "the rest stays unread")
    T.eq(rest:byte(1), 5, "from where it stopped")
    conn:close()

    -- A large body, over several of the broker's pushes.
    conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    local big = string.rep("0123456789", 30000)
    conn:write_all(big)
    conn:shutdown "write"
    T.eq(conn:read_all(), big, "300 000 bytes")
    conn:close()
end)

T.test("read_all that times out keeps what it read", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:set_timeout_ms(200)
    conn:write "abc"
    local err = T.raises("ETIMEDOUT", conn.read_all, conn)
    T.eq(err.partial, "abc", "partial")
    assert(err.message:find "3 bytes", err.message)
    conn:write "d"
    T.eq(conn:read(10), "d", "the connection is still usable")
    T.raises("EINVAL", conn.read_all, conn, -1)
    conn:close()
end)

T.test("addresses as host and port, tostring names the peer", function()
    local port = T.port "ECHO_PORT"
    local conn = tcp.TcpClient("127.0.0.1", port)
    local host, p, family = conn:getpeername()
    T.eq(host, "127.0.0.1", "peer host")
    T.eq(p, port, "peer port")
    T.eq(family, "inet", "family")
    host, p, family = conn:getsockname()
    T.eq(host, "127.0.0.1", "local host")
    assert(math.type(p) == "integer" and p > 0, "local port")
    T.eq(tostring(conn), "TcpClient (peer 127.0.0.1:" .. port .. ")",
        "tostring")
    conn:close()
    T.eq(tostring(conn), "TcpClient (closed, peer 127.0.0.1:" .. port ..
        ")", "tostring once closed")

    local server = tcp.TcpListener "[::1]:0"
    host, p, family = server:getsockname()
    T.eq(host, "::1", "no brackets in the host")
    T.eq(family, "inet6", "family")
    T.eq(tostring(server), "TcpListener (on [::1]:" .. p .. ")", "tostring")
    local c6 = tcp.TcpClient("::1", p)
    local a = server:accept()
    host = a:getpeername()
    T.eq(host, "::1", "accepted peer")
    T.raises("EINVAL", function() return a.getpeername(server) end)
    a:close()
    c6:close()
    server:close()
end)

T.test("messages say what happened", function()
    -- IPv6 literals in brackets.
    local err = T.raises("ECONNREFUSED", tcp.TcpClient, "::1",
        T.port "CLOSED_PORT")
    T.eq(err.message, "connect to [::1]:" .. T.port "CLOSED_PORT" ..
        ": connection refused", "bracketed")

    -- A read that timed out with part of what it wanted.
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:set_timeout_ms(100)
    err = T.raises("ETIMEDOUT", conn.read_line, conn)
    assert(err.message:find "no data within the timeout", err.message)
    conn:write "abc"
    err = T.raises("ETIMEDOUT", conn.read_line, conn)
    assert(err.message:find "no complete line within the timeout, only 3 "
        .. "bytes", err.message)
    err = T.raises("ETIMEDOUT", conn.read_exact, conn, 10)
    assert(err.message:find "only 3 of 10 bytes", err.message)
    conn:write "\n"
    T.eq(conn:read_line(), "abc", "still usable, nothing lost")
    conn:close()

    -- A write to a peer that has gone counts the bytes of the whole call.
    conn = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    conn:read_all()
    local big = string.rep("x", 100000)
    local ok
    for _ = 1, 50 do
        ok, err = pcall(conn.write_all, conn, big)
        if not ok then break end
    end
    assert(not ok, "the writes kept succeeding")
    assert(err.code == "EPIPE" or err.code == "ECONNRESET", err.code)
    assert(err.message:find "of the 100000 bytes of this call", err.message)
    conn:close()
end)

T.finish()
