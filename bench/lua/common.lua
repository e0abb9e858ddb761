-- Shared by the wrk scripts of `make bench`: per-thread ids, a wall clock, reading
-- request lists from files, and one JSON line of results at the end.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])

local M = {}
local ts = ffi.new("bench_timespec")

function M.now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

-- wrk calls setup() once per thread in the main state: give each thread its number.
function M.setup(thread)
  thread:set("thread_id", counter)
  thread:set("thread_count", tonumber(os.getenv("BENCH_THREADS") or "2"))
  counter = counter + 1
  table.insert(threads, thread)
end

function M.lines(path)
  local result = {}
  for line in io.lines(path) do
    result[#result + 1] = line
  end
  return result
end

-- BENCH_PREFIX picks the pool: the ledger's recipients all have a conversation already.
local prefix = os.getenv("BENCH_PREFIX") or "+1201666"

function M.recipient()
  return string.format("%s%04d", prefix, math.random(0, tonumber(os.getenv("BENCH_RECIPIENTS") or "10000") - 1))
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max
  ))
end

return M
