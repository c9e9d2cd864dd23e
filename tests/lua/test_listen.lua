-- TcpListener, accept and local_addr.
local tcp = require "tcp"
local T = require "testlib"

local function port_of(addr)
    return tonumber(addr:match ":(%d+)$")
end

T.test("listen, connect through the broker, accept", function()
    local server = tcp.TcpListener "127.0.0.1:0"
    local addr = server:local_addr()
    assert(addr:match "^127%.0%.0%.1:%d+$", addr)
    local client = tcp.TcpClient("127.0.0.1", port_of(addr))
    local conn = server:accept()
    client:write_all "question\n"
    T.eq(conn:read_line(), "question", "server side")
    conn:write_all "answer\n"
    T.eq(client:read_line(), "answer", "client side")
    T.eq(conn:peer_addr(), client:local_addr(), "the two ends")
    client:close()
    T.eq(conn:read_line(), nil, "end of stream after the client closed")
    conn:close()
    server:close()
    T.raises("EBADHANDLE", server.accept, server)
end)

T.test("IPv6 listener", function()
    local server = tcp.TcpListener "[::1]:0"
    assert(server:local_addr():match "^%[::1%]:%d+$", server:local_addr())
    local client = tcp.TcpClient("::1", port_of(server:local_addr()))
    local conn = server.accept(server)
    client:write "6\n"
    T.eq(conn:read_line(), "6", "over IPv6")
    server:close()
end)

T.test("accept times out and the listener stays usable", function()
    local server = tcp.TcpListener "127.0.0.1:0"
    server:set_timeout_ms(100)
    T.raises("ETIMEDOUT", server.accept, server)
    local client = tcp.TcpClient("127.0.0.1", port_of(server:local_addr()))
    server:accept():close()
    client:close()
    server:close()
end)

T.test("listening is decided by the policy", function()
    local err = T.raises("EPOLICY", tcp.TcpListener, "0.0.0.0:8080")
    assert(err.message:find "denied", err.message)
    T.raises("EPOLICY", tcp.TcpListener, "127.0.0.1:8080")
    T.raises("EINVAL", tcp.TcpListener, "localhost:0")
    T.raises("EINVAL", tcp.TcpListener, 8080)
end)

T.test("a listener is not a connection", function()
    local server = tcp.TcpListener "127.0.0.1:0"
    assert(not pcall(server.read, server, 1), "no read method")
    assert(not pcall(tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT").accept),
        "no accept on a connection")
    server:close()
end)

T.finish()
