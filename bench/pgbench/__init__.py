"""problemgate's benchmark harness (stdlib only): bench/run.sh runs `python3 -m pgbench`.

procs (processes, /proc readings, ports, templates, curl), servers (origin and contenders),
load (wrk), scenarios (checks, interleaved rounds, idle memory), callgrind, syscalls, micro
(Google Benchmark binaries), report (tables, targets, plot), history (RESULTS.md: history table
and latest run), cli (options and the run), idle_conns (the idle keep-alive client, a script).
The feature benches in bench/ (endpoints_bench.py, redis_store.py, ws_bench.py) use procs and
load too.
"""
