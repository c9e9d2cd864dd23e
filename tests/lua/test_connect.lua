-- TcpClient, TcpClient.connect_timeout, and their errors.
local tcp = require "tcp"
local T = require "testlib"

T.test("TcpClient by address and by name", function()
    for _, host in ipairs { "127.0.0.1", "localhost" } do
        local conn = tcp.TcpClient(host, T.port "ECHO_PORT")
        T.eq(conn:write("ping\n"), 5, "write")
        T.eq(conn:read_line(), "ping", "echo")
        T.eq(conn:peer_addr(), "127.0.0.1:" .. T.port "ECHO_PORT", "peer")
        assert(conn:local_addr():match "^127%.0%.0%.1:%d+$")
        conn:close()
    end
end)

T.test("method call and plugin call are the same", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    T.eq(conn.write(conn, "a\n"), 2, "conn.write(conn, s)")
    T.eq(conn.read_line(conn), "a", "conn.read_line(conn)")
    conn.close(conn)
end)

T.test("connect_timeout connects", function()
    local conn = tcp.TcpClient.connect_timeout("127.0.0.1",
        T.port "ECHO_PORT", 3000)
    conn:close()
end)

T.test("connect_timeout times out", function()
    local err = T.raises("ETIMEDOUT", tcp.TcpClient.connect_timeout,
        "127.0.0.1", T.port "FULL_PORT", 200)
    assert(err.message:find "timeout", err.message)
end)

T.test("refused", function()
    T.raises("ECONNREFUSED", tcp.TcpClient, "127.0.0.1", T.port "CLOSED_PORT")
end)

T.test("denied by policy, with the reason", function()
    local err = T.raises("EPOLICY", tcp.TcpClient, "10.0.0.1", 80)
    assert(err.message:find "denied by", err.message)
    T.raises("EPOLICY", tcp.TcpClient, "127.0.0.1", 22)
end)

T.test("bad arguments", function()
    T.raises("EINVAL", tcp.TcpClient, "2130706433", 80)
    T.raises("EINVAL", tcp.TcpClient, "127.0.0.1", 0)
    T.raises("EINVAL", tcp.TcpClient, "127.0.0.1", 70000)
    T.raises("EINVAL", tcp.TcpClient, "127.0.0.1", "eighty")
    T.raises("EINVAL", tcp.TcpClient, 127, 80)
    T.raises("EINVAL", tcp.TcpClient.connect_timeout, "127.0.0.1", 80, 0)
end)

T.test("errors print well and work with pcall", function()
    local ok, err = pcall(tcp.TcpClient, "10.0.0.1", 80)
    assert(not ok)
    T.eq(err.code, "EPOLICY", "code")
    assert(tostring(err):match "test_connect%.lua:%d+: EPOLICY: connect to "
        .. "10%.0%.0%.1:80 denied", tostring(err))
end)

T.finish()
