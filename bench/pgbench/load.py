"""Load: wrk runs and their parsing, medians over rounds, CPU pinning."""
import json
import os
import re
import subprocess
from types import MappingProxyType

from .procs import TEMPLATES


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


def run_wrk(port, path, duration, conns, threads, out_file=None, cpus=None):
    """One wrk --latency run (with the done() hook of templates/wrk_report.lua) against
    127.0.0.1:port; its output is kept in `out_file` if given; returns parse_wrk's dict."""
    url = f"http://127.0.0.1:{port}{path}"
    duration = max(1, int(round(duration)))  # wrk takes whole seconds
    cmd = (["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []) + ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration}s", "--latency",
           "-s", os.path.join(TEMPLATES, "wrk_report.lua"), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out_file:
        with open(out_file, "w") as f:
            f.write(r.stdout + r.stderr)
    return parse_wrk(r.stdout)


_UNIT = MappingProxyType({"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6})  # read-only


def parse_wrk(text):
    """wrk's output -> {rps, p50..p99 (µs), non2xx, sock_err, requests, ...}."""
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

