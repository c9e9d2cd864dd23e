-- read_exact(conn, n): exactly n bytes; an EOF error if the stream ends.
local tcp = require "tcp"

local port = tonumber(os.getenv "BINARY_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
local header = conn.read_exact(conn, 4)
print(string.format("header: %02x %02x %02x %02x", header:byte(1, 4)))
conn:close()
