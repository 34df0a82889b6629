-- wrk script for `make soak`: GET / with one signup POST in every SIGNUP_EVERY requests (unique emails, each
-- from its own X-Forwarded-For address so the per-IP limit applies as in production, never tripped).
-- Counts the signups the app acknowledged (302 to /signup/thanks/), prints the count in done(), and writes the
-- email of each to <args[3]>-<thread>, so the soak checks each one: a signup's X-Amzn-Trace-Id is its email's
-- local part, which the app echoes in X-Request-ID.
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
  if args[3] then
    acks = io.open(args[3] .. "-" .. id, "w")
    acks:setvbuf("line")
  end
end

function request()
  counter = counter + 1
  if counter % every ~= 0 then
    return wrk.format("GET", "/")
  end
  signups = signups + 1
  local person = prefix .. "-" .. id .. "-" .. signups
  local body = "csrfmiddlewaretoken=" .. token .. "&full_name=Soak+User&country=GB&consent=on&email=" .. person .. "%40example.com"
  local client = "10." .. (100 + id) .. "." .. (math.floor(signups / 256) % 256) .. "." .. (signups % 256)
  return wrk.format("POST", "/signup/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. token,
    ["X-Forwarded-For"] = client,
    ["X-Amzn-Trace-Id"] = person,
  }, body)
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  if status == 302 and string.find(location, "/signup/thanks/", 1, true) then
    acknowledged = acknowledged + 1
    if acks then
      acks:write((headers["X-Request-ID"] or headers["x-request-id"] or "?") .. "@example.com\n")
    end
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
