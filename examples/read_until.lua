-- read_until(conn, byte): up to and including the delimiter byte.
local tcp = require "tcp"

local port = tonumber(os.getenv "GREETING_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
local line = conn.read_until(conn, 10)
print(string.format("%q", line))        -- ends with the "\n" itself
conn:close()
