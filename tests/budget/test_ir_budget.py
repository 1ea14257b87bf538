#!/usr/bin/python3
"""Instruction budget of the request path (ctest `budget.ir`, label `budget`).

callgrind's instruction counts (Ir) are deterministic where timings are not, so they can guard
the request path in CI. For each scenario the real `problemgate` binary (threads: 1, admin off,
access log on as in the default config, writing to a pipe this script drains) runs under
`valgrind --tool=callgrind` in front of the bundled demo API (`problemgate-demo-api`):

  Ir/request = (Ir of a run serving 1 + N requests - Ir of a run serving 1) / N

Both runs make one readiness request (`GET /ok`) on one client connection; the measured run then
sends N more on that same keep-alive connection. Each run ends with SIGTERM (callgrind writes its
counts at exit), so start-up, the readiness request, the connection's accept and close, and
shutdown cancel out. The script fails when a scenario's Ir/request exceeds its budget in
ir_budget.json next to it. Raising a budget is a reviewed commit with the reason.

Only meaningful for a Release build without sanitizers (CMake registers it only there).
Environment: PROBLEMGATE_BIN / PROBLEMGATE_DEMO_BIN (as for the integration tests) choose the
binaries, e.g. an older build to compare; PROBLEMGATE_BUDGET_REQUESTS overrides N;
PROBLEMGATE_BUDGET_REPORT names a file the result table is also written to (ctest sets it, and
scripts/test.sh prints it, so CI logs show the counts of a passing run too).
  --measure-only   print the counts, never fail on a budget
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402  (tests/integration/harness.py: binaries' paths, DemoApi)

BUDGET_FILE = os.path.join(HERE, "ir_budget.json")
PROBLEM_JSON = "application/problem+json"

# name -> (path, expected status, expected content type prefix)
SCENARIOS = {
    "2xx-keepalive": ("/ok", 200, "application/json"),
    "nested-404": ("/nested/channel-not-found", 404, PROBLEM_JSON),
    "detail-401": ("/detail/unauthenticated", 401, PROBLEM_JSON),
}

CONFIG = """\
listen: 127.0.0.1:0
threads: 1
admin:
  listen: "off"
access_log: on
limits:
  max_requests_per_connection: 1000000
upstreams:
  demo:
    url: http://127.0.0.1:{port}
routes:
  - name: all
    match: {{ prefix: / }}
    upstream: demo
    normalize: true
"""


def log(*a):
    print(*a, flush=True)


def read_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no summary line in {path}")


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def run_once(tmp, config, label, path, status, ctype, n):
    """Ir of one problemgate process under callgrind that serves GET /ok then n x GET path on
    one keep-alive connection, then gets SIGTERM."""
    out = os.path.join(tmp, f"callgrind.{label}.out")
    err = os.path.join(tmp, f"stderr.{label}.log")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           harness.GATEWAY_BIN, "--config", config]
    # problemgate prints its ready line on stderr (stdout is the access log): stderr is read
    # up to it, then copied to `err` by a thread.
    ef = open(err, "w")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = [0]

    def copy_stderr():
        for line in proc.stderr:
            ef.write(line)
            ef.flush()

    def drain():  # the access log: read and counted, as a log shipper would read it
        for line in proc.stdout:
            if line.startswith("{"):
                lines[0] += 1

    try:
        seen = []
        try:
            _, port = harness._read_listening_line(proc, "problemgate under callgrind", timeout=120,
                                                   stream=proc.stderr, seen=seen)
        finally:
            ef.writelines(seen)
            ef.flush()
        err_copier = threading.Thread(target=copy_stderr, daemon=True)
        err_copier.start()
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.monotonic()
        conn.request("GET", "/ok")  # readiness, in every run
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{label}: readiness GET /ok answered {r.status}")
        for i in range(n):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != status or not (r.getheader("Content-Type") or "").startswith(ctype):
                raise RuntimeError(f"{label}: request {i + 1} GET {path} answered {r.status} "
                                   f"{r.getheader('Content-Type')}: {body[:200]!r}")
        conn.close()
        seconds = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        reader.join(timeout=10)
        err_copier.join(timeout=10)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log(f"--- {label}: valgrind/problemgate stderr (tail) ---\n{tail(err)}")
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
        ef.close()
    if rc != 0:
        raise RuntimeError(f"{label}: problemgate exited with {rc} after SIGTERM\n{tail(err)}")
    if lines[0] != n + 1:
        raise RuntimeError(f"{label}: {lines[0]} access-log lines for {n + 1} requests")
    return read_ir(out), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure-only", action="store_true", help="print the counts, never fail on a budget")
    args = ap.parse_args()

    with open(BUDGET_FILE) as f:
        budget = json.load(f)
    n = int(os.environ.get("PROBLEMGATE_BUDGET_REQUESTS", budget["requests"]))
    if not 1 <= n <= 100000:
        raise SystemExit(f"requests must be 1..100000, not {n}")
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found: scripts/install-deps.sh installs it")
    for b in (harness.GATEWAY_BIN, harness.DEMO_BIN):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"binary {b} missing (build problemgate and problemgate-demo-api)")
    missing = sorted(set(SCENARIOS) ^ set(budget["ir_per_request"]))
    if missing:
        raise SystemExit(f"scenarios and {BUDGET_FILE} disagree on: {missing}")

    log(f"problemgate: {os.path.realpath(harness.GATEWAY_BIN)}; {n} requests per scenario")
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pg-budget-")
    demo = harness.DemoApi()
    try:
        config = os.path.join(tmp, "config.yaml")
        with open(config, "w") as f:
            f.write(CONFIG.format(port=demo.port))
        base, secs = run_once(tmp, config, "baseline", "/ok", 200, "", 0)
        log(f"baseline (1 request): {base:,} Ir, {secs:.1f} s")
        results = {}
        for name, (path, status, ctype) in SCENARIOS.items():
            ir, secs = run_once(tmp, config, name, path, status, ctype, n)
            results[name] = (ir - base) / n
            log(f"{name}: {ir:,} Ir in all, {n} x GET {path} in {secs:.1f} s")
    finally:
        demo.stop()
    if not os.environ.get("PROBLEMGATE_KEEP_BUDGET_TMP"): shutil.rmtree(tmp, ignore_errors=True)

    failed = []
    table = [f"instruction budget ({n} requests per scenario, "
             f"{os.path.realpath(harness.GATEWAY_BIN)})",
             f"{'scenario':<16} {'Ir/request':>12} {'budget':>10} {'used':>7}"]
    for name, per_req in results.items():
        limit = budget["ir_per_request"][name]
        over = per_req > limit
        table.append(f"{name:<16} {per_req:>12,.0f} {limit:>10,} {100 * per_req / limit:>6.1f}%"
                     + ("  OVER BUDGET" if over else ""))
        if over:
            failed.append(name)
    table.append(f"({time.monotonic() - started:.0f} s)")
    log("\n" + "\n".join(table))
    report = os.environ.get("PROBLEMGATE_BUDGET_REPORT")
    if report:
        with open(report, "w") as f:
            f.write("\n".join(table) + "\n")
    if failed and not args.measure_only:
        log(f"\nFAIL: {', '.join(failed)} over the instruction budget in {BUDGET_FILE}. Make the "
            "request path cheaper again, or raise the budget in a reviewed commit that says why.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
