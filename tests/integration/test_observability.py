"""Issue 23: the Grafana dashboard and Prometheus alert rules in deploy/ match the real /metrics.

* `promtool check rules` accepts deploy/prometheus/problemgate-alerts.yaml, and every rule has
  `for:`, a severity label and summary/description/runbook annotations;
* every metric name and label name used in the rules' `expr`, the dashboard's `targets[].expr`
  and its variable queries exists in the /metrics of a running gateway that has served a 200, a
  rewritten 404, a 429 and a 502 (so the series exist); literal label values in `=`/`=~` matchers
  must be values the gateway emits (catches `kind="refuse"`);
* `promtool check metrics` passes on that scrape, lint findings included;
* the dashboard parses, and every panel has a datasource and at least one target.

A metric that is renamed or loses a label then fails CI here instead of silently emptying a panel
or disarming an alert.
"""
import json
import os
import re
import shutil
import subprocess
import time
import unittest

import yaml

from harness import DemoApi, Gateway, http_request, refused_port

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RULES = os.path.join(ROOT, "deploy", "prometheus", "problemgate-alerts.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "problemgate-dashboard.json")

# Series Prometheus adds itself: `up` per target, and the target labels on every series.
SYNTHETIC = {"up": {"job": None, "instance": None}}
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan",
            # aggregation operators: `sum by (x) (...)` puts the clause between name and "("
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
# promtool check metrics findings accepted on purpose (none today): "metric: message" substrings.
ACCEPTED_LINT = []


def require_promtool(test):
    promtool = shutil.which("promtool")
    if not promtool:
        # scripts/install-deps.sh installs it (Debian package prometheus); without it only these
        # checks are skipped, the name checks below still run.
        test.skipTest("promtool (Debian package prometheus) not installed")
    return promtool


def config(demo_url, dead_port):
    return f"""
listen: 127.0.0.1:0
threads: 2
admin:
  listen: 127.0.0.1:0
upstreams:
  legacy:
    url: {demo_url}
    timeout: 5s
  dead:
    url: http://127.0.0.1:{dead_port}
    connect_timeout: 1s
    timeout: 2s
routes:
  - name: limited
    match: {{ prefix: /limited }}
    upstream: legacy
    strip_prefix: true
    rate_limit: {{ limit: 1, window: 300s, key: client_ip }}
  - name: dead
    match: {{ prefix: /dead }}
    upstream: dead
  - name: legacy
    match: {{ prefix: / }}
    upstream: legacy
"""


def parse_scrape(text):
    """{sample name: {label name: set of values}} from the sample lines (not HELP/TYPE: a
    family with no samples is nothing a query can find)."""
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$', line)
        assert m, f"unparsable sample line: {line!r}"
        labels = series.setdefault(m.group(1), {})
        for name, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""):
            labels.setdefault(name, set()).add(value)
    return series


def analyse(expr):
    """(metric names, [(metric or None, label, op, value)] matchers, grouping label names) of a
    PromQL expression. Not a full parser: enough for the expressions in deploy/, and it fails
    loudly (unknown name) rather than silently on anything it misreads."""
    e = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors: [5m], [$__rate_interval]
    selectors = []
    for m in re.finditer(r'([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}', e):
        for label, op, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2)):
            selectors.append((m.group(1), label, op, value))
    e = re.sub(r"\{[^}]*\}", "", e)
    grouping = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping.update(x.strip() for x in m.group(1).split(",") if x.strip())
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)  # Grafana variables outside strings
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        ident, call = m.group(1), m.group(2)
        if call or ident.lower() in KEYWORDS:
            continue
        names.add(ident)
    return names, selectors, grouping


class Observability(unittest.TestCase):
    longMessage = False  # the messages below say what is wrong; the default adds whole dicts
    @classmethod
    def setUpClass(cls):
        cls.dead_sock, dead_port = refused_port()
        cls.demo = DemoApi()
        cls.gw = Gateway(config(cls.demo.url, dead_port))
        try:
            admin = cls.gw.admin_port()
            statuses = [cls.gw.request("GET", p)[0]
                        for p in ("/ok", "/flat/not-found", "/limited/ok", "/limited/ok", "/dead/x")]
            assert statuses == [200, 404, 200, 429, 502], statuses
            # A request is counted after its response is written: scrape until all five are in
            # (the 502 last), not at once, so a loaded machine cannot race the scrape.
            def scrape():
                status, _, body = http_request("127.0.0.1", admin, "GET", "/metrics")
                assert status == 200, status
                return body
            body = scrape()
            deadline = time.monotonic() + 20
            while not all(c in body for c in (b'code="200"', b'code="404"', b'code="429"', b'code="502"')) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
                body = scrape()
        except Exception:
            cls.tearDownClass()
            raise
        cls.scrape = body
        cls.series = parse_scrape(body.decode())
        for name, labels in SYNTHETIC.items():
            cls.series.setdefault(name, labels)
        with open(RULES) as f:
            cls.rules = yaml.safe_load(f)
        with open(DASHBOARD) as f:
            cls.dashboard = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.demo.stop()
        cls.dead_sock.close()

    # ------------------------------------------------------------------ expressions

    def rule_exprs(self):
        return [(f"rule {r.get('alert') or r.get('record')}", r["expr"])
                for g in self.rules["groups"] for r in g["rules"]]

    def panels(self, panels=None):
        for p in self.dashboard["panels"] if panels is None else panels:
            if p.get("type") == "row":
                yield from self.panels(p.get("panels", []))
            else:
                yield p

    def dashboard_exprs(self):
        out = []
        for p in self.panels():
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r} target {t.get('refId')}", t.get("expr", "")))
        for v in self.dashboard["templating"]["list"]:
            if v["type"] != "query":
                continue
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"\s*label_values\(\s*(.*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
            if m:  # label_values(selector, label): the label must be on the selector's metric
                sel = m.group(1)
                metric = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", sel).group(0)
                out.append((f"variable {v['name']}", f"count by ({m.group(2)}) ({sel})"))
                self.assertIn(m.group(2), self.series.get(metric, {}), f"variable {v['name']}: {q}")
            else:
                out.append((f"variable {v['name']}", q))
        return out

    def check_expr(self, where, expr):
        self.assertTrue(expr.strip(), f"{where}: empty expression")
        names, selectors, grouping = analyse(expr)
        self.assertTrue(names, f"{where}: no metric found in {expr!r}")
        known = sorted(self.series)
        for n in names:
            self.assertIn(n, self.series,
                          f"{where}: metric {n!r} is not in the gateway's /metrics (histograms are "
                          f"queried as _bucket/_sum/_count); known: {known}")
        available = set(TARGET_LABELS)
        for n in names:
            available.update(self.series[n])
        for metric, label, op, value in selectors:
            labels = set(self.series[metric]) | TARGET_LABELS if metric else available
            self.assertIn(label, labels, f"{where}: {metric}{{{label}...}}: no such label; has {sorted(labels)}")
            if not metric or op not in ("=", "=~") or label in TARGET_LABELS or "$" in value:
                continue
            if not re.fullmatch(r"[\w.+]+(\|[\w.+]+)*", value):
                continue  # a real regex: not checked
            emitted = self.series[metric].get(label, set())
            for alt in value.split("|"):
                self.assertIn(alt, emitted, f"{where}: {metric}{{{label}{op}\"{value}\"}}: the gateway "
                                            f"emits {label} values {sorted(emitted)}")
        for label in grouping:
            self.assertIn(label, available, f"{where}: by/on ({label}): none of {sorted(names)} has it")

    # ------------------------------------------------------------------ tests

    def test_alert_rules_pass_promtool(self):
        promtool = require_promtool(self)
        r = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_alert_rules_are_complete(self):
        alerts = [r for g in self.rules["groups"] for r in g["rules"] if "alert" in r]
        self.assertGreaterEqual(len(alerts), 8)
        for r in alerts:
            with self.subTest(alert=r["alert"]):
                self.assertIn("for", r)
                self.assertIn(r.get("labels", {}).get("severity"), ("page", "ticket"))
                for a in ("summary", "description", "runbook"):
                    self.assertTrue(r.get("annotations", {}).get(a), a)

    def test_rule_metrics_and_labels_exist(self):
        for where, expr in self.rule_exprs():
            with self.subTest(where):
                self.check_expr(where, expr)

    def test_dashboard_metrics_and_labels_exist(self):
        exprs = self.dashboard_exprs()
        self.assertGreaterEqual(len(exprs), 10)
        for where, expr in exprs:
            with self.subTest(where):
                self.check_expr(where, expr)

    def test_dashboard_panels_have_datasource_and_targets(self):
        d = self.dashboard
        self.assertGreaterEqual(d["schemaVersion"], 36)
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        self.assertIn("route", variables)
        panels = list(self.panels())
        self.assertGreaterEqual(len(panels), 10)
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "duplicate panel ids")
        for p in panels:
            with self.subTest(panel=p.get("title")):
                self.assertTrue(p.get("title"))
                self.assertIn("gridPos", p)
                ds = p.get("datasource")
                self.assertTrue(ds, "no datasource")
                self.assertEqual(ds.get("uid") if isinstance(ds, dict) else ds, "${datasource}")
                targets = p.get("targets") or []
                self.assertTrue(targets, "no targets")
                for t in targets:
                    self.assertTrue(t.get("expr", "").strip(), f"target {t.get('refId')} has no expr")

    def test_scrape_passes_promtool_check_metrics(self):
        promtool = require_promtool(self)
        r = subprocess.run([promtool, "check", "metrics"], input=self.scrape, capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode()
        findings = [l for l in out.splitlines() if l.strip() and not any(a in l for a in ACCEPTED_LINT)]
        # Exit 1 is a parse error; 3 is lint findings. Lint findings fail too (a counter without
        # _total, a missing HELP: real naming problems) unless listed in ACCEPTED_LINT.
        self.assertIn(r.returncode, (0, 3), out)
        self.assertEqual(findings, [], out)

    def test_analyser_catches_typos(self):
        """The checks above are only as good as analyse(): it must see a wrong name, label or value."""
        bad = [
            'rate(problemgate_request_total[5m])',
            'sum by (reason) (rate(problemgate_upstream_failures_total[5m]))',
            'problemgate_upstream_failures_total{kind="refuse"}',
            'problemgate_client_connections{route="x"}',
            'histogram_quantile(0.99, sum by (le) (rate(problemgate_request_duration_seconds[5m])))',
        ]
        for expr in bad:
            with self.subTest(expr):
                with self.assertRaises(AssertionError):
                    self.check_expr("typo", expr)


if __name__ == "__main__":
    unittest.main()
