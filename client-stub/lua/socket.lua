-- tcp.socket: LuaSocket's TCP calls over the tcp plugin, so that code
-- written for LuaSocket (socket.http through its `create` hook) runs
-- unmodified.  Failures are LuaSocket's nil plus a message ("timeout",
-- "closed", "connection refused", or the plugin's message), with the
-- partial result where LuaSocket gives one.  Built into tcp.so as
-- require "tcp.socket" (client-stub/lua/tcp.c embeds this file).
local tcp = require "tcp"

local M = { _VERSION = "tcp.socket 1" }
local client = {}
client.__index = client
local server = {}
server.__index = server

-- LuaSocket's names for the plugin's codes.
local names = {
    ETIMEDOUT = "timeout", EOF = "closed", ECLOSED = "closed",
    EBADHANDLE = "closed", ECONNRESET = "closed", EPIPE = "closed",
    ECONNREFUSED = "connection refused",
}

local function why(err)
    if type(err) ~= "table" then return tostring(err) end
    return names[err.code] or err.message
end

-- seconds (nil or negative: none) to the plugin's ms (0: none)
local function ms(t)
    if t == nil or t < 0 then return 0 end
    return math.max(1, math.ceil(t * 1000))
end

local function wrap(conn, timeout)
    local s = setmetatable({ conn = conn, timeout = timeout, opts = {} },
        client)
    if timeout then conn:set_timeout_ms(ms(timeout)) end
    return s
end

function M.tcp()
    return setmetatable({ opts = {} }, client)
end
M.tcp4, M.tcp6 = M.tcp, M.tcp

function M.connect(host, port)
    local s = M.tcp()
    local ok, err = s:connect(host, port)
    if not ok then return nil, err end
    return s
end

function M.bind(host, port)
    if host == "*" then host = "0.0.0.0" end
    local addr = host:find ":" and ("[" .. host .. "]:" .. port) or
        (host .. ":" .. port)
    local ok, l = pcall(tcp.TcpListener, addr)
    if not ok then return nil, why(l) end
    return setmetatable({ listener = l }, server)
end

function client:settimeout(t)
    self.timeout = (t ~= nil and t >= 0) and t or nil
    if self.conn then self.conn:set_timeout_ms(ms(self.timeout)) end
    return 1
end

function client:connect(host, port)
    local ok, c
    if self.timeout then
        ok, c = pcall(tcp.TcpClient.connect_timeout, host, tonumber(port),
            ms(self.timeout))
    else
        ok, c = pcall(tcp.TcpClient, host, tonumber(port))
    end
    if not ok then return nil, why(c) end
    self.conn = c
    if self.timeout then c:set_timeout_ms(ms(self.timeout)) end
    for name, on in pairs(self.opts) do self:setoption(name, on) end
    return 1
end

-- send(data [, i [, j]]): the index of the last byte sent, or nil, the
-- error and the index of the last byte sent before it.
function client:send(data, i, j)
    if not self.conn then return nil, "closed", 0 end
    i = i or 1
    local s = data:sub(i, j or #data)
    local ok, n = pcall(self.conn.write, self.conn, s)
    if not ok then return nil, why(n), i - 1 end
    if n < #s then return nil, "timeout", i - 1 + n end
    return i - 1 + n
end

-- receive(pattern [, prefix]): "*l" (or "l"), "*a" (or "a"), or a count.
function client:receive(pattern, prefix)
    local c = self.conn
    prefix = prefix or ""
    if not c then return nil, "closed", prefix end
    pattern = pattern or "*l"
    if type(pattern) == "string" then pattern = pattern:gsub("^%*", "") end
    if pattern == "l" then
        local ok, line = pcall(c.read_line, c)
        if not ok then return nil, why(line), prefix end
        if line == nil then return nil, "closed", prefix end
        return prefix .. line
    elseif pattern == "a" then
        local ok, data = pcall(c.read_all, c)
        if ok then return prefix .. data end
        return nil, why(data), prefix .. (data.partial or "")
    elseif math.type(tonumber(pattern)) == "integer" then
        local ok, data = pcall(c.read_exact, c, tonumber(pattern))
        if ok then return prefix .. data end
        if type(data) == "table" and data.code == "EOF" then
            -- read_exact leaves what came unread: it is the partial.
            local rest = c:read_all()
            return nil, "closed", prefix .. rest
        end
        return nil, why(data), prefix
    end
    error("invalid receive pattern", 2)
end

function client:close()
    if self.conn then self.conn:close() end
    return 1
end

local how_names = { send = "write", receive = "read", both = "both" }

function client:shutdown(how)
    local ok, err = pcall(self.conn.shutdown, self.conn,
        how_names[how or "both"] or how)
    if not ok then return nil, why(err) end
    return 1
end

local option_setters = { ["tcp-nodelay"] = "set_nodelay",
    keepalive = "set_keepalive" }

function client:setoption(name, value)
    local setter = option_setters[name]
    if not setter then return nil, "unsupported option " .. tostring(name) end
    if not self.conn then
        self.opts[name] = value and true or false
        return 1
    end
    local ok, err = pcall(self.conn[setter], self.conn, value and true or false)
    if not ok then return nil, why(err) end
    return 1
end

function client:getpeername()
    if not self.conn then return nil, "closed" end
    return self.conn:getpeername()
end

function client:getsockname()
    if not self.conn then return nil, "closed" end
    return self.conn:getsockname()
end

-- No descriptor: the plugin holds none.  Data may be buffered, unseen.
function client:getfd() return -1 end
function client:dirty() return false end

function client:__tostring()
    return "tcp{client}: " .. tostring(self.conn)
end

function server:accept()
    local ok, c = pcall(self.listener.accept, self.listener)
    if not ok then return nil, why(c) end
    return wrap(c, nil)
end

function server:settimeout(t)
    self.listener:set_timeout_ms(ms(t))
    return 1
end

function server:getsockname() return self.listener:getsockname() end
function server:close() self.listener:close() return 1 end
function server:getfd() return -1 end
function server:dirty() return false end

-- select(recvt, sendt [, timeout]) over wrapped objects.
function M.select(recvt, sendt, timeout)
    local objects = {}
    local function unwrap(t)
        local out = {}
        for _, s in ipairs(t or {}) do
            local o = type(s) == "table" and (s.conn or s.listener)
            if o then objects[o] = s; out[#out + 1] = o end
        end
        return out
    end
    local ok, r, w, err = pcall(tcp.select, unwrap(recvt), unwrap(sendt),
        timeout)
    if not ok then return {}, {}, why(r) end
    local function rewrap(t)
        local out = {}
        for _, o in ipairs(t) do
            local s = objects[o]
            out[#out + 1] = s
            out[s] = true
        end
        return out
    end
    return rewrap(r), rewrap(w), err
end

return M
