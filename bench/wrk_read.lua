-- wrk script for bench/read.py: POSTs one constant body (READ_BODY_FILE) with an optional
-- Authorization header (READ_AUTH), optional exponential think time per connection
-- (READ_THINK_MS, mean; caps the offered load near connections / think), and prints one
-- JSON line of results in done(). No request() or response() hook: wrk builds the request
-- once and does not hand bodies to Lua, so it stays a few % of a core.
local f = assert(io.open(os.getenv("READ_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("READ_AUTH") or ""
if auth ~= "" then wrk.headers["Authorization"] = auth end

local think_ms = tonumber(os.getenv("READ_THINK_MS") or "0")
if think_ms > 0 then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
  end
  function init(args)
    math.randomseed(os.time() + (id or 1) * 7919)
  end
  function delay()
    -- capped at 5x the mean, so one unlucky draw does not idle a connection for the whole run
    return math.floor(math.min(-think_ms * math.log(1 - math.random()), 5 * think_ms) + 0.5)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
