#!/usr/bin/env python3
"""A rate-limited route with the local store vs the Redis store, in one run (issue 20).

Starts the bundled demo API as the origin, a redis-server on a free loopback port, and one
problemgate per store (threads 2, the same limited route: a limit high enough that every
request is admitted, so both do the full work of a check). Then wrk -t2 -c50 --latency runs
against each, interleaved for --rounds rounds; the table shows medians. CPU per request is
utime+stime from /proc of the gateway (plus redis-server for the Redis store) over the run,
divided by the requests wrk completed.

    python3 bench/redis_store.py [--duration 5] [--rounds 3] [--build build]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

# bench/ is this script's directory, so the harness's package imports as it is.
from pgbench.load import run_wrk
from pgbench.procs import cpu_seconds, free_port, terminate, wait_port


def wrk(port, duration):
    """(req/s, p99 ms, requests, non-2xx) of one wrk -t2 -c50 --latency run against /ok."""
    r = run_wrk(port, "/ok", duration, 50, 2)
    if "rps" not in r or "p99" not in r:
        raise RuntimeError(f"wrk against port {port} measured nothing")
    return r["rps"], r["p99"] / 1000.0, r["requests"], r["non2xx"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pg-bench-redis-")
    procs = []

    def start(cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        procs.append(p)
        return p

    try:
        origin_port, redis_port = free_port(), free_port()
        start([os.path.join(args.build, "problemgate-demo-api"), "--listen", f"127.0.0.1:{origin_port}"])
        redis = start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", work])
        wait_port(origin_port)
        wait_port(redis_port)
        gateways = {}
        for store in ("local", "redis"):
            port = free_port()
            cfg = os.path.join(work, f"{store}.yaml")
            with open(cfg, "w") as f:
                f.write(f"""listen: 127.0.0.1:{port}
threads: 2
admin: {{ listen: "off" }}
access_log: off
rate_limit_store: {{ type: {store}, url: "redis://127.0.0.1:{redis_port}/0", timeout: 50ms, pool_size: 2 }}
upstreams: {{ app: "http://127.0.0.1:{origin_port}" }}
routes:
  - name: limited
    match: {{ prefix: / }}
    upstream: app
    rate_limit: {{ limit: 1000000000, window: 1h, key: client_ip }}
""")
            p = start([os.path.join(args.build, "problemgate"), "--config", cfg])
            wait_port(port)
            gateways[store] = (p, port)
        rows = {s: [] for s in gateways}
        for r in range(args.rounds):
            order = list(gateways) if r % 2 == 0 else list(reversed(gateways))
            for store in order:
                p, port = gateways[store]
                pids = [p.pid] + ([redis.pid] if store == "redis" else [])
                c0 = cpu_seconds(pids)
                rps, p99, total, bad = wrk(port, args.duration)
                c1 = cpu_seconds(pids)
                if bad:
                    print(f"warning: {store}: {bad} non-2xx responses", file=sys.stderr)
                rows[store].append((rps, p99, (c1 - c0) / total * 1e6))
        med = {s: tuple(statistics.median(v[i] for v in rows[s]) for i in range(3)) for s in rows}
        print(f"| store | req/s | p99 ms | CPU µs/request (gateway{' + redis' if True else ''}) | vs local |")
        print("|---|---|---|---|---|")
        for s in ("local", "redis"):
            rps, p99, cpu = med[s]
            ratio = f"{rps / med['local'][0]:.2f}× req/s, {p99 / med['local'][1]:.2f}× p99"
            print(f"| {s} | {rps:,.0f} | {p99:.2f} | {cpu:.1f} | {ratio} |")
    finally:
        for p in reversed(procs):
            terminate(p)


if __name__ == "__main__":
    main()
