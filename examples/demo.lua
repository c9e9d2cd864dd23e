-- demo.lua: the script the README's first command runs.
--
-- This interpreter has the tcp plugin and no network of its own: every
-- call below goes to the broker, which decides it against the policy
-- (examples/policy.conf) and owns the real sockets.
local tcp = require "tcp"

local surprises = 0

-- Runs fn, prints its outcome, and checks it against what the policy says.
local function try(expect, what, fn, ...)
    local ok, res = pcall(fn, ...)
    if ok then
        print("  ok       " .. what)
    else
        print(string.format("  %-8s %s\n           %s", res.code, what,
            res.message))
    end
    local got = ok and "ok" or res.code
    if got ~= expect then
        surprises = surprises + 1
        print("           (expected " .. expect .. ")")
    end
    return ok and res or nil
end

local http_port = tonumber(os.getenv "HTTP_PORT" or "8080")

print("Allowed: a web server on loopback")
local web = try("ok", ("TcpClient(\"127.0.0.1\", %d)"):format(http_port),
    tcp.TcpClient, "127.0.0.1", http_port)
if web then
    web:set_timeout_ms(5000)
    web:write_all "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    print("           the server answered: " .. tostring(web:read_line()))
    web:close()
end

print("\nDenied by the policy, with the reason:")
try("EPOLICY", 'TcpClient("169.254.169.254", 80)', tcp.TcpClient,
    "169.254.169.254", 80)
try("EPOLICY", 'TcpClient("127.0.0.1", 22)', tcp.TcpClient, "127.0.0.1", 22)
try("EPOLICY", 'TcpListener("0.0.0.0:8080")', tcp.TcpListener, "0.0.0.0:8080")
try("EINVAL", 'TcpClient("2130706433", 80)', tcp.TcpClient, "2130706433", 80)

print("\nA socket of the script's own, without the plugin:")
-- Another program the script starts tries a socket of its own; under
-- `tcpbroker run` (which hands a session source over in TCPBROKER_FD) it is
-- refused.
local launched = os.getenv "TCPBROKER_FD" ~= nil
local own = io.popen(("/usr/bin/python3 -c 'import socket\n"
    .. "try:\n socket.create_connection((\"127.0.0.1\", %d))\n"
    .. " print(\"connected\")\n"
    .. "except OSError as e:\n print(e)' 2>&1"):format(http_port), "r")
local said = own and own:read "l" or "could not run python3"
if own then own:close() end
print("           python3: socket.create_connection(...): " .. tostring(said))
if launched and said == "connected" then
    surprises = surprises + 1
    print("           (expected a refusal: is the script under tcpbroker run?)")
end

print("\nA listener that accepts:")
local server = try("ok", 'TcpListener("127.0.0.1:0")', tcp.TcpListener,
    "127.0.0.1:0")
if server then
    local addr = server:local_addr()
    print("           listening on " .. addr)
    local port = tonumber(addr:match ":(%d+)$")
    local client = try("ok", ("TcpClient(\"localhost\", %d)"):format(port),
        tcp.TcpClient, "localhost", port)
    local conn = try("ok", "accept(server)", server.accept, server)
    if client and conn then
        client:write_all "hello, listener\n"
        print("           the listener read: " .. conn:read_line())
        conn:write_all "hello, client\n"
        print("           the client read:   " .. client:read_line())
        client:close()
        conn:close()
    end
    server:close()
end

print(surprises == 0 and "\ndemo finished as the policy says" or
    "\ndemo: " .. surprises .. " step(s) did not go as the policy says")
os.exit(surprises == 0 and 0 or 1)
