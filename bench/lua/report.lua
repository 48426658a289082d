-- Shared by the bench scripts: prints one machine-readable line that bench/run.sh parses.
-- Latencies are in microseconds (wrk's unit). `non2xx` is wrk's "Non-2xx or 3xx" count
-- (statuses > 399); the socket error counters are wrk's own.

function bench_report(summary, latency, extra)
   local secs = summary.duration / 1e6
   local e = summary.errors
   local parts = {
      "BENCH",
      string.format("requests=%d", summary.requests),
      string.format("duration_s=%.3f", secs),
      string.format("rps=%.1f", summary.requests / secs),
      string.format("p50_us=%d", latency:percentile(50)),
      string.format("p90_us=%d", latency:percentile(90)),
      string.format("p99_us=%d", latency:percentile(99)),
      string.format("max_us=%d", latency.max),
      string.format("non2xx=%d", e.status),
      string.format("sockerr=%d", e.connect + e.read + e.write + e.timeout),
      string.format("timeouts=%d", e.timeout),
   }
   for _, kv in ipairs(extra or {}) do
      table.insert(parts, kv)
   end
   io.write(table.concat(parts, " "), "\n")
end
