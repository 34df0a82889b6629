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
end

function request()
  counter = counter + 1
  local body = "csrfmiddlewaretoken=" .. token .. "&full_name=Bench+User&country=GB&consent=on&email=" ..
      prefix .. "-" .. id .. "-" .. counter .. "%40example.com" .. extra
  local client = "10." .. id .. "." .. (math.floor(counter / 256) % 256) .. "." .. (counter % 256)
  return wrk.format("POST", "/signup/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. token,
    ["X-Forwarded-For"] = client,
  }, body)
end
