"""Issue 19: TLS on both sides, against the real binary over loopback.

Every certificate and key is made at test time with the `openssl` command in a temporary
directory (nothing secret is committed): a test CA, server certificates for localhost /
127.0.0.1 and for b.test (SNI), client certificates (one from the CA, one from a stranger),
and the bad upstream certificates (expired, wrong host, self-signed). TLS upstreams are
Python's http.server wrapped in Python's ssl, on 127.0.0.1.
"""
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Gateway, RawClient, ScriptedUpstream, http_request, response_bytes, wait_until

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
CERTS = None  # the directory of this run's certificates (setUpModule)


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _leaf(d, name, sans, ca="ca", days="30", dates=None):
    """name.key + name.pem for `sans` (subjectAltName value), signed by `ca` (or expired when
    `dates` = (start, end) is given: signed with `openssl ca`, which can date it)."""
    _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n")
    if dates is None:
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", days, "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
        return
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(f"""[ ca ]
default_ca = d
[ d ]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
""")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    _run("ca", "-batch", "-config", "ca.cnf", "-cert", f"{ca}.pem", "-keyfile", f"{ca}.key", "-startdate",
         dates[0], "-enddate", dates[1], "-in", f"{name}.csr", "-out", f"{name}.pem", "-extfile",
         f"{name}.ext", "-notext", cwd=d)


def _ca(d, name):
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         f"{name}.key", "-out", f"{name}.pem", "-days", "30", "-subj", f"/CN={name}", cwd=d)


def make_certificates(d):
    _ca(d, "ca")
    _ca(d, "stranger")
    _leaf(d, "localhost", "DNS:localhost,IP:127.0.0.1")
    _leaf(d, "renewed", "DNS:localhost,IP:127.0.0.1")
    _leaf(d, "b.test", "DNS:b.test")
    _leaf(d, "client-1", "DNS:client-1")
    _leaf(d, "intruder", "DNS:intruder", ca="stranger")
    _leaf(d, "wronghost", "DNS:other.test")
    _leaf(d, "expired", "DNS:localhost,IP:127.0.0.1", dates=("20200101000000Z", "20200201000000Z"))
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         "selfsigned.key", "-out", "selfsigned.pem", "-days", "30", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)


def setUpModule():
    global CERTS
    if not OPENSSL:
        raise unittest.SkipTest("the openssl command is not installed")
    CERTS = tempfile.mkdtemp(prefix="pg-tls-")
    make_certificates(CERTS)


def tearDownModule():
    if CERTS:
        shutil.rmtree(CERTS, ignore_errors=True)


def p(name):
    return os.path.join(CERTS, name)


# ----------------------------------------------------------------------------- helpers

class TlsOrigin:
    """An HTTPS upstream: http.server in Python's ssl. GET /big answers 1 MiB; anything else
    answers `name` and records the request's headers. `client_ca`: client certificates required."""

    def __init__(self, cert, key, name="origin", client_ca=None, maximum=None, close=False):
        self.name = name
        self.headers = []
        self.connections = 0
        self.resumed = []  # per connection: whether its TLS session was resumed
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                origin.connections += 1

            def handle_one_request(self):
                if not hasattr(self, "_seen"):
                    self._seen = True
                    origin.resumed.append(self.connection.session_reused)
                super().handle_one_request()

            def do_GET(self):
                origin.headers.append(dict(self.headers))
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    # A byte echo after the 101: enough to see a tunnel through TLS both ways.
                    self.send_response(101)
                    self.send_header("Upgrade", "websocket")
                    self.send_header("Connection", "Upgrade")
                    self.send_header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                    self.end_headers()
                    self.wfile.flush()
                    while True:
                        data = self.connection.recv(65536)
                        if not data:
                            break
                        self.connection.sendall(data)
                    self.close_connection = True
                    return
                body = b"x" * (1 << 20) if self.path.endswith("/big") else origin.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        if maximum:
            ctx.maximum_version = maximum
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def client_context(ca="ca.pem", minimum=None, maximum=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(p(ca))
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if cert:
        ctx.load_cert_chain(p(cert + ".pem"), p(cert + ".key"))
    return ctx


class TlsClient(RawClient):
    """RawClient over TLS (the harness's strict response reader)."""

    def __init__(self, port, server_hostname="localhost", ctx=None, timeout=10.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = (ctx or client_context()).wrap_socket(raw, server_hostname=server_hostname)
        self.buf = b""

    def get(self, path="/", extra=b""):
        self.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n")
        return self.read_response()


def tls_port(gw):
    """The TLS listener's port, from its 'listening on HOST:PORT (tls)' line."""
    found = {}

    def seen():
        for line in list(gw.stderr_lines) + [f"listening on {gw.host}:{gw.port}"]:
            m = re.match(r"listening on (\S+):(\d+) \(tls\)", line.strip())
            if m:
                found["port"] = int(m.group(2))
                return True
        return False

    if not wait_until(seen, timeout=10):
        raise AssertionError(f"no TLS listener line: {gw.stderr_lines[:5]}")
    return found["port"]


def gateway_config(upstreams, tls_extra="", listen_plain=True, routes=None):
    """A TLS listener (localhost cert, b.test by SNI) and, by default, a plain one first."""
    plain = "  - 127.0.0.1:0\n" if listen_plain else ""
    routes = routes or [("app", "/", "app")]
    route_text = "".join(f"  - name: {n}\n    match: {{ prefix: {pre} }}\n    upstream: {u}\n" for n, pre, u in routes)
    ups = "".join(f"  {name}:\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())
                  for name, body in upstreams.items())
    return f"""
listen:
{plain}  - address: 127.0.0.1:0
    tls:
      cert: {p('localhost.pem')}
      key: {p('localhost.key')}
      certificates:
        - {{ cert: {p('b.test.pem')}, key: {p('b.test.key')} }}
      handshake_timeout: 1s
{tls_extra}
threads: 2
admin:
  listen: 127.0.0.1:0
limits:
  header_timeout: 2s
upstreams:
{ups}
routes:
{route_text}
"""


def metric(gw, name, **labels):
    status, _, body = http_request("127.0.0.1", gw.admin_port(), "GET", "/metrics")
    assert status == 200
    total = 0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def listener_label(port):
    return f"127.0.0.1:{port}"


OK = response_bytes(200, "plain-upstream", {"Content-Type": "text/plain"})


# ----------------------------------------------------------------------------- client side

class ClientSide(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = ScriptedUpstream(lambda req, idx: OK)
        cls.gw = Gateway(gateway_config({"app": f"url: {cls.upstream.url}"}))
        cls.addClassCleanup(cls.gw.stop)  # also when the rest of setUpClass fails
        cls.port = tls_port(cls.gw)
        cls.label = listener_label(cls.port)

    def test_tls12_and_tls13_clients(self):
        for name, kwargs in (("1.2", {"maximum": ssl.TLSVersion.TLSv1_2}),
                             ("1.3", {"minimum": ssl.TLSVersion.TLSv1_3})):
            with self.subTest(version=name):
                c = TlsClient(self.port, ctx=client_context(**kwargs))
                self.assertEqual(c.sock.version(), "TLSv1." + name[-1])
                r = c.get()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"plain-upstream")
                # keep-alive over TLS: a second request on the same connection
                self.assertEqual(c.get().status, 200)
                c.close()

    def test_forwarded_proto_says_https_on_tls_and_http_on_plain(self):
        c = TlsClient(self.port)
        c.get(extra=b"X-Request-Id: over-tls\r\n")
        c.close()
        http_request("127.0.0.1", self.gw.port, "GET", "/", {"X-Request-Id": "over-plain"})
        reqs = {re.search(rb"X-Request-Id: (\S+)", r).group(1): r for r in self.upstream.requests}
        self.assertIn(b"X-Forwarded-Proto: https\r\n", reqs[b"over-tls"])
        self.assertIn(b"X-Forwarded-Proto: http\r\n", reqs[b"over-plain"])

    def test_sni_picks_the_certificate(self):
        for sni, cn in (("localhost", "localhost"), ("b.test", "b.test"), ("unknown.test", "localhost")):
            with self.subTest(sni=sni):
                ctx = client_context()
                ctx.check_hostname = False
                c = TlsClient(self.port, server_hostname=sni, ctx=ctx)
                subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
                self.assertEqual(subject["commonName"], cn)
                self.assertEqual(c.get().status, 200)
                c.close()

    def test_curl_over_tls(self):
        if not CURL:
            self.skipTest("curl is not installed")
        for flag in ("--tlsv1.2", "--tlsv1.3"):
            r = subprocess.run([CURL, "-sS", flag, "--cacert", p("ca.pem"), "--resolve",
                                f"localhost:{self.port}:127.0.0.1", f"https://localhost:{self.port}/"],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, b"plain-upstream")

    def test_plaintext_to_the_tls_port_is_closed_and_counted(self):
        before = metric(self.gw, "problemgate_tls_handshake_failures_total", listener=self.label, reason="http_request")
        c = RawClient(self.port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(c.is_closed(timeout=10))
        c.close()
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_tls_handshake_failures_total",
                                                  listener=self.label, reason="http_request") == before + 1))
        self.assertEqual(TlsClient(self.port).get().status, 200)  # still serving

    def test_tls_to_the_plain_port_is_closed_and_counted(self):
        label = listener_label(self.gw.port)
        raw = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            client_context().wrap_socket(raw, server_hostname="localhost")
        raw.close()
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_tls_handshake_failures_total",
                                                  listener=label, reason="tls_on_plain_listener") >= 1))
        self.assertEqual(http_request("127.0.0.1", self.gw.port, "GET", "/")[0], 200)

    def test_handshake_slowloris_is_closed_at_handshake_timeout(self):
        before = metric(self.gw, "problemgate_tls_handshake_failures_total", listener=self.label, reason="timeout")
        silent = RawClient(self.port)
        partial = RawClient(self.port)
        partial.send(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
        self.assertTrue(silent.is_closed(timeout=20))
        self.assertTrue(partial.is_closed(timeout=20))
        silent.close()
        partial.close()
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_tls_handshake_failures_total",
                                                  listener=self.label, reason="timeout") >= before + 2))
        self.assertGreater(metric(self.gw, "problemgate_tls_handshakes_total", listener=self.label), 0)

    def test_framing_probes_over_tls(self):
        probes = [
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200),
        ]
        for raw, status in probes:
            with self.subTest(probe=raw[:60]):
                c = TlsClient(self.port)
                c.send(raw)
                r = c.read_response()
                self.assertEqual(r.status, status, r.body)
                if status == 400:
                    self.assertEqual(json.loads(r.body)["subcode"], "malformed_request")
                c.close()

    def test_large_response_through_tls_client(self):
        big = b"y" * (1 << 20)
        up = ScriptedUpstream(lambda req, idx: response_bytes(200, big))
        gw = Gateway(gateway_config({"app": f"url: {up.url}"}))
        try:
            c = TlsClient(tls_port(gw))
            r = c.get()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(big))
            self.assertEqual(r.body, big)
            c.close()
        finally:
            gw.stop()


class ClientCertificates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = ScriptedUpstream(lambda req, idx: OK)
        cls.gw = Gateway(gateway_config({"app": f"url: {cls.upstream.url}"},
                                        tls_extra=f"      client_ca: {p('ca.pem')}"))
        cls.addClassCleanup(cls.gw.stop)  # also when the rest of setUpClass fails
        cls.port = tls_port(cls.gw)
        cls.label = listener_label(cls.port)

    def test_a_client_with_a_certificate_from_the_ca_is_served_and_logged(self):
        c = TlsClient(self.port, ctx=client_context(cert="client-1"))
        r = c.get(extra=b"X-Request-Id: mtls-ok\r\n")
        self.assertEqual(r.status, 200)
        c.close()
        entry = [e for e in self.gw.access_log(wait_for="mtls-ok") if e.get("requestId") == "mtls-ok"][0]
        self.assertIn("CN=client-1", entry["client_cert"])
        self.assertIn(entry["tls_version"], ("TLSv1.2", "TLSv1.3"))

    def refused(self, cert):
        for maximum in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(cert=cert, maximum=maximum):
                try:
                    c = TlsClient(self.port, ctx=client_context(cert=cert, maximum=maximum))
                    # TLS 1.3: the client finishes first; the refusal arrives as an alert.
                    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = c.sock.recv(100)
                    self.assertEqual(data, b"")
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    pass

    def test_a_client_without_a_certificate_fails_the_handshake(self):
        before = metric(self.gw, "problemgate_tls_handshake_failures_total", listener=self.label,
                        reason="no_client_certificate")
        self.refused(None)
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_tls_handshake_failures_total",
                                                  listener=self.label, reason="no_client_certificate") >= before + 2))

    def test_a_client_with_a_stranger_certificate_fails_the_handshake(self):
        self.refused("intruder")
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_tls_handshake_failures_total",
                                                  listener=self.label, reason="bad_certificate") >= 2))


class Reload(unittest.TestCase):
    def test_renewed_certificate_while_a_connection_stays_open(self):
        d = tempfile.mkdtemp(prefix="pg-tls-reload-")
        shutil.copy(p("localhost.pem"), os.path.join(d, "server.pem"))
        shutil.copy(p("localhost.key"), os.path.join(d, "server.key"))
        upstream = ScriptedUpstream(lambda req, idx: OK)
        cfg = f"""
listen:
  - address: 127.0.0.1:0
    tls: {{ cert: {d}/server.pem, key: {d}/server.key }}
admin:
  listen: 127.0.0.1:0
upstreams:
  app: {upstream.url}
routes:
  - name: app
    match: {{ prefix: / }}
    upstream: app
"""
        gw = Gateway(cfg)
        try:
            port = gw.port
            admin = gw.admin_port()
            kept = TlsClient(port)
            self.assertEqual(kept.get().status, 200)
            old_serial = kept.sock.getpeercert()["serialNumber"]

            # A bad file: the reload is refused, saying which file and why; the old certificate stays.
            with open(os.path.join(d, "server.pem"), "w") as f:
                f.write("not a certificate\n")
            status, _, body = http_request("127.0.0.1", admin, "POST", "/reload")
            self.assertNotEqual(status, 200)
            self.assertIn("server.pem", body.decode())
            self.assertIn("/listen/0/tls", body.decode())
            c = TlsClient(port)
            self.assertEqual(c.sock.getpeercert()["serialNumber"], old_serial)
            c.close()

            # The renewed certificate: new connections get it, the open one goes on.
            shutil.copy(p("renewed.pem"), os.path.join(d, "server.pem"))
            shutil.copy(p("renewed.key"), os.path.join(d, "server.key"))
            status, _, body = http_request("127.0.0.1", admin, "POST", "/reload")
            self.assertEqual(status, 200, body)
            c = TlsClient(port)
            self.assertNotEqual(c.sock.getpeercert()["serialNumber"], old_serial)
            subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
            self.assertEqual(subject["commonName"], "renewed")
            self.assertEqual(c.get().status, 200)
            c.close()
            self.assertEqual(kept.get().status, 200)
            kept.close()
        finally:
            gw.stop()
            shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------- upstream side

class UpstreamSide(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.good = TlsOrigin(p("localhost.pem"), p("localhost.key"), "good")
        cls.expired = TlsOrigin(p("expired.pem"), p("expired.key"), "expired")
        cls.wronghost = TlsOrigin(p("wronghost.pem"), p("wronghost.key"), "wronghost")
        cls.selfsigned = TlsOrigin(p("selfsigned.pem"), p("selfsigned.key"), "selfsigned")
        # TLS 1.2: a missing client certificate fails the handshake itself. (In TLS 1.3 the
        # refusal is an alert after it, which may be overtaken by a reset of the connection:
        # then the gateway can only say upstream_down.)
        cls.mtls = TlsOrigin(p("localhost.pem"), p("localhost.key"), "mtls", client_ca=p("ca.pem"),
                             maximum=ssl.TLSVersion.TLSv1_2)
        # A plain HTTP server: it answers a ClientHello with an HTTP 400, not a ServerHello.
        class Quiet(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass
        cls.plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        cls.plain.daemon_threads = True
        threading.Thread(target=cls.plain.serve_forever, daemon=True).start()
        ca = p("ca.pem")
        ups = {
            "good": f"url: {cls.good.url}\ntls: {{ ca_file: {ca} }}",
            "good_by_name": f"url: https://localhost:{cls.good.port}\ntls: {{ ca_file: {ca} }}",
            # Same host:port as `good`, but verified against the system store: never shares its
            # sessions or connections, so it fails where `good` passes.
            "good_system_store": f"url: {cls.good.url}",
            "expired": f"url: {cls.expired.url}\ntls: {{ ca_file: {ca} }}",
            "wronghost": f"url: {cls.wronghost.url}\ntls: {{ ca_file: {ca} }}",
            "selfsigned": f"url: {cls.selfsigned.url}\ntls: {{ ca_file: {ca} }}",
            "unverified": f"url: {cls.selfsigned.url}\ntls: {{ verify: false }}",
            "plain_http_server": f"url: https://127.0.0.1:{cls.plain.server_address[1]}\ntls: {{ ca_file: {ca} }}",
            "mtls": f"url: {cls.mtls.url}\ntls: {{ ca_file: {ca}, cert: {p('client-1.pem')}, key: {p('client-1.key')} }}",
            "mtls_without_cert": f"url: {cls.mtls.url}\ntls: {{ ca_file: {ca} }}",
        }
        routes = [(n, "/" + n, n) for n in ups]
        cls.gw = Gateway(gateway_config(ups, routes=routes))
        cls.addClassCleanup(cls.gw.stop)  # also when the rest of setUpClass fails
        cls.port = tls_port(cls.gw)

    @classmethod
    def tearDownClass(cls):
        for o in (cls.good, cls.expired, cls.wronghost, cls.selfsigned, cls.mtls):
            o.stop()
        cls.plain.shutdown()
        cls.plain.server_close()

    def get(self, path):
        return http_request("127.0.0.1", self.gw.port, "GET", path)

    def assert_tls_error(self, path, token):
        status, headers, body = self.get(path)
        self.assertEqual(status, 502, body)
        problem = json.loads(body)
        self.assertEqual(problem["code"], "upstream_unavailable")
        self.assertEqual(problem["subcode"], "upstream_tls_error")
        self.assertTrue(headers["proxy-status"].startswith(f"problemgate; error={token}"), headers["proxy-status"])

    def test_verified_upstream_and_pooled_reuse(self):
        before = self.good.connections
        for _ in range(5):
            status, _, body = self.get("/good")
            self.assertEqual((status, body), (200, b"good"))
        # keep-alive through TLS: one worker's pool reuses its connection (two workers at most)
        self.assertLessEqual(self.good.connections - before, 2)
        self.assertEqual(self.get("/good_by_name")[:3:2], (200, b"good"))

    def test_new_connections_resume_the_pool_session(self):
        # Each answer closes its connection, so every request makes a handshake: after the
        # first, the pool offers the session it kept and the origin resumes it.
        origin = TlsOrigin(p("localhost.pem"), p("localhost.key"), "resume", close=True)
        gw = Gateway(gateway_config({"app": f"url: {origin.url}\ntls: {{ ca_file: {p('ca.pem')} }}"}).replace(
            "threads: 2", "threads: 1"))
        try:
            for _ in range(3):
                status, _, body = http_request("127.0.0.1", gw.port, "GET", "/")
                self.assertEqual((status, body), (200, b"resume"))
            self.assertEqual(len(origin.resumed), 3)
            self.assertEqual(origin.resumed, [False, True, True])
        finally:
            gw.stop()
            origin.stop()

    def test_large_response_from_a_tls_upstream_over_a_tls_client(self):
        c = TlsClient(self.port)
        r = c.get("/good/big")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 1 << 20)
        c.close()
        status, _, body = self.get("/good/big")
        self.assertEqual((status, len(body)), (200, 1 << 20))

    def test_bad_certificates_are_502_tls_certificate_error(self):
        for path in ("/expired", "/wronghost", "/selfsigned", "/good_system_store"):
            with self.subTest(path=path):
                self.assert_tls_error(path, "tls_certificate_error")
        self.assertGreater(metric(self.gw, "problemgate_upstream_tls_failures_total", upstream="expired",
                                  reason="certificate"), 0)

    def test_tls_to_a_plain_http_upstream_is_tls_protocol_error(self):
        self.assert_tls_error("/plain_http_server", "tls_protocol_error")

    def test_verify_false_connects_and_warns_at_start(self):
        self.assertEqual(self.get("/unverified")[:3:2], (200, b"selfsigned"))
        self.assertIn("unverified: tls.verify is false", self.gw.stderr())

    def test_client_certificate_to_the_upstream(self):
        self.assertEqual(self.get("/mtls")[:3:2], (200, b"mtls"))
        self.assert_tls_error("/mtls_without_cert", "tls_protocol_error")

    def test_config_dump_shows_the_tls_keys(self):
        status, _, body = http_request("127.0.0.1", self.gw.admin_port(), "GET", "/config")
        self.assertEqual(status, 200)
        cfg = json.loads(body)
        self.assertEqual(cfg["upstreams"]["good"]["tls"]["ca_file"], p("ca.pem"))
        self.assertFalse(cfg["upstreams"]["unverified"]["tls"]["verify"])
        tls = [entry for entry in cfg["listen"] if isinstance(entry, dict)][0]["tls"]
        self.assertEqual(tls["min_version"], "1.2")
        self.assertEqual(tls["handshake_timeout"], "1000ms")


class WebSocketOverTls(unittest.TestCase):
    def test_tunnel_with_tls_on_both_sides(self):
        origin = TlsOrigin(p("localhost.pem"), p("localhost.key"), "ws")
        gw = Gateway(gateway_config({"app": f"url: {origin.url}\ntls: {{ ca_file: {p('ca.pem')} }}"}))
        try:
            c = TlsClient(tls_port(gw))
            c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 101)
            for msg in (b"first", b"second" * 1000):
                c.send(msg)
                got = c.buf
                c.buf = b""
                while len(got) < len(msg):
                    got += c.sock.recv(65536)
                self.assertEqual(got, msg)
            c.close()
        finally:
            gw.stop()
            origin.stop()

    def test_tunnel_with_a_tls_client(self):
        def handler(req, idx):
            if b"Upgrade: websocket" not in req:
                return OK

            def echo(sock):
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                while True:
                    data = sock.recv(65536)
                    if not data:
                        return
                    sock.sendall(data)
            return echo

        up = ScriptedUpstream(handler)
        gw = Gateway(gateway_config({"app": f"url: {up.url}"}))
        try:
            c = TlsClient(tls_port(gw))
            c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 101)
            c.send(b"ping-through-tls")
            got = c.buf
            while len(got) < len(b"ping-through-tls"):
                got += c.sock.recv(100)
            self.assertEqual(got, b"ping-through-tls")
            c.close()
        finally:
            gw.stop()


if __name__ == "__main__":
    unittest.main()
