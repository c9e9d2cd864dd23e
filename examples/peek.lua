-- peek(conn, max_bytes): look without consuming; the next read sees it.
local tcp = require "tcp"

local port = tonumber(os.getenv "GREETING_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
local preview = conn.peek(conn, 4)
print("preview: " .. preview)
print("line:    " .. conn:read_line())
conn:close()
