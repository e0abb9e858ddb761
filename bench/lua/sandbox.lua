-- The sandbox hammered directly: the Twilio create call the adapters make (form body,
-- Basic auth, a StatusCallback carrying our reference), each with a new reference and
-- recipient so no try counter is shared. BENCH_AUTH is the Authorization header,
-- BENCH_CREATE the path, BENCH_CALLBACK the status callback URL.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local auth = os.getenv("BENCH_AUTH")
local create = os.getenv("BENCH_CREATE")
local callback = os.getenv("BENCH_CALLBACK")
local sender = os.getenv("BENCH_SENDER")
local n = 0

setup = common.setup
done = common.done

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
end

local function encode(value)
  return (value:gsub("[^%w%-_%.~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function request()
  n = n + 1
  local reference = string.format("%d%07d", (thread_id or 0) + 1, n)
  local body = "To=" .. encode(common.recipient()) .. "&From=" .. encode(sender)
    .. "&Body=" .. encode("Queued benchmark message " .. reference)
    .. "&StatusCallback=" .. encode(callback .. "?ref=" .. reference)
  return wrk.format("POST", create, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, body)
end
