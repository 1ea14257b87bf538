#!/usr/bin/env python3
"""The non-CI rows of the reliability battery (docs/reliability-battery.md): R3 R4 R7
R8 U8 U10 U11 S5 S7 S8. Starts the real binary, real upstreams (the demo API, Debian's nginx,
scripted sockets) on 127.0.0.1 and prints one table row per battery row: measured figure and
pass/fail. Durations are shortened by default; `--full` / `--soak-minutes 30` for the real ones.

Usage: tests/reliability/run.sh [--rows R3,U8] [--soak-minutes N] [--r7-requests N] [--full]
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The integration suite's helpers, under the names its tests use (run.sh puts tests/integration
# on PYTHONPATH).
from battery import HAVE_H11, StrictError, cross_check, fd_count, get_until_closed, recv_until_closed, rss_kib
from harness import DemoApi, Gateway, RawClient, ScriptedUpstream, request_full, sidecar_config

HERE = os.path.dirname(os.path.abspath(__file__))

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
RESULTS = []


def row(rid, measured, passed, note=""):
    RESULTS.append((rid, measured, "pass" if passed else "FAIL", note))
    print(f"  {rid}: {'pass' if passed else 'FAIL'} - {measured} {note}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ----------------------------------------------------------------------------- tools

class Nginx:
    """Debian's nginx as a fast upstream: /ok (2 bytes) and /1m (1 MiB)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pg-nginx-")
        self.port = free_port()
        with open(os.path.join(self.dir, "1m"), "wb") as f:
            f.write(b"x" * (1 << 20))
        conf = f"""
worker_processes 1; daemon off; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {self.dir}; proxy_temp_path {self.dir};
  fastcgi_temp_path {self.dir}; uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  keepalive_requests 100000;
  server {{ listen 127.0.0.1:{self.port}; root {self.dir};
    location = /ok {{ return 200 "ok"; }}
    location = /1m {{ }}
    location = /fail {{ return 503 "<html>down</html>"; }} }} }}
"""
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-c", os.path.join(self.dir, "nginx.conf"), "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def client_conns(port):
    """Client-side TCP connections of the gateway still open (any state but LISTEN/TIME-WAIT)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "state", "close-wait", "state", "syn-recv",
                          "state", "fin-wait-1", "state", "fin-wait-2", "state", "last-ack", "sport", "=", f":{port}"],
                         capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def wait_held(port, target, timeout=20.0):
    """Waits until the attack holds `target` client connections (or the timeout): the load is
    measured against the whole attack, not its ramp-up. Returns the count held."""
    end = time.time() + timeout
    held = client_conns(port)
    while held < target and time.time() < end:
        time.sleep(0.5)
        held = client_conns(port)
    return held


class HeldSampler:
    """Samples the gateway's client connections every 0.5 s while a load runs (mean and max):
    how many slow connections the attack actually held during the measurement."""

    def __init__(self, port):
        self.port, self.samples, self.stop_ev = port, [], threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.wait(0.5):
            self.samples.append(client_conns(self.port))

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        n = len(self.samples) or 1
        return f"held {sum(self.samples) / n:.0f} mean, {max(self.samples or [0])} max"


def wrk(url, seconds, conns=20, threads=1, script=None):
    """Runs wrk; returns dict(rps, p99_ms, socket_errors, non2xx, requests)."""
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    res = {"rps": 0.0, "p99_ms": 0.0, "socket_errors": 0, "non2xx": 0, "requests": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if m:
        res["p99_ms"] = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    return res


def gw_config(upstream_url, limits="", upstream_extra="", threads=2):
    return sidecar_config(upstream_url, limits=limits, upstream_extra=upstream_extra).replace(
        "threads: 2", f"threads: {threads}")


# ----------------------------------------------------------------------------- R3 / R4

ATTACKER_CPU_PERCENT = 10


def attacker(cmd, cwd):
    """Starts an attack tool with its CPU capped (a CFS quota of ATTACKER_CPU_PERCENT % of one
    core, through a cpu cgroup when one is writable; else only nice 19). On this 2-core box the
    tool otherwise spins in select() at 100 % of a core (measured: slowhttptest -X alone, with
    the proxy idle) and the row measures the machine's CPU instead of the proxy: a real
    attacker's CPU is not on the proxy's host. Returns (process, how it was capped)."""
    # SCHED_IDLE on top: the tool runs only on CPU no one else wants, as it would on its own
    # host. Measured (R4 -X held, the load stopped): the gateway spends 0 CPU on 500 slow
    # readers, the tool its whole quota; with the tool SIGSTOPped and its connections kept,
    # wrk's p99 and throughput are back at baseline, so what the row lost was the tool's CPU.
    idle = ["chrt", "--idle", "0"] if shutil.which("chrt") else []
    p = subprocess.Popen(["nice", "-n", "19"] + idle + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    # A short period (10 ms, the quota then 1 ms): with the default 100 ms the tool would run
    # 10 ms at a stretch and take a whole core from the proxy for that long, every period,
    # which shows up in the p99 of the load being measured.
    period = 10000
    quota = ATTACKER_CPU_PERCENT * period // 100
    for base, files in (("/sys/fs/cgroup/cpu", ("cpu.cfs_period_us", "cpu.cfs_quota_us", "tasks")),
                        ("/sys/fs/cgroup", ("", "cpu.max", "cgroup.procs"))):
        d = os.path.join(base, "pg-battery-attacker")
        try:
            os.makedirs(d, exist_ok=True)
            if files[0]:
                with open(os.path.join(d, files[1]), "w") as f:
                    f.write("-1")  # lift the old quota first: a period below it is refused
                with open(os.path.join(d, files[0]), "w") as f:
                    f.write(str(period))
                with open(os.path.join(d, files[1]), "w") as f:
                    f.write(str(quota))
            else:
                with open(os.path.join(d, files[1]), "w") as f:
                    f.write(f"{quota} {period}")
            with open(os.path.join(d, files[2]), "w") as f:
                f.write(str(p.pid))
            return p, (f"attacker capped at {ATTACKER_CPU_PERCENT}% CPU, {quota} us per {period} us (cgroup) + nice 19"
                       + (" + SCHED_IDLE" if idle else ""))
        except OSError:
            continue
    return p, "attacker at nice 19" + (" + SCHED_IDLE" if idle else "") + " only (no writable cpu cgroup)"


def r3_slowloris(args):
    ng = Nginx()
    gw = Gateway(gw_config(ng.url, limits="  max_connections: 8192\n").replace(
        "header_timeout: 2s", "header_timeout: 5s"), keep_access_log=False)
    try:
        url = f"http://127.0.0.1:{gw.port}/ok"
        base = wrk(url, args.wrk_seconds)
        time.sleep(1)
        fds0 = fd_count(gw.proc.pid)  # warm: the upstream pool holds its idle connections
        # slowhttptest's -c is the total it opens over the test, and the gateway closes each one
        # at the 5 s header deadline: opening rate x (test length) keeps about rate x 5 s =
        # args.slow_conns held at once for the whole measurement, not only its first seconds.
        rate = max(1, args.slow_conns // 5)
        slow, capped = attacker(["slowhttptest", "-H", "-c", str(rate * (args.wrk_seconds + 30)), "-r", str(rate),
                                 "-i", "2", "-l", str(args.wrk_seconds + 30), "-u", url, "-g", "-o",
                                 os.path.join(gw.dir, "slow")], gw.dir)
        wait_held(gw.port, int(args.slow_conns * 0.9))
        sampler = HeldSampler(gw.port)
        under = wrk(url, args.wrk_seconds)
        held = sampler.stop()
        slow.wait(args.wrk_seconds + 60)
        time.sleep(6)  # every slow connection has passed its 5 s header deadline
        fds1 = fd_count(gw.proc.pid)
        left = client_conns(gw.port)
        ok = (under["p99_ms"] <= 2 * max(base["p99_ms"], 1.0) and under["socket_errors"] == 0 and
              under["non2xx"] == 0 and
              under["rps"] >= 0.7 * base["rps"] and left == 0 and fds1 - fds0 <= 5)
        row("R3", f"baseline {base['rps']:.0f} rps p99 {base['p99_ms']:.2f} ms; under slowloris "
            f"({rate}/s for {args.wrk_seconds + 30} s, each closed at the 5 s deadline; {held}) {under['rps']:.0f} rps p99 {under['p99_ms']:.2f} ms, "
            f"{under['socket_errors']} socket errors; client conns left {left}; fds {fds0}->{fds1}", ok,
            f"(wrk {args.wrk_seconds}s, p99 floor 1 ms; {capped})")
        # R4: slow body and slow read against a 1 MiB response.
        rss0 = rss_kib(gw.proc.pid)
        res = []
        # -B: the gateway drops each slow POST at its body-idle deadline (2 s; a POST lives about
        # 4 s), so (as in R3) the attack opens rate x (test length) connections to keep ~500
        # held; -X: a slow reader is
        # never idle (it takes a byte a second), so its 500 stay.
        n4 = min(args.slow_conns, 500)
        for mode, total, rate, extra in (("-B", (n4 // 4) * (args.wrk_seconds + 30), n4 // 4, ["-s", "65536"]),
                                          ("-X", n4, 200, ["-k", "1", "-w", "1", "-y", "1", "-n", "1", "-z", "1"])):
            def attack(port):
                return attacker(["slowhttptest", mode, "-c", str(total), "-r", str(rate), "-i", "2",
                                 "-l", str(args.wrk_seconds + 30), "-u", f"http://127.0.0.1:{port}/1m"] + extra,
                                gw.dir)[0]
            ctrl = None
            if mode == "-X":
                # Control: the same 500 slow readers aimed at a bystander nginx serving the same
                # 1 MiB file on this box, while wrk measures the gateway as under the attack. It
                # prices what the attack costs the machine (the tool's CPU, the kernel's work for
                # 500 zero-window sockets and their ~1 GB of send queues) apart from the proxy.
                # Measured by hand before this control existed (2026-12-06): p99 1.80 -> 3.29 ms
                # aimed at the bystander, 2.03 -> 3.34 ms aimed at the gateway; back at baseline
                # within a second of SIGSTOPping the tool with its connections kept.
                bystander = Nginx()
                p = attack(bystander.port)
                try:
                    wait_held(bystander.port, int(n4 * 0.9))
                    ctrl = wrk(url, args.wrk_seconds)
                finally:
                    p.terminate()
                    p.wait(10)
                    bystander.stop()
            p = attack(gw.port)
            wait_held(gw.port, int(n4 * 0.9))
            sampler = HeldSampler(gw.port)
            w = wrk(url, args.wrk_seconds)
            held = sampler.stop()
            peak = rss_kib(gw.proc.pid)
            p.wait(args.wrk_seconds + 60)
            res.append((mode, w, peak, held, ctrl))
        time.sleep(6)
        fds2 = fd_count(gw.proc.pid)
        left2 = client_conns(gw.port)
        worst = max(peak for _, _, peak, _, _ in res)
        # Upstream connections released by the slow readers stay pooled (idle, up to the pool
        # size) until reused or past upstream idle_timeout at the next acquire: counted apart.
        # Every request of the legitimate load must succeed too: before request buffering, slow
        # POSTs held the upstream pool and wrk's requests came back 503. "As R3": p99 too.
        # p99 <= 2x the baseline (floor 1 ms), the baseline for -X being its control when it was
        # measured: what wrk sees with the same attack running on this box but aimed elsewhere.
        # Throughput is held to the no-attack baseline either way.
        def p99_ref(ctrl):
            return max(ctrl["p99_ms"] if ctrl else base["p99_ms"], 1.0)
        ok4 = all(w["socket_errors"] == 0 and w["non2xx"] == 0 and w["rps"] >= 0.7 * base["rps"] and
                  w["p99_ms"] <= 2 * p99_ref(ctrl)
                  for _, w, _, _, ctrl in res) and \
            worst - rss0 < 256 * 1024 and left2 == 0

        def describe(m, w, held, ctrl):
            s = (f"{m} ({held}): {w['rps']:.0f} rps ({w['rps'] / base['rps']:.0%}) p99 {w['p99_ms']:.2f} ms "
                 f"({w['p99_ms'] / max(base['p99_ms'], 1.0):.1f}x baseline")
            if ctrl:
                s += (f", {w['p99_ms'] / p99_ref(ctrl):.1f}x control: {ctrl['rps']:.0f} rps p99 {ctrl['p99_ms']:.2f} ms "
                      f"with the attack aimed at a bystander nginx")
            return s + f"), {w['socket_errors']} errs, {w['non2xx']} non-2xx"
        row("R4", "; ".join(describe(m, w, held, ctrl) for m, w, _, held, ctrl in res) +
            f"; RSS {rss0}->{worst} KiB; client conns left {left2}; fds {fds0}->{fds2} (pooled upstream conns)", ok4,
            f"(<=500 slow conns; RSS bound 256 MiB; p99 <= 2x baseline, -X: 2x its control, floor 1 ms; {capped})")
    finally:
        gw.stop()
        ng.stop()


# ----------------------------------------------------------------------------- R7 / R8

def mixed_client(port, n, seed, counts, stop):
    rnd = random.Random(seed)
    for _ in range(n):
        if stop.is_set():
            return
        k = rnd.random()
        try:
            if k < 0.6:
                st = request_full(port, "GET", "/ok").status
            elif k < 0.75:
                st = request_full(port, "GET", "/flat/internal").status
            elif k < 0.85:
                c = RawClient(port, timeout=5)
                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 5000)
                c.close()  # client abort mid-body
                st = "abort"
            elif k < 0.95:
                c = RawClient(port, timeout=5)
                c.send(rnd.choice([b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                                   b"GET / HTTP/1.1\nHost: x\n\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                                   b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"]))
                st = c.read_response().status
                c.close()
            else:
                st = request_full(port, "POST", "/echo", body=b"b" * rnd.randint(0, 20000)).status
        except Exception as e:  # noqa: BLE001 - counted
            st = type(e).__name__
        counts[st] = counts.get(st, 0) + 1


def r7_long_mixed(args):
    demo = DemoApi()
    gw = Gateway(gw_config(demo.url), keep_access_log=False)
    try:
        # Warm up with the run's own mix and concurrency (4 clients): the upstream pool grows to
        # the number of concurrent requests per worker and keeps those connections, so a
        # sequential warm-up would count them as leaked fds afterwards.
        stop = threading.Event()
        warm = [threading.Thread(target=mixed_client, args=(gw.port, 2000, 100 + s, {}, stop)) for s in range(4)]
        for th in warm:
            th.start()
        for th in warm:
            th.join()
        time.sleep(3)  # lingering closes of the warm-up end
        fds0, rss0 = fd_count(gw.proc.pid), rss_kib(gw.proc.pid)
        counts = {}
        per = args.r7_requests // 4
        ths = [threading.Thread(target=mixed_client, args=(gw.port, per, s, counts, stop)) for s in range(4)]
        t = time.time()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        el = time.time() - t
        time.sleep(3)  # lingering closes end
        fds1, rss1 = fd_count(gw.proc.pid), rss_kib(gw.proc.pid)
        errors = {k: v for k, v in counts.items() if isinstance(k, str) and k != "abort"}
        if args.asan:
            # ASan keeps freed memory in quarantine, so RSS says nothing here; the verdict on
            # memory is LeakSanitizer's at exit (and ASan's on every access meanwhile).
            code = gw.stop()
            reports = [l for l in gw.stderr().splitlines() if "Sanitizer" in l and "ERROR" in l]
            ok = abs(fds1 - fds0) <= 5 and not errors and code == 0 and not reports
            memory = f"exit {code}, sanitizer reports {len(reports)}" + (f" ({reports[0]})" if reports else "")
        else:
            ok = abs(fds1 - fds0) <= 5 and rss1 <= rss0 * 1.10 + 2048 and not errors
            memory = f"RSS {rss0}->{rss1} KiB"
        build = "ASan+UBSan build, LeakSanitizer at exit" if args.asan else "release build, RSS slack 2 MiB"
        length = "" if args.r7_requests >= 1_000_000 else f"shortened from 1,000,000; "
        row("R7" + (" (ASan)" if args.asan else ""),
            f"{sum(counts.values())} mixed requests in {el:.0f}s {dict(sorted((str(k), v) for k, v in counts.items()))}; "
            f"fds {fds0}->{fds1}; {memory}", ok, f"({length}{build})")
    finally:
        gw.stop()
        demo.stop()


def machine_cpu():
    """(total, idle, steal) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4], v[7]


def proc_cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])


def duration_buckets(admin_port):
    """The gateway's own request-duration histogram (problemgate_request_duration_seconds),
    summed over routes and statuses: {le: cumulative count}."""
    out = {}
    try:
        with socket.create_connection(("127.0.0.1", admin_port), timeout=2) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            text = recv_until_closed(s)[0].decode("latin-1")
    except OSError:
        return out
    for m in re.finditer(r'^problemgate_request_duration_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)', text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def share_over(b0, b1, le):
    """Share of the window's requests the gateway itself took longer than `le` seconds for."""
    total = b1.get("+Inf", 0) - b0.get("+Inf", 0)
    under = b1.get(le, 0) - b0.get(le, 0)
    return (total - under) / total if total > 0 else 0.0


def r8_soak(args):
    ng = Nginx()
    # The access log stays on (as in production); its lines are read and dropped: 30 minutes
    # at ~15,000 rps are ~28 million lines, which this process kept in memory before.
    # The admin listener is on so each window can read the gateway's own duration histogram.
    admin_port = free_port()
    cfg = gw_config(ng.url)
    assert 'listen: "off"' in cfg, "sidecar_config's admin block changed: R8 needs its metrics"
    gw = Gateway(cfg.replace('listen: "off"', f"listen: 127.0.0.1:{admin_port}"), keep_access_log=False)
    lua = os.path.join(gw.dir, "soak.lua")
    with open(lua, "w") as f:
        f.write('request = function() if math.random(100) == 1 then return wrk.format("GET", "/fail") '
                'else return wrk.format("GET", "/ok") end end\n')
    try:
        url = f"http://127.0.0.1:{gw.port}/ok"
        full = wrk(url, 5, conns=20)
        windows = []
        start = time.time()
        end = start + args.soak_minutes * 60
        while time.time() < end:
            m0, c0, b0, t0 = machine_cpu(), proc_cpu_ticks(gw.proc.pid), duration_buckets(admin_port), time.time()
            w = wrk(url, 10, conns=2, script=lua)  # 2 connections: about half of max throughput here
            m1, c1, b1 = machine_cpu(), proc_cpu_ticks(gw.proc.pid), duration_buckets(admin_port)
            dt = max(1, m1[0] - m0[0])
            # The machine's busy and steal share in the window: a p99 outlier with the machine
            # far busier than the soak itself makes it (or with steal) is the host, not the proxy.
            busy, steal = 100.0 * (dt - (m1[1] - m0[1])) / dt, 100.0 * (m1[2] - m0[2]) / dt
            # And the gateway's own view of the window: its CPU per request, and the share of
            # requests it itself held over 1 ms (head read to last byte written). A wrk p99
            # outlier with neither moved happened outside the gateway's processing.
            reqs = max(1, w["requests"])
            cpu_us = (c1 - c0) * 1e6 / os.sysconf("SC_CLK_TCK") / reqs
            windows.append((w["rps"], w["p99_ms"], w["socket_errors"], rss_kib(gw.proc.pid), fd_count(gw.proc.pid),
                            busy, steal, (t0 - start) / 60, cpu_us, share_over(b0, b1, "0.001")))
        alive = gw.proc.poll() is None
        third = max(1, len(windows) // 3)
        late = windows[third:]
        rss_drift = (max(x[3] for x in late) - min(x[3] for x in late)) / max(1, min(x[3] for x in late))
        p99s = [x[1] for x in late]
        med = sorted(p99s)[len(p99s) // 2]
        outside = [p for p in p99s if p > max(med * 1.2, med + 0.5)]
        p99_ok = not outside
        worst = max(late, key=lambda x: x[1])
        busy_med = sorted(x[5] for x in late)[len(late) // 2]
        cpu_med = sorted(x[8] for x in late)[len(late) // 2]
        slow_med = sorted(x[9] for x in late)[len(late) // 2]
        fds = [x[4] for x in late]  # the upstream pool fills during the first third
        ok = alive and rss_drift < 0.05 and max(fds) - min(fds) <= 5 and p99_ok and all(x[2] == 0 for x in windows)
        row("R8", f"{args.soak_minutes} min, max {full['rps']:.0f} rps, soak {sum(x[0] for x in windows) / len(windows):.0f} rps "
            f"with 1% 503s; RSS drift {rss_drift * 100:.1f}% over the last 2/3; fds {min(fds)}..{max(fds)} (last 2/3); "
            f"p99 {min(p99s):.2f}..{max(p99s):.2f} ms (median {med:.2f}; {len(outside)} of {len(p99s)} windows outside the band "
            f"{sorted(outside)[:5]}; worst window at minute {worst[7]:.1f}: {worst[0]:.0f} rps, machine busy {worst[5]:.0f}% "
            f"steal {worst[6]:.1f}%, gateway {worst[8]:.1f} us CPU/req and {worst[9] * 100:.2f}% of requests over 1 ms "
            f"by its own clock; median window: busy {busy_med:.0f}%, {cpu_med:.1f} us/req, {slow_med * 100:.2f}% over 1 ms)", ok,
            ("" if args.soak_minutes >= 30 else "(shortened: --soak-minutes 30 for the full row) ") +
            "(p99 band +-20% or +-0.5 ms around the median window of the last 2/3; 10 s windows)")
    finally:
        gw.stop()
        ng.stop()


# ----------------------------------------------------------------------------- upstream faults

def u8_slow_body(args):
    def slow(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"a")
                time.sleep(2.0)
        except OSError:
            pass

    up = ScriptedUpstream(lambda req, idx: slow)
    gw = Gateway(sidecar_config(up.url).replace("timeout: 2s", "timeout: 1s"))
    try:
        data, closed, el = get_until_closed(gw.port, "/", timeout=10)
        body = data.partition(b"\r\n\r\n")[2]
        ok = closed and el < 1.0 * 1.5 + 0.5 and len(body) < 100
        row("U8", f"closed after {el:.2f}s with {len(body)}/100 body bytes (upstream 1 byte / 2 s, timeout 1 s)", ok,
            "(per-read upstream timeout acts as the body-idle timeout)")
    finally:
        gw.stop()
        up.stop()


def u10_interim(args):
    cases = {
        "103 then 200": (b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" + OK, 200),
        "unsolicited 100": (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, 200),
        "two 103 then 200": (b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + OK, 200),
        "103 then close": (lambda s: (s.sendall(b"HTTP/1.1 103 Early Hints\r\n\r\n"), time.sleep(0.05), s.close()), 502),
    }
    state = {}
    up = ScriptedUpstream(lambda req, idx: cases[state["c"]][0])
    gw = Gateway(sidecar_config(up.url))
    got = {}
    try:
        for name, (_, want) in cases.items():
            state["c"] = name
            r = request_full(gw.port, "GET", "/x")
            got[name] = r.status
        ok = all(got[n] == w for n, (_, w) in cases.items())
        row("U10", ", ".join(f"{k} -> {v}" for k, v in got.items()), ok, "(1xx other than 101 dropped)")
    finally:
        gw.stop()
        up.stop()


def u11_kill_upstream(args):
    port = free_port()
    demo_bin = os.environ.get("PROBLEMGATE_DEMO_BIN")

    def start():
        p = subprocess.Popen([demo_bin, "--listen", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        p.stdout.readline()
        return p

    demo = start()
    gw = Gateway(sidecar_config(f"http://127.0.0.1:{port}"))
    try:
        log = []  # (t, status or error, latency)
        stop = threading.Event()

        def client():
            while not stop.is_set():
                t = time.time()
                try:
                    r = request_full(gw.port, "GET", "/ok", timeout=10)
                    st = r.status
                    if st != 200:
                        json.loads(r.body)
                        st = (st, r.header("Content-Type"))
                except Exception as e:  # noqa: BLE001
                    st = type(e).__name__
                log.append((t, st, time.time() - t))

        ths = [threading.Thread(target=client) for _ in range(4)]
        for th in ths:
            th.start()
        time.sleep(2)
        fds0 = fd_count(gw.proc.pid)  # warm: pooled upstream connections included
        demo.send_signal(signal.SIGKILL)
        demo.wait()
        t_kill = time.time()
        time.sleep(args.u11_outage)
        demo = start()
        t_up = time.time()
        time.sleep(4)
        stop.set()
        for th in ths:
            th.join()
        time.sleep(3)
        fds1 = fd_count(gw.proc.pid)
        hung = [x for x in log if x[2] > 3.0]
        bad = [x for x in log if x[1] != 200 and not (isinstance(x[1], tuple) and x[1][0] in (502, 503, 504)
                                                        and x[1][1] in ("application/problem+json", "application/json"))]
        after = [x for x in log if x[0] >= t_up + 2]
        succ = sum(1 for x in after if x[1] == 200) / max(1, len(after))
        during = sum(1 for x in log if t_kill <= x[0] < t_up)
        ok = not hung and not bad and succ >= 0.99 and abs(fds1 - fds0) <= 5
        row("U11", f"{len(log)} requests, {during} during a {args.u11_outage:.0f}s outage, {len(hung)} hung, "
            f"{len(bad)} non-problem failures, {succ * 100:.1f}% ok from 2 s after restart; fds {fds0}->{fds1}", ok,
            "(python client x4 instead of wrk, so each failure's body is checked)")
    finally:
        gw.stop()
        if demo.poll() is None:
            demo.terminate()
            demo.wait()


# ----------------------------------------------------------------------------- S5 / S7 / S8

def s5_upgrade(args):
    state = {}

    def handler(req, idx):
        if b"/second" in req.split(b"\r\n", 1)[0]:
            return OK
        a = state["a"]
        return {200: OK, 400: b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
                101: b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"}[a]

    up = ScriptedUpstream(handler)
    gw = Gateway(sidecar_config(up.url))
    res = {}
    try:
        for a in (200, 400, 101):
            state["a"] = a
            c = RawClient(gw.port)
            c.send(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   b"GET /second HTTP/1.1\r\nHost: x\r\nX-Request-Id: s5-%d\r\n\r\n" % a)
            r1 = c.read_response()
            try:
                r2 = c.read_response()
                second = (r2.status, r2.header("X-Request-Id"))
            except (EOFError, ConnectionResetError):
                second = "closed"
            c.close()
            res[a] = (r1.status, second)
        upgrades = [q for q in up.requests if b"upgrade: websocket" in q.lower()]
        # A WebSocket handshake is forwarded with its Upgrade; only the 101 makes a tunnel, and
        # then the pipelined bytes reach the upstream through it (after the 101, never before).
        ok = (res[200][1] in ((200, "s5-200"), "closed") and res[400][1] in ((200, "s5-400"), "closed")
              and res[101][0] == 101 and res[101][1] in ((200, "s5-101"), "closed") and len(upgrades) == 3)
        row("S5", f"upstream 200 -> {res[200]}, 400 -> {res[400]}, 101 -> {res[101]}; Upgrade upstream: {len(upgrades)}",
            ok, "(no tunnel without a 101; after the 101 the rest of the connection is the upstream's)")
    finally:
        gw.stop()
        up.stop()


def s7_expect(args):
    def refuse(sock):
        sock.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    state = {}

    def handler(req, idx):
        return refuse if state["c"] == "refused" else OK

    up = ScriptedUpstream(handler)
    gw = Gateway(sidecar_config(up.url).replace("body_idle_timeout: 2s", "body_idle_timeout: 1s"))
    out = {}
    try:
        for case in ("at once", "withheld", "refused"):
            state["c"] = case
            c = RawClient(gw.port, timeout=6)
            head = b"POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
            t = time.time()
            c.send(head + (b"hello" if case != "withheld" else b""))
            try:
                r = c.read_response()
                if r.status == 100:
                    r = c.read_response()
                out[case] = (r.status, round(time.time() - t, 2))
            except Exception as e:  # noqa: BLE001
                out[case] = (type(e).__name__, round(time.time() - t, 2))
            c.close()
        ok = out["at once"][0] == 200 and out["withheld"][0] == 408 and out["withheld"][1] < 2.5 and \
            isinstance(out["refused"][0], int) and out["refused"][1] < 2.5
        row("S7", ", ".join(f"{k}: {v[0]} in {v[1]}s" for k, v in out.items()), ok, "(body timeout 1 s)")
    finally:
        gw.stop()
        up.stop()


def s8_generated(args):
    rnd = random.Random(8)
    methods = [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"get", b"X-CUSTOM"]
    names = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"X-A", b"Accept", b"TE",
             b"Expect", b"Upgrade", b"Keep-Alive", b"Cookie", b"X-Request-Id", b"X-Forwarded-For", b"Trailer"]

    def gen(i):
        m = rnd.choice(methods)
        target = b"/" + bytes(rnd.choice(b"abc/%?=&-._~!$'()*+,;:@") for _ in range(rnd.randint(0, 30)))
        ver = rnd.choice([b"HTTP/1.1"] * 8 + [b"HTTP/1.0"])
        body = bytes(rnd.randrange(256) for _ in range(rnd.choice([0, 0, 1, 10, 300])))
        hdrs = [b"Host: x"] if rnd.random() < 0.95 else []
        hdrs.append(b"X-Request-Id: s8-%d" % i)
        for _ in range(rnd.randint(0, 5)):
            n = rnd.choice(names)
            if n in (b"Content-Length", b"Transfer-Encoding", b"Host", b"X-Request-Id"):
                continue
            hdrs.append(n + b": " + rnd.choice([b"1", b"close", b"keep-alive", b"100-continue", b"v" * 20, b"a, b"]))
        if body or rnd.random() < 0.2:
            if rnd.random() < 0.5:
                hdrs.append(b"Content-Length: %d" % len(body))
                framed = body
            else:
                hdrs.append(b"Transfer-Encoding: chunked")
                framed = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        else:
            framed = b""
        rnd.shuffle(hdrs)
        msg = m + b" " + target + b" " + ver + b"\r\n" + b"".join(h + b"\r\n" for h in hdrs) + b"\r\n" + framed
        mutated = False
        if rnd.random() < 0.4:
            mutated = True
            msg = bytearray(msg)
            for _ in range(rnd.randint(1, 3)):
                op = rnd.random()
                pos = rnd.randrange(len(msg))
                if op < 0.4:
                    msg[pos] = rnd.choice(b" \t\r\n:\x00\x7f,;0aZ")
                elif op < 0.7:
                    msg.insert(pos, rnd.choice(b" \t\r\n:,;"))
                else:
                    del msg[pos]
            msg = bytes(msg)
        return msg, mutated

    def hypothesis_messages(n):
        """The same grammar as gen(), drawn by hypothesis (derandomized, so a run is repeatable):
        method, target, version, Host or not, up to 5 other fields, a body framed by
        Content-Length, chunked or nothing, field order, then 1-3 byte mutations (replace, insert,
        delete) on a share of the messages (the row reports how many)."""
        from hypothesis import HealthCheck, Phase, given, settings, strategies as st
        others = [x for x in names if x not in (b"Content-Length", b"Transfer-Encoding", b"Host", b"X-Request-Id")]
        values = [b"1", b"close", b"keep-alive", b"100-continue", b"v" * 20, b"a, b"]
        mutation = st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, 1 << 16),
                             st.sampled_from(list(b" \t\r\n:\x00\x7f,;0aZ")))
        parts = st.fixed_dictionaries({
            "method": st.sampled_from(methods),
            "target": st.lists(st.sampled_from(list(b"abc/%?=&-._~!$'()*+,;:@")), max_size=30).map(bytes),
            "version": st.sampled_from([b"HTTP/1.1"] * 8 + [b"HTTP/1.0"]),
            "host": st.sampled_from([True] * 19 + [False]),
            "fields": st.lists(st.tuples(st.sampled_from(others), st.sampled_from(values)), max_size=5),
            "body": st.one_of(st.just(b""), st.binary(min_size=1, max_size=300)),
            "framing": st.sampled_from(["length", "chunked", "none"]),
            "order": st.integers(0, 2**32 - 1),  # a seed: a drawn Random cannot outlive the draw
            "mutations": st.one_of(st.just([]), st.just([]), st.just([]),
                                   st.lists(mutation, min_size=1, max_size=3),
                                   st.lists(mutation, min_size=1, max_size=3)),
        })
        drawn = []

        @settings(max_examples=n, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(parts)
        def collect(p):
            drawn.append(p)

        collect()
        out = []
        for i, p in enumerate(drawn):
            hdrs = ([b"Host: x"] if p["host"] else []) + [b"X-Request-Id: s8-%d" % i]
            hdrs += [k + b": " + v for k, v in p["fields"]]
            body, framing = p["body"], p["framing"]
            if framing == "length":
                hdrs.append(b"Content-Length: %d" % len(body))
                framed = body
            elif framing == "chunked":
                hdrs.append(b"Transfer-Encoding: chunked")
                framed = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
            else:
                framed = b""
            random.Random(p["order"]).shuffle(hdrs)
            msg = bytearray(p["method"] + b" /" + p["target"] + b" " + p["version"] + b"\r\n" +
                            b"".join(h + b"\r\n" for h in hdrs) + b"\r\n" + framed)
            for op, pos, byte in p["mutations"]:
                pos %= len(msg)
                if op == "replace":
                    msg[pos] = byte
                elif op == "insert":
                    msg.insert(pos, byte)
                else:
                    del msg[pos]
            out.append((bytes(msg), bool(p["mutations"])))
        return out

    try:
        import hypothesis  # noqa: F401 - availability check
        generator = "hypothesis"
    except ImportError:
        generator = "seeded"

    up = ScriptedUpstream(lambda req, idx: OK)
    gw = Gateway(sidecar_config(up.url).replace("header_timeout: 2s", "header_timeout: 1s").replace(
        "body_idle_timeout: 2s", "body_idle_timeout: 1s"))
    stats = {"accepted": 0, "rejected": 0, "mismatch": 0, "h11_rejected_but_accepted": 0, "timeouts": 0,
             "closed_silently": 0, "unattributable": 0}
    problems = []
    sent = {}
    try:
        lock = threading.Lock()
        msgs = hypothesis_messages(args.s8_messages) if generator == "hypothesis" else \
            [gen(i) for i in range(args.s8_messages)]

        def worker(k):
            for i in range(k, len(msgs), 8):
                msg, _ = msgs[i]
                s = socket.create_connection(("127.0.0.1", gw.port), timeout=3)
                try:
                    s.sendall(msg)
                    s.shutdown(socket.SHUT_WR)
                    data, closed = recv_until_closed(s, timeout=3)
                    if not data and not closed:
                        data = b"TIMEOUT"
                except OSError:
                    data = b""
                finally:
                    s.close()
                with lock:
                    sent[i] = data

        ths = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        gw.stop()
        alive_rc = gw.proc.returncode
        captured = {}
        for data in up.received:
            try:
                reqs, _ = cross_check(data)
            except StrictError as e:
                problems.append(f"ambiguous upstream bytes: {e}")
                continue
            for q in reqs:
                captured.setdefault(q.get("X-Request-Id"), []).append(q)
        for i, (msg, mutated) in enumerate(msgs):
            resp = sent.get(i, b"")
            while resp.startswith(b"HTTP/1.1 100 "):  # interim answers to Expect: 100-continue
                resp = resp.partition(b"\r\n\r\n")[2]
            status = int(resp[9:12]) if resp[:5] == b"HTTP/" and resp[9:12].isdigit() else None
            if resp == b"TIMEOUT":
                stats["timeouts"] += 1
                problems.append(f"no response and not closed within 3 s: {msg[:120]!r}")
                continue
            if status is None:
                stats["closed_silently"] += 1  # incomplete message then EOF: nobody to answer
                continue
            if b"Proxy-Status" in resp.partition(b"\r\n\r\n")[0]:
                stats["rejected"] += 1
                continue
            stats["accepted"] += 1
            ref = None
            if HAVE_H11:
                import h11
                try:
                    from battery import parse_requests_h11
                    got = parse_requests_h11(msg, partial_ok=True)
                    ref = got[0] if got else None
                except h11.RemoteProtocolError:
                    ref = None
                if ref is None:
                    stats["h11_rejected_but_accepted"] += 1
                    if len(problems) < 20:
                        problems.append(f"accepted although h11 refuses it: {msg[:160]!r}")
                    continue
                rid = dict((k, v) for k, v in ref[2]).get(b"x-request-id", b"").decode("latin-1")
                if rid != f"s8-{i}":
                    stats["unattributable"] += 1  # the mutation hit the id field itself
                    continue
                # A mutation elsewhere can turn another message's id into this one: any match counts.
                cands = captured.get(rid, [])
                same = [q for q in cands if (q.method, q.target, q.body) == (ref[0], ref[1], ref[3])]
                q = same[0] if same else (cands[0] if cands else None)
                if not same:
                    stats["mismatch"] += 1
                    problems.append(f"re-parse differs for {msg[:300]!r}: h11 {ref[:2]!r} {ref[3][:40]!r}, "
                                    f"upstream {(q.method, q.target, q.body[:40]) if q else None!r}")
        ok = stats["mismatch"] == 0 and stats["timeouts"] == 0 and alive_rc in (0, None) and \
            not any(p.startswith("ambiguous") for p in problems)
        mutated = sum(1 for _, m in msgs if m)
        build = "ASan+UBSan build" if args.asan else "release build"
        row("S8" + (" (ASan)" if args.asan else ""),
            f"{len(msgs)} messages ({mutated} mutated): {stats}; gateway exit {alive_rc}", ok,
            f"({generator} generator; {build}; h11={'yes' if HAVE_H11 else 'no'})")
        for p in [x for x in problems if not x.startswith("ambiguous")][:12] + [x for x in problems if x.startswith("ambiguous")][:3]:
            print("    S8:", p)
    finally:
        gw.stop()
        up.stop()


def s4_thousand(args):
    """S4 with 1,000 runs (the CI suite runs 200): the CI test itself, more iterations."""
    env = dict(os.environ, PG_S4_ITERATIONS=str(args.s4_iterations))
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "unittest", "test_framing.S4LocalRepliesWithSmuggledBody"],
                       cwd=os.path.join(HERE, "..", "integration"), env=env, capture_output=True, text=True,
                       timeout=1200)
    line = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith("S4:")]
    row("S4", (line[0][4:].strip() if line else "no summary") + f" in {time.time() - t:.0f}s",
        p.returncode == 0, "(CI runs 200)")


ROWS = {"S4": s4_thousand, "R3": r3_slowloris, "R7": r7_long_mixed, "R8": r8_soak, "U8": u8_slow_body, "U10": u10_interim,
        "U11": u11_kill_upstream, "S5": s5_upgrade, "S7": s7_expect, "S8": s8_generated}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated (R3 also runs R4)")
    ap.add_argument("--soak-minutes", type=float, default=2.0)
    ap.add_argument("--r7-requests", type=int, default=100000)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--slow-conns", type=int, default=1000)
    ap.add_argument("--u11-outage", type=float, default=10.0)
    ap.add_argument("--s8-messages", type=int, default=10000)
    ap.add_argument("--s4-iterations", type=int, default=1000)
    ap.add_argument("--full", action="store_true", help="the battery's full durations")
    ap.add_argument("--asan", action="store_true",
                    help="PROBLEMGATE_BIN is an ASan build: R7 judges memory by LeakSanitizer, not RSS")
    args = ap.parse_args()
    if args.full:
        args.soak_minutes, args.r7_requests, args.wrk_seconds = 30, 1_000_000, 30
    started = datetime.datetime.now(datetime.timezone.utc)
    for rid in args.rows.split(","):
        rid = rid.strip()
        print(f"{rid} ...", flush=True)
        try:
            ROWS[rid](args)
        except Exception as e:  # noqa: BLE001 - a crashed row is a failed row
            row(rid, f"error: {type(e).__name__}: {e}", False)
    print()
    print(f"Reliability battery, {started:%Y-%m-%d %H:%M} UTC, {os.uname().nodename}, "
          f"{os.cpu_count()} cores, args {vars(args)}")
    print()
    print("| row | measured | result | note |")
    print("|---|---|---|---|")
    for rid, measured, res, note in RESULTS:
        print(f"| {rid} | {measured} | {res} | {note} |")
    return 0 if all(r[2] == "pass" for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
