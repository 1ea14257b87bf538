#!/usr/bin/env python3
"""WebSocket echo through problemgate vs straight to the origin vs nginx, in one run.

    bench/ws_bench.py [--problemgate build/problemgate] [--seconds 5] [--rounds 3]
                      [--connections 50] [--size 64] [--append] [--ws-echo PATH]

Builds bench/ws_echo.cpp (g++, Boost.Beast header-only) into a temp dir, starts its echo origin
(one thread), problemgate (threads: 1) and nginx (1 worker, `proxy_pass` with the Upgrade and
Connection headers set, as its WebSocket guide says) on free 127.0.0.1 ports, then runs the
ws_echo load client against each: CONNECTIONS connections, each sending a SIZE-byte binary
message and waiting for its echo, for SECONDS. Rounds are interleaved (round k runs every
target once, in an order rotated by k); figures are medians. CPU µs per message is the
proxy's utime+stime (every process of it) over the run, divided by messages. Stops only what it
started (by PID). --append puts the table into bench/RESULTS.md in place of the previous
WebSocket section.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

# bench/ is this script's directory, so the harness's package imports as it is.
from pgbench.history import replace_feature_section
from pgbench.procs import BENCH, ROOT, children_of, cpu_seconds, free_port, terminate, wait_port


NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/nginx.error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_temp;
    proxy_temp_path {dir}/proxy_temp;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""

PG_CONF = """
listen: 127.0.0.1:{port}
threads: 1
admin: {{ listen: "off" }}
access_log: off
upstreams:
  origin: http://127.0.0.1:{origin}
routes:
  - name: ws
    match: {{ prefix: / }}
    upstream: origin
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problemgate", default=os.path.join(ROOT, "build", "problemgate"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--ws-echo", help="a ws_echo binary built before (skips the g++ build)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pg-ws-bench-")
    procs = []
    try:
        tool = a.ws_echo or os.path.join(tmp, "ws_echo")
        if not a.ws_echo:
            subprocess.run(["g++", "-O2", "-std=c++20", os.path.join(BENCH, "ws_echo.cpp"), "-o", tool,
                            "-pthread"], check=True)
        origin = subprocess.Popen([tool, "serve"], stdout=subprocess.PIPE, text=True)
        procs.append(origin)
        origin_port = int(re.search(r":(\d+)", origin.stdout.readline()).group(1))

        pg_port = free_port()
        with open(os.path.join(tmp, "pg.yaml"), "w") as f:
            f.write(PG_CONF.format(port=pg_port, origin=origin_port))
        pg = subprocess.Popen([a.problemgate, "--config", os.path.join(tmp, "pg.yaml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(pg)

        targets = {"origin (direct)": (origin_port, origin.pid), "problemgate": (pg_port, pg.pid)}
        if shutil.which("nginx"):
            ng_port = free_port()
            user = "user www-data;" if os.geteuid() == 0 else ""
            with open(os.path.join(tmp, "nginx.conf"), "w") as f:
                f.write(NGINX_CONF.format(dir=tmp, port=ng_port, origin=origin_port, user=user))
            ng = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(ng)
            targets["nginx"] = (ng_port, ng.pid)
        else:
            print("nginx not installed (bash scripts/install-deps.sh nginx): skipped", file=sys.stderr)
        for port, _ in targets.values():
            wait_port(port, timeout=20)

        names = list(targets)
        runs = {n: [] for n in names}
        for k in range(a.rounds + 1):  # round 0 warms up and is not counted
            order = names[k % len(names):] + names[:k % len(names)]
            for n in order:
                port, pid = targets[n]
                pids = [pid] + children_of(pid)
                c0 = cpu_seconds(pids)
                out = subprocess.run([tool, "load", str(port), str(a.connections),
                                      str(a.seconds if k else 1), str(a.size)],
                                     capture_output=True, text=True, check=True).stdout
                c1 = cpu_seconds(pids)
                r = json.loads(out)
                if r["errors"]:
                    raise RuntimeError(f"{n}: {r['errors']} connections failed")
                if k:
                    runs[n].append((r["messages"] / r["seconds"], (c1 - c0) / max(r["messages"], 1) * 1e6))
                    print(f"round {k} {n}: {r['messages'] / r['seconds']:.0f} msg/s", file=sys.stderr)

        direct = statistics.median(x[0] for x in runs["origin (direct)"])
        lines = [f"WebSocket echo, {a.connections} connections, {a.size}-byte binary messages, "
                 f"{a.seconds:g} s x {a.rounds} interleaved rounds (medians); proxies 1 thread/worker",
                 "",
                 "| target | echo messages/s | vs direct | proxy CPU µs/message |",
                 "|---|---:|---:|---:|"]
        for n in names:
            rate = statistics.median(x[0] for x in runs[n])
            cpu = statistics.median(x[1] for x in runs[n]) if n != "origin (direct)" else None
            lines.append(f"| {n} | {rate:,.0f} | {rate / direct:.2f}× | {'—' if cpu is None else f'{cpu:.1f}'} |")
        table = "\n".join(lines)
        print(table)
        if a.append:
            with open("/proc/cpuinfo") as f:
                model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            results = os.path.join(BENCH, "RESULTS.md")
            with open(results) as f:
                text = f.read()
            section = (f"## {stamp} — WebSocket echo (bench/ws_bench.py), {platform.machine()}, "
                       f"{os.cpu_count()} CPUs, {model}\n\n{table}\n")
            with open(results, "w") as f:
                f.write(replace_feature_section(text, "WebSocket echo (bench/ws_bench.py)", section))
    finally:
        for p in reversed(procs):
            terminate(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
