-- Run by test_sigint.lua as "sigint_child.lua N": blocks in call N
-- until SIGINT interrupts it, says how it ended, and shows the session
-- still works.  READY_FILE gets "ready N PID" before the call.
local tcp = require "tcp"

local function pid()
    local f = assert(io.open "/proc/self/stat")
    local p = f:read "n"
    f:close()
    return p
end

local function ready(n)
    local f = assert(io.open(os.getenv "READY_FILE", "w"))
    f:write("ready ", n, " ", pid(), "\n")
    f:close()
end

local server = tcp.TcpListener "127.0.0.1:0"
local silent = tcp.TcpClient("127.0.0.1", tonumber(os.getenv "SILENT_PORT"))
local steps = {
    { "accept", function() return server:accept() end },
    { "accept with a timeout", function()
        server:set_timeout_ms(8000); return server:accept() end },
    { "read", function() return silent:read(10) end },
    { "read_line with a timeout", function()
        silent:set_timeout_ms(8000); return silent:read_line() end },
    { "select", function() return tcp.select({ silent }, nil, 8) end },
}
-- The stand-alone interpreter takes one SIGINT (a second one ends the
-- process), so each run makes one call: the one named by arg[1].
local n = tonumber(arg[1])
local started = os.time()
ready(n)
local ok, err = pcall(steps[n][2])
print(string.format("%s: %s %s in %d s", steps[n][1], ok and "returned" or
    "raised", tostring(err), os.time() - started))
-- The session is still usable.
local echo = tcp.TcpClient("127.0.0.1", tonumber(os.getenv "ECHO_PORT"))
echo:write_all "still here\n"
print("after: " .. echo:read_line())
