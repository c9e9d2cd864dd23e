-- set_nodelay(conn, on): TCP_NODELAY, for small messages sent at once.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.set_nodelay(conn, true)
conn:write "k\n"
print("echo: " .. conn:read_line())
conn:close()
