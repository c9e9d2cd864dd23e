-- close(conn): shut down both sides and release the socket.
local tcp = require "tcp"

local port = tonumber(os.getenv "ECHO_PORT" or "9000")
local conn = tcp.TcpClient("127.0.0.1", port)
conn.write(conn, "QUIT\n")
conn.close(conn)
local ok, err = pcall(conn.write, conn, "more")
print(tostring(err))                    -- close.lua:8: EBADHANDLE: write: the connection is closed
conn.close(conn)                        -- closing again does nothing
