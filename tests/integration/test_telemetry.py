"""Issue 23 item 4, telemetry an SLO can be built on: the status code on problemgate_requests_total,
bounded subcode labels, process_* and build info, W3C trace context end to end (origin, problem
body, access log), access-log fields (query redaction, protocol, upstream facts, a local 429's
upstream_contacted: false, the whole 5xx text) and stdout carrying JSON lines only."""
import json
import re
import unittest

from harness import (TRACE_ID_RE, Gateway, RawClient, ScriptedUpstream, http_request, response_bytes,
                     wait_until)

TRACEBACK = ("Traceback (most recent call last):\n"
             "  File \"/srv/app/views.py\", line 42, in create_order\n"
             "    order = Order.objects.get(pk=pk)\n"
             "KeyError: 'customer_id'\n")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"


def origin(req, idx):
    line = req.split(b"\r\n", 1)[0].decode("latin-1")
    path = line.split(" ")[1]
    if path.startswith("/boom"):
        return response_bytes(500, TRACEBACK, {"Content-Type": "text/plain"})
    m = re.match(r"/code/(\d+)", path)
    if m:
        body = json.dumps({"error": {"code": f"ORDER_{m.group(1)}_NOT_FOUND", "message": "no such order"}})
        return response_bytes(404, body, {"Content-Type": "application/json"})
    if path.startswith("/skill"):
        body = json.dumps({"error": {"code": "SKILL_NOT_FOUND", "message": "no such skill"}})
        return response_bytes(404, body, {"Content-Type": "application/json"})
    return response_bytes(200, "ok", {"Content-Type": "text/plain"})


def config(url):
    return f"""
listen: 127.0.0.1:0
threads: 2
admin:
  listen: 127.0.0.1:0
telemetry:
  redact_query: [token, api_key]
  max_logged_detail: 4KiB
upstreams:
  app:
    url: {url}
    timeout: 5s
routes:
  - name: limited
    match: {{ prefix: /limited }}
    upstream: app
    strip_prefix: true
    rate_limit: {{ limit: 1, window: 300s, key: client_ip }}
  - name: app
    match: {{ prefix: / }}
    upstream: app
"""


def header_of(raw, name):
    for line in raw.split(b"\r\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode("latin-1")
    return None


class Telemetry(unittest.TestCase):
    longMessage = False

    @classmethod
    def setUpClass(cls):
        cls.up = ScriptedUpstream(origin)
        cls.gw = Gateway(config(cls.up.url))
        cls.admin = cls.gw.admin_port()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.stop()

    def upstream_request(self, request_id):
        found = []

        def seen():
            found[:] = [r for r in list(self.up.requests) if header_of(r, "X-Request-Id") == request_id]
            return bool(found)
        self.assertTrue(wait_until(seen), f"the origin never saw {request_id}")
        return found[0]

    def log_line(self, request_id):
        entries = [e for e in self.gw.access_log(wait_for=request_id) if e.get("requestId") == request_id]
        self.assertEqual(len(entries), 1, entries)
        return entries[0]

    def metrics(self):
        status, _, body = http_request("127.0.0.1", self.admin, "GET", "/metrics")
        self.assertEqual(status, 200)
        return body.decode()

    # ------------------------------------------------------------------ trace context

    def test_a_valid_traceparent_is_continued_upstream_with_the_gateways_span(self):
        tp = f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"
        status, headers, _ = http_request("127.0.0.1", self.gw.port, "GET", "/ok",
                                          {"X-Request-Id": "t-tp-valid", "traceparent": tp, "tracestate": "vendor=abc"})
        self.assertEqual(status, 200)
        raw = self.upstream_request("t-tp-valid")
        sent = header_of(raw, "traceparent")
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", sent or "")
        self.assertTrue(m, sent)
        self.assertEqual(m.group(1), CLIENT_TRACE)
        self.assertNotEqual(m.group(2), CLIENT_PARENT)  # the gateway's own span
        self.assertNotEqual(m.group(2), "0" * 16)
        self.assertEqual(raw.lower().count(b"\r\ntraceparent:"), 1)
        self.assertEqual(header_of(raw, "tracestate"), "vendor=abc")
        self.assertEqual(self.log_line("t-tp-valid")["traceId"], CLIENT_TRACE)

    def test_an_absent_or_invalid_traceparent_starts_a_new_trace(self):
        cases = {
            "t-tp-none": None,
            "t-tp-zero": f"00-{'0' * 32}-{CLIENT_PARENT}-01",
            "t-tp-upper": f"00-{CLIENT_TRACE.upper()}-{CLIENT_PARENT}-01",
            "t-tp-ff": f"ff-{CLIENT_TRACE}-{CLIENT_PARENT}-01",
            "t-tp-short": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}",
        }
        traces = set()
        for rid, tp in cases.items():
            with self.subTest(rid):
                hdrs = {"X-Request-Id": rid, "tracestate": "vendor=orphan"}
                if tp:
                    hdrs["traceparent"] = tp
                status, _, _ = http_request("127.0.0.1", self.gw.port, "GET", "/ok", hdrs)
                self.assertEqual(status, 200)
                raw = self.upstream_request(rid)
                m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", header_of(raw, "traceparent") or "")
                self.assertTrue(m, raw)
                self.assertNotEqual(m.group(1), CLIENT_TRACE)
                self.assertIsNone(header_of(raw, "tracestate"))  # it belonged to the dropped trace
                self.assertEqual(self.log_line(rid)["traceId"], m.group(1))
                traces.add(m.group(1))
        self.assertEqual(len(traces), len(cases))

    def test_trace_id_in_a_rewritten_problem_equals_the_origins_and_the_logs(self):
        status, headers, body = http_request("127.0.0.1", self.gw.port, "GET", "/skill/1",
                                             {"X-Request-Id": "t-tp-problem"})
        self.assertEqual(status, 404)
        p = json.loads(body)
        self.assertRegex(p["traceId"], TRACE_ID_RE)
        keys = list(p)
        self.assertEqual(keys.index("traceId"), keys.index("requestId") + 1, keys)
        raw = self.upstream_request("t-tp-problem")
        self.assertIn(p["traceId"], header_of(raw, "traceparent"))
        self.assertEqual(self.log_line("t-tp-problem")["traceId"], p["traceId"])

    # ------------------------------------------------------------------ access log

    def test_a_local_429_says_no_upstream_was_contacted_and_carries_the_trace(self):
        http_request("127.0.0.1", self.gw.port, "GET", "/limited/a", {"X-Request-Id": "t-429-first"})
        tp = f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-00"
        status, _, body = http_request("127.0.0.1", self.gw.port, "GET", "/limited/b",
                                       {"X-Request-Id": "t-429", "traceparent": tp})
        self.assertEqual(status, 429)
        p = json.loads(body)
        self.assertEqual(p["traceId"], CLIENT_TRACE)
        line = self.log_line("t-429")
        self.assertIs(line["upstream_contacted"], False)
        self.assertEqual(line["traceId"], CLIENT_TRACE)
        for k in ("upstream_status", "upstream_ms", "upstream_address"):
            self.assertNotIn(k, line)
        self.assertIs(self.log_line("t-429-first")["upstream_contacted"], True)
        self.assertIn('code="429"', self.metrics())

    def test_line_fields_host_query_redaction_protocol_upstream_forwarded_for(self):
        status, _, _ = http_request("127.0.0.1", self.gw.port, "GET", "/ok?a=1&token=s3cr3t&b=&api_key=k2&tokens=3",
                                    {"X-Request-Id": "t-fields", "X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(status, 200)
        line = self.log_line("t-fields")
        self.assertEqual(line["query"], "a=1&token=REDACTED&b=&api_key=REDACTED&tokens=3")
        self.assertNotIn("s3cr3t", json.dumps(line))
        self.assertEqual(line["host"], f"127.0.0.1:{self.gw.port}")
        self.assertEqual(line["protocol"], "HTTP/1.1")
        self.assertIs(line["upstream_contacted"], True)
        self.assertEqual(line["upstream_address"], f"127.0.0.1:{self.up.port}")
        self.assertEqual(line["upstream_status"], 200)
        self.assertIsInstance(line["upstream_ms"], (int, float))
        self.assertEqual(line["client"], "127.0.0.1")
        self.assertEqual(line["x_forwarded_for"], "203.0.113.9")
        self.assertRegex(line["time"], RFC3339_MS)
        self.assertGreater(line["bytes_in"], 0)
        # The origin still gets the query as sent: redaction is for the log only.
        self.assertIn(b"GET /ok?a=1&token=s3cr3t&b=&api_key=k2&tokens=3 HTTP/1.1", self.upstream_request("t-fields"))

    def test_http_1_0_is_logged_as_such(self):
        c = RawClient(self.gw.port)
        try:
            c.send(b"GET /ok HTTP/1.0\r\nHost: h10.example\r\nX-Request-Id: t-http10\r\n\r\n")
            r = c.read_response()
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        line = self.log_line("t-http10")
        self.assertEqual(line["protocol"], "HTTP/1.0")
        self.assertEqual(line["host"], "h10.example")

    def test_upstream_detail_keeps_the_whole_5xx_text(self):
        status, _, body = http_request("127.0.0.1", self.gw.port, "POST", "/boom", {"X-Request-Id": "t-boom"}, b"{}")
        self.assertEqual(status, 500)
        self.assertNotIn("KeyError", body.decode())  # hidden from the client
        line = self.log_line("t-boom")
        self.assertEqual(line["upstream_detail"], TRACEBACK)
        self.assertEqual(line["upstream_status"], 500)

    def test_stdout_carries_json_lines_only(self):
        http_request("127.0.0.1", self.gw.port, "GET", "/ok", {"X-Request-Id": "t-stdout"})
        self.log_line("t-stdout")
        self.assertTrue(self.gw.log_lines)
        for line in list(self.gw.log_lines):
            self.assertTrue(line.startswith("{"), line)
            json.loads(line)
        self.assertTrue(any(l.startswith("listening on ") for l in self.gw.stderr_lines), self.gw.stderr_lines)

    # ------------------------------------------------------------------ metrics

    def test_subcode_labels_are_bounded_with_100_distinct_upstream_codes(self):
        for i in range(100):
            status, _, body = http_request("127.0.0.1", self.gw.port, "GET", f"/code/{i}", {"X-Request-Id": f"t-sub-{i}"})
            self.assertEqual(status, 404)
            self.assertEqual(json.loads(body).get("subcode"), f"order_{i}_not_found")  # the body keeps it
        http_request("127.0.0.1", self.gw.port, "GET", "/skill/2")
        self.assertEqual(self.log_line("t-sub-7")["subcode"], "order_7_not_found")  # and the log
        text = self.metrics()
        subcodes = set(re.findall(r'problemgate_rewritten_errors_total\{route="app",[^}]*subcode="([^"]*)"', text))
        self.assertIn("other", subcodes)
        self.assertIn("skill_not_found", subcodes)  # the legacy table's codes keep their label
        self.assertFalse(any(s.startswith("order_") for s in subcodes), subcodes)
        series = re.findall(r'^problemgate_rewritten_errors_total\{.*', text, re.M)
        self.assertLessEqual(len(series), 5, series)

    def test_metrics_have_code_label_build_info_and_process_metrics(self):
        http_request("127.0.0.1", self.gw.port, "GET", "/ok")
        text = self.metrics()
        self.assertRegex(text, r'problemgate_requests_total\{route="app",method="GET",code="200",status_class="2xx"\} \d+')
        self.assertRegex(text, r'problemgate_request_duration_seconds_bucket\{route="app",status_class="2xx",le="60"\} \d+')
        self.assertRegex(text, r'problemgate_build_info\{version="[^"]+",commit="[^"]+"\} 1')
        self.assertRegex(text, r'problemgate_upstream_connect_duration_seconds_count\{upstream="app"\} [1-9]')
        self.assertRegex(text, r'problemgate_upstream_response_head_duration_seconds_count\{route="app",status_class="2xx"\} [1-9]')
        self.assertRegex(text, r'problemgate_request_bytes_total\{route="app"\} [1-9]')
        self.assertRegex(text, r'problemgate_response_bytes_total\{route="app"\} [1-9]')
        self.assertRegex(text, r'\nproblemgate_config_last_reload_successful 1\n')
        m = re.search(r'\nproblemgate_config_last_reload_success_timestamp_seconds (\d+)\n', text)
        self.assertTrue(m and int(m.group(1)) > 1_600_000_000, text[-500:])
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds"):
            m = re.search(rf"\n{name} ([0-9.e+]+)\n", text)
            self.assertTrue(m, name)
        self.assertGreater(float(re.search(r"\nprocess_resident_memory_bytes ([0-9.e+]+)\n", text).group(1)), 0)
        self.assertGreater(float(re.search(r"\nprocess_open_fds ([0-9.e+]+)\n", text).group(1)), 0)


if __name__ == "__main__":
    unittest.main()
