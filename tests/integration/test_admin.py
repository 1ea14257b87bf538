"""Issue 6: admin endpoints, Prometheus metrics, hot reload (also under load), readiness on drain."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (GATEWAY_BIN, DemoApi, Gateway, RawClient, ScriptedUpstream, http_request, response_bytes,
                     wait_until)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config(demo_url, admin_port=0, extra_routes=""):
    """admin_port 0: the admin listener takes a free port itself (Gateway.admin_port() reads
    it), so no other process can take it between choosing and binding it."""
    return f"""
listen: 127.0.0.1:0
threads: 2
admin:
  listen: 127.0.0.1:{admin_port}
limits:
  drain_timeout: 10s
telemetry:
  subcode_labels: [agent_not_found, channel_not_found]  # label values; other subcodes count as `other`
upstreams:
  legacy:
    url: {demo_url}
    timeout: 5s
routes:
  - name: limited
    match: {{ prefix: /limited }}
    upstream: legacy
    strip_prefix: true
    rate_limit: {{ limit: 1000, window: 60s, key: client_ip }}
  - name: legacy
    match: {{ prefix: / }}
    upstream: legacy
{extra_routes}
"""


class AdminEndpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.demo = DemoApi()
        cls.gw = Gateway(config(cls.demo.url))
        cls.admin_port = cls.gw.admin_port()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.demo.stop()

    def admin(self, method, path):
        return http_request("127.0.0.1", self.admin_port, method, path)

    def test_healthz_and_readyz(self):
        self.assertEqual(self.admin("GET", "/healthz")[0], 200)
        # /readyz may say 503 in the instant between the admin listener starting and the workers
        # running (right: not ready yet); once started it must say 200.
        self.assertTrue(wait_until(lambda: self.admin("GET", "/readyz")[0] == 200, timeout=20, step=0.02))
        self.assertEqual(self.admin("GET", "/nope")[0], 404)
        self.assertEqual(self.admin("POST", "/healthz")[0], 405)

    def test_metrics_count_requests_rewrites_failures(self):
        for path in ("/ok", "/flat/not-found", "/nested/channel-not-found", "/text/404", "/limited/ok"):
            self.gw.request("GET", path)
        # Requests are counted once their response went out: scrape until the last one is in.
        last = re.compile(r'problemgate_requests_total\{route="limited",method="GET",code="200",status_class="2xx"\} [1-9]')
        self.assertTrue(wait_until(lambda: last.search(self.admin("GET", "/metrics")[2].decode()), timeout=10))
        status, headers, body = self.admin("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = body.decode()
        self.assertRegex(text, r'problemgate_requests_total\{route="legacy",method="GET",code="200",status_class="2xx"\} [1-9]')
        self.assertRegex(text, r'problemgate_requests_total\{route="legacy",method="GET",code="404",status_class="4xx"\} [1-9]')
        self.assertRegex(text, r'problemgate_rewritten_errors_total\{route="legacy",dialect="flat",code="resource_not_found",subcode="agent_not_found"\} [1-9]')
        self.assertRegex(text, r'problemgate_rewritten_errors_total\{route="legacy",dialect="nested",code="resource_not_found",subcode="channel_not_found"\} [1-9]')
        self.assertRegex(text, r'problemgate_unrecognised_bodies_total\{route="legacy"\} [1-9]')
        self.assertRegex(text, r'problemgate_rate_limit_decisions_total\{route="limited",decision="allowed"\} [1-9]')
        self.assertRegex(text, r'problemgate_request_duration_seconds_bucket\{route="legacy",status_class="2xx",le="60"\} [1-9]')
        self.assertRegex(text, r'problemgate_request_duration_seconds_bucket\{route="legacy",status_class="2xx",le="\+Inf"\} [1-9]')
        self.assertRegex(text, r'problemgate_upstream_connections_opened_total\{upstream="legacy"\} [1-9]')
        self.assertIn("problemgate_client_connections ", text)
        self.assertIn('problemgate_config_reloads_total{result="success"}', text)
        # Every sample line is NAME{labels} VALUE, and every family has HELP and TYPE.
        families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$')
            name = re.match(r"^([a-z_]+)", line).group(1)
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in families or base in families, name)

    def test_metrics_pass_promtool_when_available(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool (Debian package prometheus) not installed")
        self.gw.request("GET", "/ok")
        _, _, body = self.admin("GET", "/metrics")
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

    def test_a_real_prometheus_scrapes_it(self):
        prom = shutil.which("prometheus")
        if not prom:
            self.skipTest("prometheus (Debian package) not installed")
        self.gw.request("GET", "/flat/not-found")
        d = tempfile.mkdtemp(prefix="pg-prom-")
        port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: problemgate
    static_configs:
      - targets: ["127.0.0.1:{self.admin_port}"]
""")
        proc = subprocess.Popen([prom, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            value = None
            while time.time() < deadline:
                time.sleep(0.5)
                try:
                    status, _, body = http_request(
                        "127.0.0.1", port, "GET",
                        "/api/v1/query?query=sum(problemgate_rewritten_errors_total%7Bsubcode%3D%22agent_not_found%22%7D)")
                except OSError:
                    continue
                if status != 200:
                    continue
                result = json.loads(body)["data"]["result"]
                if result:
                    value = float(result[0]["value"][1])
                    break
            self.assertIsNotNone(value, "prometheus never scraped the metric")
            self.assertGreaterEqual(value, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            shutil.rmtree(d, ignore_errors=True)

    def test_config_endpoint(self):
        status, headers, body = self.admin("GET", "/config")
        self.assertEqual(status, 200)
        cfg = json.loads(body)
        self.assertEqual([r["name"] for r in cfg["routes"]], ["limited", "legacy"])
        self.assertEqual(cfg["upstreams"]["legacy"]["url"], self.demo.url)
        self.assertEqual(cfg["limits"]["max_header_fields"], 100)


class Reload(unittest.TestCase):
    def test_sighup_and_post_reload_swap_routes_and_reject_bad_files(self):
        demo = DemoApi()
        gw = Gateway(config(demo.url))
        admin_port = gw.admin_port()
        try:
            self.assertEqual(gw.request("GET", "/extra/ok")[0], 404)  # upstream 404 via "/"
            extra = """  - name: extra
    match: { prefix: /extra }
    upstream: nowhere
upstreams_unused: 1
"""
            # Invalid: unknown key and unknown upstream -> rejected, old config stays.
            with open(gw.config_path, "w") as f:
                f.write(config(demo.url, admin_port, extra))
            status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
            self.assertEqual(status, 422)
            self.assertIn(b"/routes/2/upstream", body)
            self.assertEqual(gw.request("GET", "/ok")[0], 200)
            # Valid: a route that sends /gone to an upstream that refuses (bound, not listening).
            dead_sock = socket.socket()
            self.addCleanup(dead_sock.close)
            dead_sock.bind(("127.0.0.1", 0))
            dead = dead_sock.getsockname()[1]
            good = config(demo.url, admin_port, f"""  - name: gone
    match: {{ prefix: /gone }}
    upstream: dead
""").replace("routes:\n", f"  dead:\n    url: http://127.0.0.1:{dead}\nroutes:\n", 1)
            with open(gw.config_path, "w") as f:
                f.write(good)
            gw.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: gw.request("GET", "/gone/x")[0] == 502, timeout=20, step=0.05)
            self.assertEqual(gw.request("GET", "/gone/x")[0], 502)
            # Workers may serve the new routes a moment before the reload thread counts it.
            def reload_counted():
                return 'problemgate_config_reloads_total{result="success"} 1' in http_request(
                    "127.0.0.1", admin_port, "GET", "/metrics")[2].decode()
            wait_until(reload_counted, timeout=20, step=0.05)
            _, _, metrics = http_request("127.0.0.1", admin_port, "GET", "/metrics")
            self.assertRegex(metrics.decode(), r'problemgate_config_reloads_total\{result="failure"\} 1')
            self.assertRegex(metrics.decode(), r'problemgate_config_reloads_total\{result="success"\} 1')
        finally:
            self.assertEqual(gw.stop(), 0)
            demo.stop()

    def test_a_reload_that_changes_listen_threads_or_admin_listen_is_refused_by_name(self):
        """Issue 23: what cannot change live is refused whole (POST /reload's 422 and the log
        name the key), so GET /config keeps showing what runs; restating what runs is fine."""
        demo = DemoApi()
        self.addCleanup(demo.stop)
        gw = Gateway(config(demo.url))
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        extra = """  - name: extra
    match: { prefix: /extra }
    upstream: legacy
"""

        def running_config():
            status, _, body = http_request("127.0.0.1", admin_port, "GET", "/config")
            self.assertEqual(status, 200)
            return json.loads(body)

        def write(text):
            with open(gw.config_path, "w") as f:
                f.write(text)

        good = config(demo.url, admin_port, extra)
        refusal = gw.config_path + ": {key}: cannot change on a reload (runs {runs}, the file says {says}): restart to apply it"

        write(good.replace("threads: 2", "threads: 3"))
        status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
        self.assertEqual(status, 422)
        self.assertEqual(body.decode(), refusal.format(key="/threads", runs=2, says=3) + "\n")
        cfg = running_config()
        self.assertEqual(cfg["threads"], 2)
        self.assertEqual([r["name"] for r in cfg["routes"]], ["limited", "legacy"])  # nothing applied

        write(good.replace("admin:\n  listen: 127.0.0.1:" + str(admin_port), "admin:\n  listen: \"off\""))
        status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
        self.assertEqual(status, 422)
        self.assertEqual(body.decode(), refusal.format(key="/admin/listen", runs=f"127.0.0.1:{admin_port}",
                                                       says="off") + "\n")

        # SIGHUP: the refusal is logged, naming the key.
        other = free_port()
        write(good.replace("listen: 127.0.0.1:0", f"listen: 127.0.0.1:{other}"))
        gw.proc.send_signal(signal.SIGHUP)
        expected = refusal.format(key="/listen", runs=f"127.0.0.1:{gw.port}", says=f"127.0.0.1:{other}")
        self.assertTrue(wait_until(lambda: expected in gw.stderr(), timeout=10), gw.stderr()[-2000:])
        self.assertIn("reload rejected, old config kept: " + expected, gw.stderr())
        self.assertEqual(running_config()["listen"], ["127.0.0.1:0"])

        # The bound ports restated, and keys that may change live (drain.accept_for too): applied.
        write(good.replace("listen: 127.0.0.1:0", f"listen: 127.0.0.1:{gw.port}")
              + "drain: { accept_for: 2s }\n")
        status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
        self.assertEqual(status, 200, body)
        cfg = running_config()
        self.assertEqual([r["name"] for r in cfg["routes"]], ["limited", "legacy", "extra"])
        self.assertEqual(cfg["drain"]["accept_for"], "2000ms")
        self.assertEqual(cfg["threads"], 2)
        _, _, metrics = http_request("127.0.0.1", admin_port, "GET", "/metrics")
        self.assertRegex(metrics.decode(), r'problemgate_config_reloads_total\{result="failure"\} 3')
        self.assertRegex(metrics.decode(), r'problemgate_config_reloads_total\{result="success"\} 1')

    def test_access_log_off_writes_no_lines_and_a_reload_turns_it_on(self):
        demo = DemoApi()
        self.addCleanup(demo.stop)
        gw = Gateway(config(demo.url) + "access_log: off\n")
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        quiet_ids = []
        for path in ("/ok", "/missing"):
            status, headers, _ = gw.request("GET", path)
            self.assertIn(status, (200, 404))
            quiet_ids.append(headers["x-request-id"])
        # Still counted (after the response went out, so a scrape right behind it may not see it).
        counted = re.compile(r'problemgate_requests_total\{[^}]*\} [1-9]')
        self.assertTrue(wait_until(lambda: counted.search(
            http_request("127.0.0.1", admin_port, "GET", "/metrics")[2].decode()), timeout=10))
        with open(gw.config_path, "w") as f:
            f.write(config(demo.url, admin_port) + "access_log: on\n")
        self.assertEqual(http_request("127.0.0.1", admin_port, "POST", "/reload")[0], 200)
        _, headers, _ = gw.request("GET", "/ok")
        loud = headers["x-request-id"]
        # The logger flushes at least once a second: the line of the request after the reload
        # shows that lines are written, and the two before it never were.
        entries = gw.access_log(wait_for=loud)
        ids = {e.get("requestId") for e in entries}
        self.assertIn(loud, ids)
        self.assertFalse(ids & set(quiet_ids), entries)

    def test_a_stalled_stdout_reader_costs_log_lines_never_requests(self):
        # A log shipper that stops reading stdout must not stop the proxy (as a blocked log file
        # stops nginx): past limits.access_log_buffer_bytes lines are dropped and counted.
        demo = DemoApi()
        self.addCleanup(demo.stop)
        gw = Gateway(config(demo.url).replace("limits:\n", "limits:\n  access_log_buffer_bytes: 16KiB\n"))
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        gw.pause_stdout()
        c = RawClient(gw.port)
        ids = []
        # ~300 bytes a line: 4,000 lines are ~1.2 MiB, far past the 64 KiB pipe and the queue.
        for i in range(4000):
            if i % 500 == 499:  # under limits.max_requests_per_connection (1000)
                c.close()
                c = RawClient(gw.port)
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()  # a stalled log would hang here (the RawClient times out)
            self.assertEqual(r.status, 200, f"request {i}")
            ids.append(r.header("x-request-id"))
        _, _, metrics = http_request("127.0.0.1", admin_port, "GET", "/metrics")
        m = re.search(r"^problemgate_access_log_dropped_total (\d+)$", metrics.decode(), re.M)
        self.assertIsNotNone(m, metrics.decode()[-2000:])
        dropped = int(m.group(1))
        self.assertGreater(dropped, 0)
        self.assertLess(dropped, 4000)
        # The reader comes back: lines flow again, every one whole (access_log() parses each).
        # (Until the queue has drained, a new line may still be dropped: retry for a while.)
        gw.resume_stdout()
        for _ in range(100):
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            last = c.read_response().header("x-request-id")
            entries = gw.access_log(wait_for=last, timeout=0.5)
            logged = {e.get("requestId") for e in entries}
            if last in logged:
                break
        self.assertIn(last, logged)
        _, _, metrics = http_request("127.0.0.1", admin_port, "GET", "/metrics")
        dropped = int(re.search(r"^problemgate_access_log_dropped_total (\d+)$", metrics.decode(), re.M).group(1))
        # Every one of the 4,000 lines was either written or counted as dropped.
        self.assertGreaterEqual(len(logged & set(ids)) + dropped, 4000)

    def test_reload_20_times_under_load_loses_nothing(self):
        demo = DemoApi()
        self.addCleanup(demo.stop)
        gw = Gateway(config(demo.url))
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        stop = threading.Event()
        results = {"ok": 0, "bad": [], "errors": []}
        lock = threading.Lock()

        def load():
            c = RawClient(gw.port)
            while not stop.is_set():
                try:
                    c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                    r = c.read_response()
                    with lock:
                        if r.status == 200:
                            results["ok"] += 1
                        else:
                            results["bad"].append(r.status)
                    if r.header("Connection", "").lower() == "close":
                        c.close()
                        c = RawClient(gw.port)
                except Exception as e:  # noqa: BLE001 - any failure is a lost request
                    with lock:
                        results["errors"].append(repr(e))
                    c.close()
                    c = RawClient(gw.port)
            c.close()

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for i in range(20):
                extra = "" if i % 2 else f"""  - name: extra{i}
    match: {{ prefix: /extra{i} }}
    upstream: legacy
"""
                with open(gw.config_path, "w") as f:
                    f.write(config(demo.url, admin_port, extra))
                with lock:
                    before = results["ok"]
                status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
                self.assertEqual(status, 200, body)
                # Let requests run against this config before the next swap: however slow the
                # machine, every reload overlaps traffic (a fixed pause did not guarantee it).
                self.assertTrue(wait_until(lambda: results["ok"] >= before + 8 or results["bad"] or results["errors"],
                                           timeout=30),
                                f"no requests completed after reload {i}")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        self.assertEqual(results["errors"], [])
        self.assertEqual(results["bad"], [])
        self.assertGreater(results["ok"], 100)


class Readiness(unittest.TestCase):
    def test_readyz_is_503_while_draining(self):
        # The upstream holds the in-flight request until the test has seen /readyz say 503, so
        # the drain lasts as long as the test needs, however slow the machine.
        arrived, release = threading.Event(), threading.Event()

        def handler(req, idx):
            arrived.set()
            release.wait(60)
            return response_bytes(200, b"slow")

        up = ScriptedUpstream(handler)
        self.addCleanup(up.stop)
        self.addCleanup(release.set)
        gw = Gateway(config(up.url).replace("timeout: 5s", "timeout: 60s"))
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        # Ready once started (a 503 in the instant before the workers run is right, too).
        self.assertTrue(wait_until(lambda: http_request("127.0.0.1", admin_port, "GET", "/readyz")[0] == 200,
                                   timeout=20, step=0.02))
        result = {}

        def slow():
            try:
                result["r"] = gw.request("GET", "/slow", timeout=60)
            except Exception as e:  # noqa: BLE001 - reported below
                result["r"] = (repr(e),)

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(arrived.wait(20), "the request never reached the upstream")
        gw.proc.send_signal(signal.SIGTERM)
        seen = []

        def ready_status():
            seen.append(http_request("127.0.0.1", admin_port, "GET", "/readyz")[0])
            return seen[-1] == 503

        self.assertTrue(wait_until(ready_status, timeout=20, step=0.02), f"/readyz answered {seen[-5:]}")
        self.assertEqual(http_request("127.0.0.1", admin_port, "GET", "/healthz")[0], 200)
        self.assertIsNone(gw.proc.poll(), "still draining while the request is in flight")
        release.set()
        t.join(timeout=30)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(gw.proc.wait(timeout=30), 0)


def listener_port(gw, kind, timeout=20.0):
    """The port of the '<kind> listening on HOST:PORT' line ('admin' or 'probes')."""
    pattern = re.compile(rf"{kind} listening on (\S+):(\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(gw.stderr_lines):
            m = pattern.match(line.strip())
            if m:
                return int(m.group(2))
        if gw.proc.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError(f"problemgate did not print '{kind} listening on': {gw.stderr_lines[:5]}")


def wait_for_stderr(gw, pattern, timeout=20.0):
    """The first match of `pattern` in the gateway's stderr (diagnostics), waiting for it."""
    found = []

    def seen():
        m = re.search(pattern, gw.stderr())
        if m:
            found.append(m)
        return bool(m)

    wait_until(seen, timeout=timeout, step=0.02)
    return found[0] if found else None


TOKEN = "s3cr3t-0123456789abcdef-XYZ"


class AdminSurface(unittest.TestCase):
    """Issue 23: the probes split from the controls; the controls on loopback or behind a token."""

    @classmethod
    def setUpClass(cls):
        cls.demo = DemoApi()

    @classmethod
    def tearDownClass(cls):
        cls.demo.stop()

    def start(self, cfg=None, args=None, env=None):
        gw = Gateway(cfg, args=args, env=env)
        self.addCleanup(gw.stop)
        return gw

    def test_probes_listener_serves_probes_and_metrics_only(self):
        gw = self.start(config(self.demo.url).replace(
            "admin:\n  listen: 127.0.0.1:0\n", "admin:\n  listen: 127.0.0.1:0\n  probes_listen: 127.0.0.1:0\n"))
        probes, admin = listener_port(gw, "probes"), listener_port(gw, "admin")
        self.assertNotEqual(probes, admin)
        self.assertEqual(http_request("127.0.0.1", probes, "GET", "/healthz")[0], 200)
        self.assertTrue(wait_until(lambda: http_request("127.0.0.1", probes, "GET", "/readyz")[0] == 200,
                                   timeout=20, step=0.02))
        gw.request("GET", "/ok")
        status, headers, body = http_request("127.0.0.1", probes, "GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"problemgate_requests_total", body)
        # The controls are not there at all: 404, whatever the method.
        for method, path in (("GET", "/config"), ("POST", "/reload"), ("GET", "/reload"), ("POST", "/config")):
            status, _, body = http_request("127.0.0.1", probes, method, path)
            self.assertEqual(status, 404, (method, path))
            self.assertNotIn(b"/config", body)
        # ... and are on the controls listener (no token configured: loopback only).
        self.assertEqual(http_request("127.0.0.1", admin, "GET", "/config")[0], 200)
        self.assertEqual(http_request("127.0.0.1", admin, "GET", "/readyz")[0], 200)
        self.assertEqual(http_request("127.0.0.1", probes, "POST", "/healthz")[0], 405)

    def test_token_guards_the_controls_and_only_them(self):
        d = tempfile.mkdtemp(prefix="pg-token-")
        self.addCleanup(shutil.rmtree, d, True)
        token_file = os.path.join(d, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")  # trimmed: a trailing newline is fine
        cfg = config(self.demo.url).replace(
            "admin:\n  listen: 127.0.0.1:0\n", f"admin:\n  listen: 127.0.0.1:0\n  token_file: {token_file}\n")
        gw = self.start(cfg)
        port = gw.admin_port()
        for method, path in (("GET", "/config"), ("POST", "/reload")):
            status, headers, _ = http_request("127.0.0.1", port, method, path)
            self.assertEqual(status, 401, (method, path, "no header"))
            self.assertTrue(headers["www-authenticate"].startswith("Bearer"), headers)
            for bad in ("Bearer wrong-token-0123456789", "Bearer " + TOKEN + "x", "Bearer " + TOKEN[:-1],
                        "Basic " + TOKEN, "Bearer", TOKEN):
                status, headers, _ = http_request("127.0.0.1", port, method, path, headers={"Authorization": bad})
                self.assertEqual(status, 401, (method, path, bad))
                self.assertTrue(headers["www-authenticate"].startswith("Bearer"), headers)
        good = {"Authorization": "Bearer " + TOKEN}
        status, _, body = http_request("127.0.0.1", port, "GET", "/config", headers=good)
        self.assertEqual(status, 200)
        self.assertNotIn(TOKEN.encode(), body)
        self.assertEqual(json.loads(body)["admin"]["token_file"], token_file)
        self.assertEqual(http_request("127.0.0.1", port, "GET", "/config",
                                      headers={"Authorization": "bearer  " + TOKEN})[0], 200)  # scheme: any case
        self.assertEqual(http_request("127.0.0.1", port, "POST", "/reload", headers=good)[0], 200)
        # Probes and metrics never ask for it.
        self.assertEqual(http_request("127.0.0.1", port, "GET", "/healthz")[0], 200)
        self.assertEqual(http_request("127.0.0.1", port, "GET", "/metrics")[0], 200)
        # A refused token is logged at warn, with the peer; the token never reaches the log.
        self.assertIsNotNone(wait_for_stderr(gw, r"warn(?:ing)? admin: POST /reload from 127\.0\.0\.1:\d+: 401, wrong bearer token"))
        self.assertIsNotNone(wait_for_stderr(gw, r"warn(?:ing)? admin: GET /config from 127\.0\.0\.1:\d+: 401, no bearer token"))
        self.assertIsNotNone(wait_for_stderr(gw, r"info admin: POST /reload from 127\.0\.0\.1:\d+: 200"))
        self.assertNotIn(TOKEN, gw.stderr())

    def run_refused(self, args, cfg_text=None):
        """Runs the binary expecting a start-up refusal; returns (stdout, stderr)."""
        cmd = [GATEWAY_BIN]
        if cfg_text is not None:
            d = tempfile.mkdtemp(prefix="pg-refuse-")
            self.addCleanup(shutil.rmtree, d, True)
            path = os.path.join(d, "c.yaml")
            with open(path, "w") as f:
                f.write(cfg_text)
            cmd += ["--config", path]
        r = subprocess.run(cmd + args, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # Refused while loading the config: nothing was bound, not even the proxy's listener.
        self.assertNotIn("listening on", r.stdout + r.stderr)
        return r.stdout, r.stderr

    def test_non_loopback_controls_without_a_token_refuse_to_start(self):
        cfg = config(self.demo.url).replace("admin:\n  listen: 127.0.0.1:0\n", "admin:\n  listen: 0.0.0.0:0\n")
        _, err = self.run_refused([], cfg)
        self.assertIn("/admin/listen: 0.0.0.0:0 is not a loopback address", err)
        self.assertIn("admin.token_file", err)
        # The same from flags alone, and from the environment.
        _, err = self.run_refused(["--listen", "127.0.0.1:0", "--upstream", self.demo.url, "--admin", "0.0.0.0:0"])
        self.assertIn("/admin/listen: 0.0.0.0:0 is not a loopback address", err)
        r = subprocess.run([GATEWAY_BIN, "--listen", "127.0.0.1:0", "--upstream", self.demo.url],
                           env=dict(os.environ, PROBLEMGATE_ADMIN="[::]:0"), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("/admin/listen: [::]:0 is not a loopback address", r.stderr)
        # check-config says so too.
        d = tempfile.mkdtemp(prefix="pg-check-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "c.yaml"), "w") as f:
            f.write(cfg)
        r = subprocess.run([GATEWAY_BIN, "check-config", os.path.join(d, "c.yaml")], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not a loopback address", r.stderr)

    def test_admin_and_probes_flags_zero_config(self):
        # --admin 127.0.0.1:0: a zero-config instance on a free admin port.
        gw = self.start(args=["--listen", "127.0.0.1:0", "--upstream", self.demo.url, "--admin", "127.0.0.1:0",
                              "--probes", "127.0.0.1:0"])
        port, probes = gw.admin_port(), listener_port(gw, "probes")
        self.assertEqual(http_request("127.0.0.1", port, "GET", "/config")[0], 200)
        self.assertEqual(http_request("127.0.0.1", probes, "GET", "/healthz")[0], 200)
        self.assertEqual(http_request("127.0.0.1", probes, "GET", "/config")[0], 404)
        self.assertEqual(gw.request("GET", "/ok")[0], 200)
        # Two zero-config instances side by side with --admin off (and one via the environment).
        a = self.start(args=["--listen", "127.0.0.1:0", "--upstream", self.demo.url, "--admin", "off"])
        b = self.start(args=["--listen", "127.0.0.1:0", "--upstream", self.demo.url],
                       env={"PROBLEMGATE_ADMIN": "off"})
        for g in (a, b):
            self.assertEqual(g.request("GET", "/ok")[0], 200)
            self.assertIsNone(g.proc.poll())
            self.assertFalse(any("admin listening" in line for line in g.stderr_lines), g.stderr_lines)

    def test_flags_override_the_files_admin_addresses(self):
        cfg = config(self.demo.url).replace(
            "admin:\n  listen: 127.0.0.1:0\n", "admin:\n  listen: 127.0.0.1:0\n  probes_listen: 127.0.0.1:0\n")
        gw = self.start(cfg, args=["--admin", "off"], env={"PROBLEMGATE_PROBES": "off"})
        self.assertEqual(gw.request("GET", "/ok")[0], 200)
        time.sleep(0.2)  # the admin lines would come right after 'listening on'
        self.assertFalse(any("admin listening" in line or "probes listening" in line for line in gw.stderr_lines),
                         gw.stderr_lines)
        # A reload re-applies the flags: admin stays off (and the reload itself succeeds).
        gw.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for_stderr(gw, r"SIGHUP: config reloaded"))

    def test_control_requests_are_logged_with_the_peer(self):
        gw = self.start(config(self.demo.url))
        port = gw.admin_port()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            peer_port = s.getsockname()[1]
            s.sendall(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply)
        self.assertIsNotNone(wait_for_stderr(
            gw, rf"info admin: POST /reload from 127\.0\.0\.1:{peer_port}: 200, config reloaded"), gw.stderr())
        http_request("127.0.0.1", port, "GET", "/config")
        self.assertIsNotNone(wait_for_stderr(gw, r"info admin: GET /config from 127\.0\.0\.1:\d+: 200"))
        # A rejected reload is logged with its outcome too.
        with open(gw.config_path, "w") as f:
            f.write(config(self.demo.url) + "bogus_key: 1\n")
        self.assertEqual(http_request("127.0.0.1", port, "POST", "/reload")[0], 422)
        self.assertIsNotNone(wait_for_stderr(gw, r"admin: POST /reload from 127\.0\.0\.1:\d+: 422"))
        # Probes are not control requests: not logged.
        http_request("127.0.0.1", port, "GET", "/healthz")
        self.assertNotIn("/healthz", gw.stderr())

    def test_sighup_without_a_config_file_warns(self):
        gw = self.start(args=["--listen", "127.0.0.1:0", "--upstream", self.demo.url, "--admin", "127.0.0.1:0"])
        port = gw.admin_port()
        gw.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for_stderr(gw, r"warn(?:ing)? SIGHUP: no config file to reload \(started from flags\)"),
                             gw.stderr())
        self.assertIsNone(gw.proc.poll())
        self.assertEqual(gw.request("GET", "/ok")[0], 200)
        status, _, body = http_request("127.0.0.1", port, "POST", "/reload")
        self.assertEqual(status, 422)
        self.assertIn(b"no config file to reload", body)


if __name__ == "__main__":
    unittest.main()
