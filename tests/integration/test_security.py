"""Findings of the adversarial run (issue 24), each replayed with its raw bytes against the
real binary: routing and rate limits on the normalized path, Connection options that tried to
remove framing, out-of-range status codes, fragments, 1xx to HTTP/1.0, bad Host values and
absolute-form targets."""
import json
import socket
import unittest

from harness import Gateway, RawClient, ScriptedUpstream, response_bytes, sidecar_config

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def request_lines(up):
    """The request line of every request the upstream received, in order."""
    return [r.split(b"\r\n", 1)[0].decode("latin-1") for r in up.requests]


def header_values(raw_request, name):
    out = []
    for line in raw_request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            out.append(v.strip().decode("latin-1"))
    return out


def one_shot(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection and returns the first response."""
    c = RawClient(port, timeout=timeout)
    try:
        c.send(data)
        return c.read_response()
    finally:
        c.close()


LIMITED_CONFIG = """
listen: 127.0.0.1:0
threads: 1
admin: {{ listen: "off" }}
upstreams:
  app: {{ url: {url}, timeout: 2s }}
routes:
  - name: limited
    match: {{ prefix: /limited }}
    upstream: app
    rate_limit: {{ limit: 1, window: 1h, key: route }}
  - name: files
    match: {{ prefix: /files }}
    upstream: app
    escaped_slashes: keep
  - name: stripped
    match: {{ prefix: /api }}
    upstream: app
    strip_prefix: true
  - name: catch-all
    match: {{ prefix: / }}
    upstream: app
"""


class PathNormalization(unittest.TestCase):
    """Finding 2: a route with a spent quota was reachable through the catch-all route by
    spelling its path differently; the upstream then served the limited location."""

    @classmethod
    def setUpClass(cls):
        cls.up = ScriptedUpstream(lambda req, idx: OK)
        cls.gw = Gateway(LIMITED_CONFIG.format(url=cls.up.url))
        r = one_shot(cls.gw.port, b"GET /limited HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.status == 200, r.status  # the quota (1/hour) is now spent

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.stop()

    def status_of(self, path, query=""):
        r = one_shot(self.gw.port, f"GET {path}{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if r.status >= 400:
            p = json.loads(r.body)
            self.assertEqual(p["status"], r.status)
            self.assertEqual(r.header("content-type"), "application/problem+json")
        return r.status

    def test_every_spelling_of_the_limited_path_is_limited_or_refused(self):
        before = len(self.up.requests)
        limited = ["//limited", "/./limited", "/x/../limited", "/%6cimited", "/%2e/limited",
                   "/x/%2e%2e/limited", "/x/%2E%2E/limited", "/limited/", "/LIMITED/../limited",
                   "///limited//", "/limited/./"]
        refused = ["/%2flimited", "/x/..%2flimited", "/limited%2fx", "/%2Flimited", "/x/..%5climited",
                   "/x/..\\limited", "/..", "/../limited", "/x/../../limited", "/%", "/%zzlimited"]
        for query in ("", "?a=1", "?next=/limited&x=%2f"):
            for p in limited:
                self.assertEqual(self.status_of(p, query), 429, p + query)
            for p in refused:
                self.assertEqual(self.status_of(p, query), 400, p + query)
        # None of them reached the upstream.
        self.assertEqual(len(self.up.requests), before, request_lines(self.up)[before:])

    def test_the_upstream_receives_the_normalized_path_and_the_query_as_sent(self):
        before = len(self.up.requests)
        self.assertEqual(self.status_of("/a/./b//c/../d%7e", "?q=%2e%2E/..//x"), 200)
        self.assertEqual(self.status_of("/api//v1/../users", "?x"), 200)
        self.assertEqual(self.status_of("/api"), 200)
        self.assertEqual(request_lines(self.up)[before:],
                         ["GET /a/b/d~?q=%2e%2E/..//x HTTP/1.1", "GET /users?x HTTP/1.1",
                          "GET / HTTP/1.1"])

    def test_escaped_slashes_keep_forwards_them_encoded(self):
        before = len(self.up.requests)
        self.assertEqual(self.status_of("/files/a%2fb%5cc"), 200)
        self.assertEqual(request_lines(self.up)[before:], ["GET /files/a%2Fb%5Cc HTTP/1.1"])

    def test_refusal_is_canonical(self):
        r = one_shot(self.gw.port, b"GET /%2flimited HTTP/1.1\r\nHost: x\r\n\r\n")
        p = json.loads(r.body)
        self.assertEqual(p["status"], 400)
        self.assertEqual(p["subcode"], "malformed_request")
        self.assertIn("path", p["detail"])
        self.assertTrue(r.header("proxy-status").startswith("problemgate; error=http_request_error"))


class AbsoluteForm(unittest.TestCase):
    """Servers must accept absolute-form (RFC 9112 §3.2.2): route on its host and path, then
    forward origin-form with the target's authority as Host."""

    def test_absolute_form_is_routed_limited_and_forwarded_origin_form(self):
        up = ScriptedUpstream(lambda req, idx: OK)
        gw = Gateway(LIMITED_CONFIG.format(url=up.url))
        try:
            r = one_shot(gw.port, b"GET http://Example.com:81/api//x?y HTTP/1.1\r\nHost: other\r\n\r\n")
            self.assertEqual(r.status, 200)
            self.assertEqual(request_lines(up), ["GET /x?y HTTP/1.1"])
            self.assertEqual(header_values(up.requests[0], "host"), ["Example.com:81"])
            self.assertEqual(header_values(up.requests[0], "x-forwarded-host"), ["Example.com:81"])
            # The quota of /limited counts absolute-form requests too.
            self.assertEqual(one_shot(gw.port, b"GET http://h/limited HTTP/1.1\r\nHost: h\r\n\r\n").status, 200)
            self.assertEqual(one_shot(gw.port, b"GET http://h/limited HTTP/1.1\r\nHost: h\r\n\r\n").status, 429)
            self.assertEqual(one_shot(gw.port, b"GET HTTP://h/./limited HTTP/1.1\r\nHost: h\r\n\r\n").status, 429)
            for target in (b"http://u@h/x", b"ftp://h/x", b"*", b"h:443", b"x/y", b"http:///x"):
                r = one_shot(gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
                self.assertEqual(r.status, 400, target)
            self.assertEqual(len(up.requests), 2)
        finally:
            gw.stop()
            up.stop()


class RequestHeadRules(unittest.TestCase):
    def setUp(self):
        self.up = ScriptedUpstream(lambda req, idx: OK)
        self.gw = Gateway(sidecar_config(self.up.url))

    def tearDown(self):
        self.gw.stop()
        self.up.stop()

    def test_connection_host_does_not_remove_host(self):
        # Finding 4: the upstream got an HTTP/1.1 request with no Host.
        r = one_shot(self.gw.port, b"GET /h HTTP/1.1\r\nHost: svc.example\r\nConnection: host\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(header_values(self.up.requests[0], "host"), ["svc.example"])

    def test_connection_content_length_keeps_the_request_framing(self):
        r = one_shot(self.gw.port, b"POST /p HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\n"
                                   b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(r.status, 200)
        self.assertEqual(header_values(self.up.requests[0], "content-length"), ["5"])
        self.assertTrue(self.up.requests[0].endswith(b"\r\n\r\nhello"))

    def test_fragment_in_target_is_refused(self):
        # Finding 8: `/api#frag` was routed as /api but forwarded with its fragment.
        for target in (b"/api#frag", b"/api?x=1#frag", b"/#"):
            r = one_shot(self.gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(r.status, 400, target)
        self.assertEqual(self.up.requests, [])

    def test_invalid_host_is_refused(self):
        # Finding 10: `Host: a b@c/d` was forwarded.
        for host in (b"a b@c/d", b"user@h", b"h/x", b"h:8o", b"[::1", b"h:1:2"):
            r = one_shot(self.gw.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            self.assertEqual(r.status, 400, host)
        for host in (b"example.com", b"example.com:8080", b"[::1]:80", b"127.0.0.1"):
            r = one_shot(self.gw.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            self.assertEqual(r.status, 200, host)
        self.assertEqual(len(self.up.requests), 4)

    def test_no_interim_response_to_http10(self):
        # Finding 9: an HTTP/1.0 request with Expect: 100-continue got `HTTP/1.1 100 Continue`.
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        try:
            s.sendall(b"POST /e HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:80])
        self.assertNotIn(b" 100 ", data)
        # HTTP/1.1 still gets its 100 Continue.
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        try:
            s.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
        finally:
            s.close()


class ResponseHeadRules(unittest.TestCase):
    def test_connection_content_length_from_upstream_keeps_framing(self):
        # Finding 3: the response went out keep-alive with no length; the next pipelined
        # response landed inside its body.
        answers = [b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
                   b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"]
        up = ScriptedUpstream(lambda req, idx: answers[0] if b"/first" in req else answers[1])
        gw = Gateway(sidecar_config(up.url))
        try:
            c = RawClient(gw.port)
            c.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
            r1 = c.read_response()
            r2 = c.read_response()
            c.close()
            self.assertEqual((r1.status, r1.header("content-length"), r1.body), (200, "5", b"hello"))
            self.assertEqual((r2.status, r2.body), (200, b"second"))
        finally:
            gw.stop()
            up.stop()

    def test_out_of_range_status_codes_are_bad_gateway(self):
        # Finding 7: 000 and 099 were relayed; 999 became a problem with "status":999.
        for code in (b"000", b"099", b"600", b"999"):
            up = ScriptedUpstream(lambda req, idx, code=code: b"HTTP/1.1 " + code + b" Zero\r\nContent-Length: 2\r\n\r\nno")
            gw = Gateway(sidecar_config(up.url))
            try:
                r = one_shot(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(r.status, 502, code)
                self.assertEqual(json.loads(r.body)["subcode"], "upstream_down")
            finally:
                gw.stop()
                up.stop()


if __name__ == "__main__":
    unittest.main()
