-- select_server.lua: a line echo server serving many clients at once
-- with tcp.select, in one coroutine-free loop (docs/lua.md, "Serving
-- many connections").  To show it working it also opens CLIENTS
-- clients of its own (default 3), each sending a line; it stops once
-- all of them have their echo.
local tcp = require "tcp"

local server <close> = tcp.TcpListener "127.0.0.1:0"
print("select server on " .. server:local_addr())

local watched = { server }      -- what select watches for reading
local pending = {}              -- per connection: bytes of a line not yet complete

local function drop(conn)
    for i, c in ipairs(watched) do
        if c == conn then table.remove(watched, i) break end
    end
    pending[conn] = nil
    conn:close()
end

-- One step of the server: accept, or read what is there and echo the
-- complete lines.  read(max) never waits on a connection select found
-- readable; read_line could, when only part of a line has come.
local function serve(ready)
    for _, obj in ipairs(ready) do
        if obj == server then
            local conn = server:accept()
            pending[conn] = ""
            watched[#watched + 1] = conn
        else
            local ok, data = pcall(obj.read, obj, 4096)
            if not ok or data == "" then        -- an error, or the end
                drop(obj)
            else
                local buf = pending[obj] .. data
                for line in buf:gmatch "([^\n]*)\n" do
                    obj:write_all(line .. "\n")
                end
                pending[obj] = buf:match "[^\n]*$"
            end
        end
    end
end

-- The script's own clients.
local host, port = server:getsockname()
local clients, answered = {}, 0
for i = 1, tonumber(os.getenv "CLIENTS" or "3") do
    clients[i] = tcp.TcpClient(host, port)
    clients[i]:write_all("hello " .. i .. "\n")
end

for _ = 1, 1000 do
    local ready, _, err = tcp.select(watched, nil, 1)
    if err ~= "timeout" then serve(ready) end
    -- The clients' side: whose echo has come?
    local replies = tcp.select(clients, nil, 0)
    for _, c in ipairs(replies) do
        print(tostring(c) .. " got " .. c:read_line())
        for i, x in ipairs(clients) do
            if x == c then table.remove(clients, i) break end
        end
        c:close()
        answered = answered + 1
    end
    if #clients == 0 then break end
end
assert(#clients == 0, "some clients got no echo")
print(answered .. " clients served")
