-- wrk script: POST /v2/billing_rules, counting 201 answers across threads.
-- With QUOTA set, each thread stops sending after QUOTA answers (every request sent is answered and
-- counted before wrk exits), which makes "rules in the store == 201 answers" an exact check.
wrk.method = "POST"
wrk.body = '{"type":"exclusion","title":"bench","charge_type":"Tax"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("COSTD_TOKEN")

local threads = {}
local quota = tonumber(os.getenv("QUOTA") or "0")

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  created = 0
  other = 0
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

if quota > 0 then
  function delay()
    if created + other >= quota then return 100000000 end
    return 0
  end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("created_201 %d\nother_status %d\n", c, o))
end
