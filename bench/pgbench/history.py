"""bench/RESULTS.md: a history table with one line per run, the latest run in full, then the
latest section of each feature bench.

A new run of the harness replaces the "latest run" section (between LATEST_BEGIN and LATEST_END)
and adds one line to the history table (before HISTORY_END); the headline figures of that line
are read back from the run's own Markdown section by `history_row`, the same way the lines of
the runs before this file was trimmed were made (`python3 -m pgbench.history --rebuild FILE`,
which prints a history table for every full-run section of FILE).
"""
import argparse
import re
import sys

HISTORY_BEGIN = "<!-- history: one line per run, added by bench/run.sh -->"
HISTORY_END = "<!-- history end -->"
LATEST_BEGIN = "<!-- latest run: replaced by each bench/run.sh -->"
LATEST_END = "<!-- latest run end -->"

HISTORY_HEAD = ("| run (UTC) | CPU | mode | 2xx w1 req/s ×nginx | 2xx w1 CPU µs/req (×nginx) "
                "| err-nested w1 CPU µs/req (×nginx+lua) | 1mib w1 CPU µs/req (×nginx) "
                "| syscalls/req 2xx | Ir/req 2xx | Ir/req err-nested |\n"
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")

FILE_HEAD = """# problemgate benchmark results

Written by `bench/run.sh` (see bench/README.md for how to read the tables). Each run of the
harness adds one line to the history table and replaces the "latest run" section below it; the
full tables of earlier runs are in git history (`git log -p bench/RESULTS.md`). The feature
benches' sections (corpus, Redis store, balancing, WebSocket) follow the latest run.

## History

Headline figures of each run, read from its section (`bench/pgbench/history.py`): problemgate
with 1 worker against nginx (1 worker) in the same run, or against nginx+Lua for the rewritten
error; system calls per small 2xx request (`perf stat`) and callgrind instructions per request
(1 thread) when the run measured them. "—": not measured in that run.

"""

_RUN_HEADING = re.compile(r"^## (\d{4}-\d\d-\d\d \d\d:\d\d) UTC — ([^,]+), (\d+) cores, (.+)$")


def _num(cell):
    m = re.match(r"^\s*([\d,]+(?:\.\d+)?)", cell or "")
    return float(m.group(1).replace(",", "")) if m else None


def _tables(text):
    """Yields (heading of the ### section it is in, header cells, rows of cells) per table."""
    heading, head, rows = "", None, []
    lines = text.splitlines() + [""]
    for i, line in enumerate(lines):
        if line.startswith("### "):
            heading = line[4:]
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if head is None:
                head = cells
            elif re.fullmatch(r"[-:| ]+", line.strip()):
                if rows:  # a second table right under the first: its header was read as a row
                    yield heading, head, rows[:-1]
                    head, rows = rows[-1], []
            else:
                rows.append(cells)
        elif head is not None:
            yield heading, head, rows
            head, rows = None, []


def parse_run(section):
    """The headline figures of one run section (as written by report.run_report)."""
    first = section.splitlines()[0] if section else ""
    m = _RUN_HEADING.match(first)
    if not m:
        return None
    when, arch, cores, cpu = m.groups()
    note = ""
    pm = re.match(r"^(.*?) \((.*)\)$", cpu)
    if pm:
        cpu, note = pm.groups()
    mode = re.search(r"^Mode (\w+):", section, re.M)
    mode = [mode.group(1)] if mode else []
    if re.search(r"^Mode .*--pin", section, re.M):
        mode.append("pinned")
    if note.startswith("partial"):
        mode.append("partial")
    mode = ", ".join(mode) or "—"
    out = {"when": when, "arch": arch, "cores": int(cores), "cpu": cpu, "mode": mode,
           "perf": {}, "syscalls": None, "ir": {}}
    for heading, head, rows in _tables(section):
        low = [h.lower() for h in head]
        scen_name = heading.split(" — ")[0].strip()
        if "contender" in low and "req/s" in low:  # a scenario table (or a hand-made one with a scenario column)
            ci, wi = low.index("contender"), (low.index("workers") if "workers" in low else low.index("w"))
            si = low.index("scenario") if "scenario" in low else None
            ri, ui = low.index("req/s"), (low.index("cpu µs/req") if "cpu µs/req" in low else None)
            for r in rows:
                if len(r) < len(head):
                    continue
                s = r[si] if si is not None else scen_name
                w = r[wi] if r[ci] != "direct" else "1"
                out["perf"][(s, r[ci], w)] = (_num(r[ri]), _num(r[ui]) if ui is not None else None)
        elif low[:2] == ["contender", "syscalls / request"]:
            for r in rows:
                if r[0] == "problemgate":
                    out["syscalls"] = _num(r[1])
        elif low and low[0] == "path" and len(low) > 1 and low[1].startswith("ir / request"):
            for r in rows:
                out["ir"][r[0]] = _num(r[1])
    return out


def _fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def history_row(section):
    """One line of the history table for a run section, or None if it is not a run section."""
    run = parse_run(section)
    if run is None:
        return None
    perf = run["perf"]

    def pair(scen, other):
        pg, ref = perf.get((scen, "problemgate", "1")), perf.get((scen, other, "1"))
        return pg, ref

    pg, ng = pair("2xx", "nginx")
    rps = f"{pg[0] / ng[0]:.2f}×" if pg and ng and pg[0] and ng[0] else "—"

    def cpu(scen, other):
        pg, ref = pair(scen, other)
        if not pg or pg[1] is None:
            return "—"
        if not ref or not ref[1]:
            return f"{pg[1]:.1f}"
        return f"{pg[1]:.1f} ({pg[1] / ref[1]:.2f}×)"

    sc = run["syscalls"]
    return (f"| {run['when']} | {run['cpu']} | {run['mode']} | {rps} | {cpu('2xx', 'nginx')} "
            f"| {cpu('err-nested', 'nginx+lua')} | {cpu('1mib', 'nginx')} "
            f"| {'—' if sc is None else f'{sc:.2f}'} | {_fmt_int(run['ir'].get('2xx'))} "
            f"| {_fmt_int(run['ir'].get('error (nested 404)'))} |")


def split_sections(text):
    """(text before the first `## ` heading, [each `## ` section's text])."""
    parts = re.split(r"(?m)^(?=## )", text)
    return parts[0], parts[1:]


def update_results(old, section):
    """RESULTS.md's new text after a run: `section` (the run's Markdown, starting with its `## `
    heading) replaces the latest run, and its history line is added to the history table.
    `old` is the file's text ("" when it does not exist yet). A file without the history table
    (the layout before it, one section per run) is converted: every full-run section becomes a
    history line and is dropped, other sections (feature benches) are kept after the latest run."""
    section = section.strip("\n") + "\n"
    row = history_row(section)
    latest = f"{LATEST_BEGIN}\n\n{section}\n{LATEST_END}\n"
    if not all(m in old for m in (HISTORY_END, LATEST_BEGIN, LATEST_END)):
        sections = split_sections(old)[1]
        rows = [r for r in (history_row(s) for s in sections) if r] + ([row] if row else [])
        kept = "".join(s.rstrip("\n") + "\n\n" for s in sections if history_row(s) is None)
        return (FILE_HEAD + HISTORY_BEGIN + "\n\n" + HISTORY_HEAD + "\n" + "".join(r + "\n" for r in rows)
                + "\n" + HISTORY_END + "\n\n" + latest + ("\n" + kept.rstrip("\n") + "\n" if kept else ""))
    before, after = old.split(HISTORY_END, 1)
    if row:
        before = before.rstrip("\n") + "\n" + row + "\n\n"
    head, rest = after.split(LATEST_BEGIN, 1)
    tail = rest.split(LATEST_END, 1)[1]
    return before + HISTORY_END + head + latest + (tail[1:] if tail.startswith("\n") else tail)


def latest_plots(text):
    """File names of the plots (bench/results/latency-*.png) that the latest run section cites."""
    if LATEST_BEGIN not in text or LATEST_END not in text:
        return []
    latest = text.split(LATEST_BEGIN, 1)[1].split(LATEST_END, 1)[0]
    return re.findall(r"bench/results/(latency-[\w.-]+\.png)", latest)


def replace_feature_section(old, key, section):
    """A feature bench's new section (its `## ` heading contains `key`) in place of the one
    before it (that bench's latest), or at the end of the file when it has none yet."""
    section = section.strip("\n") + "\n"
    pre, sections = split_sections(old)
    for i in range(len(sections) - 1, -1, -1):
        if key in sections[i].splitlines()[0]:
            sections[i] = section + ("\n" if i < len(sections) - 1 else "")
            return pre + "".join(sections)
    return old.rstrip("\n") + "\n\n" + section if old.strip() else section


def rebuild_history(text):
    """The history table (header and one line per full-run section) of an existing RESULTS.md."""
    rows = [history_row(s) for s in split_sections(text)[1]]
    return HISTORY_HEAD + "\n" + "".join(r + "\n" for r in rows if r)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m pgbench.history",
                                 description="Print the history table of every full-run section of a RESULTS.md.")
    ap.add_argument("--rebuild", metavar="FILE", required=True)
    a = ap.parse_args(argv)
    with open(a.rebuild) as f:
        sys.stdout.write(rebuild_history(f.read()))


if __name__ == "__main__":
    main()
