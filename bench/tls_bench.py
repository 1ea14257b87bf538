#!/usr/bin/env python3
"""TLS termination: problemgate vs nginx (Debian's), same certificate, one worker each.

    bench/tls_bench.py [--problemgate build/problemgate] [--seconds 5] [--append]

Makes a throwaway CA and a localhost certificate with `openssl` in a temp dir, starts an nginx
origin (plain HTTP, static /small and a 1 MiB /big, its own worker), then problemgate
(threads: 1, one TLS listener) and nginx (worker_processes 1, `listen ... ssl`, proxy_pass to
the origin over keep-alive) in front of it, on free 127.0.0.1 ports. Measures, per target:

- keep-alive requests/s over TLS: wrk -t1 -c50 on /small;
- 1 MiB responses/s over TLS: wrk -t1 -c8 on /big;
- new handshakes/s, full and resumed: `openssl s_time -new` and `-reuse` (one client
  process, TLS 1.2 so `-reuse` resumes by session id; TLS 1.3 tickets are not re-offered by
  s_time).

Prints each figure and the ratio problemgate / nginx. Stops only what it started (by PID).
--append adds the table to bench/RESULTS.md. A noisy, shared machine makes single runs rough:
read the ratios, not the absolute numbers.
"""
import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from pgbench.procs import free_port, terminate, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def certs(d):
    def run(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
        "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext", "-out", "server.pem")


NGINX_COMMON = """
worker_processes 1;
daemon off;
master_process on;
pid {dir}/{name}.pid;
error_log {dir}/{name}.error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/{name}_client;
    proxy_temp_path {dir}/{name}_proxy;
    {body}
}}
"""

ORIGIN_BODY = """
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        root {dir}/www;
    }}
"""

FRONT_BODY = """
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        keepalive_requests 100000;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""

PG_CONF = """
listen:
  - address: 127.0.0.1:{port}
    tls: {{ cert: {dir}/server.pem, key: {dir}/server.key }}
threads: 1
admin: {{ listen: "off" }}
access_log: off
limits: {{ max_requests_per_connection: 100000 }}
upstreams:
  origin: http://127.0.0.1:{origin}
routes:
  - name: all
    match: {{ prefix: / }}
    upstream: origin
"""


def nginx(tmp, name, body):
    user = "user root;" if os.geteuid() == 0 else ""
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write(NGINX_COMMON.format(dir=tmp, name=name, user=user, body=body))
    return subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wrk(port, path, conns, seconds):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", f"https://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"  wrk on {port}{path}: {errors.group(0)}", file=sys.stderr)
    return float(m.group(1)) if m else 0.0


def s_time(port, mode, seconds):
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", mode, "-time", str(seconds),
                          "-tls1_2"], capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"(\d+) connections in ([\d.]+) real seconds", out) or \
        re.search(r"(\d+) connections in ([\d.]+)s", out)
    if not m:
        return 0.0
    return int(m.group(1)) / float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problemgate", default=os.path.join(ROOT, "build", "problemgate"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (bash scripts/install-deps.sh nginx)")

    tmp = tempfile.mkdtemp(prefix="pg-tls-bench-")
    procs = []
    try:
        certs(tmp)
        os.makedirs(os.path.join(tmp, "www"))
        with open(os.path.join(tmp, "www", "small"), "wb") as f:
            f.write(b"ok\n")
        with open(os.path.join(tmp, "www", "big"), "wb") as f:
            f.write(os.urandom(1 << 20))
        origin = free_port()
        procs.append(nginx(tmp, "origin", ORIGIN_BODY.format(port=origin, dir=tmp)))
        wait_port(origin, timeout=20)
        targets = {}
        ng = free_port()
        procs.append(nginx(tmp, "front", FRONT_BODY.format(port=ng, origin=origin, dir=tmp)))
        pg = free_port()
        with open(os.path.join(tmp, "pg.yaml"), "w") as f:
            f.write(PG_CONF.format(port=pg, origin=origin, dir=tmp))
        procs.append(subprocess.Popen([args.problemgate, "--config", os.path.join(tmp, "pg.yaml")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(ng, timeout=20)
        wait_port(pg, timeout=20)
        targets = {"problemgate": pg, "nginx": ng}
        rows = [("keep-alive req/s (/small, 50 conns)", lambda p: wrk(p, "/small", 50, args.seconds)),
                ("1 MiB responses/s (8 conns)", lambda p: wrk(p, "/big", 8, args.seconds)),
                ("new full handshakes/s (TLS 1.2)", lambda p: s_time(p, "-new", args.seconds)),
                ("resumed handshakes/s (TLS 1.2)", lambda p: s_time(p, "-reuse", args.seconds))]
        results = []
        for name, fn in rows:
            values = {t: fn(port) for t, port in targets.items()}
            ratio = values["problemgate"] / values["nginx"] if values["nginx"] else float("nan")
            results.append((name, values["problemgate"], values["nginx"], ratio))
            print(f"{name:40s} problemgate {values['problemgate']:10.1f}  nginx {values['nginx']:10.1f}  "
                  f"ratio {ratio:.2f}")
        if args.append:
            with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
                f.write(f"\n## TLS termination vs nginx ({datetime.date.today()}, bench/tls_bench.py, "
                        f"{args.seconds}s per figure, one run)\n\n"
                        "One worker each, same ECDSA P-256 certificate, plain nginx origin; 2-core machine "
                        "shared with other builds, so single runs are rough.\n\n"
                        "| figure | problemgate | nginx | ratio |\n|---|---:|---:|---:|\n")
                for name, a, b, r in results:
                    f.write(f"| {name} | {a:.0f} | {b:.0f} | {r:.2f} |\n")
    finally:
        for p in reversed(procs):
            terminate(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
