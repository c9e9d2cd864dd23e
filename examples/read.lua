-- read(conn, max_bytes): up to max_bytes, maybe fewer; "" at end of stream.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.write(conn, "HELLO\n")
local data = conn.read(conn, 1024)
print(string.format("read %d bytes: %q", #data, data))
conn:close()
