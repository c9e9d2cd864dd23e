-- TLS: tcp.TlsClient, conn:tls (STARTTLS), tcp.TlsListener, conn:alpn,
-- and the errors, against the servers of tests/tls/tls_env.py.
local tcp = require "tcp"
local T = require "testlib"

local dir = assert(os.getenv "TLS_DIR", "run this under tls_env.py")
local ca = dir .. "/ca.pem"

local function echo(conn)
    conn:write("hello over tls\n")
    T.eq(conn:read_line(), "hello over tls", "line echoed")
    conn:write_all { 0x00, 0xff, 0x41 }
    T.eq(conn:read_exact(3), "\0\255A", "bytes echoed")
    local payload = string.rep("0123456789abcdef", 8000)   -- 128 000 bytes
    conn:write_all(payload)
    T.eq(conn:read_exact(#payload), payload, "payload echoed")
end

T.test("TlsClient: handshake, then the usual methods", function()
    local conn = tcp.TlsClient("127.0.0.1", T.port "TLS_ECHO_PORT",
        { ca_file = ca })
    echo(conn)
    T.eq(conn:alpn(), nil, "no ALPN asked")
    conn:write("abc;def\n")
    T.eq(conn:peek(1), "a", "peek")
    T.eq(conn:read_until ";", "abc;", "read_until")
    T.eq(conn:read_line(), "def", "read_line")
    local r = tcp.select({ conn }, nil, 0)
    T.eq(#r, 0, "nothing to read")
    conn:write("x")
    r = tcp.select({ conn }, nil, 10)
    T.eq(r[1], conn, "select sees plaintext")
    T.eq(conn:read(10), "x", "read")
    conn:shutdown "write"                   -- close_notify
    T.eq(conn:read_all(), "", "the server ended too")
    conn:close()
    conn:close()
end)

T.test("ALPN and server_name", function()
    local conn = tcp.TlsClient("127.0.0.1", T.port "TLS_ECHO_PORT",
        { ca_file = ca, server_name = "localhost", alpn = { "h2", "x-echo" } })
    T.eq(conn:alpn(), "x-echo", "negotiated")
    echo(conn)
    conn:close()
end)

T.test("verification failures are ETLS saying why", function()
    local port = T.port "TLS_ECHO_PORT"
    local err = T.raises("ETLS", tcp.TlsClient, "127.0.0.1", port,
        { ca_file = ca, server_name = "wrong.example" })
    assert(err.message:find "name mismatch", err.message)
    err = T.raises("ETLS", tcp.TlsClient, "127.0.0.1",
        T.port "TLS_UNKNOWN_PORT", { ca_file = ca })
    assert(err.message:find "unknown CA", err.message)
    -- On by default, with the system's authorities.
    err = T.raises("ETLS", tcp.TlsClient, "127.0.0.1", port)
    assert(err.message:find "unknown CA", err.message)
    err = T.raises("ETLS", tcp.TlsClient, "127.0.0.1",
        T.port "TLS_EXPIRED_PORT", { ca_file = ca })
    assert(err.message:find "certificate has expired", err.message)
    err = T.raises("ETLS", tcp.TlsClient, "127.0.0.1",
        T.port "TLS_HALFWAY_PORT", { ca_file = ca })
    assert(err.message:find "closed the connection during the handshake",
        err.message)
end)

T.test("insecure_no_verify accepts an unknown CA", function()
    local conn = tcp.TlsClient("127.0.0.1", T.port "TLS_UNKNOWN_PORT",
        { insecure_no_verify = true })
    echo(conn)
    conn:close()
end)

T.test("conn:tls upgrades after a plaintext greeting", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "TLS_STARTTLS_PORT")
    T.eq(conn:read_line(), "220 ready", "greeting")
    conn:write "STARTTLS\r\n"
    T.eq(conn:read_line(), "220 go ahead", "go ahead")
    T.eq(conn:tls { ca_file = ca, server_name = "localhost" }, conn,
        "tls returns the connection")
    echo(conn)
    T.raises("EINVAL", conn.tls, conn, { ca_file = ca,
        server_name = "localhost" })
    conn:close()
end)

T.test("TlsListener accepts a TLS client", function()
    local l = tcp.TlsListener("127.0.0.1:0", { certificate = dir ..
        "/server.pem", key = dir .. "/server.key", alpn = { "x-test" } })
    local _, port = l:getsockname()
    local dialer = tcp.TcpClient("127.0.0.1", T.port "TLS_DIAL_PORT")
    dialer:write(port .. " x-test\n")
    local conn = l:accept()
    T.eq(conn:alpn(), "x-test", "the server's ALPN choice")
    T.eq(conn:read_line(), "ping", "from the TLS client")
    conn:write "pong\n"
    T.eq(dialer:read_line(), "ok pong x-test", "the client's view")
    conn:close()
    dialer:close()
    l:close()
end)

T.test("conn:tls as a server on an accepted connection", function()
    local l = tcp.TcpListener "127.0.0.1:0"
    local _, port = l:getsockname()
    local dialer = tcp.TcpClient("127.0.0.1", T.port "TLS_DIAL_PORT")
    dialer:write(port .. "\n")
    local conn = l:accept():tls { server = true,
        certificate = dir .. "/server.pem", key = dir .. "/server.key" }
    T.eq(conn:read_line(), "ping", "from the TLS client")
    conn:write "pong\n"
    T.eq(dialer:read_line(), "ok pong -", "the client's view")
    conn:close()
    dialer:close()
    l:close()
end)

T.test("1 MiB over HTTPS, read in pieces", function()
    local conn = tcp.TlsClient("127.0.0.1", T.port "TLS_HTTPS_PORT",
        { ca_file = ca, server_name = "localhost" })
    conn:write_all "GET /large HTTP/1.0\r\n\r\n"
    T.eq(conn:read_line(), "HTTP/1.0 200 OK", "status")
    local length
    for line in conn:lines() do
        if line == "" then break end
        length = length or tonumber(line:match "^Content%-Length: (%d+)")
    end
    T.eq(length, 1048576, "length")
    local block = ""
    for i = 0, 255 do block = block .. string.char(i) end
    for _ = 1, 64 do
        T.eq(conn:read_exact(16384), block:rep(64), "a piece of the body")
    end
    T.eq(conn:read_all(), "", "then the end")
    conn:close()
end)

T.test("bad options are EINVAL", function()
    local port = T.port "TLS_ECHO_PORT"
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port, { insecure = true })
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port,
        { insecure_no_verify = "yes" })
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port, { alpn = "h2" })
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port, { ca_file = 1 })
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port,
        { ca_file = dir .. "/nonexistent.pem" })
    T.raises("EINVAL", tcp.TlsClient, "127.0.0.1", port, "options")
    T.raises("EINVAL", tcp.TlsListener, "127.0.0.1:0", { ca_file = ca })
    local conn = tcp.TcpClient("127.0.0.1", T.port "TLS_STARTTLS_PORT")
    T.raises("EINVAL", conn.alpn, conn)       -- no TLS on it
    T.raises("EINVAL", conn.tls, conn, { ca_file = ca })   -- no name
    conn:close()
end)

T.finish()
