-- Started by test_spawn.lua: a process of the script's with a session
-- of its own.  It echoes ROUNDS lines through ECHO_PORT, saying each on
-- stdout, so that the parent, reading them, interleaves its own
-- session's calls with this one's.
local tcp = require "tcp"
local name = assert(arg[1], "usage: spawn_child.lua NAME [ROUNDS]")
local rounds = tonumber(arg[2] or "20")

local conn = tcp.TcpClient("127.0.0.1", tonumber(os.getenv "ECHO_PORT"))
conn:set_timeout_ms(10000)
for i = 1, rounds do
    local line = name .. " " .. i
    conn:write(line .. "\n")
    local got = conn:read_line()
    if got ~= line then
        io.write("bad ", tostring(got), "\n")
        os.exit(3)
    end
    io.write(got, "\n")
    io.flush()
end
-- The policy applies to a child as to its parent: the same tenant.
local ok, err = pcall(tcp.TcpClient, "127.0.0.1",
    tonumber(os.getenv "DENIED_PORT") or 1)
io.write("denied ", ok and "no" or tostring(err.code), "\n")
conn:close()
os.exit(0)
