"""Issue 7, resource, upstream-fault, header-hygiene and conformance rows of the reliability
battery (R1 R2 R5 R6, U1-U7 U9 U12, H1 H2 H4 H5, C1-C3), against the real binary.

Timing rows use >= 1 s timeouts and accept 0.9x-3x of the configured value: the battery's
-10 % is kept on the low side (measured from a moment before the timer can start, so it holds
however slow the machine), the high side is widened for a loaded 2-core CI machine running the
ASan build (measured from a moment after the timer started). "Fast" checks compare with a
timeout made long for the test, so a loaded machine cannot reach it by accident."""
import gzip
import hashlib
import json
import math
import random
import socket
import threading
import time
import unittest

from battery import (GENERATED_ID_RE, REQUEST_ID_PATTERN, check_problem_response, cross_check,
                     fd_count, get_until_closed, problem_schema, recv_until_closed, rss_kib,
                     validate_schema)
from harness import (DemoApi, Gateway, RawClient, ScriptedUpstream, refused_port, request_full,
                     response_bytes, sidecar_config, wait_until)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
LOW, HIGH = 0.9, 3.0


def ok_upstream():
    return ScriptedUpstream(lambda req, idx: OK)


def raw_request(port, data, timeout=10, head_request=False, wait_close=True):
    """One request on a fresh connection: (response, closed). With wait_close, `closed` says
    whether the gateway closed the connection within 10 s (it returns as soon as it does);
    without, it is None and nothing waits."""
    c = RawClient(port, timeout=timeout)
    try:
        c.send(data)
        r = c.read_response(head_request=head_request)
        closed = c.is_closed(10) if wait_close else None
        return r, closed
    finally:
        c.close()


class R1Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = ok_upstream()
        cls.gw = Gateway(sidecar_config(cls.up.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.stop()

    def expect(self, data, status):
        r, closed = raw_request(self.gw.port, data, wait_close=(status != 200))
        if status == 200:
            self.assertEqual(r.status, 200, r.body[:200])
        else:
            check_problem_response(self, r, status)
            self.assertTrue(closed)
        return r

    def test_r1_request_line_8k(self):
        for total, status in ((8191, 200), (8192, 200), (8193, 414)):
            with self.subTest(total=total):
                pad = total - len("GET / HTTP/1.1")
                line = b"GET /" + b"a" * pad + b" HTTP/1.1"
                self.assertEqual(len(line), total)
                self.expect(line + b"\r\nHost: x\r\n\r\n", status)

    def test_r1_header_block_32k(self):
        # The header block: every field line and the final empty line.
        for total, status in ((32767, 200), (32768, 200), (32769, 431)):
            with self.subTest(total=total):
                fixed = len(b"Host: x\r\n") + len(b"X-Pad: \r\n") + 2
                block = b"Host: x\r\nX-Pad: " + b"p" * (total - fixed) + b"\r\n\r\n"
                self.assertEqual(len(block), total)
                self.expect(b"GET / HTTP/1.1\r\n" + block, status)

    def test_r1_field_count(self):
        for n, status in ((99, 200), (100, 200), (101, 431)):
            with self.subTest(fields=n):
                fields = b"Host: x\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(n - 1))
                self.expect(b"GET / HTTP/1.1\r\n" + fields + b"\r\n", status)

    def test_r1_ten_thousand_one_byte_fields_rejected_fast(self):
        data = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 10000 + b"\r\n"
        c = RawClient(self.gw.port, timeout=10)
        try:
            t = time.monotonic()
            c.send(data)
            r = c.read_response()
            elapsed = time.monotonic() - t
            closed = c.is_closed(10)
        finally:
            c.close()
        check_problem_response(self, r, 431)  # by the field count, not the 2 s header timeout (408)
        self.assertTrue(closed)
        # Quickly: no per-field quadratic work. A few milliseconds in Release; the bound leaves
        # room for the ASan build on a loaded machine.
        self.assertLess(elapsed, 1.5)


class R2BodyLimit(unittest.TestCase):
    def test_r2_413_before_body_and_chunked_crossing(self):
        up = ok_upstream()
        # A long body timeout, so "answered right after the headers" cannot be confused with
        # "answered when the body timed out" on a slow machine.
        gw = Gateway(sidecar_config(up.url, limits="  max_body_bytes: 1KiB\n").replace(
            "body_idle_timeout: 2s", "body_idle_timeout: 30s"))
        try:
            rss0 = rss_kib(gw.proc.pid)
            c = RawClient(gw.port, timeout=40)
            t = time.monotonic()
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n")
            r = c.read_response()
            elapsed = time.monotonic() - t
            check_problem_response(self, r, 413)
            self.assertLess(elapsed, 5.0, "413 answered from Content-Length, not after a body timeout")
            self.assertTrue(c.is_closed(10))
            c.close()
            # Exactly the limit passes.
            status, _, _ = gw.request("POST", "/", body=b"x" * 1024)
            self.assertEqual(status, 200)
            for first in (0, 512):
                c = RawClient(gw.port, timeout=5)
                body = (b"%x\r\n%s\r\n" % (first, b"a" * first) if first else b"") + b"401\r\n" + b"b" * 1025 + b"\r\n0\r\n\r\n"
                c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
                r = c.read_response()
                check_problem_response(self, r, 413)
                self.assertTrue(c.is_closed(10))
                c.close()
            for data in up.received:
                reqs, _ = cross_check(data)
                for q in reqs:
                    self.assertLessEqual(len(q.body), 1024)
            self.assertLess(rss_kib(gw.proc.pid) - rss0, 8 * 1024)
        finally:
            gw.stop()
            up.stop()


class RequestBuffering(unittest.TestCase):
    """R4's slow-POST defence: a body up to limits.request_buffer_bytes is read before an
    upstream connection is taken, so slow senders cannot starve the upstream pool."""

    def test_slow_sender_holds_no_upstream_connection(self):
        up = ok_upstream()
        self.addCleanup(up.stop)
        # One worker, one upstream connection: a sender that held it would make the GET a 503.
        gw = Gateway(sidecar_config(up.url, upstream_extra="    max_connections: 1\n").replace(
            "threads: 2", "threads: 1").replace("body_idle_timeout: 2s", "body_idle_timeout: 30s"))
        self.addCleanup(gw.stop)
        slow = RawClient(gw.port, timeout=30)
        self.addCleanup(slow.close)
        slow.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-1\r\nContent-Length: 10\r\n\r\nhello")
        for i in range(3):
            status, _, _ = gw.request("GET", f"/meanwhile/{i}")
            self.assertEqual(status, 200, "a half-sent body must not hold the only upstream connection")
        self.assertFalse(any(b"/slow" in d for d in up.received), "nothing of the slow request went upstream yet")
        slow.send(b"world")
        r = slow.read_response()
        self.assertEqual(r.status, 200)
        reqs = [q for d in up.received for q in cross_check(d)[0]]
        slow_reqs = [q for q in reqs if q.get("X-Request-Id") == "slow-1"]
        self.assertEqual(len(slow_reqs), 1)
        self.assertEqual(slow_reqs[0].body, b"helloworld")
        self.assertEqual(slow_reqs[0].get("Content-Length"), "10")

    def test_body_larger_than_the_buffer_streams_on(self):
        up = ok_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url, limits="  request_buffer_bytes: 1KiB\n").replace(
            "body_idle_timeout: 2s", "body_idle_timeout: 30s"))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port, timeout=30)
        self.addCleanup(c.close)
        first, rest = b"a" * 3000, b"b" * 2000
        c.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + first)
        # Past the buffer the body streams: the upstream sees the first part before the rest exists.
        self.assertTrue(wait_until(lambda: sum(d.count(b"a") for d in up.received) >= 1024),
                        "a body over request_buffer_bytes is not held back")
        c.send(rest)
        self.assertEqual(c.read_response().status, 200)
        reqs = [q for d in up.received for q in cross_check(d)[0]]
        self.assertEqual([q.body for q in reqs], [first + rest])

    def test_chunked_body_buffered_with_one_last_chunk(self):
        up = ok_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port, timeout=30)
        self.addCleanup(c.close)
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: ch-1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n")
        time.sleep(0.2)
        self.assertFalse(any(b"/up" in d for d in up.received), "buffered until the body is complete")
        c.send(b"6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        data = b"".join(up.received)
        reqs, leftover = cross_check(data)
        self.assertEqual([q.body for q in reqs], [b"hello world"])
        self.assertEqual(data.count(b"0\r\n\r\n"), 1, data)
        self.assertNotIn(b"ext=1", data)
        self.assertNotIn(b"X-Trailer", data)
        self.assertEqual(leftover, b"")

    def test_expect_continue_is_answered_before_buffering(self):
        up = ok_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port, timeout=10)
        self.addCleanup(c.close)
        c.send(b"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = c.read_response()
        self.assertEqual(interim.status, 100)
        c.send(b"data")
        self.assertEqual(c.read_response().status, 200)
        reqs = [q for d in up.received for q in cross_check(d)[0]]
        self.assertEqual([q.body for q in reqs], [b"data"])
        self.assertFalse(any(q.get("Expect") for q in reqs), "Expect is answered here, not forwarded")


class R5ConnectionCap(unittest.TestCase):
    def test_r5_cap_with_idle_connections(self):
        up = ok_upstream()
        gw = Gateway(sidecar_config(up.url, limits="  max_connections: 20\n"))
        held = []
        try:
            for _ in range(20):
                held.append(RawClient(gw.port, timeout=10))
            # One request on each: all 20 are accepted and counted before the extras connect
            # (a fixed pause did not guarantee it; the kernel queues connections either way).
            for c in held:
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)
            extras = [RawClient(gw.port, timeout=10) for _ in range(10)]
            t = time.monotonic()
            for e in extras:
                self.assertTrue(e.is_closed(10), "an extra connection was left open")
                e.close()
            self.assertLess(time.monotonic() - t, 5.0, "the extra connections are closed fast")
            # The held ones still work (keep-alive, twice each).
            for c in held:
                for _ in range(2):
                    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response().status, 200)
            # Free five: new connections work again (the battery asks for 1 s; a loaded CI machine
            # running the ASan build gets 5 s).
            for c in held[:5]:
                c.close()
            held = held[5:]
            t = time.monotonic()
            recovered = None
            while time.monotonic() - t < 5.0:
                try:
                    status, _, _ = gw.request("GET", "/", timeout=5)
                    if status == 200:
                        recovered = time.monotonic() - t
                        break
                except (EOFError, OSError):
                    time.sleep(0.02)
            self.assertIsNotNone(recovered, "no recovery within 5 s")
        finally:
            for c in held:
                c.close()
            gw.stop()
            up.stop()


class R6KeepAliveLimits(unittest.TestCase):
    def test_r6_idle_timeout_and_requests_per_connection(self):
        up = ok_upstream()
        gw = Gateway(sidecar_config(up.url, limits="  idle_timeout: 1s\n  max_requests_per_connection: 3\n"))
        try:
            c = RawClient(gw.port, timeout=10)
            sent = time.monotonic()  # the idle timer cannot start before this
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            t = time.monotonic()  # the idle timer is running by now
            self.assertTrue(c.is_closed(10))
            closed = time.monotonic()
            self.assertGreaterEqual(closed - sent, LOW * 1.0)
            self.assertLessEqual(closed - t, HIGH * 1.0)
            c.close()
            c = RawClient(gw.port, timeout=10)
            for i in range(3):
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                if i < 2:
                    self.assertNotEqual((r.header("Connection") or "").lower(), "close")
                else:
                    self.assertEqual((r.header("Connection") or "").lower(), "close")
            self.assertTrue(c.is_closed(10))
            c.close()
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- upstream faults

def rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def send_then_close(data):
    def act(sock):
        sock.sendall(data)
        time.sleep(0.05)
        sock.shutdown(socket.SHUT_RDWR)
    return act


class UpstreamFaults(unittest.TestCase):
    def test_u1_refused_is_502_fast_and_post_not_retried(self):
        sock, port = refused_port()  # bound, never listening: refused for the whole test
        self.addCleanup(sock.close)
        # A long connect timeout: "fast" means well before it, even on a loaded machine.
        gw = Gateway(sidecar_config(f"http://127.0.0.1:{port}").replace("connect_timeout: 1s",
                                                                         "connect_timeout: 20s"))
        try:
            for method, body in (("GET", None), ("POST", b"hello")):
                t = time.monotonic()
                r = request_full(gw.port, method, "/x", body=body)
                self.assertLess(time.monotonic() - t, 3.0)
                check_problem_response(self, r, 502)
                self.assertIn("connection_refused", r.header("Proxy-Status"))
        finally:
            gw.stop()

    def test_u2_connect_timeout_is_504(self):
        # A listening socket whose accept queue is full: Linux drops further SYNs, so connect()
        # hangs until the gateway's connect timeout.
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        time.sleep(0.1)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            self.skipTest("the kernel accepted a connection past a full backlog")
        except socket.timeout:
            pass
        finally:
            probe.close()
        good = ok_upstream()
        # A 3 s connect timeout leaves the /good request room to finish while /x still hangs.
        cfg = sidecar_config(f"http://127.0.0.1:{port}", upstream_extra=f"  good:\n    url: {good.url}\n",
                             route_extra=f"  - name: good\n    match: {{ prefix: /good }}\n    upstream: good\n")
        cfg = cfg.replace("connect_timeout: 1s", "connect_timeout: 3s")
        gw = Gateway(cfg)
        try:
            result = {}

            def slow():
                t = time.monotonic()
                result["r"] = request_full(gw.port, "GET", "/x")
                result["t"] = time.monotonic() - t

            th = threading.Thread(target=slow)
            th.start()
            time.sleep(0.2)
            t = time.monotonic()
            status, _, _ = gw.request("GET", "/good")
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - t, 1.5, "other requests unaffected")
            self.assertTrue(th.is_alive(), "the /good request did not wait for the hanging connect")
            th.join(30)
            check_problem_response(self, result["r"], 504)
            self.assertGreaterEqual(result["t"], LOW * 3.0)
            self.assertLessEqual(result["t"], HIGH * 3.0)
        finally:
            gw.stop()
            good.stop()
            for s in fillers:
                s.close()
            lst.close()

    def test_u3_never_answers_is_504_and_not_pooled(self):
        def handler(req, idx):
            return None if b"/hang" in req.split(b"\r\n", 1)[0] else OK

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url).replace("timeout: 2s", "timeout: 1s"))
        try:
            t = time.monotonic()
            r = request_full(gw.port, "GET", "/hang")
            elapsed = time.monotonic() - t
            check_problem_response(self, r, 504)
            self.assertGreaterEqual(elapsed, LOW * 1.0)
            self.assertLessEqual(elapsed, HIGH * 1.0)
            hang_conns = up.connections
            for _ in range(3):
                self.assertEqual(gw.request("GET", "/ok")[0], 200)
            self.assertGreater(up.connections, hang_conns, "the timed-out connection was reused")
            firsts = [q.split(b"\r\n", 1)[0] for q in up.requests]
            self.assertEqual(sum(1 for f in firsts if b"/hang" in f), 1, "a GET that timed out was retried")
        finally:
            gw.stop()
            up.stop()

    def test_u4_u6_reset_and_partial_heads_are_502(self):
        cases = {
            "reset before any byte": rst,
            "close before any byte": lambda s: s.shutdown(socket.SHUT_RDWR),
            "partial status line": send_then_close(b"HTTP/1.1 2"),
            "status line only": send_then_close(b"HTTP/1.1 200 OK\r\n"),
            "partial headers": send_then_close(b"HTTP/1.1 200 OK\r\nContent-Len"),
            "headers without end": send_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"),
        }
        state = {}
        up = ScriptedUpstream(lambda req, idx: cases[state["case"]])
        # A long response timeout, so "no hang" cannot be reached by a slow machine.
        gw = Gateway(sidecar_config(up.url).replace("    timeout: 2s", "    timeout: 20s"))
        try:
            for name in cases:
                with self.subTest(name):
                    state["case"] = name
                    for method, body in (("GET", None), ("POST", b"hello")):
                        before = len(up.requests)
                        t = time.monotonic()
                        r = request_full(gw.port, method, "/x", body=body, timeout=30)
                        self.assertLess(time.monotonic() - t, 5.0)
                        check_problem_response(self, r, 502)
                        if method == "POST":
                            self.assertEqual(len(up.requests) - before, 1, "POST sent twice")
        finally:
            gw.stop()
            up.stop()

    def test_u7_half_body_then_close_is_truncated(self):
        cases = {
            "length": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 50, 200),
            "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" + b"a" * 50 + b"\r\n", 200),
            "mid chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + b"a" * 50, 200),
            "error status": (b"HTTP/1.1 500 X\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":", 502),
        }
        state = {}
        up = ScriptedUpstream(lambda req, idx: send_then_close(cases[state["case"]][0]))
        # A long response timeout, so "no hang" cannot be reached by a slow machine.
        gw = Gateway(sidecar_config(up.url).replace("    timeout: 2s", "    timeout: 20s"))
        try:
            for name, (_, want) in cases.items():
                with self.subTest(name):
                    state["case"] = name
                    if want == 502:
                        # Nothing went out yet: a clean 502 (the connection may stay open).
                        check_problem_response(self, request_full(gw.port, "GET", "/x"), 502)
                        continue
                    data, closed, elapsed = get_until_closed(gw.port)
                    self.assertTrue(closed, "no hang: the gateway closes")
                    self.assertLess(elapsed, 5.0)
                    head, _, body = data.partition(b"\r\n\r\n")
                    self.assertTrue(head.startswith(b"HTTP/1.1 %d" % want), head)
                    if want == 502:
                        continue
                    if name == "length":
                        self.assertIn(b"Content-Length: 100", head)
                        self.assertEqual(len(body), 50, "truncated, nothing fabricated")
                    else:
                        self.assertIn(b"Transfer-Encoding: chunked", head)
                        self.assertFalse(body.endswith(b"0\r\n\r\n"), "no fabricated last chunk")
                        self.assertLessEqual(body.count(b"a"), 50)
        finally:
            gw.stop()
            up.stop()

    def test_u9_huge_chunked_5xx_body(self):
        """Spec (contract §1): an error body over problem.max_error_body is not read: the client
        gets the canonical problem built from the status (dialect oversize), memory stays flat
        (also for a client that reads nothing), and the upstream connection is closed, not drained
        or reused."""
        chunk = b"x" * 65536
        total = 100 * 1024 * 1024
        state = {"sent": [], "closed": 0}

        def stream(sock):
            sock.sendall(b"HTTP/1.1 500 Internal\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = 0
            try:
                sock.settimeout(10)
                while sent < total:
                    sock.sendall(b"10000\r\n" + chunk + b"\r\n")
                    sent += len(chunk)
                sock.sendall(b"0\r\n\r\n")
                sock.recv(1)  # wait for the gateway to close or reuse
            except OSError:
                pass
            state["sent"].append(sent)
            state["closed"] += 1

        up = ScriptedUpstream(lambda req, idx: stream)
        gw = Gateway(sidecar_config(up.url))
        try:
            rss0 = rss_kib(gw.proc.pid)
            r = request_full(gw.port, "GET", "/x", timeout=30)
            self.assertEqual(r.status, 500)
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            p = r.json()
            self.assertEqual((p["status"], p["code"]), (500, "internal_error"))
            self.assertNotIn(b"xxxx", r.body)
            self.assertEqual(validate_schema(p, problem_schema()), [])
            # A client that reads nothing: nothing of the 100 MiB is held for it either.
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(wait_until(lambda: state["closed"] >= 2, 30), "upstream connections closed")
            self.assertLess(rss_kib(gw.proc.pid) - rss0, 16 * 1024, "RSS grew by more than 16 MiB")
            s.close()
            for sent in state["sent"]:
                self.assertLess(sent, total // 4, "the gateway drained the body instead of closing")
            self.assertEqual(up.connections, 2, "an oversize exchange's connection is never reused")
        finally:
            gw.stop()
            up.stop()

    def test_u12_upstream_problem_json_passes(self):
        # Already canonical (spec section 2/3): code from the catalog, the upstream's own code as
        # subcode; extension members are kept, requestId is replaced by the request's id.
        body = {"type": "https://example.com/probs/out-of-credit", "title": "You do not have enough credit.",
                "status": 403, "detail": "Your current balance is 30, but that costs 50.",
                "instance": "/account/12345/msgs/abc", "code": "permission_denied",
                "subcode": "out_of_credit", "requestId": "upstream-own-id", "balance": 30,
                "accounts": ["/account/12345", "/account/67890"]}
        raw = json.dumps(body).encode()
        up = ScriptedUpstream(lambda req, idx: response_bytes(403, raw, {
            "Content-Type": "application/problem+json", "X-Custom": "kept", "Cache-Control": "no-store"}))
        gw = Gateway(sidecar_config(up.url))
        try:
            r = request_full(gw.port, "GET", "/account/12345/msgs/abc", {"X-Request-Id": "u12-id"})
            self.assertEqual(r.status, 403)
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            self.assertEqual(r.header("X-Custom"), "kept")
            self.assertEqual(r.header("Cache-Control"), "no-store")
            self.assertEqual(r.header("X-Request-Id"), "u12-id")
            p = r.json()
            for k, v in body.items():
                if k not in ("requestId", "subcode"):
                    self.assertEqual(p.get(k), v, k)
            self.assertEqual(p["requestId"], "u12-id")
            self.assertEqual(set(p) - {"subcode", "traceId"}, set(body) - {"subcode"})
            self.assertRegex(p["traceId"], r"^[0-9a-f]{32}$")
            self.assertEqual(validate_schema(p, problem_schema()), [])
        finally:
            gw.stop()
            up.stop()


# Large Content-Length bodies are spliced socket to socket (src/http1/splice_relay.hpp) once
# the head and the bytes read with it are out: these cover that path's framing and faults.

def body_of(size, seed):
    return random.Random(seed).randbytes(size)


class LargeBodies(unittest.TestCase):
    SIZES = (65535, 65536, 70000, 1024 * 1024 + 7, 3 * 1024 * 1024 + 1)

    def test_bodies_around_and_past_the_splice_threshold_arrive_intact(self):
        def handler(req, idx):
            size = int(req.split(b" ", 2)[1].rsplit(b"/", 1)[1])
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body_of(size, size)

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url))
        try:
            # One keep-alive client, each size twice (the second reuses the pipe and the
            # upstream connection the first left clean).
            c = RawClient(gw.port, timeout=30)
            for size in self.SIZES * 2:
                c.send(b"GET /size/%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Length"), str(size))
                self.assertTrue(r.body == body_of(size, size), f"{size}: body differs")
            c.close()
            self.assertLessEqual(up.connections, 2, "upstream connections were reused after a splice")
            # Four at once on two workers: pipes are per relay, bodies never mix.
            errors = []

            def fetch(size):
                try:
                    r = request_full(gw.port, "GET", f"/size/{size}", timeout=30)
                    if r.status != 200 or r.body != body_of(size, size):
                        errors.append(f"{size}: {r.status}, {len(r.body)} bytes")
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(f"{size}: {e!r}")

            threads = [threading.Thread(target=fetch, args=(2 * 1024 * 1024 + k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
        finally:
            gw.stop()
            up.stop()

    def test_bytes_past_a_large_body_never_reach_a_client(self):
        size = 300000
        poison = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison"
        state = {"bad": set(), "good": []}

        def handler(req, idx):
            if b"/long" in req.split(b"\r\n", 1)[0]:
                state["bad"].add(idx)
                return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body_of(size, 7) + poison
            state["good"].append(idx)
            return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url))
        try:
            r = request_full(gw.port, "GET", "/long", timeout=30)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == body_of(size, 7))
            for _ in range(10):
                r = request_full(gw.port, "GET", "/good")
                self.assertEqual((r.status, r.body), (200, b"good"))
            self.assertFalse(state["bad"] & set(state["good"]), "the over-long connection was reused")
        finally:
            gw.stop()
            up.stop()

    def test_upstream_closing_mid_body_truncates_and_closes(self):
        total, sent = 3 * 1024 * 1024, 1536 * 1024
        body = body_of(sent, 9)
        up = ScriptedUpstream(lambda req, idx: send_then_close(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + body))
        gw = Gateway(sidecar_config(up.url).replace("    timeout: 2s", "    timeout: 20s"))
        try:
            data, closed, elapsed = get_until_closed(gw.port)
            self.assertTrue(closed, "no hang: the gateway closes")
            self.assertLess(elapsed, 10.0)
            head, _, got = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
            self.assertIn(b"Content-Length: %d" % total, head)
            self.assertTrue(got == body, f"{len(got)} bytes: truncated exactly, nothing fabricated")
        finally:
            gw.stop()
            up.stop()

    def test_upstream_stalling_mid_body_is_cut_at_its_timeout(self):
        total, sent = 1024 * 1024, 300 * 1024

        def stall(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + body_of(sent, 11))
            time.sleep(8)

        up = ScriptedUpstream(lambda req, idx: stall)
        gw = Gateway(sidecar_config(up.url).replace("    timeout: 2s", "    timeout: 1s"))
        try:
            data, closed, elapsed = get_until_closed(gw.port)
            self.assertTrue(closed)
            self.assertGreaterEqual(elapsed, 0.9, "not before the 1 s upstream timeout")
            self.assertLess(elapsed, 6.0, "closed at the timeout, not when the upstream gave up")
            self.assertEqual(len(data.partition(b"\r\n\r\n")[2]), sent)
        finally:
            gw.stop()
            up.stop()

    def test_a_client_that_stops_reading_is_cut_off_at_the_write_timeout(self):
        total = 64 * 1024 * 1024
        state = {"closed": 0}

        def stream(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            chunk = b"z" * 65536
            try:
                for _ in range(total // len(chunk)):
                    sock.sendall(chunk)
            except OSError:
                pass
            state["closed"] += 1

        up = ScriptedUpstream(lambda req, idx: stream)
        gw = Gateway(sidecar_config(up.url, limits="  write_timeout: 1s"))
        try:
            rss0 = rss_kib(gw.proc.pid)
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(3.0)  # reads nothing: socket buffers fill (a few MiB), then writes stall
            self.assertLess(rss_kib(gw.proc.pid) - rss0, 16 * 1024, "the body is not buffered")
            data, closed = recv_until_closed(s, timeout=20, limit=total)
            s.close()
            self.assertTrue(closed, "the gateway gave up on the stalled client")
            self.assertLess(len(data), total)
            self.assertTrue(wait_until(lambda: state["closed"] >= 1, 20), "the upstream connection was closed")
        finally:
            gw.stop()
            up.stop()


    def test_clients_aborting_large_downloads_leak_no_descriptors(self):
        size = 1024 * 1024
        body = body_of(size, 5)
        up = ScriptedUpstream(lambda req, idx: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + body)
        gw = Gateway(sidecar_config(up.url))  # 2 workers
        try:
            r = request_full(gw.port, "GET", "/warm", timeout=30)
            self.assertTrue(r.body == body)
            time.sleep(0.5)
            fds0 = fd_count(gw.proc.pid)
            errors = []

            def client(seed):
                rnd = random.Random(seed)
                for _ in range(12):
                    try:
                        s = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
                        s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
                        full = rnd.random() < 0.25
                        want = rnd.choice([1000, 100_000, 600_000])
                        got = b""
                        while len(got) < want or (full and not got.endswith(body[-1000:])):
                            d = s.recv(65536)
                            if not d:
                                break
                            got += d
                        if full and got.partition(b"\r\n\r\n")[2] != body:
                            errors.append(f"full read ended at {len(got)} bytes")
                        s.close()  # mid-body for the others: the relay must end and clean up
                    except OSError as e:
                        errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            # Every relay ends (write errors or the write timeout); what may stay: pooled
            # upstream connections (one per concurrent request) and up to PipePool::kMaxIdle
            # empty pipes (2 descriptors each) per worker.
            allowed = fds0 + 8 + 2 * 16 * 2
            self.assertTrue(wait_until(lambda: fd_count(gw.proc.pid) <= allowed, 30),
                            f"fds {fds0} -> {fd_count(gw.proc.pid)} (allowed {allowed})")
            r = request_full(gw.port, "GET", "/after", timeout=30)
            self.assertTrue(r.body == body, "still intact afterwards")
        finally:
            gw.stop()
            up.stop()


class U12Subcode(unittest.TestCase):
    def test_u12_canonical_subcode_is_kept(self):
        """Regression: an upstream body that is already canonical problem+json,
        {"code":"permission_denied","subcode":"out_of_credit"}, keeps its subcode."""
        raw = json.dumps({"type": "about:blank", "title": "Permission denied", "status": 403,
                          "code": "permission_denied", "subcode": "out_of_credit"}).encode()
        up = ScriptedUpstream(lambda req, idx: response_bytes(403, raw, {"Content-Type": "application/problem+json"}))
        gw = Gateway(sidecar_config(up.url))
        try:
            p = request_full(gw.port, "GET", "/x").json()
            self.assertEqual(p.get("subcode"), "out_of_credit")
        finally:
            gw.stop()
            up.stop()


class StaleUpstream(ScriptedUpstream):
    """Closes every keep-alive connection idle for 1 s (like many app servers)."""

    def _serve(self, conn, idx):
        buf = b""
        try:
            while True:
                conn.settimeout(1.0)
                req, buf = self._read_request(conn, buf, idx)
                if req is None:
                    return
                with self._lock:
                    self.requests.append(req)
                conn.sendall(self.handler(req, idx))
        except (OSError, ValueError):
            return
        finally:
            conn.close()


class U5Stale(unittest.TestCase):
    def test_u5_stale_pooled_connections(self):
        up = StaleUpstream(lambda req, idx: OK)
        gw = Gateway(sidecar_config(up.url))
        try:
            rnd = random.Random(5)
            errors = []
            gw.request("GET", "/warm")
            plan = ["GET"] * 7 + ["POST"] * 4
            rnd.shuffle(plan)
            for i, m in enumerate(plan):
                time.sleep(rnd.uniform(1.0, 1.1))
                r = request_full(gw.port, m, f"/u5/{i}", {"X-Request-Id": f"u5-{i}"},
                                 body=b"once" if m == "POST" else None)
                if r.status != 200:
                    errors.append((m, r.status))
            gets = [e for e in errors if e[0] == "GET"]
            self.assertEqual(gets, [], "client-visible errors for GET")
            ids = []
            for q in up.requests:
                for line in q.split(b"\r\n"):
                    if line.lower().startswith(b"x-request-id:"):
                        ids.append(line.split(b":", 1)[1].strip())
            posts = [x for x in ids if x.startswith(b"u5-") and plan[int(x[3:])] == "POST"]
            self.assertEqual(len(posts), len(set(posts)), "a POST executed twice")
            print(f"\nU5: {len(plan)} requests at 1.0-1.1 s, errors {errors}, upstream connections {up.connections}")
        finally:
            gw.stop()
            up.stop()

    def test_u5_reuse_check_after_skips_the_peek_only_for_retryable_requests(self):
        # With the pre-reuse check skipped for retryable requests, a GET meets the closed
        # connection and is retried on a new one; a POST (not retryable) is still checked, so
        # it never meets it. Every request must succeed, and none may run twice.
        up = StaleUpstream(lambda req, idx: OK)
        gw = Gateway(sidecar_config(up.url, upstream_extra="    reuse_check_after: 60s"))
        try:
            gw.request("GET", "/warm")
            plan = ["GET", "POST"] * 3
            statuses = []
            for i, m in enumerate(plan):
                time.sleep(1.05)  # past the upstream's 1 s idle close
                r = request_full(gw.port, m, f"/k/{i}", {"X-Request-Id": f"k-{i}"},
                                 body=b"once" if m == "POST" else None)
                statuses.append((m, r.status))
            self.assertEqual([s for _, s in statuses], [200] * len(plan), statuses)
            ids = [line.split(b":", 1)[1].strip() for q in up.requests for line in q.split(b"\r\n")
                   if line.lower().startswith(b"x-request-id:")]
            for i, m in enumerate(plan):
                self.assertEqual(ids.count(f"k-{i}".encode()), 1, f"{m} k-{i} reached the upstream once")
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- header hygiene

class HeaderHygiene(unittest.TestCase):
    def test_h1_hop_by_hop_both_directions(self):
        answer = (b"HTTP/1.1 200 OK\r\nConnection: X-Resp-Drop, keep-alive\r\nX-Resp-Drop: 1\r\n"
                  b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: foo\r\n"
                  b"Trailer: X-T\r\nTE: trailers\r\nX-Resp-Keep: 1\r\nContent-Length: 2\r\n\r\nok")
        up = ScriptedUpstream(lambda req, idx: answer)
        gw = Gateway(sidecar_config(up.url))
        try:
            r = request_full(gw.port, "GET", "/h1", {
                "Connection": "keep-alive, X-Drop-A, X-Drop-B", "X-Drop-A": "1", "X-Drop-B": "2",
                "Keep-Alive": "300", "Proxy-Connection": "keep-alive", "TE": "trailers",
                "Trailer": "X-T", "Upgrade": "h2c", "X-Keep": "yes"})
            self.assertEqual(r.status, 200)
            names = {k.lower() for k, _ in r.headers}
            for h in ("x-resp-drop", "keep-alive", "proxy-connection", "upgrade", "trailer", "te"):
                self.assertNotIn(h, names)
            self.assertIn("x-resp-keep", names)
            for v in r.header_all("Connection"):
                self.assertIn(v.lower(), ("keep-alive", "close"))
            q = cross_check(up.received[0])[0][0]
            got = {k.decode() for k, _ in q.headers}
            for h in ("x-drop-a", "x-drop-b", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
                self.assertNotIn(h, got)
            self.assertIn("x-keep", got)
            for v in q.get_all("connection"):
                self.assertIn(v.lower(), (b"keep-alive", b"close"))
        finally:
            gw.stop()
            up.stop()

    def test_h2_connection_naming_end_to_end_fields(self):
        up = ok_upstream()
        gw = Gateway(sidecar_config(up.url))
        try:
            for rid in ("mine-1", "bad id"):
                with self.subTest(rid=rid):
                    before = len(up.received)
                    c = RawClient(gw.port)
                    c.send(b"POST /h2 HTTP/1.1\r\nHost: x\r\nConnection: X-Request-Id, X-Forwarded-For, Content-Length\r\n"
                           b"X-Request-Id: " + rid.encode() + b"\r\nX-Forwarded-For: 203.0.113.9\r\n"
                           b"Content-Length: 5\r\n\r\nhello")
                    r = c.read_response()
                    c.close()
                    self.assertEqual(r.status, 200)
                    self.assertTrue(wait_until(lambda: len(up.requests) > 0))
                    qs = []
                    for data in up.received:
                        qs += [q for q in cross_check(data)[0] if q.target == b"/h2"]
                    q = qs[-1]
                    ids = q.get_all("x-request-id")
                    self.assertEqual(ids, [r.header("X-Request-Id").encode()])
                    if rid == "mine-1":
                        self.assertEqual(ids, [b"mine-1"])
                    xff = q.get_all("x-forwarded-for")
                    self.assertEqual(len(xff), 1)
                    self.assertTrue(xff[0].endswith(b"127.0.0.1"), xff)
                    self.assertEqual(q.get_all("content-length"), [b"5"])
                    self.assertEqual(q.body, b"hello")
                    del before
        finally:
            gw.stop()
            up.stop()

    def test_h4_ten_thousand_random_request_ids(self):
        rnd = random.Random(4)
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
        legal = bytes([9] + list(range(0x20, 0x7F)) + list(range(0x80, 0x100)))

        def gen(i):
            kind = i % 10
            length = int(math.exp(rnd.uniform(0, math.log(10001)))) - 1  # 0..10,000, log-distributed
            if kind < 4:  # valid
                return bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 128)))
            if kind == 4:  # valid alphabet, too long
                return bytes(rnd.choice(alphabet) for _ in range(rnd.randint(129, 10000)))
            if kind == 5:  # one bad but header-legal byte
                s = bytearray(rnd.choice(alphabet) for _ in range(rnd.randint(3, 128)))
                s[rnd.randrange(1, len(s) - 1)] = rnd.choice(b" \"';,\\/\x80\xff\t%+=")
                return bytes(s)
            if kind == 9 and i % 20 == 9:  # any byte at all (illegal ones: a 400 probe)
                return bytes(rnd.randrange(256) for _ in range(min(length, 2000)))
            return bytes(rnd.choice(legal) for _ in range(length))

        up = ok_upstream()
        cfg = sidecar_config(up.url).replace("    match: { prefix: / }\n", "    match: { prefix: /up }\n")
        gw = Gateway(cfg)
        stats = {"valid": 0, "replaced": 0, "rejected": 0}
        try:
            ids = [gen(i) for i in range(10000)]
            pending = []  # (sent id bytes, path) on the current keep-alive connection
            on_conn = 0
            c = RawClient(gw.port, timeout=10)

            def flush():
                nonlocal c
                for k, (sent, path) in enumerate(pending):
                    try:
                        r = c.read_response()
                    except EOFError:
                        self.fail(f"connection closed before response {k} of {len(pending)} "
                                  f"(previous status {r.status if k else None}, id {sent[:80]!r}, {gw.stderr()[-300:]})")
                    self.check_id(sent, r, stats)
                pending.clear()

            for i, rid in enumerate(ids):
                path = b"/up/%d" % i if i % 10 == 0 else b"/local/%d" % i
                req = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + rid + b"\r\n\r\n"
                if any(b in rid for b in b"\r\n\x00") or any((x < 0x20 and x != 9) or x == 0x7F for x in rid):
                    r, closed = raw_request(gw.port, req)
                    self.assertEqual(r.status, 400)
                    self.assertTrue(closed)
                    self.check_id(None, r, stats)
                    stats["rejected"] += 1
                    continue
                c.send(req)
                pending.append((rid, path))
                on_conn += 1
                if len(pending) >= 50:
                    flush()
                if on_conn >= 500:  # under max_requests_per_connection (1000)
                    flush()
                    c.close()
                    c = RawClient(gw.port, timeout=10)
                    on_conn = 0
            flush()
            c.close()
            # What reached the upstream: exactly the id the client was answered with.
            n = 0
            for data in up.received:
                for q in cross_check(data)[0]:
                    got = q.get_all("x-request-id")
                    self.assertEqual(len(got), 1)
                    self.assertTrue(REQUEST_ID_PATTERN.match(got[0].decode("latin-1")))
                    n += 1
            self.assertEqual(n, 1000 - sum(1 for i in range(0, 10000, 10) if any(
                (x < 0x20 and x != 9) or x == 0x7F for x in ids[i])))
            print(f"\nH4: {stats}")
        finally:
            gw.stop()
            up.stop()

    def check_id(self, sent, r, stats):
        emitted = r.header("X-Request-Id")
        self.assertIsNotNone(emitted)
        self.assertTrue(REQUEST_ID_PATTERN.match(emitted), repr(emitted))
        raw = r.raw_head
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"x-request-id:"):
                self.assertFalse(any(b in line for b in b"\x00\"\r\n"))
        if r.body and "json" in (r.header("Content-Type") or ""):
            body_id = json.loads(r.body).get("requestId")
            self.assertEqual(body_id, emitted)
        if sent is None:
            self.assertRegex(emitted, GENERATED_ID_RE)
            return
        value = sent.strip(b" \t")  # HTTP's optional whitespace is not part of the value
        if REQUEST_ID_PATTERN.match(value.decode("latin-1")) and value.isascii():
            self.assertEqual(emitted.encode(), value, "a valid id is preserved byte for byte")
            stats["valid"] += 1
        else:
            self.assertRegex(emitted, GENERATED_ID_RE, f"invalid id {value[:40]!r} replaced, not trimmed")
            stats["replaced"] += 1

    def test_h5_access_log_lines_parse_and_are_capped(self):
        up = ok_upstream()
        gw = Gateway(sidecar_config(up.url, limits="  max_request_line: 80KiB\n  max_header_bytes: 160KiB\n"))
        try:
            nasty = '"\\\n\u2028\u2029</script>\x7f\u00e9'
            big = "v" * 65536
            cases = [
                (b"/p/%22%5C%0A\xe2\x80\xa8\"\\", "ua\"\\\u2028\t\u00ff".encode("utf-8"), b"h5-a"),
                (b"/" + b"p" * 65536, b"v" * 60000, b"h5-b"),
                (b"/x", nasty.replace("\n", "").replace("\x7f", "").encode("utf-8"), b"h5-" + b"c" * 120),
                (b"/y", b"ua", b"id\"with'quotes"),
                (b"/z", b"\xff\xfe\xc3", b"v" * 60000),
                (b"/w", b"u" * 60000, b"h5-w"),
            ]
            sent = []
            # A 64 KiB field value: 431 (Beast cannot hold it; it used to end the session with no
            # response and no log line), logged like every other request.
            r, _ = raw_request(gw.port, b"GET /big HTTP/1.1\r\nHost: x\r\nUser-Agent: " + big.encode() + b"\r\n\r\n",
                               wait_close=False)
            check_problem_response(self, r, 431)
            sent.append(r.header("X-Request-Id"))
            for path, ua, rid in cases:
                r, _ = raw_request(gw.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + ua +
                                   b"\r\nX-Request-Id: " + rid + b"\r\nConnection: close\r\n\r\n", wait_close=False)
                sent.append(r.header("X-Request-Id"))
            # Header-illegal bytes (a newline in the user agent) are a 400 with a log line too.
            r, _ = raw_request(gw.port, b"GET /nl HTTP/1.1\r\nHost: x\r\nUser-Agent: a\nb\r\n\r\n", wait_close=False)
            self.assertEqual(r.status, 400)
            sent.append(r.header("X-Request-Id"))
            # Every id: the connections' lines come from different worker threads in any order.
            entries = gw.access_log(wait_for=sent)
            lines = [l for l in gw.log_lines if l.startswith("{")]
            for l in lines:
                self.assertEqual(l.count("\n"), 1)
                self.assertNotIn("\u2028", l)
                self.assertNotIn("\u2029", l)
                self.assertLess(len(l.encode()), 16 * 1024, "a capped line")
                e = json.loads(l)
                for k, v in e.items():
                    if isinstance(v, str):
                        self.assertLessEqual(len(v), 2048 + 16, k)
            for rid in sent:
                self.assertEqual(sum(1 for e in entries if e.get("requestId") == rid), 1, rid)
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- conformance

class C1Conformance(unittest.TestCase):
    def test_c1_gateway_errors_validate(self):
        sock, port = refused_port()
        self.addCleanup(sock.close)
        cfg = sidecar_config(f"http://127.0.0.1:{port}", limits="  max_body_bytes: 16\n").replace(
            "header_timeout: 2s", "header_timeout: 1s")
        cfg = cfg.replace("    match: { prefix: / }\n", "    match: { prefix: /api }\n")
        cfg += "  - name: limited\n    match: { prefix: /limited }\n    upstream: app\n    rate_limit: { limit: 1, window: 60s, key: client_ip }\n"
        gw = Gateway(cfg)
        try:
            probes = [
                (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
                (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
                (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
                (b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 413),
                (b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zz\r\n\r\n", 501),
                (b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n", 502),
                (b"GET /limited HTTP/1.1\r\nHost: x\r\n\r\n", 502),
                (b"GET /limited HTTP/1.1\r\nHost: x\r\n\r\n", 429),
                (b"GET /api HTTP/1.1\r\nHost: x\r\n", 408),
            ]
            for data, want in probes:
                with self.subTest(want=want):
                    r, _ = raw_request(gw.port, data, wait_close=False)
                    p = check_problem_response(self, r, want)
                    self.assertEqual(p.get("type", "about:blank"), "about:blank")
                    self.assertTrue(r.header("Proxy-Status"))
                    if want == 429:
                        self.assertIsInstance(p.get("retryAfter"), int)
        finally:
            gw.stop()

    def test_c1_rewritten_upstream_errors_validate(self):
        demo = DemoApi()
        invalid = ScriptedUpstream(lambda req, idx: response_bytes(
            500, b"{\"error\": \"db password=hunter2\", ", {"Content-Type": "application/json"}))
        cfg = sidecar_config(demo.url, upstream_extra=f"  bad:\n    url: {invalid.url}\n",
                             route_extra="  - name: bad\n    match: { prefix: /invalid }\n    upstream: bad\n")
        gw = Gateway(cfg)
        try:
            paths = ["/flat/validation", "/flat/unauthorized", "/flat/not-found", "/flat/conflict",
                     "/flat/rate-limit", "/flat/internal", "/nested/auth-required", "/nested/quota",
                     "/nested/rate-limited", "/nested/circuit-open", "/detail/unauthenticated",
                     "/detail/fields", "/problem/validation", "/problem/legacy", "/fieldmap",
                     "/html/502", "/html/404", "/text/stacktrace", "/text/404", "/empty/403",
                     "/gzip/404", "/auth", "/error-big?size=60000", "/status/418", "/status/599",
                     "/nope", "/invalid"]
            for path in paths:
                with self.subTest(path=path):
                    r = request_full(gw.port, "GET", path)
                    self.assertGreaterEqual(r.status, 400)
                    p = check_problem_response(self, r)
                    self.assertIsNone(r.header("Content-Encoding"))
                    if r.status >= 500:
                        for secret in (b"Traceback", b"hunter2", b"nginx/", b"File \""):
                            self.assertNotIn(secret, r.body, "upstream internals in a 5xx body")
        finally:
            gw.stop()
            invalid.stop()
            demo.stop()


class C2C3Passthrough(unittest.TestCase):
    def test_c2_head_204_304(self):
        demo = DemoApi()
        gw = Gateway(sidecar_config(demo.url))
        try:
            for path in ("/ok", "/big", "/chunked", "/big?size=100&chunked=1", "/flat/validation",
                         "/html/502", "/204", "/304", "/status/204", "/status/304", "/empty/403"):
                for method in ("HEAD", "GET"):
                    with self.subTest(path=path, method=method):
                        c = RawClient(gw.port)
                        c.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        r = c.read_response(head_request=(method == "HEAD"))
                        nxt = c.read_response()
                        c.close()
                        self.assertEqual(nxt.status, 200)
                        self.assertEqual(nxt.body, b'{"ok":true}', "no stray body bytes before the next response")
                        if r.status in (204, 304):
                            self.assertIsNone(r.header("Transfer-Encoding"))
                            self.assertIn(r.header("Content-Length"), (None, "0"))
                        if method == "HEAD" and path in ("/big", "/ok"):
                            g = request_full(gw.port, "GET", path)
                            self.assertEqual(r.header("Content-Length"), g.header("Content-Length"))
        finally:
            gw.stop()
            demo.stop()

    def test_c3_bodies_byte_identical(self):
        rnd = random.Random(3)
        max_size = 4 * 1024 * 1024
        specs = []
        for i in range(1000):
            if i < 3:
                size = (0, 1, max_size)[i]
            else:
                size = int(math.exp(math.log(max_size) * rnd.random() ** 2)) - 1
            specs.append((size, rnd.random() < 0.5, rnd.choice([200, 201, 203, 206, 301, 302, 307])))
        total = sum(s for s, _, _ in specs)
        self.assertLess(total, 200 * 1024 * 1024)
        pool = random.Random(33).randbytes(max_size + 65536)

        def body_of(i):
            size = specs[i][0]
            off = (i * 7919) % 65536
            return pool[off:off + size]

        def handler(req, idx):
            i = int(req.split(b" ", 2)[1].rsplit(b"/", 1)[1])
            size, chunked, status = specs[i]
            body = body_of(i)
            head = (b"HTTP/1.1 %d X\r\nETag: \"e-%d\"\r\nCache-Control: max-age=%d, must-revalidate\r\n"
                    b"Vary: Accept-Encoding, X-Test\r\nContent-Encoding: gzip\r\nContent-Type: application/octet-stream\r\n" % (status, i, i))
            if not chunked:
                return head + b"Content-Length: %d\r\n\r\n" % size + body
            out = [head + b"Transfer-Encoding: chunked\r\n\r\n"]
            pos = 0
            r = random.Random(i)
            while pos < size:
                n = min(size - pos, r.choice([1, 17, 4096, 65536, 300000]))
                out.append(b"%x\r\n" % n + body[pos:pos + n] + b"\r\n")
                pos += n
            out.append(b"0\r\n\r\n")
            return b"".join(out)

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url))
        try:
            c = RawClient(gw.port, timeout=30)
            for i, (size, chunked, status) in enumerate(specs):
                if i % 100 == 0 and i:
                    c.close()
                    c = RawClient(gw.port, timeout=30)
                c.send(b"GET /c3/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                r = c.read_response()
                self.assertEqual(r.status, status)
                self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(body_of(i)).digest(), i)
                self.assertEqual(r.header("ETag"), f"\"e-{i}\"")
                self.assertEqual(r.header("Cache-Control"), f"max-age={i}, must-revalidate")
                self.assertEqual(r.header("Vary"), "Accept-Encoding, X-Test")
                self.assertEqual(r.header("Content-Encoding"), "gzip")
            c.close()
            print(f"\nC3: 1000 bodies, {total / 1048576:.1f} MiB")
        finally:
            gw.stop()
            up.stop()


if __name__ == "__main__":
    unittest.main()
