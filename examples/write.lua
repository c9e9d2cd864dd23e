-- write(conn, data): send and flush; returns the bytes written.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
local n = conn.write(conn, "PING\r\n")
print(string.format("sent %d bytes", n))
conn:close()
