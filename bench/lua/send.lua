-- POST /api/messages/sms (or BENCH_PATH) with a random recipient from a pool of BENCH_RECIPIENTS.
-- BENCH_RATE (requests/s over all threads), when set, paces the load (open loop).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local api_key = os.getenv("BENCH_API_KEY")
local sender = os.getenv("BENCH_SENDER")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local path = os.getenv("BENCH_PATH") or "/api/messages/sms"
local interval, next_slot, n = 0, 0, 0

setup = common.setup
done = common.done

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
  if rate > 0 then
    interval = 1000 * (thread_count or 2) / rate
    next_slot = common.now_ms()
  end
end

function request()
  n = n + 1
  local body = string.format(
    '{"from": "%s", "to": "%s", "type": "sms", "body": "Benchmark message %d-%d", "attachments": [], '
      .. '"timestamp": "2024-11-01T14:00:00Z"}',
    sender, common.recipient(), thread_id or 0, n
  )
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. api_key,
  }, body)
end

if rate > 0 then
  function delay()
    local now = common.now_ms()
    if next_slot < now then
      next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + interval
    return wait
  end
end
