#!/usr/bin/python3
"""problemgate comparative benchmark harness (stdlib only; started by bench/run.sh).

Starts one origin (nginx `return` locations) and, in front of it, each
contender (direct, nginx, haproxy, nginx+lua, problemgate) with 1 and 2
workers, fresh for every scenario; drives it with wrk --latency; measures
the proxy's CPU time (/proc/PID/stat utime+stime, all its processes) and
peak RSS (VmHWM, summed over its processes); prints a markdown table per
scenario, appends everything to bench/RESULTS.md and plots the latency
percentiles with gnuplot. Every process it starts is recorded by PID (also in
TMP/pids for run.sh's trap) and stopped by PID.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEMPLATES = os.path.join(HERE, "templates")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# processes


class Registry:
    """Every process this harness starts, by PID; stopped by PID only."""

    def __init__(self, tmp):
        self.pidfile = os.path.join(tmp, "pids")
        self.procs = []  # Popen objects
        self.extra = set()  # pids of children we saw (nginx workers)

    def _write(self):
        pids = [p.pid for p in self.procs if p.poll() is None] + sorted(self.extra)
        with open(self.pidfile + ".new", "w") as f:
            f.write("".join(f"{p}\n" for p in pids))
        os.replace(self.pidfile + ".new", self.pidfile)

    def popen(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        self._write()
        return p

    def add_children(self, pids):
        self.extra.update(pids)
        self._write()

    def stop(self, p, children=(), timeout=10.0, sig=signal.SIGTERM):
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        # children (nginx workers) normally exit with their master; make sure
        for c in children:
            if c in self.extra:
                if alive(c):
                    deadline = time.time() + 3
                    while alive(c) and time.time() < deadline:
                        time.sleep(0.05)
                    if alive(c):
                        try:
                            os.kill(c, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                self.extra.discard(c)
        if p in self.procs:
            self.procs.remove(p)
        self._write()

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p, children=list(self.extra), timeout=5)
        for c in list(self.extra):
            if alive(c):
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.extra.clear()
        self._write()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return out


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime stime (fields 14, 15)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def machine_busy_ticks():
    """Busy clock ticks of the whole machine (every CPU, every process, interrupts included) from
    /proc/stat: user nice system irq softirq steal. Kernel work a proxy causes but is not charged
    for (softirq on another CPU, waking its peers) lands here, as does wrk's and the origin's."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def status_kib(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def render(name, out, **kv):
    with open(os.path.join(TEMPLATES, name)) as f:
        text = f.read()
    for k, v in kv.items():
        text = text.replace(f"@@{k}@@", str(v))
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise RuntimeError(f"unfilled placeholders in {name}: {left}")
    with open(out, "w") as f:
        f.write(text)
    return out


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(l.strip() for l in f.readlines()[-n:] if l.strip())
    except FileNotFoundError:
        return ""


def curl(url, timeout=2.0, headers_out=None):
    """(status, headers dict lower-case, body bytes) or (0, {}, b'')."""
    hdr = headers_out or url_file("hdr")
    try:
        r = subprocess.run(["curl", "-s", "-m", str(timeout), "-D", hdr, "-o", "-", url],
                           capture_output=True, timeout=timeout + 2)
    except subprocess.TimeoutExpired:
        return 0, {}, b""
    status, headers = 0, {}
    try:
        with open(hdr, errors="replace") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if line.startswith("HTTP/"):
                    status, headers = int(line.split()[1]), {}
                elif ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
    except (FileNotFoundError, ValueError, IndexError):
        pass
    return status, headers, r.stdout


_TMP = None


def url_file(name):
    return os.path.join(_TMP, f"curl.{name}")


# --------------------------------------------------------------------------
# servers


class StartError(Exception):
    pass


class Server:
    def __init__(self, reg, tmp, name, cmd, port, logname, ready_timeout=15.0, uses_children=False):
        self.reg, self.tmp, self.name, self.cmd, self.port = reg, tmp, name, cmd, port
        self.log = os.path.join(tmp, logname)
        self.ready_timeout = ready_timeout
        self.uses_children = uses_children
        self.p = None
        self.children = []

    @property
    def pids(self):
        return [self.p.pid] + self.children

    def start(self):
        lf = open(self.log, "ab")
        self.p = self.reg.popen(self.cmd, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lf.close()
        deadline = time.time() + self.ready_timeout
        url = f"http://127.0.0.1:{self.port}/ok"
        while True:  # curl readiness loop
            if self.p.poll() is not None:
                raise StartError(f"{self.name} exited with {self.p.returncode}: {tail(self.log)}")
            st, _, _ = curl(url, timeout=1.0)
            if st:
                break
            if time.time() > deadline:
                self.stop()
                raise StartError(f"{self.name} not ready after {self.ready_timeout:.0f}s: {tail(self.log)}")
            time.sleep(0.1)
        if self.uses_children:
            self.children = children_of(self.p.pid)
            self.reg.add_children(self.children)
        return self

    def stop(self):
        if self.p is not None:
            self.reg.stop(self.p, children=self.children)
            self.p = None
            self.children = []
        # problemgate's access log goes here: keep only the tail of big logs
        try:
            if os.path.getsize(self.log) > (1 << 20):
                with open(self.log, "rb") as f:
                    f.seek(-65536, os.SEEK_END)
                    keep = f.read()
                with open(self.log, "wb") as f:
                    f.write(keep)
        except OSError:
            pass


class Contender:
    """A kind of proxy; make(workers, port, variant) -> Server (or None for direct)."""

    def __init__(self, name, available, why=""):
        self.name, self.available, self.why = name, available, why


class Bench:
    def __init__(self, args, tmp, reg):
        self.a, self.tmp, self.reg = args, tmp, reg
        self.user = "user www-data;" if os.geteuid() == 0 else ""
        self.origin_port = None
        self.seq = 0

    # ---- origin ----
    def start_origin(self):
        big = os.path.join(self.tmp, "big.json")
        chunk = '{"data":"' + "x" * (1024 * 1024 - 12) + '"}\n'
        with open(big, "w") as f:
            f.write(chunk)
        assert os.path.getsize(big) == 1024 * 1024
        self.origin_port = free_port()
        conf = render("origin.nginx.conf", os.path.join(self.tmp, "origin.conf"),
                      DIR=self.tmp, PORT=self.origin_port, USER=self.user)
        self.origin = Server(self.reg, self.tmp, "origin",
                             ["nginx", "-p", self.tmp, "-c", conf, "-e", os.path.join(self.tmp, "origin.error.log")],
                             self.origin_port, "origin.out", uses_children=True).start()
        log(f"origin nginx on 127.0.0.1:{self.origin_port} (pid {self.origin.p.pid}, 1 worker)")

    # ---- contenders ----
    def make(self, kind, workers, variant=None, port=None, valgrind=None):
        """Returns a not-yet-started Server for a contender."""
        self.seq += 1
        name = f"{kind.replace('+', '-')}-w{workers}-{self.seq}"
        port = port or free_port()
        t = self.tmp
        if kind == "nginx":
            conf = render("nginx.conf", f"{t}/{name}.conf", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, USER=self.user)
            return Server(self.reg, t, name, ["nginx", "-p", t, "-c", conf, "-e", f"{t}/{name}.error.log"],
                          port, f"{name}.out", uses_children=True)
        if kind == "nginx+lua":
            os.makedirs(f"{t}/lua", exist_ok=True)
            shutil.copy(os.path.join(TEMPLATES, "problem_filter.lua"), f"{t}/lua/problem_filter.lua")
            conf = render("nginx-lua.conf", f"{t}/{name}.conf", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, USER=self.user)
            return Server(self.reg, t, name, ["nginx", "-p", t, "-c", conf, "-e", f"{t}/{name}.error.log"],
                          port, f"{name}.out", uses_children=True)
        if kind == "haproxy":
            conf = render("haproxy.cfg", f"{t}/{name}.cfg", DIR=t, NAME=name, PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers)
            return Server(self.reg, t, name, ["haproxy", "-db", "-f", conf], port, f"{name}.out")
        if kind == "problemgate":
            rl = ""
            if variant == "ratelimit":
                rl = "    rate_limit: { limit: 100000000, window: 60s, key: client_ip }"
            up = ""
            if variant == "reuse-check":
                up = "    reuse_check_after: 1s"
            conf = render("problemgate.yaml", f"{t}/{name}.yaml", PORT=port,
                          ORIGIN_PORT=self.origin_port, WORKERS=workers, RATE_LIMIT=rl, UPSTREAM_EXTRA=up)
            cmd = [self.a.problemgate, "--config", conf]
            timeout = 15.0
            if valgrind:
                cmd = valgrind + cmd
                timeout = 120.0
            return Server(self.reg, t, name, cmd, port, f"{name}.out", ready_timeout=timeout)
        raise ValueError(kind)


def check_contenders(args):
    """Which contenders can run here, and why not."""
    out = {"direct": Contender("direct", True)}
    out["nginx"] = Contender("nginx", bool(shutil.which("nginx")), "nginx not installed")
    out["haproxy"] = Contender("haproxy", bool(shutil.which("haproxy")), "haproxy not installed")
    lua_ok = shutil.which("nginx") and os.path.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so") \
        and os.path.exists("/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so")
    out["nginx+lua"] = Contender("nginx+lua", bool(lua_ok),
                                 "libnginx-mod-http-lua or lua-cjson (5.1 cjson.so) missing")
    pg = args.problemgate
    out["problemgate"] = Contender("problemgate", bool(pg and os.access(pg, os.X_OK)),
                                   f"binary {pg} missing (not built yet: CMake target `problemgate` absent or build failed)")
    return out


# --------------------------------------------------------------------------
# load


def median_round(rounds):
    """Per-figure medians over measured rounds; errors and non-2xx summed, rps range kept."""
    if len(rounds) == 1:
        return dict(rounds[0])
    out = dict(rounds[len(rounds) // 2])
    for key in ("rps", "p50", "p75", "p90", "p99", "cpu_us_req", "cpu_pct", "machine_us_req"):
        vals = sorted(r[key] for r in rounds if r.get(key) is not None)
        if vals:
            out[key] = vals[len(vals) // 2]
    for key in ("non2xx", "sock_err", "requests"):
        out[key] = sum(r.get(key, 0) for r in rounds)
    rps = [r["rps"] for r in rounds if r.get("rps")]
    if rps:
        out["rps_range"] = (min(rps), max(rps))
    out["rounds"] = len(rounds)
    return out


def pin(pids, cpus):
    """Set the CPU affinity of every thread of `pids` (a process's threads keep their own mask)."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


def run_wrk(port, path, duration, conns, threads, out_file, cpus=None):
    url = f"http://127.0.0.1:{port}{path}"
    duration = max(1, int(round(duration)))  # wrk takes whole seconds
    cmd = (["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []) + ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration}s", "--latency",
           "-s", os.path.join(TEMPLATES, "wrk_report.lua"), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    with open(out_file, "w") as f:
        f.write(r.stdout + r.stderr)
    return parse_wrk(r.stdout)


_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6}


def parse_wrk(text):
    res = {}
    m = re.search(r"^PGBENCH (\{.*\})$", text, re.M)
    if m:
        res.update(json.loads(m.group(1)))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        res["rps"] = float(m.group(1))
    # p50/p99 from --latency's distribution (authoritative for the table)
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if m:
            res[f"p{pct}"] = float(m.group(1)) * _UNIT[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["sock_err"] = sum(int(x) for x in m.groups()) if m else 0
    if "requests" not in res:
        m = re.search(r"(\d+) requests in", text)
        res["requests"] = int(m.group(1)) if m else 0
    if "rps" not in res and res.get("duration_us"):
        res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


# --------------------------------------------------------------------------
# scenarios

ERROR_CONTENT = "application/problem+json"

SCENARIOS = [
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
]
QUICK_SCENARIOS = ("2xx", "err-nested", "1mib", "2xx-idle1k", "2xx-ratelimit")
KINDS = ["direct", "nginx", "haproxy", "nginx+lua", "problemgate"]
REWRITERS = ("nginx+lua", "problemgate")


def verify(kind, scen, port):
    """One request before the load: does this contender answer as it should?"""
    name, path, status = scen[0], scen[1], scen[2]
    st, hdr, body = curl(f"http://127.0.0.1:{port}{path}", timeout=5.0)
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
            self.row["check"] = verify(self.kind, self.scen, self.port)
            if idle:
                self.idle_p = bench.reg.popen(
                    [sys.executable, os.path.join(HERE, "idle_conns.py"), "--port", str(self.port),
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
        idle_p = bench.reg.popen([sys.executable, os.path.join(HERE, "idle_conns.py"), "--port", str(server.port),
                                  "--count", str(n), "--max-hold", "300"],
                                 stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
        line = idle_p.stdout.readline().split()
        if len(line) != 3 or line[0] != "READY":
            raise StartError(f"idle client failed: {line}")
        ok = int(line[1])
        time.sleep(1.0)
        rss1 = status_kib(server.pids, "VmRSS")
        st, _, _ = curl(f"http://127.0.0.1:{server.port}/ok")
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


# --------------------------------------------------------------------------
# callgrind


def http_loop(port, path, n):
    """n sequential GETs on one keep-alive connection; returns the count answered."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done = 0
    for _ in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        done += 1
    c.close()
    return done


def callgrind(bench, args):
    """Instructions per request for problemgate's 2xx and error paths:
    (Ir of a run serving N requests - Ir of a run serving none) / N."""
    if not shutil.which("valgrind"):
        return {"error": "valgrind not installed"}
    n = args.callgrind_requests
    out = {"requests": n}
    for label, path in (("baseline", None), ("2xx", "/ok"), ("error (nested 404)", "/nested")):
        cg_file = os.path.join(bench.tmp, f"callgrind.{label.split()[0]}.out")
        vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_file}"]
        server = bench.make("problemgate", 1, valgrind=vg)
        try:
            server.start()  # readiness probe = 1 request to /ok, also in the baseline
            t0 = time.time()
            if path:
                http_loop(server.port, path, n)
            dt = time.time() - t0
        except (StartError, OSError) as e:
            server.stop()
            return {"error": f"{label}: {e}"}
        server.reg.stop(server.p, timeout=60, sig=signal.SIGTERM)
        server.p = None
        ir = None
        try:
            with open(cg_file) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        ir = int(line.split()[1])
        except FileNotFoundError:
            pass
        if ir is None:
            return {"error": f"{label}: no callgrind output (did problemgate exit on SIGTERM?) {tail(server.log)}"}
        out[label] = {"ir": ir, "seconds": dt}
        log(f"  callgrind {label}: {ir:,} Ir")
    base = out["baseline"]["ir"]
    for label in ("2xx", "error (nested 404)"):
        out[label]["ir_per_req"] = (out[label]["ir"] - base) / n
    return out


# --------------------------------------------------------------------------
# syscalls per request


def syscalls(bench, kinds, args):
    """System calls per proxied small 2xx request, per 1-worker proxy: `perf stat` counts the
    raw_syscalls:sys_enter tracepoint on the proxy's processes during one wrk run. Unlike CPU
    time, the count barely moves with the machine's noise, and on a VM where every system call
    is expensive it explains most of the CPU differences between proxies."""
    if not shutil.which("perf"):
        return {"error": "perf not installed (linux-perf)"}
    out = {}
    for kind in kinds:
        if kind == "direct":
            continue
        server = bench.make(kind, 1)
        try:
            server.start()
            run_wrk(server.port, "/ok", 1, args.connections, args.threads, os.path.join(bench.tmp, "warmup.txt"))
            stat_file = os.path.join(bench.tmp, f"perf-{kind}.txt")
            perf = subprocess.Popen(["perf", "stat", "-x,", "-o", stat_file, "-e",
                                     "raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait",
                                     "-p", ",".join(str(p) for p in server.pids)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            res = run_wrk(server.port, "/ok", args.duration, args.connections, args.threads,
                          os.path.join(bench.tmp, f"wrk-syscalls-{kind}.txt"))
            perf.send_signal(signal.SIGINT)
            try:
                _, err = perf.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                perf.kill()
                _, err = perf.communicate()
            counts = {}
            try:
                with open(stat_file) as f:
                    for line in f:
                        parts = line.strip().split(",")
                        if len(parts) > 2 and parts[0].isdigit():
                            counts[parts[2]] = int(parts[0])
            except FileNotFoundError:
                pass
            total = counts.get("raw_syscalls:sys_enter")
            if not total or not res.get("requests"):
                out[kind] = {"error": f"perf counted nothing ({(err or '').strip()[:160]})"}
                continue
            # The run's requests: perf covers the whole run plus the 0.5 s before it, when
            # nothing is sent.
            n = res["requests"]
            out[kind] = {"requests": n, "per_req": total / n,
                         "epoll_wait_per_req": counts.get("syscalls:sys_enter_epoll_wait", 0) / n}
            log(f"  {kind:12s}: {total / n:.2f} syscalls/request")
        except (StartError, OSError) as e:
            out[kind] = {"error": str(e)}
        finally:
            server.stop()
    return out


# --------------------------------------------------------------------------
# micro-benchmarks


def microbench(args):
    d = os.path.join(ROOT, "build-bench", "bench")
    bins = sorted(p for p in glob.glob(os.path.join(d, "*_bench")) if os.access(p, os.X_OK))
    res = []
    for b in bins:
        jf = os.path.join(_TMP, os.path.basename(b) + ".json")
        cmd = [b, f"--benchmark_min_time={args.micro_min_time}", f"--benchmark_out={jf}", "--benchmark_out_format=json"]
        log(f"micro: {os.path.basename(b)}")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.micro_timeout)
            with open(jf) as f:
                doc = json.load(f)
            for bm in doc.get("benchmarks", []):
                if bm.get("run_type") == "aggregate" and bm.get("aggregate_name") != "mean":
                    continue
                res.append({"binary": os.path.basename(b), "name": bm["name"], "real": bm.get("real_time"),
                            "cpu": bm.get("cpu_time"), "unit": bm.get("time_unit", "ns"),
                            "iterations": bm.get("iterations"),
                            "items_per_second": bm.get("items_per_second"),
                            "bytes_per_second": bm.get("bytes_per_second")})
            if r.returncode:
                res.append({"binary": os.path.basename(b), "error": f"exit {r.returncode}: {r.stderr[-300:]}"})
        except (subprocess.TimeoutExpired, OSError, ValueError) as e:
            res.append({"binary": os.path.basename(b), "error": str(e)[:300]})
    return res


# --------------------------------------------------------------------------
# report


def fnum(v, fmt="{:.0f}"):
    return "—" if v is None else fmt.format(v)


def fms(us):
    return "—" if us is None else f"{us / 1000:.2f}"


def ratio(a, b):
    return "—" if (a is None or not b) else f"{a / b:.2f}×"


def scenario_table(rows):
    by = {(r["kind"], r["workers"]): r for r in rows}
    head = ("| contender | workers | req/s | p50 ms | p99 ms | CPU µs/req | CPU % | machine µs/req "
            "| peak RSS MiB | ×nginx req/s | ×nginx CPU/req | check |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
    lines = []
    for r in rows:
        kind, w = r["kind"], r["workers"]
        if "error" in r or "skipped" in r:
            lines.append(f"| {kind} | {w} | — | — | — | — | — | — | — | — | — | {r.get('skipped') or r.get('error')[:160]} |")
            continue
        ng = by.get(("nginx", 1 if kind == "direct" else w), {})
        rss = r.get("hwm_kib")
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            kind, w if kind != "direct" else "—", fnum(r.get("rps")), fms(r.get("p50")), fms(r.get("p99")),
            fnum(r.get("cpu_us_req"), "{:.1f}"), fnum(r.get("cpu_pct")), fnum(r.get("machine_us_req"), "{:.1f}"),
            "—" if rss is None else f"{rss / 1024:.1f}",
            ratio(r.get("rps"), ng.get("rps")) if kind != "nginx" else "1.00×",
            (ratio(r.get("cpu_us_req"), ng.get("cpu_us_req")) if kind not in ("nginx", "direct") else
             ("1.00×" if kind == "nginx" else "—")),
            r.get("check", "")))
    return head + "\n".join(lines) + "\n"


def targets(rows, idle_rows):
    """Check the README's targets for problemgate (only when it ran)."""
    get = {(r["scenario"], r["kind"], r["workers"]): r for r in rows if "error" not in r and "skipped" not in r}
    out = []

    def chk(name, ok, detail):
        out.append(f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |")

    pg_any = any(k[1] == "problemgate" for k in get)
    if not pg_any:
        return None
    for w in (1, 2):
        pg, ng = get.get(("2xx", "problemgate", w)), get.get(("2xx", "nginx", w))
        if pg and ng:
            chk(f"2xx w{w}: req/s ≥ 1.0× nginx", pg["rps"] >= ng["rps"], f"{pg['rps'] / ng['rps']:.2f}×")
            chk(f"2xx w{w}: p99 ≤ nginx", pg["p99"] <= ng["p99"], f"{fms(pg['p99'])} vs {fms(ng['p99'])} ms")
            if pg.get("cpu_us_req") and ng.get("cpu_us_req"):
                chk(f"2xx w{w}: CPU/req ≤ nginx", pg["cpu_us_req"] <= ng["cpu_us_req"],
                    f"{pg['cpu_us_req']:.1f} vs {ng['cpu_us_req']:.1f} µs")
            chk(f"2xx w{w}: peak RSS ≤ nginx", pg["hwm_kib"] <= ng["hwm_kib"],
                f"{pg['hwm_kib'] / 1024:.1f} vs {ng['hwm_kib'] / 1024:.1f} MiB")
        for s in ("err-detail", "err-flat", "err-nested", "err-html502"):
            pg, lua, own = get.get((s, "problemgate", w)), get.get((s, "nginx+lua", w)), get.get(("2xx", "problemgate", w))
            if pg and lua:
                if pg.get("cpu_us_req") and lua.get("cpu_us_req"):
                    chk(f"{s} w{w}: CPU/req ≤ ½ nginx+lua", pg["cpu_us_req"] <= lua["cpu_us_req"] / 2,
                        f"{pg['cpu_us_req']:.1f} vs {lua['cpu_us_req']:.1f} µs")
                chk(f"{s} w{w}: req/s ≥ 1.5× nginx+lua", pg["rps"] >= 1.5 * lua["rps"], f"{pg['rps'] / lua['rps']:.2f}×")
            if pg and own:
                chk(f"{s} w{w}: req/s within 10% of own 2xx", pg["rps"] >= 0.9 * own["rps"], f"{pg['rps'] / own['rps']:.2f}×")
        pg, ng = get.get(("1mib", "problemgate", w)), get.get(("1mib", "nginx", w))
        if pg and ng:
            chk(f"1mib w{w}: throughput ≥ nginx", pg["rps"] >= ng["rps"], f"{pg['rps'] / ng['rps']:.2f}×")
    for r in idle_rows or []:
        if r and r["kind"] == "problemgate" and r.get("kib_per_conn") is not None:
            chk("idle conn ≤ 16 KiB", r["kib_per_conn"] <= 16, f"{r['kib_per_conn']:.1f} KiB/conn")
    for s in ("2xx", "err-nested", "1mib"):
        a, b = get.get((s, "problemgate", 1)), get.get((s, "problemgate", 2))
        if a and b:
            chk(f"{s}: 2 workers > 1", b["rps"] > a["rps"], f"{b['rps']:.0f} vs {a['rps']:.0f} req/s")
    return "| target | result | measured |\n|---|---|---|\n" + "\n".join(out) + "\n"


def plot(rows, scenarios, png, tmp):
    if not shutil.which("gnuplot"):
        return "gnuplot not installed"
    pcts = ["p50", "p75", "p90", "p99", "p99.9"]
    names = [s[0] for s in scenarios]
    cols = 4 if len(names) > 4 else len(names)
    nrows = (len(names) + cols - 1) // cols
    colors = {"direct": "#000000", "nginx": "#009e73", "haproxy": "#e69f00", "nginx+lua": "#0072b2",
              "problemgate": "#d55e00"}
    script = [f"set terminal pngcairo noenhanced size {cols * 360},{nrows * 290} font 'sans,7'",
              f"set output '{png}'",
              f"set multiplot layout {nrows},{cols} title 'latency percentiles (ms, log scale) — wrk, {platform.machine()}'",
              "set logscale y", "set grid ytics", "set key top left font 'sans,7'",
              "set xtics (" + ", ".join(f"'{p}' {i}" for i, p in enumerate(pcts)) + ")",
              "set xrange [-0.2:4.2]"]
    for sname in names:
        data = [r for r in rows if r["scenario"] == sname and "error" not in r and "skipped" not in r
                and r.get("p50") is not None]
        if not data:
            continue
        dfile = os.path.join(tmp, f"plot-{sname}.dat")
        with open(dfile, "w") as f:
            for r in data:
                f.write(f"# {r['kind']} w{r['workers']}\n")
                for i, p in enumerate(pcts):
                    v = r.get(p)
                    f.write(f"{i} {max(v, 1) / 1000 if v is not None else 'NaN'}\n")
                f.write("\n\n")
        items = []
        for idx, r in enumerate(data):
            label = r["kind"] if r["kind"] == "direct" else f"{r['kind']} w{r['workers']}"
            style = "dt 1 pt 7" if r["workers"] == 1 else "dt 2 pt 6"
            color = colors.get(r["kind"], "#777777")
            items.append(f"'{dfile}' index {idx} using 1:2 with linespoints {style} ps 0.6 lw 1.2 "
                         f"lc rgb '{color}' title '{label}'")
        script.append(f"set title '{sname}'")
        script.append("plot " + ", ".join(items))
    script.append("unset multiplot")
    gp = os.path.join(tmp, "latency.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True, timeout=60)
    if r.returncode:
        return "gnuplot failed: " + r.stderr[-300:]
    return None


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return platform.machine(), os.cpu_count(), cpu


def versions(args):
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    v = [first(["nginx", "-v"]).replace("nginx version: ", ""), first(["haproxy", "-v"]).split(" - ")[0],
         first(["wrk", "--version"]).split(" Copyright")[0]]
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except Exception:
        rev = "?"
    return ", ".join(v) + f"; problemgate tree {rev}"


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--duration", default=None, help="per measured run, e.g. 10s (default 3s, quick 2s)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=None,
                    help="measured runs per contender, figures are medians (default 3, quick 1)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--pin", action="store_true",
                    help="1-worker runs: the proxy on CPU 0, wrk and the origin on CPU 1")
    ap.add_argument("--problemgate", default=os.path.join(ROOT, "build", "problemgate"))
    ap.add_argument("--only", default=None, help="comma list of contenders (default all)")
    ap.add_argument("--scenarios", default=None, help="comma list of scenarios")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--idle-conns", type=int, default=10000, help="for the memory-per-idle-connection test")
    ap.add_argument("--callgrind-requests", type=int, default=None)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-syscalls", action="store_true", help="skip the perf count of syscalls per request")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--no-idle-memory", action="store_true")
    ap.add_argument("--tmp", default=None, help="work dir (run.sh passes its mktemp -d)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args()

    dur = args.duration or ("2s" if args.quick else "3s")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)?", dur)
    if not m:
        ap.error("--duration like 10s")
    args.duration = float(m.group(1)) * (60 if m.group(2) == "m" else 1)
    args.warmup = 0 if args.quick else 1  # wrk takes whole seconds
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.pin and (os.cpu_count() or 1) < 2:
        ap.error("--pin needs at least 2 CPUs")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    args.callgrind_requests = args.callgrind_requests or (500 if args.quick else 2000)
    args.micro_min_time = 0.05 if args.quick else 0.2
    args.micro_timeout = 60 if args.quick else 180

    global _TMP
    own_tmp = args.tmp is None
    tmp = args.tmp or tempfile.mkdtemp(prefix="pgbench.")
    _TMP = tmp
    os.chmod(tmp, 0o755)  # nginx workers run as www-data and read files here
    reg = Registry(tmp)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = started.strftime("%Y-%m-%d-%H%M")
    results_dir = os.path.join(HERE, "results")
    os.makedirs(results_dir, exist_ok=True)

    cont = check_contenders(args)
    kinds = [k for k in KINDS if not args.only or k in args.only.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    scen_names = args.scenarios.split(",") if args.scenarios else (QUICK_SCENARIOS if args.quick else [s[0] for s in SCENARIOS])
    scenarios = [s for s in SCENARIOS if s[0] in scen_names]
    skipped = {k: cont[k].why for k in kinds if not cont[k].available}
    for k, why in skipped.items():
        log(f"SKIP {k}: {why}")

    rows, idle_rows, cg, micro, sc = [], [], None, [], None
    try:
        bench = Bench(args, tmp, reg)
        bench.start_origin()
        for scen in scenarios:
            log(f"scenario {scen[0]}: {scen[5]}")
            allowed = scen[4] or kinds
            runs = []
            for kind in kinds:
                if kind not in allowed:
                    continue
                for w in ([1] if kind == "direct" else workers):
                    if kind in skipped:
                        rows.append({"scenario": scen[0], "kind": kind, "workers": w, "skipped": "skipped: " + skipped[kind]})
                        continue
                    runs.append(ContenderRun(bench, kind, w, scen, args))
            for r in measure_scenario(bench, runs, args):
                rows.append(r)
                if "error" not in r:
                    log(f"  {r['kind']:12s} w{r['workers']}: {r.get('rps', 0):9.0f} req/s  p99 {fms(r.get('p99'))} ms  "
                        f"cpu {fnum(r.get('cpu_us_req'), '{:.1f}')} us/req  [{r.get('check')}]")
        if not args.no_idle_memory:
            log(f"memory per idle keep-alive connection ({args.idle_conns} connections, 1 worker)")
            for kind in kinds:
                if kind == "direct" or kind in skipped:
                    continue
                r = idle_memory(bench, kind, args)
                idle_rows.append(r)
                if r and "error" not in r:
                    log(f"  {kind:12s}: {r['ok']} conns, {fnum(r['kib_per_conn'], '{:.2f}')} KiB/conn")
        if not args.no_syscalls:
            log("syscalls per small 2xx request (1 worker, perf stat)")
            sc = syscalls(bench, [k for k in kinds if k not in skipped], args)
        if not args.no_callgrind and "problemgate" in kinds:
            if "problemgate" in skipped:
                cg = {"error": "skipped: " + skipped["problemgate"]}
            else:
                log(f"callgrind: problemgate, {args.callgrind_requests} requests per path")
                cg = callgrind(bench, args)
        if not args.no_micro:
            micro = microbench(args)
    finally:
        reg.stop_all()
        if own_tmp:
            __import__("atexit").register(shutil.rmtree, tmp, True)

    # ---- report ----
    arch, ncpu, cpu = machine_line()
    mode = "quick" if args.quick else "default"
    out = [f"## {started.strftime('%Y-%m-%d %H:%M UTC')} — {arch}, {ncpu} cores, {cpu}\n",
           f"Mode {mode}: {args.rounds} measured run(s) of {args.duration:g}s per contender" + (f" after a {args.warmup:g}s warm-up" if args.warmup else "") + (", each figure the median over the runs" if args.rounds > 1 else "") + (", --pin (1-worker proxies on CPU 0, wrk and the origin on CPU 1)" if args.pin else "") + f", wrk -t{args.threads} "
           f"-c{args.connections} --latency, every contender started fresh per scenario, rounds interleaved across contenders; origin nginx 1 worker. "
           f"{versions(args)}. Load average at start {os.getloadavg()[0]:.2f}. wrk, origin and proxy share the {ncpu} cores{' (1-worker runs pinned as above)' if args.pin else ' (no pinning)'}: compare CPU µs/req "
           f"across proxies, req/s only within this run.\n"]
    if skipped:
        out.append("Skipped: " + "; ".join(f"**{k}** — {v}" for k, v in skipped.items()) + "\n")
    for scen in scenarios:
        srows = [r for r in rows if r["scenario"] == scen[0]]
        out.append(f"### {scen[0]} — {scen[5]}\n")
        out.append(scenario_table(srows))
    if idle_rows:
        out.append(f"### memory per idle keep-alive connection ({args.idle_conns} connections, 1 worker)\n")
        lines = ["| contender | connections held | RSS before MiB | RSS after MiB | KiB / connection | still serving |",
                 "|---|---:|---:|---:|---:|---|"]
        for r in idle_rows:
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {r['kind']} | — | — | — | — | {r['error'][:160]} |")
            else:
                lines.append(f"| {r['kind']} | {r['ok']} (failed {r['failed']}) | {r['rss0_kib'] / 1024:.1f} | "
                             f"{r['rss1_kib'] / 1024:.1f} | {fnum(r['kib_per_conn'], '{:.2f}')} | "
                             f"{'yes' if r['still_serving'] else 'NO'} |")
        out.append("\n".join(lines) + "\n")
    if sc:
        out.append("### syscalls per small 2xx request (1 worker, `perf stat` on the proxy's processes)\n")
        lines = ["| contender | syscalls / request | of which epoll_wait | requests counted |", "|---|---:|---:|---:|"]
        for kind, r in sc.items():
            if "error" in r:
                lines.append(f"| {kind} | — | — | {r['error'][:160]} |")
            else:
                lines.append(f"| {kind} | {r['per_req']:.2f} | {r['epoll_wait_per_req']:.2f} | {r['requests']} |")
        out.append("\n".join(lines) + "\n")
    if cg is not None:
        out.append("### callgrind: problemgate instructions per request (1 thread)\n")
        if "error" in cg:
            out.append(f"not measured: {cg['error']}\n")
        else:
            out.append(f"(total Ir of a run serving {cg['requests']} keep-alive requests − Ir of a run serving none) "
                       f"/ {cg['requests']}\n")
            lines = ["| path | Ir / request |", "|---|---:|"]
            for label in ("2xx", "error (nested 404)"):
                lines.append(f"| {label} | {cg[label]['ir_per_req']:,.0f} |")
            out.append("\n".join(lines) + "\n")
    if not args.no_micro:
        out.append("### micro-benchmarks (build-bench/bench/*_bench)\n")
        if not micro:
            out.append("none found: build-bench/bench/ has no *_bench binaries (bench/CMakeLists.txt absent or build failed)\n")
        else:
            lines = ["| binary | benchmark | time | CPU | iterations | items/s |", "|---|---|---:|---:|---:|---:|"]
            for b in micro:
                if "error" in b:
                    lines.append(f"| {b['binary']} | error: {b['error'][:120]} | | | | |")
                else:
                    ips = b.get("items_per_second")
                    lines.append(f"| {b['binary']} | {b['name']} | {b['real']:.1f} {b['unit']} | {b['cpu']:.1f} {b['unit']} "
                                 f"| {b['iterations']} | {'' if ips is None else f'{ips:,.0f}'} |")
            out.append("\n".join(lines) + "\n")
    t = targets(rows, idle_rows)
    if t:
        out.append("### targets (bench/README.md)\n")
        out.append(t + "\n")
    # --no-append leaves the repository untouched: its plot goes next to the temporary files'
    # directory (kept, so it can still be looked at) instead of into bench/results.
    png_dir = tempfile.gettempdir() if args.no_append else results_dir
    png = os.path.join(png_dir, f"latency-{stamp}.png")
    err = plot(rows, scenarios, png, tmp)
    if err:
        out.append(f"Plot: not drawn ({err}).\n")
    else:
        out.append(f"Plot: `{png if args.no_append else 'bench/results/' + os.path.basename(png)}`\n")
    with open(os.path.join(results_dir, f"results-{stamp}.json"), "w") as f:
        json.dump({"rows": rows, "idle": idle_rows, "callgrind": cg, "micro": micro, "syscalls": sc}, f, indent=1)
    # Each element of `out` is one block (a heading, a paragraph, a whole table): joined with a
    # blank line between blocks, never inside a table, which would end it after one row.
    text = "\n".join(out) + "\n"
    print(text)
    if not args.no_append:
        new = not os.path.exists(args.results)
        with open(args.results, "a") as f:
            if new:
                f.write("# problemgate benchmark results\n\nAppended by `bench/run.sh`; see bench/README.md for how to read them.\n\n")
            f.write(text)
        log(f"appended to {args.results}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
