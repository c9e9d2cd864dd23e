-- Under `tcpbroker run`: processes the script starts use the plugin,
-- each with a session of its own, at the same time as the script.
-- Started by tests/it_launcher.c with ECHO_PORT, DENIED_PORT, LUA (the
-- interpreter) and SPAWN_DIR (where spawn_child.lua is).
local tcp = require "tcp"
local T = require "testlib"

local lua = assert(os.getenv "LUA")
local child = os.getenv "SPAWN_DIR" .. "/spawn_child.lua"
local echo = T.port "ECHO_PORT"
local denied = T.port "DENIED_PORT"

local function echo_line(conn, line)
    conn:write(line .. "\n")
    T.eq(conn:read_line(), line, "echo of " .. line)
end

T.test("the script's own session works before and after children", function()
    local conn = tcp.TcpClient("127.0.0.1", echo)
    echo_line(conn, "before")
    T.eq(os.execute(lua .. " " .. child .. " one 3 >/dev/null"), true,
        "the child's exit")
    echo_line(conn, "after")
    conn:close()
end)

T.test("children and the script echo at the same time", function()
    local conn = tcp.TcpClient("127.0.0.1", echo)
    conn:set_timeout_ms(10000)
    local rounds = 20
    local kids = {}
    for k = 1, 3 do
        kids[k] = assert(io.popen(lua .. " " .. child .. " kid" .. k ..
            " " .. rounds))
    end
    -- Each turn: one line of each child, one echo of the script's own.
    for i = 1, rounds do
        for k = 1, 3 do
            T.eq(kids[k]:read "l", "kid" .. k .. " " .. i, "child line")
        end
        echo_line(conn, "parent " .. i)
    end
    for k = 1, 3 do
        T.eq(kids[k]:read "l", "denied EPOLICY", "the child's denial")
        local ok, how, code = kids[k]:close()
        T.eq(ok, true, "child " .. k .. " ended with " .. tostring(how) ..
            " " .. tostring(code))
    end
    -- The script's denial is the same as its children's.
    T.raises("EPOLICY", tcp.TcpClient, "127.0.0.1", denied)
    echo_line(conn, "last")
    conn:close()
end)

T.finish()
