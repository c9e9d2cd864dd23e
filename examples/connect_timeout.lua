-- TcpClient.connect_timeout(host, port, ms): fail if not connected in time.
local tcp = require "tcp"
local TcpClient = tcp.TcpClient

local port = tonumber(os.getenv "ECHO_PORT" or "8080")
local conn = TcpClient.connect_timeout("127.0.0.1", port, 3000)
print("connected to " .. conn:peer_addr())
conn:close()
