-- set_timeout_ms(conn, ms): read and write timeout; 0 disables it.
local tcp = require "tcp"

local port = tonumber(os.getenv "SILENT_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.set_timeout_ms(conn, 200)
local ok, err = pcall(conn.read_line, conn)
print(ok and "read a line" or tostring(err))     -- ETIMEDOUT: ...
conn:set_timeout_ms(0)
conn:close()
