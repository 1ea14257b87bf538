"""Issue 3: the error normalizer end to end, through the running binary (spec §1-§4, §7).

Every upstream here is real (the demo API or a ScriptedUpstream on loopback) and every assertion
is made on the bytes the client receives or on the gateway's access-log line.
"""
import glob
import gzip
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (CORPUS_DIR, GATEWAY_BIN, DemoApi, Gateway, RawClient, ScriptedUpstream,
                     assert_problem, http_request, request_full, response_bytes, sidecar_config, wait_until)


def load_corpus():
    """Every case of every tests/corpus/*.json file, in file order."""
    files = sorted(glob.glob(os.path.join(CORPUS_DIR, "*.json")))
    if not files:
        raise AssertionError(f"corpus not found at {CORPUS_DIR} (PROBLEMGATE_CORPUS_DIR)")
    cases = []
    for path in files:
        with open(path) as f:
            cases.extend(json.load(f))
    return cases


TYPE_BASE = "https://docs.example.com/errors#"


def hdrs(r):
    return {k.lower(): v for k, v in r.headers}


def raw_response(status, body, header_list, reason="X"):
    """response_bytes with an ordered header list (repeated names allowed)."""
    header_list = list(header_list) + [("Content-Length", str(len(body)))]
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in header_list) + "\r\n"
    return head.encode("latin-1") + body


def header_of(raw_request, name):
    """A header value from the raw request bytes a ScriptedUpstream recorded."""
    head = raw_request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def log_entry(gw, request_id):
    entries = [e for e in gw.access_log(wait_for=request_id) if e.get("requestId") == request_id]
    assert entries, f"no access-log line for {request_id}"
    return entries[-1]


def problem_of(test, r, status, code=None, subcode=None):
    return assert_problem(test, r.status, hdrs(r), r.body, status, code, subcode)


# ----------------------------------------------------------------------------- the golden corpus

class Corpus(unittest.TestCase):
    """Every case of the golden corpus (tests/corpus/) once through the proxy (route without a
    rate-limit policy) and once through `problemgate normalize --jsonl`. The corpus is part of the
    repository: a missing one fails here, it is never skipped."""

    @classmethod
    def setUpClass(cls):
        cls.cases = load_corpus()

        def handler(req, _idx):
            case = cls.cases[int(header_of(req, "X-Case"))]
            up = case["upstream"]
            headers = dict(up.get("headers") or {})
            if up.get("content_type"):
                headers["Content-Type"] = up["content_type"]
            return response_bytes(up["status"], up["body"].encode(), headers)

        cls.upstream = ScriptedUpstream(handler)
        cls.gw = Gateway(sidecar_config(cls.upstream.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.upstream.stop()

    def test_every_corpus_case(self):
        self.assertGreaterEqual(len(self.cases), 150)
        self.assertGreaterEqual(len({c["family"] for c in self.cases if "family" in c}), 30)
        # Every request first, then the checks: access-log lines are flushed once a second, so
        # waiting for each case's line in turn spent about a second per case.
        responses = [request_full(self.gw.port, case["request"]["method"], case["request"]["path"],
                                  {"X-Case": str(i)}) for i, case in enumerate(self.cases)]
        for case, r in zip(self.cases, responses):
            with self.subTest(case=case["name"]):
                self.check_case(case, r)

    def test_every_corpus_case_through_the_cli(self):
        # One --jsonl line per case, content_type as the corpus writes it (null: no field).
        lines = [json.dumps({"status": c["upstream"]["status"], "content_type": c["upstream"].get("content_type"),
                             "body": c["upstream"]["body"], "path": c["request"]["path"].split("?")[0],
                             "request_id": f"req-corpus-{i}", "headers": c["upstream"].get("headers") or {}})
                 for i, c in enumerate(self.cases)]
        r = subprocess.run([GATEWAY_BIN, "normalize", "--jsonl"], input=("\n".join(lines) + "\n").encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode().splitlines()
        self.assertEqual(len(out), len(self.cases))
        for i, (case, line) in enumerate(zip(self.cases, out)):
            with self.subTest(case=case["name"]):
                exp = case["expect"]
                p = json.loads(line)
                self.assertEqual(p["status"], case["upstream"]["status"])
                self.assertEqual(p["code"], exp["code"])
                self.assertEqual(p.get("subcode"), exp["subcode"])
                self.assertEqual(p["requestId"], f"req-corpus-{i}")
                self.assertEqual(p.get("errors", []), exp["errors"])
                if exp["detail"] is not None:
                    self.assertEqual(p.get("detail"), exp["detail"])
                if "retryAfter" in exp:
                    self.assertEqual(p.get("retryAfter"), exp["retryAfter"])

    def check_case(self, case, r):
        req, up, exp = case["request"], case["upstream"], case["expect"]
        status = up["status"]
        h = hdrs(r)
        p = problem_of(self, r, status, exp["code"])
        self.assertEqual(h["content-type"], "application/problem+json")
        self.assertEqual(h["content-length"], str(len(r.body)))
        self.assertEqual(p.get("subcode"), exp["subcode"])
        self.assertEqual(p["instance"], req["path"].split("?")[0])
        self.assertEqual(p["requestId"], h["x-request-id"])
        self.assertEqual(p.get("errors", []), exp["errors"])
        if exp["detail"] is not None:
            self.assertEqual(p.get("detail"), exp["detail"])
        if "retryAfter" in exp:
            self.assertEqual(p.get("retryAfter"), exp["retryAfter"])
        for name, value in (exp.get("headers") or {}).items():
            self.assertEqual(h.get(name.lower()), value, name)

        entry = log_entry(self.gw, p["requestId"])
        self.assertEqual(entry.get("dialect"), exp["dialect"])
        self.assertEqual(entry.get("code"), exp["code"])
        self.assertEqual(entry.get("subcode"), exp["subcode"])
        self.assertEqual(entry.get("status"), status)

        if status >= 500:
            detail = p.get("detail", "")
            body = up["body"]
            if detail:
                self.assertNotIn(detail, body, "5xx detail must not be upstream text")
            hidden = entry.get("upstream_detail")
            # What the client got, less the members it chose itself (its path, the reason phrase).
            shown = r.body.decode().replace(json.dumps(p["instance"]), "").replace(json.dumps(p["title"]), "")
            if exp["dialect"] in ("flat", "nested", "text"):
                self.assertTrue(hidden, "the hidden 5xx detail is on the log line")
                self.assertIn(hidden, body)
                self.assertNotIn(hidden, shown)
            for secret in ("secret_token", "Traceback", "nginx"):
                self.assertNotIn(secret, shown)


# ----------------------------------------------------------------------------- headers (spec §2)

class HeaderRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.body = b'{"error": "Order not found", "details": "No order exists with ID: ord_42"}'

        def handler(req, _idx):
            path = req.split(b" ", 2)[1].decode().split("?")[0]
            if path == "/headers-404":
                return raw_response(404, cls.body, [
                    ("Content-Type", "application/json"),
                    ("ETag", '"abc"'),
                    ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ("Digest", "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="),
                    ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
                    ("Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
                    ("Repr-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
                    ("WWW-Authenticate", 'Bearer realm="x"'),
                    ("Allow", "GET, HEAD"),
                    ("Set-Cookie", "a=1; Path=/"),
                    ("Set-Cookie", "b=2; Path=/"),
                    ("Retry-After", "7"),
                    ("X-Custom", "kept"),
                ])
            if path == "/gzip-503":
                return raw_response(503, gzip.compress(b'{"error": {"code": "DOWN", "message": "db is gone"}}'),
                                      [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                       ("Retry-After", "12"), ("ETag", "W/\"1\"")])
            if path == "/br-404":
                return raw_response(404, b"\x8b\x02\x80not-really-brotli",
                                      [("Content-Type", "application/json"), ("Content-Encoding", "br")])
            if path == "/problem-ext":
                return raw_response(403, json.dumps({
                    "type": "https://example.com/probs/out-of-credit", "title": "You do not have enough credit.",
                    "status": 403, "detail": "Your current balance is 30, but that costs 50.",
                    "instance": "/account/12345/msgs/abc", "balance": 30,
                    "accounts": ["/account/12345", "/account/67890"], "requestId": "req_upstream_own"}).encode(),
                    [("Content-Type", "application/problem+json")])
            return raw_response(404, b"", [("Content-Type", "text/plain")])

        cls.upstream = ScriptedUpstream(handler)
        cls.gw = Gateway(sidecar_config(cls.upstream.url))
        cls.demo = DemoApi()
        cls.gw_demo = Gateway(sidecar_config(cls.demo.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.gw_demo.stop()
        cls.upstream.stop()
        cls.demo.stop()

    def test_validators_dropped_others_kept(self):
        r = request_full(self.gw.port, "GET", "/headers-404")
        h = hdrs(r)
        p = problem_of(self, r, 404, "resource_not_found", "order_not_found")
        self.assertEqual(p["detail"], "No order exists with ID: ord_42")
        for gone in ("etag", "last-modified", "digest", "content-md5", "content-digest", "repr-digest",
                     "content-encoding", "transfer-encoding"):
            self.assertNotIn(gone, h, gone)
        self.assertEqual(h["www-authenticate"], 'Bearer realm="x"')
        self.assertEqual(h["allow"], "GET, HEAD")
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1; Path=/", "b=2; Path=/"])
        self.assertEqual(h["retry-after"], "7")
        self.assertEqual(h["x-custom"], "kept")
        self.assertEqual(h["content-type"], "application/problem+json")

    def test_accept_negotiation_and_accept_reaches_upstream_unchanged(self):
        for accept, want in (("application/json", "application/json"),
                             ("application/problem+json", "application/problem+json"),
                             ("application/json, application/problem+json", "application/problem+json"),
                             ("application/json, */*;q=0.1", "application/problem+json"),
                             ("text/html", "application/problem+json")):
            with self.subTest(accept=accept):
                before = len(self.upstream.requests)
                r = request_full(self.gw.port, "GET", "/headers-404", {"Accept": accept})
                self.assertEqual(hdrs(r)["content-type"], want)
                problem_of(self, r, 404)
                self.assertEqual(header_of(self.upstream.requests[before], "Accept"), accept)

    def test_gzip_error_body_decoded_and_rewritten(self):
        r = request_full(self.gw_demo.port, "GET", "/gzip/404", {"Accept-Encoding": "gzip"})
        h = hdrs(r)
        p = problem_of(self, r, 404, "resource_not_found", "order_not_found")
        self.assertEqual(p["detail"], "No order exists with ID: ord_42")
        self.assertNotIn("content-encoding", h)
        self.assertEqual(log_entry(self.gw_demo, p["requestId"])["dialect"], "flat")

    def test_gzip_5xx_with_retry_after(self):
        r = request_full(self.gw.port, "GET", "/gzip-503")
        h = hdrs(r)
        p = problem_of(self, r, 503, "upstream_unavailable", "down")
        self.assertNotIn("db is gone", r.body.decode())
        self.assertEqual(p.get("retryAfter"), 12)
        self.assertEqual(h["retry-after"], "12")
        self.assertNotIn("content-encoding", h)
        self.assertNotIn("etag", h)
        self.assertEqual(log_entry(self.gw, p["requestId"]).get("upstream_detail"), "db is gone")

    def test_unsupported_encoding_passes_through(self):
        r = request_full(self.gw.port, "GET", "/br-404")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"\x8b\x02\x80not-really-brotli")
        self.assertEqual(hdrs(r)["content-encoding"], "br")
        self.assertEqual(hdrs(r)["content-type"], "application/json")

    def test_problem_json_keeps_extensions_and_replaces_request_id(self):
        r = request_full(self.gw.port, "GET", "/problem-ext?x=1", {"X-Request-Id": "client-id-1"})
        p = problem_of(self, r, 403, "permission_denied", "out_of_credit")
        self.assertEqual(p["requestId"], "client-id-1")
        self.assertEqual(p["type"], "https://example.com/probs/out-of-credit")
        self.assertEqual(p["title"], "You do not have enough credit.")
        self.assertEqual(p["balance"], 30)
        self.assertEqual(p["accounts"], ["/account/12345", "/account/67890"])
        self.assertNotIn("req_upstream_own", r.body.decode())
        self.assertEqual(r.body.decode().count('"requestId"'), 1)

    def test_demo_auth_keeps_www_authenticate(self):
        r = request_full(self.gw_demo.port, "GET", "/auth")
        problem_of(self, r, 401, "authentication_required")
        self.assertEqual(hdrs(r)["www-authenticate"], 'Bearer realm="demo"')


class HostileInput(unittest.TestCase):
    """Spec §4: bad input never fails the response; the client gets a valid problem body
    (strict UTF-8 JSON, exact Content-Length, the upstream status) on a connection that stays usable."""

    BODIES = {
        "/bad-utf8-json": (400, "application/json", b'{"error": "bad\xff\xfe", "details": "caf\xe9 \xc3"}'),
        "/bad-utf8-text": (404, "text/plain", b"no such \xff\xfe thing \xed\xa0\x80 here"),
        "/bad-utf8-html": (404, "text/html", b"<html><title>x</title><body><p>Gone \xff\xfe away now</p></body></html>"),
        "/nul": (400, "text/plain", b"nul\x00byte and \x1b[31mansi\x01"),
        "/surrogate": (400, "application/json", b'{"error": "x\\ud800y", "details": "lone \\udc00 surrogate"}'),
        "/deep": (400, "application/json", b'{"a":' * 10000 + b"1" + b"}" * 10000),
        "/huge": (400, "application/json", json.dumps({"error": "e" * 30000, "details": "d" * 30000}).encode()),
        "/types": (400, "application/json", b'{"error": 5, "details": [], "message": {"x": 1}}'),
        "/status-str": (404, "application/problem+json", b'{"type": "https://e.com/p/x", "title": "T", "status": "404", "detail": 7}'),
        "/dup": (400, "application/json", b'{"error": "first_code", "error": "second", "details": "d1", "details": "d2"}'),
        "/array": (400, "application/json", b'[{"message": "top-level array"}]'),
        "/bom": (404, "application/json", b'\xef\xbb\xbf{"error": "Agent not found", "details": "bom"}'),
        "/ctrl-json": (400, "application/json", b'{"error":"x","details":"line1\\nline2\\u0000\\u001b end"}'),
        "/xml-bad": (400, "application/xml", b"<Error><Code>A&B</Code><Message>unterminated"),
        "/problem-wrong-status": (404, "application/problem+json", b'{"type":"https://e.com/p/y","title":"Y","status":500}'),
    }

    def test_hostile_bodies_give_valid_problems(self):
        bodies = self.BODIES
        up = ScriptedUpstream(lambda req, i: raw_response(
            bodies[req.split(b" ", 2)[1].decode()][0], bodies[req.split(b" ", 2)[1].decode()][2],
            [("Content-Type", bodies[req.split(b" ", 2)[1].decode()][1])]))
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port)
        self.addCleanup(c.close)
        for path, (status, _ct, _body) in bodies.items():
            with self.subTest(path=path):
                c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                r = c.read_response()
                r.body.decode("utf-8")  # strict
                p = problem_of(self, r, status)
                self.assertEqual(p["instance"], path)
        p = json.loads(request_full(gw.port, "GET", "/dup").body)
        self.assertEqual((p["subcode"], p["detail"]), ("first_code", "d1"), "first duplicate wins")
        p = json.loads(request_full(gw.port, "GET", "/problem-wrong-status").body)
        self.assertEqual((p["status"], p["subcode"], p["title"]), (404, "y", "Y"))


class ChunkedFraming(unittest.TestCase):
    """A chunked message whose last-chunk arrives in its own read is relayed with exactly one
    last-chunk (found through the pooled upstream connection being poisoned by a stray one)."""

    def test_request_terminator_in_its_own_segment(self):
        up = ScriptedUpstream(lambda req, i: raw_response(200, b"ok", [("Content-Type", "text/plain")]))
        self.addCleanup(up.stop)
        # Streaming, not request buffering: the case needs the body relayed before it ends.
        gw = Gateway(sidecar_config(up.url, limits="  request_buffer_bytes: 0\n").replace("threads: 2", "threads: 1"))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port)
        self.addCleanup(c.close)
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        # The gateway relays the data chunk before the terminator exists: wait until it has
        # (a fixed pause did not guarantee it on a loaded machine).
        self.assertTrue(wait_until(lambda: b"5\r\nhello\r\n" in b"".join(up.received)),
                        "the data chunk was not relayed before the body ended")
        c.send(b"0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(up.connections, 1, "the upstream connection was reused")
        raw = up.received[0]
        body = raw.split(b"\r\n\r\n", 1)[1].split(b"GET /next", 1)[0]
        self.assertEqual(body, b"5\r\nhello\r\n0\r\n\r\n")
        self.assertEqual(len(up.requests), 2)
        self.assertTrue(up.requests[1].startswith(b"GET /next "))

    def test_response_terminator_in_its_own_segment(self):
        relayed = threading.Event()

        def answer(req, i):
            if b" /split " not in req.split(b"\r\n", 1)[0]:
                return raw_response(200, b"second", [("Content-Type", "text/plain")])

            def send(sock):
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n")
                relayed.wait(20)  # the client has the data chunk: the last one comes in its own read
                sock.sendall(b"0\r\n\r\n")
                time.sleep(0.3)  # keep the connection open a moment, as a keep-alive upstream would
            return send

        up = ScriptedUpstream(answer)
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port)
        self.addCleanup(c.close)
        c.send(b"GET /split HTTP/1.1\r\nHost: x\r\n\r\n")
        while b"5\r\nhello\r\n" not in c.buf:
            c._fill()
        relayed.set()
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"hello"))
        c.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"second"), "no stray last-chunk before the next response")


# ----------------------------------------------------------------------------- what is not rewritten

class NotRewritten(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.demo = DemoApi()
        cfg = f"""
listen: 127.0.0.1:0
threads: 2
admin: {{ listen: "off" }}
problem:
  max_error_body: 1KiB
upstreams:
  app: {{ url: {cls.demo.url} }}
routes:
  - name: raw
    match: {{ prefix: /raw }}
    strip_prefix: true
    normalize: false
  - name: text
    match: {{ prefix: /text-pinned }}
    strip_prefix: true
    dialect: text
  - name: app
    match: {{ prefix: / }}
"""
        cls.gw = Gateway(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.demo.stop()

    def direct(self, path, method="GET"):
        return request_full(self.demo.port, method, path)

    def test_error_body_over_cap_gets_the_status_only_problem(self):
        # Spec §1: over max_error_body (announced by Content-Length or found while reading a
        # chunked body), the body is not parsed and not passed on.
        for path in ("/error-big?size=1025", "/error-big?size=200000", "/error-big?size=1025&chunked=1",
                     "/error-big?size=300000&chunked=1"):
            with self.subTest(path=path):
                r = request_full(self.gw.port, "GET", path)
                p = problem_of(self, r, 500, "internal_error")
                self.assertNotIn("subcode", p)
                self.assertEqual(p["detail"], "The upstream service failed to handle the request.")
                self.assertLess(len(r.body), 1024)
                self.assertEqual(log_entry(self.gw, p["requestId"])["dialect"], "oversize")

    def test_error_body_at_cap_is_rewritten(self):
        r = request_full(self.gw.port, "GET", "/error-big?size=1024")
        problem_of(self, r, 500, "internal_error")
        r = request_full(self.gw.port, "GET", "/error-big?size=1024&chunked=1")
        problem_of(self, r, 500, "internal_error")

    def test_encoded_error_body_over_cap_after_decoding_gets_the_status_only_problem(self):
        # Spec §1: the cap applies to the decoded size. A small gzip body that inflates past the
        # cap gets the status-only problem (dialect oversize), unencoded.
        big = json.dumps({"error": "Order not found", "details": "a" * 5000}).encode()
        small = json.dumps({"error": "Order not found", "details": "short"}).encode()
        bodies = {"/gz-big": gzip.compress(big), "/gz-small": gzip.compress(small)}
        up = ScriptedUpstream(lambda req, i: raw_response(
            404, bodies[req.split(b" ", 2)[1].decode()],
            [("Content-Type", "application/json"), ("Content-Encoding", "gzip"), ("ETag", '"e1"')]))
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url, extra="problem:\n  max_error_body: 1KiB\n"))
        self.addCleanup(gw.stop)
        r = request_full(gw.port, "GET", "/gz-big")
        p = problem_of(self, r, 404, "resource_not_found")
        self.assertNotIn("subcode", p)
        self.assertNotIn("detail", p)
        self.assertNotIn("content-encoding", hdrs(r))
        self.assertNotIn("etag", hdrs(r))
        self.assertEqual(log_entry(gw, p["requestId"])["dialect"], "oversize")
        r = request_full(gw.port, "GET", "/gz-small")
        p = problem_of(self, r, 404, "resource_not_found", "order_not_found")
        self.assertEqual(p["detail"], "short")
        self.assertNotIn("content-encoding", hdrs(r))

    def test_head_error_untouched(self):
        want = self.direct("/flat/validation", "HEAD")
        r = request_full(self.gw.port, "HEAD", "/flat/validation")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("Content-Type"), want.header("Content-Type"))
        self.assertEqual(r.header("Content-Length"), want.header("Content-Length"))

    def test_204_304_untouched(self):
        for path, status in (("/204", 204), ("/304", 304), ("/status/204", 204), ("/status/304", 304)):
            with self.subTest(path=path):
                r = request_full(self.gw.port, "GET", path)
                self.assertEqual(r.status, status)
                self.assertEqual(r.body, b"")
                self.assertNotEqual(r.header("Content-Type"), "application/problem+json")

    def test_normalize_false_route(self):
        for path in ("/flat/validation", "/nested/circuit-open", "/text/stacktrace", "/gzip/404"):
            with self.subTest(path=path):
                want = self.direct(path)
                got = request_full(self.gw.port, "GET", "/raw" + path)
                self.assertEqual(got.status, want.status)
                self.assertEqual(got.body, want.body)
                self.assertEqual(got.header("Content-Type"), want.header("Content-Type"))
                self.assertEqual(got.header("Content-Encoding"), want.header("Content-Encoding"))

    def test_pinned_text_dialect(self):
        # Pinned to text, a flat JSON body is not interpreted: no subcode, and the text dialect
        # leaves a JSON-looking line out of `detail`.
        r = request_full(self.gw.port, "GET", "/text-pinned/flat/validation")
        p = problem_of(self, r, 400, "validation_error")
        self.assertEqual(p["instance"], "/text-pinned/flat/validation")
        self.assertNotIn("subcode", p)
        self.assertNotEqual(p.get("detail"), "Name is required")
        self.assertEqual(log_entry(self.gw, p["requestId"])["dialect"], "text")
        r = request_full(self.gw.port, "GET", "/text-pinned/text/404")
        p = problem_of(self, r, 404, "resource_not_found")
        self.assertEqual(p["detail"], "Not Found: no such order 42")
        self.assertEqual(log_entry(self.gw, p["requestId"])["dialect"], "text")

    def test_2xx_untouched(self):
        want = self.direct("/ok")
        got = request_full(self.gw.port, "GET", "/ok")
        self.assertEqual(got.body, want.body)


class Oversize(unittest.TestCase):
    """Spec §1: a 100 MiB 5xx error body. The client gets the status-only problem without the
    gateway reading (or buffering) the body; the upstream connection is closed, the event counted."""

    TOTAL = 100 * 1024 * 1024

    def rss_kib(self, pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_100_mib_5xx_bodies(self):
        chunk = b"x" * 65536
        state = {"sent": [], "lock": threading.Lock()}

        def stream(chunked):
            def send(sock):
                if chunked:
                    sock.sendall(b"HTTP/1.1 500 Internal\r\nContent-Type: text/plain\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                else:
                    sock.sendall(b"HTTP/1.1 503 Unavailable\r\nContent-Type: application/json\r\n"
                                 b"Retry-After: 30\r\nContent-Length: %d\r\n\r\n" % self.TOTAL)
                sent = 0
                try:
                    sock.settimeout(10)
                    while sent < self.TOTAL:
                        sock.sendall((b"10000\r\n" + chunk + b"\r\n") if chunked else chunk)
                        sent += len(chunk)
                    if chunked:
                        sock.sendall(b"0\r\n\r\n")
                    sock.recv(1)
                except OSError:
                    pass
                with state["lock"]:
                    state["sent"].append(sent)
            return send

        up = ScriptedUpstream(lambda req, idx: stream(b"/chunked" in req.split(b"\r\n", 1)[0]))
        self.addCleanup(up.stop)
        gw = Gateway(f"""
listen: 127.0.0.1:0
threads: 2
admin: {{ listen: "127.0.0.1:0" }}
upstreams:
  app: {{ url: {up.url}, timeout: 10s }}
routes:
  - name: app
    match: {{ prefix: / }}
""")
        self.addCleanup(gw.stop)
        rss0 = self.rss_kib(gw.proc.pid)
        for path, status, code in (("/chunked", 500, "internal_error"), ("/length", 503, "upstream_unavailable")):
            with self.subTest(path=path):
                t = time.monotonic()
                r = request_full(gw.port, "GET", path, timeout=30)
                elapsed = time.monotonic() - t
                p = problem_of(self, r, status, code)
                self.assertNotIn("subcode", p)
                self.assertNotIn(b"xxxx", r.body)
                self.assertLess(len(r.body), 1024)
                if status == 503:
                    self.assertEqual(p.get("retryAfter"), 30)
                    self.assertEqual(hdrs(r).get("retry-after"), "30")
                self.assertEqual(log_entry(gw, p["requestId"])["dialect"], "oversize")
                print(f"\n  oversize {path}: answered in {elapsed * 1000:.0f} ms", end="")
        # The upstream connections were closed, not drained: each upstream writer stopped early.
        self.assertTrue(wait_until(lambda: len(state["sent"]) == 2, 30), "upstream connections closed")
        for sent in state["sent"]:
            self.assertLess(sent, self.TOTAL // 4, "the gateway read the body instead of closing")
        self.assertLess(self.rss_kib(gw.proc.pid) - rss0, 16 * 1024, "RSS grew by more than 16 MiB")
        _, _, metrics = http_request("127.0.0.1", gw.admin_port(), "GET", "/metrics")
        self.assertIn(b'problemgate_oversized_errors_total{route="app"} 2', metrics)


# ----------------------------------------------------------------------------- config-driven rewriting

class Configured(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.demo = DemoApi()

    @classmethod
    def tearDownClass(cls):
        cls.demo.stop()

    def gateway(self, problem_yaml="", routes_yaml=None):
        routes = routes_yaml or """
  - name: app
    match: { prefix: / }
"""
        cfg = f"""
listen: 127.0.0.1:0
threads: 1
admin: {{ listen: "off" }}
{problem_yaml}
upstreams:
  app: {{ url: {self.demo.url} }}
routes:
{routes}
"""
        gw = Gateway(cfg)
        self.addCleanup(gw.stop)
        return gw

    RULES = """
  - name: rules
    match: { prefix: / }
    rules:
      - when: { upstream_code: QUOTA_EXCEEDED }
        set: { code: rate_limited }
      - when: { status: 4xx, detail_matches: "(?i)ARCHIVED" }
        set: { subcode: channel_gone, title: Channel gone }
      - when: { status: 5xx, dialect: html }
        set: { detail: "The edge proxy failed." }
"""

    def test_mapping_rules(self):
        gw = self.gateway(routes_yaml=self.RULES)
        r = request_full(gw.port, "GET", "/nested/quota")
        p = problem_of(self, r, 403, "rate_limited", "quota_exceeded")
        self.assertEqual(p["title"], "Forbidden")
        self.assertEqual(p["detail"], "Organisation or app quota reached (channels, subscriptions, or messages)")
        self.assertEqual(log_entry(gw, p["requestId"])["code"], "rate_limited")

        r = request_full(gw.port, "GET", "/nested/channel-not-found")
        p = problem_of(self, r, 404, "resource_not_found", "channel_gone")
        self.assertEqual(p["title"], "Channel gone")

        r = request_full(gw.port, "GET", "/html/502")
        p = problem_of(self, r, 502, "upstream_unavailable")
        self.assertEqual(p["detail"], "The edge proxy failed.")

        r = request_full(gw.port, "GET", "/flat/not-found")  # no rule matches
        p = problem_of(self, r, 404, "resource_not_found", "agent_not_found")

    def test_type_base_gives_type_and_catalog_title(self):
        gw = self.gateway(f'problem:\n  type_base: "{TYPE_BASE}"\n', self.RULES)
        r = request_full(gw.port, "GET", "/flat/not-found")
        p = problem_of(self, r, 404, "resource_not_found")
        self.assertEqual(p["type"], TYPE_BASE + "resource_not_found")
        self.assertEqual(p["title"], "Resource not found")
        # A rule moved the code: type and title follow the new code.
        r = request_full(gw.port, "GET", "/nested/quota")
        p = problem_of(self, r, 403, "rate_limited")
        self.assertEqual(p["type"], TYPE_BASE + "rate_limited")
        self.assertEqual(p["title"], "Too many requests")
        # An upstream problem keeps its own type and title.
        r = request_full(gw.port, "GET", "/problem/legacy")
        p = problem_of(self, r, 404, "resource_not_found", "skill_not_found")
        self.assertEqual(p["type"], "about:blank")
        self.assertEqual(p["title"], "Not Found")
        # The gateway's own errors use the base too.
        gw2 = Gateway(sidecar_config("http://127.0.0.1:1", extra=f'problem:\n  type_base: "{TYPE_BASE}"\n'))
        self.addCleanup(gw2.stop)
        r = request_full(gw2.port, "GET", "/x")
        p = problem_of(self, r, 502, "upstream_unavailable", "upstream_down")
        self.assertEqual(p["type"], TYPE_BASE + "upstream_unavailable")
        self.assertEqual(p["title"], "Upstream unavailable")

    def test_catalog_override(self):
        gw = self.gateway(f"""problem:
  type_base: "{TYPE_BASE}"
  catalog:
    404: {{ code: not_here, title: "Not here" }}
    418: {{ code: teapot, title: "I'm a teapot" }}
""")
        r = request_full(gw.port, "GET", "/flat/not-found")
        p = problem_of(self, r, 404, "not_here", "agent_not_found")
        self.assertEqual((p["type"], p["title"]), (TYPE_BASE + "not_here", "Not here"))
        r = request_full(gw.port, "GET", "/status/418")
        p = problem_of(self, r, 418, "teapot")
        self.assertEqual((p["type"], p["title"]), (TYPE_BASE + "teapot", "I'm a teapot"))
        r = request_full(gw.port, "GET", "/status/451")  # not in the catalog: other 4xx
        p = problem_of(self, r, 451, "client_error")
        self.assertEqual(p["title"], "Client error")

    def test_legacy_codes_override(self):
        gw = self.gateway("""problem:
  legacy_codes:
    SKILL_NOT_FOUND: { code: skill_missing, subcode: no_such_skill }
    QUOTA_EXCEEDED: { code: rate_limited, subcode: quota_exceeded }
    CHANNEL_*: { subcode: channel_problem }
""")
        r = request_full(gw.port, "GET", "/problem/legacy")
        p = problem_of(self, r, 404, "skill_missing", "no_such_skill")
        r = request_full(gw.port, "GET", "/nested/quota")
        p = problem_of(self, r, 403, "rate_limited", "quota_exceeded")
        r = request_full(gw.port, "GET", "/nested/channel-not-found")
        p = problem_of(self, r, 404, "resource_not_found", "channel_problem")
        r = request_full(gw.port, "GET", "/nested/auth-required")  # untouched by the override
        p = problem_of(self, r, 401, "authentication_required")

    def test_expose_5xx_detail(self):
        gw = self.gateway("problem:\n  expose_5xx_detail: true\n")
        r = request_full(gw.port, "GET", "/flat/internal")
        p = problem_of(self, r, 500, "internal_error")
        self.assertEqual(p["detail"], "An unexpected error occurred")
        r = request_full(gw.port, "GET", "/nested/circuit-open")
        p = problem_of(self, r, 503, "upstream_unavailable", "circuit_open")
        self.assertEqual(p["detail"], "Circuit breaker is open; endpoint is temporarily unavailable")
        # Markup never leaks, even when exposed.
        r = request_full(gw.port, "GET", "/html/502")
        p = problem_of(self, r, 502)
        self.assertNotIn("nginx", r.body.decode())

    def test_default_hides_5xx_detail(self):
        gw = self.gateway()
        r = request_full(gw.port, "GET", "/flat/internal")
        p = problem_of(self, r, 500, "internal_error")
        self.assertNotIn("An unexpected error occurred", r.body.decode())
        self.assertEqual(log_entry(gw, p["requestId"]).get("upstream_detail"), "An unexpected error occurred")


# ----------------------------------------------------------------------------- the CLI

class Cli(unittest.TestCase):
    def run_cli(self, args, stdin=b""):
        return subprocess.run([GATEWAY_BIN] + args, input=stdin, capture_output=True, timeout=30)

    def write(self, text, suffix=".yaml"):
        fd, path = tempfile.mkstemp(suffix=suffix, prefix="pg-cli-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_normalize_single_body(self):
        body = b'{"error": "Agent not found", "details": "No agent exists with DID: x"}'
        r = self.run_cli(["normalize", "--status", "404", "--content-type", "application/json",
                          "--path", "/agents/x", "--request-id", "req-1"], body)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual(p, {"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "No agent exists with DID: x", "instance": "/agents/x",
                             "code": "resource_not_found", "subcode": "agent_not_found",
                             "requestId": "req-1"})
        self.assertTrue(r.stdout.endswith(b"}\n"))

    def test_normalize_matches_the_proxy(self):
        # The CLI and the running proxy use the same code: same body for the same input.
        body = b'{"error": {"code": "CHANNEL_NOT_FOUND", "message": "gone", "details": {}}}'
        up = ScriptedUpstream(lambda req, i: response_bytes(404, body, {"Content-Type": "application/json"}))
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url))
        self.addCleanup(gw.stop)
        r = request_full(gw.port, "GET", "/c/1", {"X-Request-Id": "same-id"})
        cli = self.run_cli(["normalize", "--status", "404", "--content-type", "application/json",
                            "--path", "/c/1", "--request-id", "same-id"], body)
        # The proxy adds the request's trace id (the CLI has no request to trace).
        self.assertEqual(cli.stdout.rstrip(b"\n"), re.sub(rb',"traceId":"[0-9a-f]{32}"', b"", r.body))

    def test_normalize_field_errors_do_not_amplify(self):
        # One 30 KB key with 10,000 empty messages used to be rewritten into 300 MB (each entry
        # repeats the key as its path); the field-error budget keeps it linear in the body.
        body = ('{"' + "k" * 30000 + '":[' + ",".join(['""'] * 10000) + ']}').encode()
        self.assertEqual(len(body), 60006)
        r = self.run_cli(["normalize", "--status", "400", "--content-type", "application/json"], body)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(len(r.stdout), 1024 * 1024)
        p = json.loads(r.stdout)
        self.assertGreater(len(p["errors"]), 0)
        self.assertEqual(p["errors"][0], {"path": "k" * 30000, "code": "invalid", "message": ""})

    def test_normalize_html_escaped_markup_stays_text(self):
        # Issue 24, finding 11: text an error page escaped must not be decoded into a tag.
        body = b"<html><body><p>Your input &lt;img src=x onerror=alert(1)&gt; is invalid</p></body></html>"
        r = self.run_cli(["normalize", "--status", "400", "--content-type", "text/html"], body)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual(p["detail"], "Your input \u2039img src=x onerror=alert(1)> is invalid")
        self.assertNotRegex(r.stdout.decode(), r"<[A-Za-z/!?]")

    def test_normalize_jsonl_with_a_bad_line(self):
        lines = [
            json.dumps({"status": 404, "content_type": "application/json", "path": "/a",
                        "body": '{"error": "Not Found", "details": "no a"}'}),
            "this is not json",
            "",
            json.dumps({"status": 500, "content_type": "text/plain", "body": "Traceback: secret"}),
            json.dumps({"status": 422, "body": json.dumps({"detail": [{"loc": ["body", "name"], "msg": "field required",
                                                                      "type": "value_error.missing"}]})}),
            json.dumps({"body": "no status"}),
        ]
        r = self.run_cli(["normalize", "--jsonl"], ("\n".join(lines) + "\n").encode())
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"line 2", r.stderr)
        self.assertIn(b"line 6", r.stderr)
        out = [json.loads(l) for l in r.stdout.decode().splitlines()]
        self.assertEqual(len(out), 5, "one output line per non-empty input line")
        self.assertEqual(out[0]["code"], "resource_not_found")
        self.assertEqual(out[0]["detail"], "no a")
        self.assertEqual(out[0]["instance"], "/a")
        self.assertIn("error", out[1])
        self.assertEqual(out[2]["status"], 500)
        self.assertNotIn("secret", json.dumps(out[2]))
        self.assertEqual(out[3]["errors"], [{"path": "body.name", "code": "value_error_missing",
                                             "message": "field required"}])
        self.assertIn("error", out[4])

    def test_normalize_jsonl_headers_and_migration_report(self):
        # A day of captured errors, in small: codes the default legacy table maps, codes nothing
        # maps, a numeric code, bodies no dialect recognises, a bad line, a header-fed code.
        cfg = self.write("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    rules:
      - when: { upstream_code: QUOTA_EXCEEDED }
        set: { code: rate_limited }
""")
        rows = [
            {"status": 404, "body": '{"error": {"code": "SKILL_NOT_FOUND", "message": "m"}}'},
            {"status": 404, "body": '{"error": {"code": "CHANNEL_GONE", "message": "m"}}'},
            {"status": 404, "body": '{"error": {"code": "CHANNEL_GONE", "message": "m2"}}'},
            {"status": 403, "body": '{"error": {"code": "QUOTA_EXCEEDED", "message": "q"}}'},
            {"status": 400, "body": '{"code": 21211, "message": "bad number"}'},
            {"status": 400, "body": '{"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request", "message": "x"}'},
            {"status": 500, "content_type": "text/plain", "body": "Traceback (most recent call last):\n  boom"},
            {"status": 502, "content_type": None, "body": ""},
            {"status": 404, "body": '{"message": "no fn"}', "headers": {"x-amzn-errortype": "ResourceNotFoundException:http://x/"}},
            {"status": 429, "body": '{"ok": false, "error": "ratelimited"}', "headers": {"Retry-After": "30"}},
        ]
        lines = [json.dumps(r) for r in rows]
        lines.insert(3, "not json")
        stdin = ("\n".join(lines) + "\n").encode()
        r = self.run_cli(["normalize", "--jsonl", "--report", "--config", cfg], stdin)
        self.assertEqual(r.returncode, 1, r.stderr)  # the bad line
        out = r.stdout.decode()
        bodies, _, report = out.partition("\n# problemgate normalize report\n")
        bodies = [json.loads(l) for l in bodies.splitlines()]
        self.assertEqual(len(bodies), 11)
        amzn = bodies[9]
        self.assertEqual(amzn.get("subcode"), "resource_not_found_exception")
        self.assertEqual(bodies[10].get("retryAfter"), 30)
        self.assertIn("10 bodies normalized, 1 bad input lines", report)
        self.assertRegex(report, r"by dialect:\n(  .*\n)*  nested +4 +40\.0%")
        self.assertRegex(report, r"  resource_not_found +4 ")
        self.assertRegex(report, r"  rate_limited +2 ")
        self.assertIn("upstream codes mapped by the legacy table or a rule: 2 bodies", report)
        unmapped = report.split("codes not mapped, kept as subcodes: 4 codes in 5 bodies", 1)[1]
        unmapped, _, dropped = unmapped.partition("giving no subcode")
        self.assertRegex(unmapped, r"\n  2 +2 +CHANNEL_GONE -> channel_gone\n")  # count, first line
        self.assertRegex(unmapped, r"FST_ERR_VALIDATION -> fst_err_validation")
        self.assertRegex(unmapped, r"ResourceNotFoundException -> resource_not_found_exception")
        self.assertRegex(unmapped, r"ratelimited -> ratelimited")
        self.assertTrue(dropped.startswith(" (numbers, sentences, the status again): 0 codes in 0 bodies"), dropped)
        self.assertNotIn("SKILL_NOT_FOUND", unmapped)
        self.assertNotIn("QUOTA_EXCEEDED", unmapped)
        self.assertNotIn("21211", unmapped, "numeric codes are not codes")
        unrecognised = report.split("bodies no dialect recognised (text, empty): ", 1)[1]
        self.assertTrue(unrecognised.startswith("2\n"), unrecognised)
        self.assertIn("line 8: 500 text/plain  Traceback (most recent call last):   boom", unrecognised)
        self.assertIn("line 9: 502 (no content type)  (empty body)", unrecognised)

        only = self.run_cli(["normalize", "--jsonl", "--report-only", "--config", cfg], stdin)
        self.assertEqual(only.returncode, 1)
        self.assertTrue(only.stdout.decode().startswith("\n# problemgate normalize report\n"))
        self.assertEqual(only.stdout.decode().partition("# problemgate normalize report\n")[2], report)

        # The flags need --jsonl; headers must be an object of strings.
        r = self.run_cli(["normalize", "--status", "404", "--report"], b"{}")
        self.assertEqual(r.returncode, 2)
        r = self.run_cli(["normalize", "--jsonl"], (json.dumps({"status": 404, "headers": {"Retry-After": 5}}) + "\n").encode())
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"line 1", r.stderr)

    def test_normalize_jsonl_content_type_null_or_absent(self):
        # A null or missing content_type means "no Content-Type field", not a bad line: the same
        # body as `normalize --status` without --content-type gives.
        body = '{"error": "Agent not found", "details": "No agent exists with DID: x"}'
        lines = [json.dumps({"status": 404, "content_type": None, "body": body, "path": "/a", "request_id": "r1"}),
                 json.dumps({"status": 404, "body": body, "path": "/a", "request_id": "r1"}),
                 json.dumps({"status": 403, "content_type": None, "body": "", "path": "/a", "request_id": "r1"})]
        r = self.run_cli(["normalize", "--jsonl"], ("\n".join(lines) + "\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        out = r.stdout.decode().splitlines()
        self.assertEqual(len(out), 3)
        single = self.run_cli(["normalize", "--status", "404", "--path", "/a", "--request-id", "r1"], body.encode())
        self.assertEqual(single.returncode, 0, single.stderr)
        self.assertEqual(out[0], single.stdout.decode().rstrip("\n"))
        self.assertEqual(out[1], out[0])
        p = json.loads(out[0])
        self.assertEqual((p["code"], p["subcode"], p["detail"]),
                         ("resource_not_found", "agent_not_found", "No agent exists with DID: x"))
        p = json.loads(out[2])
        self.assertNotIn("error", p)
        self.assertEqual((p["status"], p["code"]), (403, "permission_denied"))
        # Other members stay strict: a null path or body is still a bad line.
        r = self.run_cli(["normalize", "--jsonl"],
                         (json.dumps({"status": 404, "content_type": None, "body": None}) + "\n").encode())
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"line 1", r.stderr)

    def test_normalize_jsonl_wrong_member_types(self):
        # Wrong member types are bad lines too, never a crash.
        lines = [json.dumps({"status": 404, "body": 12}), json.dumps({"status": 404, "path": None}),
                 json.dumps({"status": 404, "body": "{}"}), json.dumps({"status": 200, "body": "x"}),
                 json.dumps({"status": 99999999999999, "body": "x"})]
        r = self.run_cli(["normalize", "--jsonl"], ("\n".join(lines) + "\n").encode())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"line 1", r.stderr)
        self.assertIn(b"line 2", r.stderr)
        out = [json.loads(l) for l in r.stdout.decode().splitlines()]
        self.assertEqual(len(out), 5)
        self.assertIn("error", out[0])
        self.assertIn("error", out[1])
        self.assertEqual(out[2]["status"], 404)
        self.assertIn("error", out[3], "only error statuses are normalized")
        self.assertIn("error", out[4], "an out-of-range status is a bad line, not a wrapped int")

    def test_normalize_with_config_route_rules(self):
        cfg = self.write("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: plain
    match: { prefix: / }
  - name: quota
    match: { prefix: /q }
    rules:
      - when: { upstream_code: QUOTA_EXCEEDED }
        set: { code: rate_limited, detail: "Quota reached" }
""")
        body = b'{"error": {"code": "QUOTA_EXCEEDED", "message": "Organisation quota reached", "details": {}}}'
        base = ["normalize", "--status", "403", "--content-type", "application/json", "--config", cfg]
        r = self.run_cli(base + ["--route", "quota"], body)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)
        self.assertEqual((p["code"], p["subcode"], p["detail"]), ("rate_limited", "quota_exceeded", "Quota reached"))
        r = self.run_cli(base + ["--route", "plain"], body)
        self.assertEqual(json.loads(r.stdout)["code"], "permission_denied")
        r = self.run_cli(base + ["--path", "/q/1"], body)  # route matched by path
        self.assertEqual(json.loads(r.stdout)["code"], "rate_limited")
        r = self.run_cli(base + ["--route", "nope"], body)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"nope", r.stderr)

    def test_check_config_good(self):
        path = self.write("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    rate_limit: { limit: 5, window: 10s, key: client_ip }
    rules:
      - when: { upstream_code: QUOTA_EXCEEDED }
        set: { code: rate_limited }
""")
        r = self.run_cli(["check-config", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"ok", r.stdout)

    def test_check_config_example_full(self):
        path = os.path.join(os.path.dirname(__file__), "..", "..", "config", "example-full.yaml")
        r = self.run_cli(["check-config", path])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_config_bad(self):
        cases = [
            ("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    rules:
      - when: { detail_matches: "(unclosed" }
        set: { code: x }
""", "/routes/0/rules/0/when/detail_matches"),
            ("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    dialect: klingon
""", "/routes/0/dialect"),
            ("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    rate_limit: { limit: 5, window: 10s, key: nose }
""", "/routes/0/rate_limit/key"),
            ("""
upstreams:
  app: { url: "http://127.0.0.1:9" }
routes:
  - name: app
    match: { prefix: / }
    rules:
      - when: { status: 4xx }
        set: { colour: red }
""", "/routes/0/rules/0/set"),
        ]
        for text, pointer in cases:
            with self.subTest(pointer=pointer):
                path = self.write(text)
                r = self.run_cli(["check-config", path])
                self.assertNotEqual(r.returncode, 0)
                msg = (r.stderr + r.stdout).decode()
                self.assertIn(path, msg)
                self.assertIn(pointer, msg)
                # A reason follows the location.
                line = [l for l in msg.splitlines() if pointer in l][0]
                self.assertGreater(len(line.split(pointer, 1)[1].strip(" :")), 3, line)


if __name__ == "__main__":
    unittest.main()
