"""syscalls: system calls per proxied small 2xx request (perf stat on the proxy's processes)."""
import os
import shutil
import signal
import subprocess
import time

from .load import run_wrk
from .procs import log
from .servers import StartError


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

