"""Issue 20: rate limits shared through Redis (rate_limit_store.type: redis).

Every test starts its own redis-server (Debian's) on a free 127.0.0.1 port, with no persistence,
and the real problemgate binary in front of the bundled demo API. Windows are long (1 h) where a
test counts exactly, so no refill happens while it runs.
"""
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import DemoApi, Gateway, assert_problem, http_request, wait_until

REDIS_BIN = os.environ.get("PROBLEMGATE_REDIS_BIN", "/usr/bin/redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    """A minimal RESP client: enough to inspect and poke the test's Redis."""

    def __init__(self, port, password=None, db=0, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password:
            self.call("AUTH", password)
        if db:
            self.call("SELECT", str(db))

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def close(self):
        self.sock.close()


class RedisServer:
    """redis-server on a free loopback port; stop() and start() keep the port."""

    def __init__(self, password=None):
        self.port = free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="pg-redis-")
        self.proc = None
        self.start()

    def start(self):
        cmd = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", self.dir, "--enable-debug-command", "yes"]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                c = Resp(self.port, self.password, timeout=1.0)
                ok = c.call("PING") == "PONG"
                c.close()
                return ok
            except (OSError, RuntimeError):
                return False
        if not wait_until(up, timeout=10):
            raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def client(self, db=0):
        return Resp(self.port, self.password, db)

    def call(self, *args, db=0):
        c = self.client(db)
        try:
            return c.call(*args)
        finally:
            c.close()

    def url(self, db=0, password=None):
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"


def config(redis_url, limit=100, window="1h", key="route", on_error="allow", timeout="200ms",
           store_type="redis", threads=2, prefix="pgtest:"):
    return f"""
listen: 127.0.0.1:0
threads: {threads}
admin: {{ listen: 127.0.0.1:0 }}
access_log: off
rate_limit_store:
  type: {store_type}
  url: "{redis_url}"
  timeout: {timeout}
  on_error: {on_error}
  key_prefix: "{prefix}"
  pool_size: 2
upstreams:
  app: {{ url: "{{UPSTREAM}}" }}
routes:
  - name: limited
    match: {{ prefix: / }}
    upstream: app
    rate_limit: {{ limit: {limit}, window: {window}, key: {key} }}
"""


def hdrs(h):
    return {k.lower(): v for k, v in h.items()} if isinstance(h, dict) else {k.lower(): v for k, v in h}


def metric(gw, name, labels=""):
    _, _, body = http_request("127.0.0.1", gw.admin_port(), "GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else body
    m = re.search(r"^" + re.escape(name + labels) + r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


class RedisStoreTest(unittest.TestCase):
    def setUp(self):
        self.demo = DemoApi()
        self.redis = []
        self.gateways = []

    def tearDown(self):
        for gw in self.gateways:
            gw.stop()
        for r in self.redis:
            r.stop()
        self.demo.stop()

    def start_redis(self, **kw):
        r = RedisServer(**kw)
        self.redis.append(r)
        return r

    def start_gateway(self, cfg):
        gw = Gateway(cfg.replace("{UPSTREAM}", self.demo.url))
        self.gateways.append(gw)
        return gw

    def get(self, gw, path="/ok", timeout=10.0):
        status, headers, body = gw.request("GET", path, timeout=timeout)
        return status, hdrs(headers), body

    # ------------------------------------------------------------------ exactness

    def test_two_gateways_share_one_quota_exactly(self):
        r = self.start_redis()
        a = self.start_gateway(config(r.url(), limit=100))
        b = self.start_gateway(config(r.url(), limit=100))

        def one(i):
            return self.get(a if i % 2 == 0 else b)

        with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
            results = list(pool.map(one, range(300)))
        admitted = [h for s, h, _ in results if s == 200]
        limited = [h for s, h, _ in results if s == 429]
        self.assertEqual(len(admitted), 100, [s for s, _, _ in results if s not in (200, 429)])
        self.assertEqual(len(limited), 200)
        # Every admitted request saw a different count: exactly 99, 98, ..., 0 between them.
        self.assertEqual(sorted(int(h["x-ratelimit-remaining"]) for h in admitted), list(range(100)))
        for h in admitted + limited:
            self.assertEqual(h["x-ratelimit-limit"], "100")
        for h in limited:
            self.assertEqual(h["x-ratelimit-remaining"], "0")
            self.assertGreaterEqual(int(h["retry-after"]), 1)
        # Both gateways took part, and both count in Redis.
        self.assertGreater(metric(a, "problemgate_rate_limit_store_checks_total", '{result="allowed"}'), 0)
        self.assertGreater(metric(b, "problemgate_rate_limit_store_checks_total", '{result="allowed"}'), 0)

    # ------------------------------------------------------------------ failure policy

    def run_load(self, gw, stop, results):
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                s, h, body = self.get(gw, timeout=10)
                results.append((s, h, body, time.monotonic() - t0))
            except OSError as e:
                results.append((None, {}, str(e).encode(), time.monotonic() - t0))

    def test_redis_stopped_allow_serves_everything_then_enforces_again(self):
        r = self.start_redis()
        gw = self.start_gateway(config(r.url(), limit=100000, on_error="allow", timeout="200ms"))
        self.assertEqual(self.get(gw)[0], 200)
        stop, results = threading.Event(), []
        threads = [threading.Thread(target=self.run_load, args=(gw, stop, results)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        r.stop()
        before = len(results)
        self.assertTrue(wait_until(lambda: len(results) > before + 200, timeout=20))
        # Still ready: with allow the gateway serves.
        self.assertEqual(http_request("127.0.0.1", gw.admin_port(), "GET", "/readyz")[0], 200)
        stop.set()
        for t in threads:
            t.join()
        self.assertTrue(results)
        self.assertEqual([x for x in results if x[0] != 200], [], "failed requests while Redis was down")
        # Served without rate-limit headers while Redis was down: no made-up numbers.
        self.assertTrue(any("x-ratelimit-remaining" not in h for _, h, _, _ in results))
        # Every request was answered, none hung on the dead store (the client gives up at 10 s; a
        # wall-clock bound closer to the 200 ms timeout would fail on a loaded machine).
        self.assertLess(max(d for _, _, _, d in results), 9.0)
        self.assertGreater(metric(gw, "problemgate_rate_limit_store_checks_total", '{result="error"}'), 0)
        self.assertIn("unreachable", gw.stderr())
        # One line for the outage, not one per request.
        self.assertEqual(gw.stderr().count("unreachable"), 1, gw.stderr())

        r.start()
        self.assertTrue(wait_until(lambda: "x-ratelimit-remaining" in self.get(gw)[1], timeout=10))
        self.assertIn("reachable again", gw.stderr())
        self.assertGreater(metric(gw, "problemgate_rate_limit_store_connections", '{state="connected"}'), 0)

    def test_redis_stopped_deny_answers_canonical_503(self):
        r = self.start_redis()
        gw = self.start_gateway(config(r.url(), limit=100000, on_error="deny", timeout="200ms"))
        self.assertEqual(self.get(gw)[0], 200)
        admin = gw.admin_port()
        self.assertEqual(http_request("127.0.0.1", admin, "GET", "/readyz")[0], 200)
        r.stop()
        seen = []
        for _ in range(20):
            t0 = time.monotonic()
            s, h, body = self.get(gw)
            seen.append(time.monotonic() - t0)
            assert_problem(self, s, h, body, 503, code="upstream_unavailable", subcode="gateway_unavailable")
            self.assertIn("problemgate; error=proxy_internal_error", h["proxy-status"])
        self.assertLess(max(seen), 9.0)  # answered, never hung (not a latency bound)
        self.assertEqual(http_request("127.0.0.1", admin, "GET", "/readyz")[0], 503)
        r.start()
        self.assertTrue(wait_until(lambda: self.get(gw)[0] == 200, timeout=10))
        self.assertTrue(wait_until(lambda: http_request("127.0.0.1", admin, "GET", "/readyz")[0] == 200, timeout=10))

    def test_stalled_redis_times_out_and_applies_the_policy(self):
        r = self.start_redis()
        gw = self.start_gateway(config(r.url(), limit=100000, on_error="deny", timeout="100ms"))
        self.assertEqual(self.get(gw)[0], 200)
        stall = threading.Thread(target=lambda: r.call("DEBUG", "SLEEP", "1.5"))
        stall.start()
        time.sleep(0.1)
        statuses = []
        t0 = time.monotonic()
        while stall.is_alive():
            s, h, body = self.get(gw)
            statuses.append(s)
            if s == 503:
                assert_problem(self, s, h, body, 503, code="upstream_unavailable", subcode="gateway_unavailable")
        stall.join()
        self.assertIn(503, statuses)
        self.assertNotIn(None, statuses)
        self.assertGreaterEqual(metric(gw, "problemgate_rate_limit_store_checks_total", '{result="timeout"}'), 1)
        # After a timeout the client backs off: the stall cost one timeout per connection and
        # worker, not one per request (~20 requests took well under 20 x 100 ms each).
        self.assertLess(metric(gw, "problemgate_rate_limit_store_checks_total", '{result="timeout"}'), 8)
        self.assertLess(time.monotonic() - t0, 1.5 + 8.0)  # no request hung past the stall
        # Redis answers again: limits are enforced again.
        self.assertTrue(wait_until(lambda: "x-ratelimit-remaining" in self.get(gw)[1], timeout=10))

    def test_script_reloaded_after_script_flush_and_restart(self):
        r = self.start_redis()
        gw = self.start_gateway(config(r.url(), limit=1000))
        s, h, _ = self.get(gw)
        self.assertEqual(h["x-ratelimit-remaining"], "999")
        c = r.client()
        c.call("SCRIPT", "FLUSH")
        self.assertIn("number_of_cached_scripts:0", c.call("INFO", "memory"))
        loads = metric(gw, "problemgate_rate_limit_store_script_loads_total")
        for want in ("998", "997", "996"):
            s, h, _ = self.get(gw)
            self.assertEqual((s, h.get("x-ratelimit-remaining")), (200, want))
        self.assertIn("number_of_cached_scripts:1", c.call("INFO", "memory"))
        self.assertGreater(metric(gw, "problemgate_rate_limit_store_script_loads_total"), loads)
        c.close()
        # A restart loses the data (no persistence here) and the script: a fresh quota.
        r.stop()
        r.start()
        self.assertTrue(wait_until(lambda: self.get(gw)[1].get("x-ratelimit-remaining") == "999", timeout=10))

    # ------------------------------------------------------------------ keys

    def test_keys_are_prefixed_hash_tagged_fixed_size_and_expire(self):
        r = self.start_redis()
        gw = self.start_gateway(config(r.url(), limit=2, window="1s", key="client_ip"))
        self.assertEqual(self.get(gw)[0], 200)
        c = r.client()
        keys = sorted(c.call("KEYS", "*"))
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(keys[0], "pgtest:{hash_key}")
        self.assertRegex(keys[1], r"^pgtest:\{limited:[0-9a-f]{32}\}$")
        ttl = c.call("PTTL", keys[1])
        self.assertTrue(0 < ttl <= 1000, ttl)  # one window past the last use
        self.assertTrue(wait_until(lambda: c.call("EXISTS", keys[1]) == 0, timeout=5))
        c.close()

    def test_auth_with_password_and_database_selection(self):
        r = self.start_redis(password="s3cret-pass")
        gw = self.start_gateway(config(r.url(db=3, password="s3cret-pass"), limit=5))
        s, h, _ = self.get(gw)
        self.assertEqual((s, h["x-ratelimit-remaining"]), (200, "4"))
        self.assertEqual(r.call("DBSIZE", db=0), 0)
        self.assertEqual(r.call("DBSIZE", db=3), 2)
        # The password never shows in GET /config.
        _, _, body = http_request("127.0.0.1", gw.admin_port(), "GET", "/config")
        self.assertNotIn("s3cret-pass", body.decode() if isinstance(body, bytes) else body)

    def test_wrong_password_is_a_store_failure(self):
        r = self.start_redis(password="right-password")
        gw = self.start_gateway(config(r.url(password="wrong-password"), limit=5, on_error="allow"))
        s, h, _ = self.get(gw)
        self.assertEqual(s, 200)
        self.assertTrue(wait_until(lambda: "AUTH refused" in gw.stderr(), timeout=10), gw.stderr())
        s, h, _ = self.get(gw)
        self.assertNotIn("x-ratelimit-remaining", h)

    def test_reload_switches_between_local_and_redis(self):
        r = self.start_redis()
        cfg_local = config(r.url(), limit=10, store_type="local")
        cfg_redis = config(r.url(), limit=10, store_type="redis")
        gw = self.start_gateway(cfg_local)
        admin = gw.admin_port()

        def reload(cfg):
            with open(gw.config_path + ".tmp", "w") as f:
                f.write(cfg.replace("{UPSTREAM}", self.demo.url))
            os.rename(gw.config_path + ".tmp", gw.config_path)
            status, _, body = http_request("127.0.0.1", admin, "POST", "/reload")
            self.assertEqual(status, 200, body)

        self.assertEqual(self.get(gw)[1]["x-ratelimit-remaining"], "9")
        self.assertEqual(r.call("DBSIZE"), 0)
        reload(cfg_redis)
        # The workers take the new config as they get to it: ask until Redis holds the bucket.
        seen = []
        self.assertTrue(wait_until(lambda: seen.append(self.get(gw)[1]["x-ratelimit-remaining"]) or
                                   r.call("DBSIZE") == 2, timeout=10))
        self.assertEqual(seen[-1], "9")  # Redis: a count of its own, from a full quota
        self.assertEqual(self.get(gw)[1]["x-ratelimit-remaining"], "8")
        local_left = 9 - (len(seen) - 1)
        reload(cfg_local)
        # Back on the local limiter, whose counters of the unchanged route carried over.
        seen = []
        self.assertTrue(wait_until(lambda: seen.append(int(self.get(gw)[1]["x-ratelimit-remaining"])) or
                                   seen[-1] < local_left, timeout=10), seen)
        self.assertEqual(r.call("GET", "pgtest:{hash_key}") is not None, True)

    def test_rediss_is_refused_at_load(self):
        path = os.path.join(tempfile.mkdtemp(prefix="pg-redis-"), "c.yaml")
        with open(path, "w") as f:
            f.write(config("rediss://127.0.0.1:6380/0").replace("{UPSTREAM}", self.demo.url))
        p = subprocess.run([os.environ.get("PROBLEMGATE_BIN", "build/problemgate"), "check-config", path],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/rate_limit_store/url: rediss:// (TLS to Redis) is not supported", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
