-- echo_server.lua: a line echo server with an accept loop.
-- Listens on LISTEN_ADDR (default 127.0.0.1:0), echoes each line back
-- until the client says QUIT or goes away, then takes the next client.
-- Serves ECHO_SERVER_CLIENTS clients (default 1) and stops.
local tcp = require "tcp"

local server <close> = tcp.TcpListener(os.getenv "LISTEN_ADDR" or "127.0.0.1:0")
local clients = tonumber(os.getenv "ECHO_SERVER_CLIENTS" or "1")
print("echo server on " .. server:local_addr())

for _ = 1, clients do
    local conn <close> = server:accept()
    conn:set_timeout_ms(30000)      -- an idle client is dropped
    local peer = conn:peer_addr()
    print("client " .. peer)
    local ok, err = pcall(function()
        for line in conn:lines() do
            if line == "QUIT" then break end
            conn:write_all(line .. "\n")
        end
    end)
    print("client " .. peer .. " done" .. (ok and "" or ": " .. tostring(err)))
end
