-- read_line(conn): one line without its "\n" or "\r\n"; nil at the end.
-- The documented example reads towel.blinkenlights.nl:23; this one reads
-- a loopback server that sends a few lines (GREETING_PORT).
local tcp = require "tcp"

local port = tonumber(os.getenv "GREETING_PORT" or "2323")
local conn = tcp.TcpClient("127.0.0.1", port)
local line = conn.read_line(conn)
print(line)
conn:close()
