-- write, write_bytes, write_all, read, read_line, read_exact,
-- read_until, peek and lines, with their end-of-stream behaviour.
local tcp = require "tcp"
local T = require "testlib"

T.test("write, write_bytes and write_all", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    T.eq(conn:write("abc"), 3, "write")
    T.eq(conn:write_bytes { 0x48, 0x69, 0x00, 0xff }, 4, "write_bytes table")
    T.eq(conn:write_bytes "\0\1", 2, "write_bytes string")
    T.eq(conn:write_all("xyz"), nil, "write_all returns nothing")
    conn:write_all { 0x21 }
    T.eq(conn:read_exact(13), "abcHi\0\255\0\1xyz!", "all of it, in order")
    T.raises("EINVAL", conn.write_bytes, conn, { 256 })
    T.raises("EINVAL", conn.write_bytes, conn, { "a" })
    T.raises("EINVAL", conn.write, conn, { 1 })
    conn:close()
end)

T.test("write_all of a large payload", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    local payload = string.rep("0123456789abcdef", 20000)   -- 320 000 bytes
    conn:write_all(payload)
    T.eq(conn:read_exact(#payload), payload, "echoed")
    conn:close()
end)

T.test("read_line, then nil at end of stream", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    T.eq(conn:read_line(), "hello", "\\r\\n stripped")
    T.eq(conn:read_line(), "world", "\\n stripped")
    T.eq(conn:read_line(), "", "empty line")
    T.eq(conn:read_line(), "last", "last line without newline")
    T.eq(conn:read_line(), nil, "end of stream")
    T.eq(conn:read(10), "", "read at end of stream")
    T.eq(conn:peek(10), "", "peek at end of stream")
    T.raises("EOF", conn.read_exact, conn, 1)
    conn:close()
end)

T.test("lines iterates to the end", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    local got = {}
    for line in conn:lines() do
        got[#got + 1] = line
    end
    T.eq(table.concat(got, "|"), "hello|world||last", "lines")
    conn:close()
end)

T.test("read_exact and read_until on binary data", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "BINARY_PORT")
    T.eq(conn:read_exact(4), "\0\1\2\3", "read_exact")
    T.eq(conn:read_until(10), "\4\5\6\7\8\9\10", "read_until includes it")
    T.eq(conn:read_until "\20", string.char(table.unpack {
        11, 12, 13, 14, 15, 16, 17, 18, 19, 20 }), "delimiter as string")
    local rest = conn:read_exact(235)
    T.eq(#rest, 235, "the rest")
    T.eq(rest:byte(-1), 255, "last byte")
    T.eq(conn:read_until(0), nil, "nil at end of stream")
    conn:close()
end)

T.test("read_exact past the end", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "BINARY_PORT")
    local err = T.raises("EOF", conn.read_exact, conn, 300)
    assert(err.message:find "256 of 300", err.message)
    T.eq(#conn:read_exact(256), 256, "the bytes stay readable")
    conn:close()
end)

T.test("read returns what is there", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "ECHO_PORT")
    conn:write("HELLO\n")
    local got = ""
    for _ = 1, 10 do
        got = got .. conn:read(1024)
        if #got >= 6 then break end
    end
    T.eq(got, "HELLO\n", "read")
    T.raises("EINVAL", conn.read, conn, -1)
    conn:close()
end)

T.test("peek then read sees the same bytes", function()
    local conn = tcp.TcpClient("127.0.0.1", T.port "GREETING_PORT")
    T.eq(conn:read_exact(2), "he", "first two")
    local preview = conn:peek(4)
    assert(#preview >= 1 and #preview <= 4, "peek length")
    T.eq(conn:peek(4), preview, "peek again")
    T.eq(conn:read_exact(#preview), preview, "read sees them again")
    conn:close()
end)

T.finish()
