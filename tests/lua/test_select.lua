-- tcp.select, shaped as LuaSocket's socket.select, and reads from the
-- stream: many connections, listeners, time-outs with partial data.
local tcp = require "tcp"
local T = require "testlib"

-- Connections the many-connection cases open: more than 32 (issue 9).
local MANY = 100

T.test("read_line on many connections at once", function()
    local conns = {}
    for i = 1, MANY do
        conns[i] = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    end
    for i = 1, MANY do
        T.eq(conns[i]:read_line(), "hello", "first line " .. i)
    end
    for i = 1, MANY do
        T.eq(conns[i]:read_line(), "world", "second line " .. i)
        conns[i]:close()
    end
end)

T.test("select finds the connections with data, keyed both ways", function()
    local conns = {}
    for i = 1, MANY do
        conns[i] = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    end
    local r, w, err = tcp.select(conns, nil, 0.05)
    T.eq(#r, 0, "nothing readable yet")
    T.eq(#w, 0, "no write set")
    T.eq(err, "timeout", "timeout")
    conns[42]:write_all("ping\n")
    r, w, err = tcp.select(conns, nil, 5)
    T.eq(err, nil, "no error")
    T.eq(#r, 1, "one readable")
    T.eq(r[1], conns[42], "the one written to")
    T.eq(r[conns[42]], true, "keyed by the connection too")
    T.eq(r[conns[1]], nil, "not the others")
    T.eq(conns[42]:read_line(), "ping", "its data")
    -- Writable: a write never waits on the client's side.
    r, w, err = tcp.select(nil, { conns[1], conns[2] }, nil)
    T.eq(#w, 2, "both writable")
    T.eq(err, nil, "no error")
    -- Closed objects and other values are ignored, as LuaSocket does.
    conns[3]:close()
    r, w, err = tcp.select({ conns[3], "not a socket", 7 }, {}, 0)
    T.eq(#r, 0, "nothing")
    T.eq(err, "timeout", "timeout")
    for i = 1, MANY do
        if i ~= 3 then
            conns[i]:close()
        end
    end
end)

T.test("a listener is readable when a connection waits", function()
    local l = tcp.TcpListener("127.0.0.1:0")
    local port = tonumber(l:local_addr():match(":(%d+)$"))
    local r, _, err = tcp.select({ l }, nil, 0.05)
    T.eq(err, "timeout", "nobody yet")
    local client = tcp.TcpClient("127.0.0.1", port)
    r, _, err = tcp.select({ l }, nil, 5)
    T.eq(r[1], l, "ready to accept")
    local server = l:accept()
    r, _, err = tcp.select({ l, server }, nil, 0)
    T.eq(err, "timeout", "accepted: nothing ready")
    client:write_all("hi\n")
    r, _, err = tcp.select({ l, server }, nil, 5)
    T.eq(#r, 1, "one ready")
    T.eq(r[1], server, "the accepted connection")
    T.eq(server:read_line(), "hi", "its line")
    client:close()
    server:close()
    l:close()
end)

T.test("a time-out leaves a partial line to read", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:write_all("partial")
    T.eq(conn:peek(1), "p", "it came")
    conn:set_timeout_ms(100)
    T.raises("ETIMEDOUT", conn.read_line, conn)
    T.raises("ETIMEDOUT", conn.read_exact, conn, 8)
    T.eq(conn:read_exact(7), "partial", "all of it still there")
    conn:close()
end)

T.finish()
