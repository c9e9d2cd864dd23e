-- write_bytes(conn, bytes): raw bytes, given as a table of byte values.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.write_bytes(conn, { 0x48, 0x69 })
print(conn:read_exact(2))       -- the echo server sends "Hi" back
conn:close()
