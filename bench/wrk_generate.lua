-- wrk script for bench/generate.py: rotates bearer tokens, optional random think time,
-- prints one JSON line of results in done().
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local model = os.getenv("BENCH_MODEL")
local think_ms = tonumber(os.getenv("BENCH_THINK_MS") or "0")
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + id * 7919)
  non2xx = 0
end

local body = '{"query":"mutation G($input: GenerateInput!) { generate(input: $input) { __typename ... on GenerateSuccess { generation { id status } } } }","variables":{"input":{"modelId":"'
  .. model .. '","prompt":"bench prompt"}}}'

function request()
  counter = counter + 1
  local token = tokens[(counter + id * 13) % #tokens + 1]
  return wrk.format("POST", "/graphql", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function delay()
  if think_ms <= 0 then return 0 end
  -- exponential think time: an open-ish loop offering clients / think requests per second
  return math.floor(-think_ms * math.log(1 - math.random()))
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "GenerateSuccess", 1, true) then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + (t:get("non2xx") or 0) end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors_socket": %d, "failed": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    failed + summary.errors.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
