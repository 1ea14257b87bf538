"""pgbench.history: a run replaces RESULTS.md's latest run and adds one history line.

    cd bench && python3 -m unittest -v pgbench.test_history     (ctest: bench.report, label unit)
"""
import unittest

from .history import (HISTORY_END, LATEST_BEGIN, LATEST_END, history_row, latest_plots, parse_run,
                      replace_feature_section, update_results)


def run_section(when, pg_rps, pg_cpu, ng_rps=40000, ng_cpu=20.0, ir=None):
    text = (f"## {when} UTC — x86_64, 2 cores, AMD EPYC\n\n"
            "Mode default: 3 measured run(s) of 3s per contender.\n\n"
            "### 2xx — small 2xx JSON\n\n"
            "| contender | workers | req/s | p50 ms | p99 ms | CPU µs/req | check |\n"
            "|---|---:|---:|---:|---:|---:|---|\n"
            "| direct | — | 69391 | 0.57 | 3.58 | — | ok |\n"
            f"| nginx | 1 | {ng_rps} | 0.98 | 3.85 | {ng_cpu} | ok |\n"
            f"| problemgate | 1 | {pg_rps} | 0.92 | 3.13 | {pg_cpu} | ok |\n"
            "| problemgate | 2 | 99999 | 0.97 | 4.64 | 1.0 | ok |\n")
    if ir:
        text += ("\n### callgrind: problemgate instructions per request (1 thread)\n\n"
                 "| path | Ir / request |\n|---|---:|\n"
                 f"| 2xx | {ir[0]:,} |\n| error (nested 404) | {ir[1]:,} |\n")
    return text + "\nPlot: `bench/results/latency-x.png`\n"


FEATURE = "## 2026-12-07 20:21 UTC — balancing cost (issue 21)\n\nfigures\n"


class History(unittest.TestCase):
    def test_row_reads_the_headline_figures(self):
        row = history_row(run_section("2026-12-07 11:26", 44000, 22.0, ir=(19543, 29415)))
        self.assertEqual(row, "| 2026-12-07 11:26 | AMD EPYC | default | 1.10× | 22.0 (1.10×) | — | — "
                              "| — | 19,543 | 29,415 |")
        self.assertIsNone(history_row(FEATURE))
        self.assertEqual(parse_run(run_section("2026-12-07 11:26", 1, 1))["perf"][("2xx", "direct", "1")][0], 69391)

    def test_old_layout_is_converted(self):
        old = ("# problemgate benchmark results\n\nAppended.\n\n" + run_section("2026-12-06 10:00", 30000, 30.0)
               + "\n" + FEATURE)
        new = update_results(old, run_section("2026-12-07 11:26", 44000, 22.0))
        self.assertEqual(new.count("| 2026-12-06 10:00 |"), 1)  # a history line, its tables gone
        self.assertEqual(new.count("## 2026-12-06 10:00"), 0)
        self.assertEqual(new.count("## 2026-12-07 11:26"), 1)
        self.assertIn(FEATURE.strip(), new)
        self.assertLess(new.index(LATEST_END), new.index(FEATURE.splitlines()[0]))

    def test_a_new_run_replaces_the_latest_and_adds_one_line(self):
        first = update_results("", run_section("2026-12-07 11:26", 44000, 22.0))
        first += "\n" + FEATURE
        second = update_results(first, run_section("2026-12-08 09:00", 50000, 18.0))
        self.assertEqual(second.count("## 2026-12-07 11:26"), 0)
        self.assertEqual(second.count("## 2026-12-08 09:00"), 1)
        hist = second.split(HISTORY_END)[0]
        lines = [ln for ln in hist.splitlines() if ln.startswith("| 2026-")]
        self.assertEqual([ln.split(" | ")[0] for ln in lines], ["| 2026-12-07 11:26", "| 2026-12-08 09:00"])
        self.assertEqual(second.count(LATEST_BEGIN), 1)
        self.assertEqual(latest_plots(second), ["latency-x.png"])
        self.assertEqual(latest_plots(FEATURE), [])
        self.assertTrue(second.endswith(FEATURE))
        # the same update again: still one latest run, one more history line, nothing else moves
        third = update_results(second, run_section("2026-12-08 10:00", 50000, 18.0))
        self.assertEqual(len(third.splitlines()), len(second.splitlines()) + 1)

    def test_a_feature_bench_replaces_its_own_section(self):
        text = update_results("", run_section("2026-12-07 11:26", 44000, 22.0)) + "\n" + FEATURE + "\n## ws — WebSocket echo\n\nold\n"
        new = replace_feature_section(text, "WebSocket echo", "## ws2 — WebSocket echo\n\nnew\n")
        self.assertNotIn("old", new.split(LATEST_END)[1])
        self.assertTrue(new.endswith("## ws2 — WebSocket echo\n\nnew\n"))
        self.assertIn(FEATURE, new)
        added = replace_feature_section(text, "corpus", "## c — corpus\n")
        self.assertTrue(added.startswith(text.rstrip("\n")) and added.endswith("## c — corpus\n"))


if __name__ == "__main__":
    unittest.main()
