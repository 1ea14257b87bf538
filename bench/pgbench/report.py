"""Report: the Markdown tables of a run, the targets, the latency plot, and the run's section of
bench/RESULTS.md (history.py keeps that file: one history line per run, the latest run in full)."""
import json
import os
import platform
import shutil
import subprocess
import tempfile

from .procs import ROOT


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



def run_report(args, started, stamp, results_dir, tmp, scenarios, skipped, rows, idle_rows, sc, cg, micro):
    """The run's section of RESULTS.md (Markdown); also draws the plot and writes the raw JSON."""
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
    return "\n".join(out) + "\n"
