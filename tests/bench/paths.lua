-- wrk 4.1 script: GET the paths listed in a file (one per line, given after `--`), round-robin.
-- bench.py shuffles the file once with a fixed seed, so the sequence is random-looking but the
-- same for both servers. Requests are formatted once in init(): formatting per request in Lua
-- would cost wrk CPU that the servers share on this machine.
--
-- done() prints one machine-readable line that bench.py parses:
--   BENCH_RESULT requests=N bytes=N duration_us=N p50_us=N p99_us=N ...

local requests_text = {}
local next_index = 1
local thread_count = 0

-- Runs in the main Lua state, once per thread, before init().
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

-- Runs in each thread's own Lua state; wrk has already set wrk.headers["Host"].
function init(args)
  local file = args[1]
  if file == nil then
    error("usage: wrk ... -s paths.lua <url> -- <path file>")
  end
  for line in io.lines(file) do
    if line ~= "" then
      requests_text[#requests_text + 1] = wrk.format("GET", line)
    end
  end
  if #requests_text == 0 then
    error("no paths in " .. file)
  end
  -- Threads start at spread-out offsets so they do not walk the list in lockstep.
  local number = thread_number or 1
  next_index = ((number - 1) * 7919) % #requests_text + 1
end

function request()
  local text = requests_text[next_index]
  next_index = next_index % #requests_text + 1
  return text
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%.0f bytes=%.0f duration_us=%.0f p50_us=%.0f p90_us=%.0f " ..
    "p99_us=%.0f mean_us=%.1f max_us=%.0f connect_errors=%.0f read_errors=%.0f " ..
    "write_errors=%.0f status_errors=%.0f timeouts=%.0f\n",
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
