-- http_get.lua [HOST [PORT [PATH]]]: a small HTTP/1.0 client.
-- Prints the status, the headers and the body of one GET.
local tcp = require "tcp"

local host = arg[1] or "127.0.0.1"
local port = tonumber(arg[2] or os.getenv "HTTP_PORT" or "80")
local path = arg[3] or "/"

local conn <close> = tcp.TcpClient.connect_timeout(host, port, 5000)
conn:set_timeout_ms(5000)
conn:write_all(("GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n")
    :format(path, host))

local status = conn:read_line()
local code = status and tonumber(status:match "^HTTP/%d%.%d (%d%d%d)")
if not code then
    io.stderr:write("not an HTTP response: ", tostring(status), "\n")
    os.exit(1)
end
print("status: " .. status)

local length
for line in conn:lines() do
    if line == "" then break end
    print("header: " .. line)
    local n = line:lower():match "^content%-length:%s*(%d+)"
    if n then length = tonumber(n) end
end

local body
if length then
    body = conn:read_exact(length)
else
    local parts = {}
    repeat
        local chunk = conn:read(65536)
        parts[#parts + 1] = chunk
    until chunk == ""
    body = table.concat(parts)
end
io.write(body)
os.exit(code >= 200 and code < 300 and 0 or 1)
