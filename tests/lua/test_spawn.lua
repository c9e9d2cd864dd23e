-- Processes the script starts use the plugin, each with a session of
-- its own, at the same time as the script: under `tcpbroker run` from
-- the session source they inherit, under the daemon by its socket path.
-- Run by tests/it_launcher.c and by tests/run_example (with and without
-- --launch).  LUA names the interpreter (default: this one's); the
-- child's script is found in LUA_PATH; DENIED_PORT is a port the policy
-- denies (default 1, outside the ports the runner's policy allows).
local tcp = require "tcp"
local T = require "testlib"

local lua = os.getenv "LUA" or arg[-1]
local child = assert(package.searchpath("spawn_child", package.path))
local echo = T.port "ECHO_PORT"
local denied = tonumber(os.getenv "DENIED_PORT") or 1

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
