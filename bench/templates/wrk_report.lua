-- wrk `done` hook only (no per-request Lua, so no load-generator overhead):
-- prints one machine-readable line with totals and latency percentiles (us).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'PGBENCH {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean":%.1f,"lat_max":%d',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency.mean, latency.max))
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    io.write(string.format(',"p%s":%d', tostring(p), latency:percentile(p)))
  end
  io.write('}\n')
end
