"""problemgate comparative benchmark harness (stdlib only; started by bench/run.sh as
`python3 -m pgbench` with bench/ on PYTHONPATH).

Starts one origin (nginx `return` locations) and, in front of it, each
contender (direct, nginx, haproxy, nginx+lua, problemgate) with 1 and 2
workers, fresh for every scenario; drives it with wrk --latency; measures
the proxy's CPU time (/proc/PID/stat utime+stime, all its processes) and
peak RSS (VmHWM, summed over its processes); prints a markdown table per
scenario, writes the run into bench/RESULTS.md (replacing the latest run,
one line added to the history table) and plots the latency percentiles with
gnuplot. Every process it starts is recorded by PID (also in TMP/pids for
run.sh's trap) and stopped by PID.
"""
import argparse
import atexit
import datetime
import os
import re
import shutil
import signal
import tempfile

from .callgrind import callgrind
from .history import latest_plots, update_results
from .micro import microbench
from .procs import BENCH, ROOT, Registry, log
from .report import fms, fnum, run_report
from .scenarios import KINDS, QUICK_SCENARIOS, SCENARIOS, ContenderRun, idle_memory, measure_scenario
from .servers import Bench, check_contenders
from .syscalls import syscalls


def main():
    ap = argparse.ArgumentParser(prog="python3 -m pgbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ap.add_argument("--results", default=os.path.join(BENCH, "RESULTS.md"))
    ap.add_argument("--no-append", action="store_true",
                    help="print only, do not write RESULTS.md (the plot goes to the system temp dir)")
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

    own_tmp = args.tmp is None
    tmp = args.tmp or tempfile.mkdtemp(prefix="pgbench.")
    os.chmod(tmp, 0o755)  # nginx workers run as www-data and read files here
    reg = Registry(tmp)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    started = datetime.datetime.now(datetime.timezone.utc)
    stamp = started.strftime("%Y-%m-%d-%H%M")
    results_dir = os.path.join(BENCH, "results")
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
            micro = microbench(args, tmp)
    finally:
        reg.stop_all()
        if own_tmp:
            atexit.register(shutil.rmtree, tmp, True)


    text = run_report(args, started, stamp, results_dir, tmp, scenarios, skipped, rows, idle_rows, sc, cg, micro)
    print(text)
    if not args.no_append:
        old = ""
        if os.path.exists(args.results):
            with open(args.results) as f:
                old = f.read()
        with open(args.results + ".new", "w") as f:
            f.write(update_results(old, text))
        os.replace(args.results + ".new", args.results)
        log(f"latest run replaced, one history line added: {args.results}")
        # only the latest run's plot is kept: the replaced run's goes (its figures are in the
        # history table, its tables in git history)
        for name in latest_plots(old):
            if name != f"latency-{stamp}.png" and os.path.exists(os.path.join(results_dir, name)):
                os.remove(os.path.join(results_dir, name))
                log(f"removed the replaced run's plot bench/results/{name}")
