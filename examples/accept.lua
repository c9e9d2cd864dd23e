-- accept(listener): wait for a connection and return its handle.
local tcp = require "tcp"

local server = tcp.TcpListener("127.0.0.1:0")
print("listening on " .. server:local_addr())
local conn = server.accept(server)
local data = conn.read_line(conn)
conn.write(conn, "received: " .. data .. "\n")
conn:close()
server:close()
