-- TcpListener(addr): bind and listen; accept in a loop to serve.
-- The documented example listens on 0.0.0.0:8080.  The example policy
-- allows loopback only, on a port the kernel picks (port 0).
local tcp = require "tcp"
local TcpListener = tcp.TcpListener

local server = TcpListener("127.0.0.1:0")
print("listening on " .. server.local_addr(server))
local client = server.accept(server)
local msg = client.read_line(client)
print("got: " .. tostring(msg))
client.write(client, "OK\r\n")
client.close(client)
server:close()
