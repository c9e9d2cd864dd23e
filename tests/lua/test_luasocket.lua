-- tcp.socket, the LuaSocket-compatible layer: its calls with
-- LuaSocket's returns, and LuaSocket's own socket.http and socket.smtp
-- running over it through their `create` hooks.
local socket = require "tcp.socket"
local T = require "testlib"

T.test("connect, send, receive with LuaSocket's returns", function()
    local c = socket.tcp()
    T.eq(c:settimeout(0.2), 1, "settimeout")
    T.eq(c:setoption("tcp-nodelay", true), 1, "an option before connect")
    T.eq(c:connect("127.0.0.1", T.port "ECHO_PORT"), 1, "connect")
    T.eq(c:send("abc\ndef\n"), 8, "send: the last index")
    T.eq(c:send("0123456789", 3, 5), 5, "send(data, i, j)")
    T.eq(c:receive(), "abc", "*l by default")
    T.eq(c:receive "*l", "def", "*l")
    T.eq(c:receive(3, "pre"), "pre234", "a count, with a prefix")
    local data, err, partial = c:receive()
    T.eq(data, nil, "timeout")
    T.eq(err, "timeout", "the message")
    T.eq(partial, "", "partial")
    local host, port, family = c:getpeername()
    T.eq(host .. port .. family, "127.0.0.1" .. T.port "ECHO_PORT" .. "inet",
        "getpeername")
    T.eq(c:shutdown "send", 1, "shutdown")
    T.eq(c:close(), 1, "close")
    T.eq(c:close(), 1, "close again")
end)

T.test("end of stream and errors", function()
    local c = assert(socket.connect("127.0.0.1", T.port "GREETING_PORT"))
    T.eq(c:receive "*a", "hello\r\nworld\n\nlast", "*a")
    c:close()
    c = assert(socket.connect("127.0.0.1", T.port "GREETING_PORT"))
    T.eq(c:receive(7), "hello\r\n", "a count")
    local data, err, partial = c:receive(100)
    T.eq(data, nil, "the stream ended first")
    T.eq(err, "closed", "closed")
    T.eq(partial, "world\n\nlast", "what came is the partial")
    c:close()
    local none, why = socket.connect("127.0.0.1", T.port "CLOSED_PORT")
    T.eq(none, nil, "refused")
    T.eq(why, "connection refused", "refused message")
    T.eq(select(2, socket.tcp():setoption("reuseaddr", true)),
        "unsupported option reuseaddr", "an option the plugin lacks")
end)

T.test("bind, accept and select", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local host, port = server:getsockname()
    local c = assert(socket.connect(host, port))
    local r, _, err = socket.select({ server }, nil, 5)
    T.eq(err, nil, "the listener is ready")
    T.eq(r[1], server, "the wrapped listener")
    local a = assert(server:accept())
    c:send "ping\n"
    r = socket.select({ a, c }, nil, 5)
    T.eq(r[1], a, "the wrapped connection")
    T.eq(r[a], true, "keyed by it")
    T.eq(a:receive(), "ping", "its data")
    a:close()
    c:close()
    server:close()
end)

T.test("socket.http runs over it unmodified", function()
    local http = require "socket.http"
    local ltn12 = require "ltn12"
    local url = "http://127.0.0.1:" .. T.port "HTTP_PORT" .. "/"
    local body = {}
    local ok, code, headers = http.request {
        url = url, sink = ltn12.sink.table(body), create = socket.tcp,
    }
    T.eq(ok, 1, "request")
    T.eq(code, 200, "status")
    T.eq(headers["content-type"], "text/plain", "a header")
    T.eq(table.concat(body), "hello from loopback\n", "body")
    -- A large body, a 404, and a large POST.
    body = {}
    ok, code = http.request { url = url .. "large", create = socket.tcp,
        sink = ltn12.sink.table(body) }
    T.eq(code, 200, "large: status")
    local large = table.concat(body)
    T.eq(#large, 1024 * 1024, "large: length")
    T.eq(large:sub(1, 12) .. large:sub(-6), "012345678901" .. "012345",
        "large: content")
    ok, code = http.request { url = url .. "missing", create = socket.tcp,
        sink = ltn12.sink.null() }
    T.eq(ok, 1, "404: request")
    T.eq(code, 404, "404: status")
    local sent = string.rep("x", 300000)
    body = {}
    ok, code = http.request {
        url = url, method = "POST", create = socket.tcp,
        source = ltn12.source.string(sent),
        headers = { ["content-length"] = #sent },
        sink = ltn12.sink.table(body),
    }
    T.eq(ok, 1, "POST")
    T.eq(code, 200, "POST: status")
    T.eq(table.concat(body), "got 300000 bytes\n", "POST: the server got it all")
end)

T.test("socket.smtp runs over it unmodified", function()
    local smtp = require "socket.smtp"
    local function mailbox()
        local c = assert(socket.connect("127.0.0.1", T.port "MAILBOX_PORT"))
        local all = c:receive "*a"
        c:close()
        return all
    end
    local body = "first line\r\n.a line that starts with a dot\r\n" ..
        string.rep(string.rep("0123456789", 7) .. "\r\n", 3000) ..
        "last line"
    local ok, err = smtp.send {
        from = "<script@example.org>",
        rcpt = { "<one@example.org>", "<two@example.org>" },
        source = smtp.message {
            headers = { to = "one@example.org", subject = "over the broker" },
            body = body,
        },
        server = "127.0.0.1", port = T.port "SMTP_PORT", create = socket.tcp,
    }
    T.eq(err, nil, "send: no error")
    T.eq(ok, 1, "send")
    local got = mailbox()
    local envelope, data = got:match "^(.-)\n\n(.*)$"
    T.eq(envelope, "MAIL FROM:<script@example.org>\n" ..
        "RCPT TO:<one@example.org>\nRCPT TO:<two@example.org>", "envelope")
    T.eq(("\n" .. data):match "\n[Ss]ubject: ([^\r]*)\r\n", "over the broker",
        "subject")
    local text = data:match "\r\n\r\n(.*)\r\n$"
    T.eq(#text, #body, "the body's length")
    T.eq(text == body, true, "the body, dot line and all")
    -- The server's refusal comes back as LuaSocket's nil and message.
    ok, err = smtp.send {
        from = "<script@example.org>", rcpt = "<nobody@example.org>",
        source = smtp.message { body = "never sent" },
        server = "127.0.0.1", port = T.port "SMTP_PORT", create = socket.tcp,
    }
    T.eq(ok, nil, "a refused recipient")
    T.eq(err, "550 no such user here", "the server's reply")
end)

T.finish()
