"""callgrind: problemgate's instructions per request (2xx and a rewritten error)."""
import http.client
import os
import shutil
import signal
import time

from .procs import log, tail
from .servers import StartError


def http_loop(port, path, n):
    """n sequential GETs on one keep-alive connection; returns the count answered."""
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

