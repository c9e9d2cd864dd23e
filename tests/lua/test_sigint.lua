-- SIGINT (Ctrl-C) interrupts a call waiting on the broker at once, in
-- accept, read and select, with and without a timeout, as the
-- interpreter's usual "interrupted!" error, and the session stays
-- usable.  The calls run in a child interpreter (sigint_child.lua).
local T = require "testlib"

local function slurp(path)
    local f = io.open(path)
    if not f then return nil end
    local s = f:read "a"
    f:close()
    return s
end

local STEPS = { "accept", "accept with a timeout", "read",
    "read_line with a timeout", "select" }

for n, what in ipairs(STEPS) do
    T.test("SIGINT interrupts " .. what, function()
        local dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir " .. dir))
        local ready, out = dir .. "/ready", dir .. "/out"
        local child = debug.getinfo(1, "S").source:match "^@(.*/)" ..
            "sigint_child.lua"
        local runner = assert(io.popen(string.format(
            "(READY_FILE=%q %q %q %d >%q 2>&1; echo $? >%q/status) &",
            ready, arg[-1], child, n, out, dir)))
        -- Wait (at most 10 s) for the child's "ready", then interrupt it.
        local pid
        for _ = 1, 1000 do
            local s = slurp(ready)
            pid = s and s:match("^ready " .. n .. " (%d+)")
            if pid then break end
            os.execute "sleep 0.01"
        end
        assert(pid, "the child never got ready: " .. tostring(slurp(out)))
        assert(os.execute("kill -INT " .. pid))
        local status
        for _ = 1, 1000 do
            status = slurp(dir .. "/status")
            if status and status ~= "" then break end
            os.execute "sleep 0.01"
        end
        if not status or status == "" then
            os.execute("kill -KILL " .. pid)    -- it went on waiting
        end
        runner:close()
        local text = slurp(out) or ""
        os.execute("rm -rf " .. dir)
        T.eq(tonumber(status), 0, "the child's status (" .. text .. ")")
        local line = text:match("[^\n]*")
        assert(line:find(what .. ": raised .*sigint_child%.lua:%d+: " ..
            "interrupted! in [01] s$"), line)
        assert(text:find "after: still here", text)
    end)
end

T.finish()
