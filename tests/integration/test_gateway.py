"""Issue 2: the proxy core end to end (real binary, real upstreams on loopback)."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (GATEWAY_BIN, REQUEST_ID_RE, DemoApi, Gateway, RawClient, ScriptedUpstream, assert_problem,
                     http_request, refused_port, request_full, response_bytes, sidecar_config,
                     wait_until)


class GatewayWithDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.demo = DemoApi()
        cls.gw = Gateway(sidecar_config(cls.demo.url, route_extra="    normalize: false\n"))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.demo.stop()

    def direct(self, path, method="GET", headers=None):
        return request_full(self.demo.port, method, path, headers)

    def test_2xx_pass_through_is_byte_identical(self):
        for path in ("/ok", "/big", "/chunked", "/big?size=3000000"):
            with self.subTest(path=path):
                want = self.direct(path)
                got = request_full(self.gw.port, "GET", path)
                self.assertEqual(got.status, want.status)
                self.assertEqual(hashlib.sha256(got.body).hexdigest(), hashlib.sha256(want.body).hexdigest())
                self.assertEqual(got.header("Content-Type"), want.header("Content-Type"))

    def test_status_lines_carry_reason_phrases(self):
        # Issue 23: the first line a newcomer saw from `curl -i .../ok` was `HTTP/1.1 200 Unknown`.
        # The gateway relays the upstream's reason phrase, so both must say the real one.
        cases = (("/ok", "200 OK"), ("/chunked", "200 OK"), ("/204", "204 No Content"),
                 ("/304", "304 Not Modified"), ("/status/201", "201 Created"),
                 ("/status/404", "404 Not Found"), ("/status/503", "503 Service Unavailable"),
                 ("/status/599", "599 Unknown"))
        for path, want in cases:
            for via, port in (("direct", self.demo.port), ("gateway", self.gw.port)):
                with self.subTest(path=path, via=via):
                    r = request_full(port, "GET", path)
                    self.assertEqual(r.raw_head.split(b"\r\n", 1)[0].decode("latin-1"), "HTTP/1.1 " + want)

    def test_chunked_stays_chunked(self):
        got = request_full(self.gw.port, "GET", "/chunked")
        self.assertEqual(got.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(got.header("Content-Length"))

    def test_head_204_304(self):
        r = request_full(self.gw.port, "HEAD", "/big")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(1024 * 1024))
        self.assertEqual(r.body, b"")
        for path, status in (("/204", 204), ("/304", 304)):
            c = RawClient(self.gw.port)
            c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r1 = c.read_response()
            r2 = c.read_response()
            self.assertEqual(r1.status, status)
            self.assertEqual(r1.body, b"")
            self.assertEqual(r2.status, 200, "the next response on the connection is intact")
            c.close()

    def test_request_id_generated_kept_replaced(self):
        status, headers, _ = self.gw.request("GET", "/ok")
        self.assertRegex(headers["x-request-id"], REQUEST_ID_RE)
        status, headers, _ = self.gw.request("GET", "/ok", {"X-Request-Id": "abc-123.x:y_z"})
        self.assertEqual(headers["x-request-id"], "abc-123.x:y_z")
        for bad in ("has space", "x" * 129, "quote\"", "semi;colon"):
            status, headers, _ = self.gw.request("GET", "/ok", {"X-Request-Id": bad})
            self.assertRegex(headers["x-request-id"], REQUEST_ID_RE, bad)

    def test_request_id_and_forwarded_headers_reach_upstream(self):
        status, headers, body = self.gw.request("GET", "/headers", {"X-Request-Id": "trace-1",
                                                                    "Connection": "close, X-Drop-Me",
                                                                    "X-Drop-Me": "1", "Keep-Alive": "5",
                                                                    "X-Keep": "yes"})
        self.assertEqual(status, 200)
        seen = json.loads(body)
        if isinstance(seen, dict) and "headers" in seen:
            seen = seen["headers"]
        if isinstance(seen, dict):
            pairs = [(k.lower(), v) for k, v in seen.items()]
        else:
            pairs = [(h[0].lower(), h[1]) if isinstance(h, list) else (h["name"].lower(), h["value"]) for h in seen]
        names = [k for k, _ in pairs]
        d = dict(pairs)
        self.assertEqual(d.get("x-request-id"), "trace-1")
        self.assertEqual(names.count("x-request-id"), 1)
        self.assertEqual(d.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(d.get("x-forwarded-proto"), "http")
        self.assertEqual(d.get("x-forwarded-host"), f"127.0.0.1:{self.gw.port}")
        self.assertEqual(d.get("x-keep"), "yes")
        self.assertNotIn("x-drop-me", names)
        self.assertNotIn("keep-alive", names)

    def test_upstream_connections_are_reused(self):
        before = self.demo.stats()["connections_accepted"]
        c = RawClient(self.gw.port)
        for _ in range(1000):
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
        c.close()
        after = self.demo.stats()["connections_accepted"]
        # One pool per worker thread (2 here), plus the stats requests themselves.
        self.assertLessEqual(after - before, 4)

    def test_upload_streams_and_echoes(self):
        body = os.urandom(3 * 1024 * 1024)
        status, headers, got = self.gw.request("POST", "/echo", {"Content-Type": "application/octet-stream"}, body)
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(body).digest())

    def test_chunked_upload_is_rechunked(self):
        c = RawClient(self.gw.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello world")
        c.close()

    def test_expect_100_continue(self):
        c = RawClient(self.gw.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_response()
        self.assertEqual(interim.status, 100)
        c.send(b"hello")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello")
        c.close()

    def test_errors_pass_through_untouched_when_normalize_is_off(self):
        want = self.direct("/flat/validation")
        got = request_full(self.gw.port, "GET", "/flat/validation")
        self.assertEqual(got.status, 400)
        self.assertEqual(got.body, want.body)


class GatewayErrors(unittest.TestCase):
    def test_upstream_refused_is_502(self):
        s, port = refused_port()  # bound, never listening: connect() is refused
        self.addCleanup(s.close)
        # A long connect timeout, so "answered at once, not after the connect timeout" has room
        # on a loaded machine.
        gw = Gateway(sidecar_config(f"http://127.0.0.1:{port}").replace("connect_timeout: 1s",
                                                                         "connect_timeout: 10s"))
        try:
            t0 = time.monotonic()
            status, headers, body = gw.request("GET", "/x?q=1")
            self.assertLess(time.monotonic() - t0, 5.0)
            p = assert_problem(self, status, headers, body, 502, "upstream_unavailable", "upstream_down")
            self.assertEqual(p["instance"], "/x")
            # RFC 9209 next-hop: the endpoint that refused (an sf-string: it starts with a digit).
            self.assertEqual(headers["proxy-status"], f'problemgate; error=connection_refused; next-hop="127.0.0.1:{port}"')
            log = gw.access_log(wait_for=p["requestId"])
            entry = [e for e in log if e.get("requestId") == p["requestId"]][0]
            self.assertEqual(entry["status"], 502)
            self.assertEqual(entry["route"], "app")
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_upstream_too_slow_is_504_within_the_timeout(self):
        demo = DemoApi()
        gw = Gateway(sidecar_config(demo.url).replace("timeout: 2s", "timeout: 1s"))
        try:
            t0 = time.monotonic()
            status, headers, body = gw.request("GET", "/slow?ms=5000")
            elapsed = time.monotonic() - t0
            assert_problem(self, status, headers, body, 504, "upstream_unavailable", "upstream_timeout")
            # Not before the 1 s timeout; the upper bound is generous for a loaded machine but
            # stays well below the upstream's 5 s.
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, 3.0)
        finally:
            gw.stop()
            demo.stop()

    def test_client_errors_are_canonical(self):
        demo = DemoApi()
        gw = Gateway(sidecar_config(demo.url, limits="  max_body_bytes: 1KiB\n  max_header_bytes: 4KiB\n"))
        try:
            cases = [
                (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "malformed_request"),
                (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, None),
                (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431, "headers_too_large"),
                (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n", 413, None),
                (b"GARBAGE\r\n\r\n", 400, "malformed_request"),
            ]
            for raw, want, subcode in cases:
                with self.subTest(want=want, raw=raw[:40]):
                    c = RawClient(gw.port)
                    c.send(raw)
                    r = c.read_response()
                    hdrs = {k.lower(): v for k, v in r.headers}
                    p = assert_problem(self, r.status, hdrs, r.body, want)
                    if subcode:
                        self.assertEqual(p.get("subcode"), subcode)
                    self.assertTrue(c.is_closed(), "connection closed after a framing error")
                    c.close()
            # A chunked body crossing the limit: 413 as soon as it crosses.
            c = RawClient(gw.port)
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   (b"400\r\n" + b"a" * 1024 + b"\r\n") * 3)
            r = c.read_response()
            self.assertEqual(r.status, 413)
            c.close()
        finally:
            gw.stop()
            demo.stop()

    def test_slow_client_head_gets_408(self):
        demo = DemoApi()
        gw = Gateway(sidecar_config(demo.url).replace("header_timeout: 2s", "header_timeout: 1s"))
        try:
            t0 = time.monotonic()  # the header timer cannot start before the connection exists
            c = RawClient(gw.port)
            c.send(b"GET / HTTP/1.1\r\nHo")
            r = c.read_response()
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, 3.0)
            hdrs = {k.lower(): v for k, v in r.headers}
            assert_problem(self, r.status, hdrs, r.body, 408, "request_timeout")
            self.assertTrue(c.is_closed())
            c.close()
        finally:
            gw.stop()
            demo.stop()

    def test_no_route_is_404(self):
        demo = DemoApi()
        cfg = f"""
listen: 127.0.0.1:0
admin: {{ listen: "off" }}
upstreams:
  app: {{ url: {demo.url} }}
routes:
  - name: api
    match: {{ prefix: /api }}
    upstream: app
"""
        gw = Gateway(cfg)
        try:
            status, headers, body = gw.request("GET", "/other/thing?x=1")
            p = assert_problem(self, status, headers, body, 404, "resource_not_found", "route_not_found")
            self.assertEqual(p["instance"], "/other/thing")
            self.assertEqual(p["type"], "about:blank")
            self.assertEqual(p["title"], "Not Found")
            status, headers, body = gw.request("GET", "/apix")
            self.assertEqual(status, 404)
            status, headers, body = gw.request("GET", "/api/ok")
            self.assertIn(status, (200, 404))
        finally:
            gw.stop()
            demo.stop()

    def test_accept_json_negotiates_application_json(self):
        s, port = refused_port()
        self.addCleanup(s.close)
        gw = Gateway(sidecar_config(f"http://127.0.0.1:{port}"))
        try:
            status, headers, body = gw.request("GET", "/", {"Accept": "application/json"})
            self.assertEqual(headers["content-type"], "application/json")
            status, headers, body = gw.request("GET", "/", {"Accept": "*/*"})
            self.assertEqual(headers["content-type"], "application/problem+json")
        finally:
            gw.stop()


class GracefulDrain(unittest.TestCase):
    def test_sigterm_lets_in_flight_requests_finish(self):
        # The upstream holds the in-flight request's answer until the drain has begun, so the
        # request is in flight during the drain however slow the machine is.
        arrived, release = threading.Event(), threading.Event()

        def handler(req, idx):
            if b" /slow " in req.split(b"\r\n", 1)[0]:
                arrived.set()
                release.wait(60)
                return response_bytes(200, b"slow")
            return response_bytes(200, b"ok")

        up = ScriptedUpstream(handler)
        self.addCleanup(up.stop)
        self.addCleanup(release.set)
        gw = Gateway(sidecar_config(up.url).replace("    timeout: 2s", "    timeout: 60s"))
        self.addCleanup(gw.stop)
        result = {}

        def slow():
            try:
                result["r"] = gw.request("GET", "/slow", timeout=60)
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = repr(e)

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(arrived.wait(20), "the request never reached the upstream")
        # An idle keep-alive connection (one request done) must not hold the drain up.
        idle = RawClient(gw.port)
        self.addCleanup(idle.close)
        idle.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(idle.read_response().status, 200)
        gw.proc.send_signal(signal.SIGTERM)
        self.assertTrue(idle.is_closed(20), "the idle connection is closed when the drain begins")
        self.assertIsNone(gw.proc.poll(), "the gateway waits for the in-flight request")
        t0 = time.monotonic()
        release.set()
        t.join(timeout=30)
        code = gw.proc.wait(timeout=30)
        self.assertEqual(result.get("r", result.get("error"))[0], 200)
        self.assertEqual(result["r"][2], b"slow")
        self.assertEqual(code, 0)
        # It exits once the request is done, far sooner than the 30 s drain deadline.
        self.assertLess(time.monotonic() - t0, 10)



class ConnectionLimits(unittest.TestCase):
    def test_last_request_on_a_connection_says_close(self):
        demo = DemoApi()
        gw = Gateway(sidecar_config(demo.url, limits="  max_requests_per_connection: 3\n"))
        try:
            c = RawClient(gw.port)
            for i in range(3):
                c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Connection", "").lower(), "close" if i == 2 else "")
            self.assertTrue(c.is_closed())
            c.close()
        finally:
            gw.stop()
            demo.stop()


class IdleUpstreamConnections(unittest.TestCase):
    def test_idle_pooled_connections_are_closed_after_idle_timeout(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        gw = Gateway(sidecar_config(f"http://127.0.0.1:{port}", upstream_extra="    idle_timeout: 1s\n"))
        try:
            result = {}

            def client():
                result["r"] = gw.request("GET", "/x")

            t = threading.Thread(target=client)
            t.start()
            srv.settimeout(20)
            conn, _ = srv.accept()
            conn.settimeout(20)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            # The connection cannot go idle in the pool before the gateway has this response.
            t0 = time.monotonic()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            t.join(timeout=20)
            self.assertEqual(result["r"][0], 200)
            self.assertEqual(conn.recv(1), b"", "the gateway closes the idle pooled connection")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9, "not before idle_timeout (1 s)")
            self.assertLess(elapsed, 6.0)
            conn.close()
        finally:
            gw.stop()
            srv.close()


class ListenConflicts(unittest.TestCase):
    """The workers share their port through SO_REUSEPORT, which would also let a second gateway
    (or any program of the same user that sets it) join silently and take a share of the
    connections with its own config. Start-up must refuse instead, naming the address."""

    def setUp(self):
        self.up = ScriptedUpstream(lambda req, idx: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.addCleanup(self.up.stop)

    def start_expecting_failure(self, cfg):
        with tempfile.TemporaryDirectory(prefix="pg-test-") as d:
            path = os.path.join(d, "config.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            return subprocess.run([GATEWAY_BIN, "--config", path], capture_output=True, text=True, timeout=30)

    def config_on(self, port):
        return sidecar_config(self.up.url).replace("listen: 127.0.0.1:0", f"listen: 127.0.0.1:{port}")

    def test_a_second_gateway_on_the_same_port_refuses_to_start(self):
        first = Gateway(self.config_on(0))
        try:
            r = self.start_expecting_failure(self.config_on(first.port))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(f"listen 127.0.0.1:{first.port}: address already in use", r.stderr)
            self.assertNotIn("listening on", r.stdout + r.stderr)
            # The first one still answers every new connection.
            for _ in range(20):
                status, _, body = first.request("GET", "/x")
                self.assertEqual((status, body), (200, b"ok"))
        finally:
            first.stop()

    def test_a_program_listening_with_so_reuseport_is_not_joined(self):
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen(16)
        port = other.getsockname()[1]
        r = self.start_expecting_failure(self.config_on(port))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"listen 127.0.0.1:{port}: address already in use", r.stderr)

    def test_the_admin_listener_names_its_address_too(self):
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(other.close)
        other.bind(("127.0.0.1", 0))
        other.listen(16)
        port = other.getsockname()[1]
        cfg = self.config_on(0).replace('  listen: "off"', f"  listen: 127.0.0.1:{port}")
        r = self.start_expecting_failure(cfg)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"listen 127.0.0.1:{port}: address already in use", r.stderr)

    def test_a_restart_on_the_same_port_is_not_blocked_by_time_wait(self):
        first = Gateway(self.config_on(0))
        port = first.port
        try:
            # Connections the gateway closes itself leave TIME_WAIT entries on its side.
            for _ in range(5):
                status, _, _ = first.request("GET", "/x", headers={"Connection": "close"})
                self.assertEqual(status, 200)
        finally:
            first.stop()
        second = Gateway(self.config_on(port))
        try:
            self.assertEqual(second.port, port)
            status, _, body = second.request("GET", "/x")
            self.assertEqual((status, body), (200, b"ok"))
        finally:
            second.stop()


if __name__ == "__main__":
    unittest.main()
