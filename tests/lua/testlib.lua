-- A small test library for the Lua tests of the tcp plugin.  Scripts
-- run under tests/run_example, which provides the broker and servers.
local T = { failures = 0, count = 0 }

function T.port(name)
    local v = os.getenv(name)
    assert(v, name .. " is not set: run this under tests/run_example")
    return tonumber(v)
end

function T.eq(got, want, what)
    if got ~= want then
        error(string.format("%s: got %q, want %q", what or "value",
            tostring(got), tostring(want)), 2)
    end
end

-- Calls fn(...) and checks that it raises the error code.
function T.raises(code, fn, ...)
    local ok, err = pcall(fn, ...)
    if ok then
        error("expected " .. code .. ", the call succeeded", 2)
    end
    if type(err) ~= "table" or err.code ~= code then
        error("expected " .. code .. ", got " .. tostring(err), 2)
    end
    assert(type(err.message) == "string" and #err.message > 0,
        "the error has no message")
    return err
end

function T.test(name, fn)
    T.count = T.count + 1
    local ok, err = pcall(fn)
    if ok then
        print("ok      " .. name)
    else
        T.failures = T.failures + 1
        print("FAILED  " .. name .. ": " .. tostring(err))
    end
end

function T.finish()
    print(string.format("%d tests, %d failed", T.count, T.failures))
    os.exit(T.failures == 0 and 0 or 1)
end

return T
