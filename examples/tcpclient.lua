-- TcpClient(host, port): open a connection and speak HTTP/1.0 over it.
-- The documented example talks to example.com:80; this one talks to a
-- loopback web server (HTTP_PORT), which the example policy allows.
local tcp = require "tcp"
local TcpClient = tcp.TcpClient

local port = tonumber(os.getenv "HTTP_PORT" or "8080")
local conn = TcpClient("127.0.0.1", port)
conn.write(conn, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
local response = conn.read_line(conn)
print(response)
conn.close(conn)
