-- set_keepalive(conn, on): SO_KEEPALIVE probes to find dead peers.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.set_keepalive(conn, true)
print("keepalive on for " .. conn:peer_addr())
conn:close()
