"""micro-benchmarks: the Google Benchmark binaries in build-bench/bench/, summarised."""
import glob
import json
import os
import subprocess

from .procs import ROOT, log


def microbench(args, tmp):
    d = os.path.join(ROOT, "build-bench", "bench")
    bins = sorted(p for p in glob.glob(os.path.join(d, "*_bench")) if os.access(p, os.X_OK))
    res = []
    for b in bins:
        jf = os.path.join(tmp, os.path.basename(b) + ".json")
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

