-- POST /api/webhooks/sms, signed. Signing (HMAC-SHA256) happens beforehand in Python:
-- BENCH_REQUESTS names a file of "timestamp<TAB>signature<TAB>body" lines, each with a
-- new provider message id; thread k takes lines k, k+T, k+2T... and wraps round if it
-- runs out (the repeats are duplicates, answered 200 and not stored again).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local rows, i = {}, 0

setup = common.setup
done = common.done

function init(args)
  local all = common.lines(os.getenv("BENCH_REQUESTS"))
  for k = (thread_id or 0) + 1, #all, thread_count or 2 do
    rows[#rows + 1] = all[k]
  end
end

function request()
  i = i % #rows + 1
  local timestamp, signature, body = rows[i]:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  return wrk.format("POST", "/api/webhooks/sms", {
    ["Content-Type"] = "application/json",
    ["X-Signature-Timestamp"] = timestamp,
    ["X-Signature"] = signature,
  }, body)
end
