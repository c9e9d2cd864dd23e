-- set_timeout_ms, set_nodelay, set_keepalive, shutdown, close, and the
-- lifetimes: <close> variables and garbage collection.
local tcp = require "tcp"
local T = require "testlib"

T.test("a timed-out read leaves the connection usable", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:set_timeout_ms(100)
    T.raises("ETIMEDOUT", conn.read, conn, 10)
    T.raises("ETIMEDOUT", conn.read_line, conn)
    conn:write("par")
    T.raises("ETIMEDOUT", conn.read_line, conn)
    conn:write("tial\n")
    T.eq(conn:read_line(), "partial", "nothing was lost")
    conn:set_timeout_ms(0)
    conn:close()
end)

T.test("a silent peer times out reads", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "SILENT_PORT")
    conn:set_timeout_ms(50)
    T.raises("ETIMEDOUT", conn.read_exact, conn, 1)
    T.raises("EINVAL", conn.set_timeout_ms, conn, -5)
    conn:close()
end)

T.test("nodelay and keepalive", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    T.eq(conn:set_nodelay(true), nil, "set_nodelay")
    T.eq(conn:set_keepalive(true), nil, "set_keepalive")
    conn:set_nodelay(false)
    conn:set_keepalive(false)
    T.raises("EINVAL", conn.set_nodelay, conn, 1)
    conn:close()
end)

T.test("shutdown", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:write_all "BYE\n"
    conn:shutdown "write"
    T.eq(conn:read_line(), "BYE", "the echo still comes")
    T.eq(conn:read(10), "", "then the end: the echo server saw ours")
    T.raises("EPIPE", conn.write, conn, "x")
    conn:shutdown "both"
    T.raises("EINVAL", conn.shutdown, conn, "sideways")
    conn:close()
end)

T.test("a closed handle raises EBADHANDLE, but closes again quietly", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:close()
    T.raises("EBADHANDLE", conn.write, conn, "x")
    T.raises("EBADHANDLE", conn.read, conn, 1)
    T.eq(conn:close(), nil, "a second close")
    assert(tostring(conn):find "closed", tostring(conn))
end)

T.test("<close> closes on scope exit", function()
    local kept
    do
        local conn <close> = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
        kept = conn
        conn:write "x"
    end
    T.raises("EBADHANDLE", kept.write, kept, "x")
end)

T.test("a forgotten connection is closed by the garbage collector", function()
    do
        local forgotten = tcp.TcpClient("127.0.0.1", T.port "HOLD_PORT")
        forgotten:write "x"
    end
    collectgarbage "collect"
    collectgarbage "collect"
    -- The monitor says whether the hold server saw the connection end.
    local monitor = tcp.TcpClient("127.0.0.1", T.port "MONITOR_PORT")
    T.eq(monitor:read_line(), "closed", "the broker closed it")
    monitor:close()
end)

T.finish()
