-- One Lua measurement, run by tcpbroker-bench in a fresh interpreter:
--   lua5.4 bench.lua tcp|socket connect|echo|write|read|lines PORT MS COUNT
-- prints the figure (echo: p50 and p99 in microseconds).  The same code
-- runs over the tcp module and over LuaSocket; only open/io differ.
local backend, metric, port, ms, count = ...
port, ms, count = tonumber(port), tonumber(ms), tonumber(count)
assert(port and ms and count, "usage: bench.lua BACKEND METRIC PORT MS COUNT")

local socket = require "socket"	-- LuaSocket's clock serves both
local now = socket.gettime
local CHUNK, ECHO, LINE = 65536, 64, 100
-- Operations between two looks at the clock.
local BATCH = 64

local io_ops
if backend == "tcp" then
	local tcp = require "tcp"
	io_ops = {
		open = function(p) return tcp.TcpClient("127.0.0.1", p) end,
		close = function(c) c:close() end,
		write = function(c, s) c:write_all(s) end,
		read_exact = function(c, n) return c:read_exact(n) end,
		read = function(c, n) return c:read(n) end,
		line = function(c) return c:read_line() end,
	}
elseif backend == "socket" then
	io_ops = {
		open = function(p)
			return assert(socket.connect("127.0.0.1", p))
		end,
		close = function(c) c:close() end,
		write = function(c, s) assert(c:send(s) == #s) end,
		read_exact = function(c, n) return assert(c:receive(n)) end,
		-- LuaSocket has no "up to n": receive(n) waits for all n.
		read = function(c, n) return assert(c:receive(n)) end,
		line = function(c) return assert(c:receive("*l")) end,
	}
else
	error("backend: tcp or socket")
end

local start = now()
local deadline = start + ms / 1000

-- Runs op until the time or the count is spent; returns the count.
local function timed(op)
	local n = 0
	while n < count and now() < deadline do
		for _ = 1, BATCH do op() end
		n = n + BATCH
	end
	return n
end

local result
if metric == "connect" then
	local n = timed(function() io_ops.close(io_ops.open(port)) end)
	result = n / (now() - start)
elseif metric == "echo" then
	local c = io_ops.open(port)
	local msg = string.rep("e", ECHO)
	for _ = 1, 100 do
		io_ops.write(c, msg)
		assert(io_ops.read_exact(c, ECHO) == msg)
	end
	local rtt = {}
	start = now()
	deadline = start + ms / 1000
	while #rtt < count and now() < deadline do
		local t = now()
		io_ops.write(c, msg)
		assert(io_ops.read_exact(c, ECHO) == msg)
		rtt[#rtt + 1] = (now() - t) * 1e6
	end
	io_ops.close(c)
	table.sort(rtt)
	result = string.format("%.2f %.2f", rtt[#rtt // 2 + 1],
	    rtt[#rtt * 99 // 100 + 1])
elseif metric == "write" then
	local c = io_ops.open(port)
	local chunk = string.rep("w", CHUNK)
	start = now()
	deadline = start + ms / 1000
	local n = 0
	while n < count and now() < deadline do
		io_ops.write(c, chunk)
		n = n + 1
	end
	result = n * CHUNK / (now() - start) / 1e6
	io_ops.close(c)
elseif metric == "read" then
	local c = io_ops.open(port)
	start = now()
	deadline = start + ms / 1000
	local n, bytes = 0, 0
	while n < count and now() < deadline do
		bytes = bytes + #io_ops.read(c, CHUNK)
		n = n + 1
	end
	result = bytes / (now() - start) / 1e6
	io_ops.close(c)
elseif metric == "lines" then
	local c = io_ops.open(port)
	local line = io_ops.line
	start = now()
	deadline = start + ms / 1000
	local n = timed(function()
		assert(#line(c) == LINE - 1)
	end)
	result = n / (now() - start)
	io_ops.close(c)
else
	error("metric: connect, echo, write, read or lines")
end
print(result)
