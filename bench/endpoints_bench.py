#!/usr/bin/env python3
"""Cost of balancing: problemgate round robin over 1, 2 and 4 endpoints, in one run.

One nginx origin (1 worker) listens on four loopback ports, so the origin's cost is the same
whatever the number of endpoints; problemgate is started once per endpoint count and measured
with wrk (-t2 -c50), rounds interleaved (round k runs every configuration once, in an order
rotated by k), medians reported. CPU per request is the proxy's utime+stime over the run.

    python3 bench/endpoints_bench.py --problemgate build/problemgate [--duration 3] [--rounds 3]

Needs nginx and wrk (Debian packages; bench/run.sh installs them). Prints a Markdown table.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile

# bench/ is this script's directory, so the harness's package imports as it is.
from pgbench.load import run_wrk
from pgbench.procs import CLK_TCK, cpu_ticks, free_port, terminate, wait_port


def wrk(port, duration):
    """(req/s, requests, non-2xx) of one wrk -t2 -c50 run against /ok."""
    r = run_wrk(port, "/ok", duration, 50, 2)
    return r["rps"], r["requests"], r["non2xx"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problemgate", default="build/problemgate")
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--counts", default="1,2,4")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    tmp = tempfile.mkdtemp(prefix="pg-ep-bench-")
    procs = []
    try:
        ports = [free_port() for _ in range(max(counts))]
        listens = "".join(f"    listen 127.0.0.1:{p} reuseport;\n" for p in ports)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  keepalive_requests 1000000;
  server {{
{listens}    location /ok {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
}}
""")
        procs.append(subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for p in ports:
            wait_port(p)
        gateways = {}
        for n in counts:
            port = free_port()
            eps = ", ".join(f"http://127.0.0.1:{p}" for p in ports[:n])
            cfg = os.path.join(tmp, f"pg{n}.yaml")
            with open(cfg, "w") as f:
                f.write(f"""listen: 127.0.0.1:{port}
threads: 1
access_log: off
admin: {{ listen: "off" }}
upstreams:
  app:
    endpoints: [{eps}]
routes:
  - {{ name: app, match: {{ prefix: / }}, upstream: app }}
""")
            proc = subprocess.Popen([args.problemgate, "--config", cfg], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            procs.append(proc)
            wait_port(port)
            wrk(port, 1)  # warm-up: pools filled
            gateways[n] = (proc, port)
        results = {n: [] for n in counts}
        for k in range(args.rounds):
            order = counts[k % len(counts):] + counts[:k % len(counts)]
            for n in order:
                proc, port = gateways[n]
                before = cpu_ticks([proc.pid])
                rps, total, bad = wrk(port, args.duration)
                cpu_us = (cpu_ticks([proc.pid]) - before) / CLK_TCK * 1e6 / max(total, 1)
                results[n].append((rps, cpu_us, bad))
        base_rps = statistics.median(r[0] for r in results[counts[0]])
        base_cpu = statistics.median(r[1] for r in results[counts[0]])
        print(f"| endpoints | req/s (median of {args.rounds}) | vs 1 | CPU µs/request | vs 1 | non-2xx |")
        print("|---|---|---|---|---|---|")
        for n in counts:
            rps = statistics.median(r[0] for r in results[n])
            cpu = statistics.median(r[1] for r in results[n])
            bad = sum(r[2] for r in results[n])
            print(f"| {n} | {rps:,.0f} | {rps / base_rps:.3f} | {cpu:.1f} | {cpu / base_cpu:.3f} | {bad} |")
    finally:
        for p in procs:
            terminate(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
