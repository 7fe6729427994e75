-- wrk script for scripts/load-test: every thread but the last posts photos, the last posts
-- files that must be refused; each thread counts the statuses it gets, and done() prints
-- them per kind with the latency percentiles. Arguments: TOKEN then photo paths then "--"
-- then bad file paths.
threads = {}
id = 0

function setup(thread)
  id = id + 1
  thread:set("id", id)
  table.insert(threads, thread)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local b = f:read("*a")
  f:close()
  return b
end

function init(args)
  local token = args[1]
  local photos, bad, into = {}, {}, nil
  into = photos
  for i = 2, #args do
    if args[i] == "--" then into = bad else table.insert(into, read(args[i])) end
  end
  kind = (id == tonumber(os.getenv("LOAD_BAD_THREAD") or "0")) and "bad" or "photo"
  bodies = (kind == "bad") and bad or photos
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/octet-stream" }
  n = id
  counts = {}
end

function request()
  n = n % #bodies + 1
  return wrk.format("POST", "/v1/scrub", headers, bodies[n])
end

function response(status, hdrs, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local by = { photo = {}, bad = {} }
  for _, t in ipairs(threads) do
    local k = t:get("kind")
    for status, c in pairs(t:get("counts")) do
      by[k][status] = (by[k][status] or 0) + c
    end
  end
  for _, k in ipairs({ "photo", "bad" }) do
    for status, c in pairs(by[k]) do
      io.write(string.format("status %s %d %d\n", k, status, c))
    end
  end
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("seconds %.1f\n", summary.duration / 1e6))
  io.write(string.format("errors connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  for _, p in ipairs({ 50, 95, 99 }) do
    io.write(string.format("latency p%d %.3f s\n", p, latency:percentile(p) / 1e6))
  end
end
