-- write_all(conn, data): every byte is delivered; returns nothing.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.write_all(conn, "large payload that must arrive in full\n")
print(conn:read_line())
conn:close()
