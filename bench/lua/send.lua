-- send-code with fresh, valid, real (not test) numbers: every request asks a code for a number
-- that was never used before in this run, alternating the two markets, so each one takes the
-- full path (failure-lock read, per-number and per-IP buckets, SMS budgets and prefix counter,
-- supersede, new code, outbox message). Arguments (after `--`): threads, e.g.
--   BENCH_SEQ=3 wrk -t2 -c64 -d10s -s send.lua http://127.0.0.1:PORT -- 2
--
-- Numbers. KG: +996 70X XXX XXX (libphonenumber's KG mobile range 7(?:[07]\d)\d{6}: all 10^7
-- numbers of 70x are mobile); US: +1 201 NXX XXXX with N = 2…9 (area code 201, New Jersey; all
-- 8 × 10^6 are valid "fixed line or mobile" numbers, which US SMS accepts). bench/run.sh sends
-- one of each through the API before the run, so a change in phonenumber's metadata shows up as
-- a failed start, not as a run of 422s.
--
-- Freshness. wrk runs the script anew for the warm-up and for the measured run, so the counter
-- alone would repeat numbers: BENCH_SEQ (a number run.sh increments for every wrk run) and the
-- thread index select a block of 100,000 numbers per thread and run. A thread wraps around in
-- its block after 100,000 requests (≈ 10,000 req/s per thread for 10 s); run.sh also sets the
-- resend cooldown to 0, so even then no request is refused.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- thread state (globals so done() can read them)
sent_ok, sent_bad = 0, 0
errs = {}

local BLOCK = 100000
local base = 0
local n = 0
local probed = false
local headers = {
   ["Content-Type"] = "application/json",
   ["User-Agent"] = "marque-bench/1 (wrk)",
}

function init(args)
   local nthreads = tonumber(args[1] or "1")
   local seq = tonumber(os.getenv("BENCH_SEQ") or "0")
   base = (seq * nthreads + tid) * BLOCK
end

-- The i-th fresh number: even i in KG, odd i in US.
local function number(i)
   local k = math.floor(i / 2)
   if i % 2 == 0 then
      return string.format("+99670%07d", k % 10000000)
   end
   return string.format("+1201%07d", 2000000 + k % 8000000)
end

function request()
   if tid == 0 and not probed then
      -- wrk's probe call before the run (never sent): spend no number on it.
      probed = true
   else
      n = n + 1
   end
   local phone = number(base + (n % BLOCK))
   return wrk.format("POST", "/api/v1/auth/send-code", headers,
      string.format('{"phone_number":"%s"}', phone))
end

function response(status, headers, body)
   if status == 200 then
      sent_ok = sent_ok + 1
      return
   end
   sent_bad = sent_bad + 1
   local code = body and body:match('"error"%s*:%s*"([%w_]+)"') or "-"
   local key = string.format("send-code %d %s", status, code)
   errs[key] = (errs[key] or 0) + 1
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   local all_errs = {}
   for _, thread in ipairs(threads) do
      ok = ok + (thread:get("sent_ok") or 0)
      bad = bad + (thread:get("sent_bad") or 0)
      for k, v in pairs(thread:get("errs") or {}) do all_errs[k] = (all_errs[k] or 0) + v end
   end
   local keys = {}
   for k in pairs(all_errs) do table.insert(keys, k) end
   table.sort(keys)
   io.write(string.format("send-code 200: %d, non-200: %d\n", ok, bad))
   local errlist = {}
   for _, k in ipairs(keys) do
      io.write(string.format("  non-200: %-40s %d\n", k, all_errs[k]))
      table.insert(errlist, (k:gsub(" ", ":")) .. "=" .. all_errs[k])
   end
   bench_report(summary, latency, {
      string.format("send_ok=%d", ok),
      string.format("send_bad=%d", bad),
      "errs=" .. (#errlist > 0 and table.concat(errlist, ",") or "none"),
   })
end
