"""Scenarios: what each scenario requests, the check of one response, the interleaved measured
rounds of a scenario's contenders, and the memory per idle keep-alive connection."""
import json
import os
import subprocess
import sys
import time

from .load import median_round, pin, run_wrk
from .procs import CLK_TCK, PKG, cpu_ticks, curl, log, machine_busy_ticks, status_kib
from .servers import StartError


ERROR_CONTENT = "application/problem+json"

SCENARIOS = (
    # name, path, origin status, idle conns, kinds (None = all), description
    ("2xx", "/ok", 200, 0, None, "small 2xx JSON (`{\"ok\":true}`)"),
    ("err-detail", "/detail", 401, 0, None, "401 `detail` dialect (seed 003)"),
    ("err-flat", "/flat", 400, 0, None, "400 flat `error`/`details` dialect (seed 001)"),
    ("err-nested", "/nested", 404, 0, None, "404 nested `error.code` dialect (seed 002)"),
    ("err-html502", "/html502", 502, 0, None, "502 nginx HTML error page"),
    ("1mib", "/big", 200, 0, None, "1 MiB 2xx body"),
    ("2xx-idle1k", "/ok", 200, 1000, None, "small 2xx while 1,000 idle keep-alive connections are held open"),
    ("2xx-ratelimit", "/ok", 200, 0, ("nginx", "problemgate"),
     "small 2xx, problemgate with a rate-limit policy (limit 100000000/60s per client_ip; never denies); nginx plain for the ratio"),
    ("2xx-reuse-check", "/ok", 200, 0, ("nginx", "problemgate"),
     "small 2xx, problemgate with `reuse_check_after: 1s` (no pre-reuse peek for retryable requests on connections idle under 1 s); nginx plain for the ratio"),
)
QUICK_SCENARIOS = ("2xx", "err-nested", "1mib", "2xx-idle1k", "2xx-ratelimit")
KINDS = ("direct", "nginx", "haproxy", "nginx+lua", "problemgate")
REWRITERS = ("nginx+lua", "problemgate")


def verify(kind, scen, port, tmp):
    """One request before the load: does this contender answer as it should?"""
    name, path, status = scen[0], scen[1], scen[2]
    st, hdr, body = curl(f"http://127.0.0.1:{port}{path}", tmp, timeout=5.0)
    if st != status:
        return f"FAIL: status {st}, expected {status}"
    if name == "1mib" and len(body) != 1024 * 1024:
        return f"FAIL: body {len(body)} bytes"
    if status >= 400 and kind in REWRITERS:
        ct = hdr.get("content-type", "")
        if not ct.startswith(ERROR_CONTENT):
            return f"FAIL: content-type {ct!r}, not rewritten"
        try:
            doc = json.loads(body)
            assert doc.get("status") == status and doc.get("code") and doc.get("requestId")
        except Exception:
            return f"FAIL: body not a problem: {body[:120]!r}"
        return "rewritten"
    if name == "2xx-ratelimit" and kind == "problemgate":
        if "x-ratelimit-limit" not in hdr:
            return "FAIL: no X-RateLimit-Limit"
        return "limited (never denies)"
    return "ok"


class ContenderRun:
    """One contender (kind, workers) started for one scenario: its server, the idle connections
    the scenario holds to it, and its measured rounds."""

    def __init__(self, bench, kind, workers, scen, args):
        self.bench, self.kind, self.workers, self.scen, self.args = bench, kind, workers, scen, args
        self.row = {"scenario": scen[0], "kind": kind, "workers": workers}
        self.server = None
        self.idle_p = None
        self.rounds = []
        self.port = None
        self.pids = None

    def start(self):
        name, path, status, idle, _, _ = self.scen
        bench, args = self.bench, self.args
        try:
            if self.kind == "direct":
                self.port = bench.origin_port
            else:
                variant = {"2xx-ratelimit": "ratelimit", "2xx-reuse-check": "reuse-check"}.get(name)
                self.server = bench.make(self.kind, self.workers, variant).start()
                self.port = self.server.port
                self.pids = self.server.pids
            self.row["check"] = verify(self.kind, self.scen, self.port, bench.tmp)
            if idle:
                self.idle_p = bench.reg.popen(
                    [sys.executable, os.path.join(PKG, "idle_conns.py"), "--port", str(self.port),
                     "--count", str(idle), "--max-hold", str((args.rounds + 1) * 10 * (args.duration + args.warmup + 2) + 300)],
                    stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
                line = self.idle_p.stdout.readline().split()
                if len(line) != 3 or line[0] != "READY":
                    raise StartError(f"idle client failed: {line}")
                self.row["idle_ok"] = int(line[1])
                if int(line[2]):
                    self.row["check"] += f"; {line[2]} idle conns failed"
        except StartError as e:
            self.fail(e)
        return self

    def fail(self, e):
        self.row["error"] = str(e)
        log(f"  {self.kind} w{self.workers}: {e}")
        self.stop()

    @property
    def ok(self):
        return "error" not in self.row

    def wrk_cpus(self):
        """--pin: the 1-worker proxy alone on CPU 0, wrk and the origin on CPU 1, so the loopback
        softirq work lands on the same side for every contender (see bench/README.md). Applied
        before each of its runs, since the rounds of several contenders interleave."""
        args, bench = self.args, self.bench
        if args.pin and self.workers == 1 and self.pids:
            pin(bench.origin.pids, {1})
            pin(self.pids, {0})
            return {1}
        if args.pin:
            pin(bench.origin.pids, set(range(os.cpu_count() or 1)))
        return None

    def warm_up(self):
        if self.ok and self.args.warmup > 0:
            run_wrk(self.port, self.scen[1], self.args.warmup, self.args.connections, self.args.threads,
                    os.path.join(self.bench.tmp, "warmup.txt"), self.wrk_cpus())

    def run_round(self, k):
        if not self.ok:
            return
        name, path = self.scen[0], self.scen[1]
        args = self.args
        cpus = self.wrk_cpus()
        t0 = time.monotonic()
        c0 = cpu_ticks(self.pids) if self.pids else 0
        m0 = machine_busy_ticks()
        res = run_wrk(self.port, path, args.duration, args.connections, args.threads,
                      os.path.join(self.bench.tmp, f"wrk-{name}-{self.kind}-{self.workers}-{k}.txt"), cpus)
        c1 = cpu_ticks(self.pids) if self.pids else 0
        m1 = machine_busy_ticks()
        wall = time.monotonic() - t0
        if res.get("requests"):
            res["machine_us_req"] = (m1 - m0) / CLK_TCK * 1e6 / res["requests"]
            if self.pids:
                cpu_s = (c1 - c0) / CLK_TCK
                res["cpu_us_req"] = cpu_s * 1e6 / res["requests"]
                res["cpu_pct"] = 100.0 * cpu_s / wall
        self.rounds.append(res)

    def finish(self):
        if self.ok and self.rounds:
            res = median_round(self.rounds)
            self.row.update(res)
            if self.pids:
                self.row["hwm_kib"] = status_kib(self.pids, "VmHWM")
            if res.get("sock_err"):
                self.row["check"] += f"; {res['sock_err']} socket errors"
            if self.scen[2] < 400 and res.get("non2xx"):
                self.row["check"] += f"; {res['non2xx']} non-2xx"
        self.stop()
        return self.row

    def stop(self):
        if self.idle_p is not None:
            try:
                self.idle_p.stdin.close()
            except OSError:
                pass
            self.bench.reg.stop(self.idle_p, timeout=15)
            self.idle_p = None
        if self.server is not None:
            self.server.stop()
            self.server = None


def measure_scenario(bench, runs, args):
    """Measures every contender of a scenario with their rounds interleaved: all are started and
    warmed, then round k runs each of them once, in an order rotated by k. A slow spell of the
    shared machine (a neighbour's burst, a load average of 3 at start) then lands on every
    contender's rounds, not on whichever happened to run during it; each figure is still the
    median of a contender's own rounds."""
    try:
        for r in runs:
            r.start()
        for r in runs:
            r.warm_up()
        for k in range(args.rounds):
            order = runs[k % len(runs):] + runs[:k % len(runs)] if runs else []
            for r in order:
                try:
                    r.run_round(k)
                except StartError as e:
                    r.fail(e)
        return [r.finish() for r in runs]
    finally:
        for r in runs:
            r.stop()


def idle_memory(bench, kind, args):
    """RSS delta per idle keep-alive connection (1 worker)."""
    n = args.idle_conns
    if kind == "haproxy":
        n = min(n, 9900)  # its maxconn (9900) is bounded by 2 fds/conn (and its pipes) under the fd hard limit
    row = {"kind": kind, "target": n}
    server = None
    idle_p = None
    try:
        if kind == "direct":
            return None
        server = bench.make(kind, 1).start()
        run_wrk(server.port, "/ok", 1, 20, 1, os.path.join(bench.tmp, "idle-warm.txt"))
        time.sleep(0.3)
        rss0 = status_kib(server.pids, "VmRSS")
        idle_p = bench.reg.popen([sys.executable, os.path.join(PKG, "idle_conns.py"), "--port", str(server.port),
                                  "--count", str(n), "--max-hold", "300"],
                                 stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
        line = idle_p.stdout.readline().split()
        if len(line) != 3 or line[0] != "READY":
            raise StartError(f"idle client failed: {line}")
        ok = int(line[1])
        time.sleep(1.0)
        rss1 = status_kib(server.pids, "VmRSS")
        st, _, _ = curl(f"http://127.0.0.1:{server.port}/ok", bench.tmp)
        row.update(ok=ok, failed=int(line[2]), rss0_kib=rss0, rss1_kib=rss1,
                   kib_per_conn=(rss1 - rss0) / ok if ok else None, still_serving=(st == 200))
    except StartError as e:
        row["error"] = str(e)
        log(f"  idle memory {kind}: {e}")
    finally:
        if idle_p is not None:
            try:
                idle_p.stdin.close()
            except OSError:
                pass
            bench.reg.stop(idle_p, timeout=30)
        if server is not None:
            server.stop()
    return row

