-- shutdown(conn, how): "read", "write" or "both".  After "write" the
-- peer sees the end of the stream, and its answer can still be read.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.write_all(conn, "BYE\n")
conn.shutdown(conn, "write")
for line in conn:lines() do
    print("peer said: " .. line)
end
conn:close()
