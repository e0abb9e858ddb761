-- The ceiling: the same kind of JSON body as a send, to the bare DRF endpoint.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local sender = os.getenv("BENCH_SENDER")
local n = 0

setup = common.setup
done = common.done

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
end

function request()
  n = n + 1
  local body = string.format(
    '{"from": "%s", "to": "%s", "type": "sms", "body": "Benchmark message %d-%d", "attachments": [], '
      .. '"timestamp": "2024-11-01T14:00:00Z"}',
    sender, common.recipient(), thread_id or 0, n
  )
  return wrk.format("POST", "/bench/ceiling", { ["Content-Type"] = "application/json" }, body)
end
