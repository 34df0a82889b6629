-- wrk script: POST signups with unique emails and a valid CSRF cookie/token pair.
-- Django accepts its 32-character CSRF secret unmasked in the form field, matching the cookie.
-- Each request comes from its own client address (X-Forwarded-For, as the ALB sets it; the app trusts one
-- hop here), so the per-IP signup rate limit is exercised, not tripped.
local threads = {}
local token = "BenchBenchBenchBenchBenchBench12"

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "run"
  extra = args[2] and ("&" .. args[2]) or ""  -- more fields (the form version, custom fields' answers)
  counter = 0
  -- Each run (prefix) its own addresses: the apps share one Redis, so the same address in every round would
  -- reach the per-IP limit (SIGNUP_RATE_LIMIT, 20 in 10 minutes) by the sixth round of three apps.
  seed = 0
  for i = 1, #prefix do seed = (seed * 31 + prefix:byte(i)) % 65536 end
end

function request()
  counter = counter + 1
  local body = "csrfmiddlewaretoken=" .. token .. "&full_name=Bench+User&country=GB&consent=on&email=" ..
      prefix .. "-" .. id .. "-" .. counter .. "%40example.com" .. extra
  local client = "10." .. ((math.floor(seed / 256) + id) % 256) .. "." .. ((seed + math.floor(counter / 256)) % 256) ..
      "." .. (counter % 256)
  return wrk.format("POST", "/signup/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. token,
    ["X-Forwarded-For"] = client,
  }, body)
end
