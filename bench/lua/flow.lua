-- Full login flows: send-code, then verify-code with the fixed test code, on the same number,
-- again and again. Arguments (after `--`): prefix first count code threads, e.g.
--   wrk -t2 -c64 -d10s -s flow.lua http://127.0.0.1:PORT -- +996555 1 2000 123456 2
-- uses +996555000001 … +996555002000, split evenly between the wrk threads.
--
-- Ownership. Each thread owns a disjoint slice of the numbers, and a number is never in flight
-- twice: it alternates send → verify → send → …, the next step only after the previous answer
-- arrived. wrk's Lua API has no connection identity (request() is called for whichever
-- connection is writable), so the thread hands each request to the next ready number instead of
-- binding numbers to sockets; with a slice (≈1000 numbers) far larger than the thread's
-- connections (32) concurrent connections always work on different numbers.
--
-- Attribution. Every request carries `Origin: http://n<index>.bench`; the server runs with
-- ALLOWED_ORIGINS=* so CORS echoes it in Access-Control-Allow-Origin, on errors too. That tells
-- response() which number (hence which step) an answer belongs to.
--
-- Reported: flows = verify-code answers with 200; every other status is counted per endpoint,
-- status and error code and printed by done().

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

-- main state ----------------------------------------------------------------------------------
local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- thread state --------------------------------------------------------------------------------
-- Counters are globals so done() can read them with thread:get().
send_ok, verify_ok, send_bad, verify_bad, unattributed, filler, recycled, owned = 0, 0, 0, 0, 0, 0, 0, 0
errs = {}

local send_req, verify_req = {}, {}
local kind_of, since = {}, {}          -- number index -> "s"/"v" while in flight; os.time()
local sq, sq_h, sq_t = {}, 1, 0        -- numbers ready to send
local vq, vq_h, vq_t = {}, 1, 0        -- numbers ready to verify
local filler_req
local calls = 0
local probed = false

local function push_s(n) sq_t = sq_t + 1; sq[sq_t] = n end
local function push_v(n) vq_t = vq_t + 1; vq[vq_t] = n end

function init(args)
   local prefix = args[1] or "+996555"
   local first = tonumber(args[2] or "1")
   local count = tonumber(args[3] or "2000")
   local code = args[4] or "123456"
   local nthreads = tonumber(args[5] or "1")
   local per = math.floor(count / nthreads)
   local lo = first + tid * per
   local hi = (tid == nthreads - 1) and (first + count - 1) or (lo + per - 1)
   for n = lo, hi do
      local phone = string.format("%s%06d", prefix, n)
      local headers = {
         ["Content-Type"] = "application/json",
         ["Origin"] = string.format("http://n%d.bench", n),
         ["User-Agent"] = "marque-bench/1 (wrk)",
      }
      send_req[n] = wrk.format("POST", "/api/v1/auth/send-code", headers,
         string.format('{"phone_number":"%s"}', phone))
      verify_req[n] = wrk.format("POST", "/api/v1/auth/verify-code", headers,
         string.format('{"phone_number":"%s","verification_code":"%s"}', phone, code))
      push_s(n)
      owned = owned + 1
   end
   filler_req = wrk.format("GET", "/health", {})
end

-- Numbers whose answer never came back (should not happen; wrk drops timed-out requests
-- silently) go back to sending after 5 s so the pool cannot drain.
local function recycle_stale()
   local now = os.time()
   for n, k in pairs(kind_of) do
      if now - since[n] > 5 then
         kind_of[n] = nil
         recycled = recycled + 1
         push_s(n)
      end
   end
end

function request()
   if tid == 0 and not probed then
      -- wrk calls request() once on thread 0 before the run (script_verify_request, to count
      -- pipelined requests) and never sends the result: hand out no number for it.
      probed = true
      return filler_req
   end
   calls = calls + 1
   if calls % 4096 == 0 then recycle_stale() end
   local n, kind
   if vq_h <= vq_t then
      n = vq[vq_h]; vq[vq_h] = nil; vq_h = vq_h + 1; kind = "v"
   elseif sq_h <= sq_t then
      n = sq[sq_h]; sq[sq_h] = nil; sq_h = sq_h + 1; kind = "s"
   else
      filler = filler + 1       -- every owned number is in flight: more connections than numbers
      return filler_req
   end
   kind_of[n] = kind
   since[n] = os.time()
   if kind == "v" then return verify_req[n] end
   return send_req[n]
end

local function count_error(what, status, body)
   local code = body and body:match('"error"%s*:%s*"([%w_]+)"') or "-"
   local key = string.format("%s %d %s", what, status, code)
   errs[key] = (errs[key] or 0) + 1
end

function response(status, headers, body)
   local origin = headers["access-control-allow-origin"] or headers["Access-Control-Allow-Origin"]
   local n = origin and tonumber(origin:match("^http://n(%d+)%.bench$"))
   local kind = n and kind_of[n]
   if not kind then
      unattributed = unattributed + 1
      if status ~= 200 then count_error("unattributed", status, body) end
      return
   end
   kind_of[n] = nil
   if kind == "s" then
      if status == 200 then
         send_ok = send_ok + 1
         push_v(n)
      else
         send_bad = send_bad + 1
         count_error("send-code", status, body)
         push_s(n)
      end
   else
      if status == 200 then
         verify_ok = verify_ok + 1
      else
         verify_bad = verify_bad + 1
         count_error("verify-code", status, body)
      end
      push_s(n)
   end
end

-- main state again ----------------------------------------------------------------------------
function done(summary, latency, requests)
   local t = { send_ok = 0, verify_ok = 0, send_bad = 0, verify_bad = 0, unattributed = 0,
               filler = 0, recycled = 0, owned = 0 }
   local all_errs = {}
   for _, thread in ipairs(threads) do
      for k in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
      for k, v in pairs(thread:get("errs") or {}) do all_errs[k] = (all_errs[k] or 0) + v end
   end
   local secs = summary.duration / 1e6
   local keys = {}
   for k in pairs(all_errs) do table.insert(keys, k) end
   table.sort(keys)
   io.write(string.format("flows (verify-code 200): %d = %.1f/s; send-code 200: %d; " ..
      "non-200: send-code %d, verify-code %d; numbers owned: %d\n",
      t.verify_ok, t.verify_ok / secs, t.send_ok, t.send_bad, t.verify_bad, t.owned))
   for _, k in ipairs(keys) do
      io.write(string.format("  non-200: %-40s %d\n", k, all_errs[k]))
   end
   if t.unattributed > 0 or t.filler > 0 then
      io.write(string.format("  WARNING: unattributed answers %d, filler requests %d\n",
         t.unattributed, t.filler))
   end
   if t.recycled > 0 then
      -- e.g. wrk calls request() again when a write returned EAGAIN before any byte went out,
      -- so the number handed out first is never sent; the 5 s recycling puts it back to work.
      io.write(string.format("  note: %d number(s) recycled after 5 s without an answer\n", t.recycled))
   end
   local errlist = {}
   for _, k in ipairs(keys) do table.insert(errlist, (k:gsub(" ", ":")) .. "=" .. all_errs[k]) end
   bench_report(summary, latency, {
      string.format("flows=%d", t.verify_ok),
      string.format("flows_per_s=%.1f", t.verify_ok / secs),
      string.format("send_ok=%d", t.send_ok),
      string.format("send_bad=%d", t.send_bad),
      string.format("verify_bad=%d", t.verify_bad),
      string.format("unattributed=%d", t.unattributed),
      string.format("filler=%d", t.filler),
      string.format("recycled=%d", t.recycled),
      "errs=" .. (#errlist > 0 and table.concat(errlist, ",") or "none"),
   })
end
