-- https.lua [HOST [PORT [PATH [CA_FILE]]]]: GET a page over HTTPS.
-- TLS runs in the script's process, the broker relays the ciphertext.
-- The certificate is verified: against CA_FILE (or TLS_DIR/ca.pem, as
-- the tests set it), else the system's authorities.
local tcp = require "tcp"

local host = arg[1] or "localhost"
local port = tonumber(arg[2] or os.getenv "TLS_HTTPS_PORT" or "443")
local path = arg[3] or "/"
local ca_file = arg[4] or (os.getenv "TLS_DIR" and
    os.getenv "TLS_DIR" .. "/ca.pem")

-- localhost by its address, so that no name is looked up; the
-- certificate is checked for the name all the same.
local conn <close> = tcp.TlsClient(host == "localhost" and "127.0.0.1" or
    host, port, { server_name = host, ca_file = ca_file,
    alpn = { "http/1.1" } })
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
-- Content-Length tells a whole body from one an attacker cut short.
io.write(length and conn:read_exact(length) or conn:read_all())
os.exit(code >= 200 and code < 300 and 0 or 1)
