-- wrk script for `make soak`: GET / with one signup POST in every SIGNUP_EVERY requests (unique emails, each
-- from its own X-Forwarded-For address so the per-IP limit applies as in production, never tripped).
-- Counts the signups the app acknowledged (302 to /signup/thanks/) and prints them in done().
local threads = {}
local token = "BenchBenchBenchBenchBenchBench12"

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "soak"
  every = tonumber(args[2] or "50")
  counter = 0
  signups = 0
  acknowledged = 0
  pending = 0
end

function request()
  counter = counter + 1
  if counter % every ~= 0 then
    return wrk.format("GET", "/")
  end
  signups = signups + 1
  local body = "csrfmiddlewaretoken=" .. token .. "&full_name=Soak+User&country=GB&email=" ..
      prefix .. "-" .. id .. "-" .. signups .. "%40example.com"
  local client = "10." .. (100 + id) .. "." .. (math.floor(signups / 256) % 256) .. "." .. (signups % 256)
  return wrk.format("POST", "/signup/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. token,
    ["X-Forwarded-For"] = client,
  }, body)
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  if status == 302 and string.find(location, "/signup/thanks/", 1, true) then
    acknowledged = acknowledged + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("acknowledged")
  end
  io.write(string.format("acknowledged %d\n", total))
  io.write(string.format("p50_ms %.1f p99_ms %.1f max_ms %.1f\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
