-- POST /api/messages/batch: BENCH_BATCH_SIZE SMS per request (1,000 by default), to
-- random recipients from the pool of BENCH_RECIPIENTS. Each thread builds its body once.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local api_key = os.getenv("BENCH_API_KEY")
local sender = os.getenv("BENCH_SENDER")
local size = tonumber(os.getenv("BENCH_BATCH_SIZE") or "1000")
local body

setup = common.setup
done = common.done

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
  local items = {}
  for i = 1, size do
    items[i] = string.format(
      '{"type": "sms", "from": "%s", "to": "%s", "body": "Batch message %d-%d"}',
      sender, common.recipient(), thread_id or 0, i
    )
  end
  body = '{"messages": [' .. table.concat(items, ", ") .. "]}"
end

function request()
  return wrk.format("POST", "/api/messages/batch", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. api_key,
  }, body)
end
