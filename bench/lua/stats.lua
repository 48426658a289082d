-- Plain GET scenarios (profile, verify-token, health): no per-request Lua, so wrk stays on its
-- fast path (the Authorization header is passed with -H). Only reports the results.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function done(summary, latency, requests)
   bench_report(summary, latency)
end
