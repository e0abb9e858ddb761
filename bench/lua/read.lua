-- GET /api/conversations/{id}/messages (the first page) for a random conversation
-- among the ids in the file BENCH_IDS.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local api_key = os.getenv("BENCH_API_KEY")
local ids = {}

setup = common.setup
done = common.done

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
  ids = common.lines(os.getenv("BENCH_IDS"))
end

function request()
  local id = ids[math.random(1, #ids)]
  return wrk.format("GET", "/api/conversations/" .. id .. "/messages", {
    ["Authorization"] = "Bearer " .. api_key,
  })
end
