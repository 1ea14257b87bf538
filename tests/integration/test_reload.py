"""Issue 24, finding 1: a reload that moves an upstream while requests are in flight.

In-flight requests finish on the snapshot (and the upstream pool) they started with; the old
pool dies with the last of them. Before the fix the worker freed the pool under them: the
process crashed on the first reload that changed an upstream's address with requests in flight.
These tests also run under the ASan build (scripts/test.sh --sanitize), where a use-after-free
aborts the gateway and a leaked pool fails its exit.
"""
import json
import os
import signal
import threading
import time
import unittest

from harness import Gateway, RawClient, ScriptedUpstream, http_request, response_bytes, wait_until


def config(upstream_url, threads=1, admin="off", extra_routes=""):
    return f"""
listen: 127.0.0.1:0
threads: {threads}
admin:
  listen: {admin}
limits:
  drain_timeout: 10s
upstreams:
  app:
    url: {upstream_url}
    connect_timeout: 1s
    timeout: 5s
routes:
  - name: app
    match: {{ prefix: / }}
    upstream: app
{extra_routes}
"""


def named_upstream(name, slow_seconds=0.0):
    """An upstream whose answers name it; requests for /slow... are answered after a delay."""
    def handler(req, _idx):
        if req.startswith(b"GET /slow"):
            time.sleep(slow_seconds)
        return response_bytes(200, name, {"Content-Type": "text/plain"})
    return ScriptedUpstream(handler)


def rewrite_config(gw, text):
    # Written to a temp file and renamed: a reload never reads a half-written file.
    tmp = gw.config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, gw.config_path)


def sighup_and_wait(gw):
    """SIGHUP, then wait until the gateway logged the reload (its workers pick the new snapshot
    up before any connection accepted after that)."""
    gw.proc.send_signal(signal.SIGHUP)
    logged = lambda: "SIGHUP: config reloaded" in gw.stderr() + "".join(gw.log_lines)  # noqa: E731
    if not wait_until(logged, timeout=10):
        raise AssertionError(f"no reload logged: {gw.stderr()[-2000:]}")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def sanitizer_report(gw):
    err = gw.stderr()
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        if marker in err:
            return err
    return None


class ReloadMovesUpstream(unittest.TestCase):
    def stop_cleanly(self, gw):
        """The gateway drains and exits 0: a sanitizer report (abort, leak) would fail it."""
        code = gw.stop()
        self.assertIsNone(sanitizer_report(gw))
        self.assertEqual(code, 0, gw.stderr()[-4000:])

    def test_in_flight_requests_finish_on_the_old_upstream_after_sighup(self):
        # The review's repro: threads: 1, five slow requests in flight, the upstream's port
        # changed, SIGHUP, one more request.
        old = named_upstream("old", slow_seconds=1.0)
        new = named_upstream("new")
        self.addCleanup(old.stop)
        self.addCleanup(new.stop)
        gw = Gateway(config(old.url))
        self.addCleanup(gw.stop)
        results = [None] * 5

        def slow(i):
            try:
                status, _, body = http_request("127.0.0.1", gw.port, "GET", f"/slow/{i}", timeout=15)
                results[i] = (status, body)
            except Exception as e:  # noqa: BLE001 - a dropped connection is the failure under test
                results[i] = ("error", repr(e))

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: len(old.requests) == 5, timeout=10), "5 requests in flight")
        rewrite_config(gw, config(new.url))
        sighup_and_wait(gw)
        status, _, body = http_request("127.0.0.1", gw.port, "GET", "/after", timeout=10)
        for t in threads:
            t.join(timeout=15)
        self.assertIsNone(gw.proc.poll(), f"gateway died: {gw.stderr()[-4000:]}")
        self.assertEqual(results, [(200, b"old")] * 5)
        self.assertEqual((status, body), (200, b"new"))
        self.assertEqual(len(new.requests), 1)
        self.stop_cleanly(gw)

    def test_a_keep_alive_connection_idle_across_the_reload_goes_to_the_new_upstream(self):
        old = named_upstream("old")
        new = named_upstream("new")
        self.addCleanup(old.stop)
        self.addCleanup(new.stop)
        gw = Gateway(config(old.url))
        self.addCleanup(gw.stop)
        c = RawClient(gw.port)
        self.addCleanup(c.close)
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().body, b"old")
        rewrite_config(gw, config(new.url))
        sighup_and_wait(gw)
        c.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().body, b"new")
        c.close()
        self.stop_cleanly(gw)

    def test_an_unchanged_upstream_keeps_its_idle_connection_across_a_reload(self):
        up = named_upstream("same")
        self.addCleanup(up.stop)
        gw = Gateway(config(up.url))
        self.addCleanup(gw.stop)
        self.assertEqual(http_request("127.0.0.1", gw.port, "GET", "/a")[0], 200)
        extra = """  - name: other
    match: { prefix: /other }
    upstream: app
"""
        rewrite_config(gw, config(up.url, extra_routes=extra))
        sighup_and_wait(gw)
        self.assertEqual(http_request("127.0.0.1", gw.port, "GET", "/b")[0], 200)
        self.assertEqual(up.connections, 1, "the pooled connection was reused after the reload")
        self.stop_cleanly(gw)

    def test_50_reloads_alternating_ports_under_load_lose_nothing_and_leak_nothing(self):
        a = named_upstream("a", slow_seconds=0.3)
        b = named_upstream("b", slow_seconds=0.3)
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        gw = Gateway(config(a.url, threads=2, admin="127.0.0.1:0"), keep_access_log=False)
        self.addCleanup(gw.stop)
        admin_port = gw.admin_port()
        stop = threading.Event()
        lock = threading.Lock()
        results = {"ok": 0, "by": {b"a": 0, b"b": 0}, "problems": [], "bad": [], "errors": []}

        def record(status, headers, body):
            with lock:
                if status == 200 and body in results["by"]:
                    results["ok"] += 1
                    results["by"][body] += 1
                elif status >= 500 and headers.get("content-type") == "application/problem+json":
                    results["problems"].append(json.loads(body)["code"])
                else:
                    results["bad"].append((status, body[:200]))

        def keep_alive_client(path):
            # Many requests per connection: most are read with a snapshot taken before the
            # reload they overlap.
            c = RawClient(gw.port)
            while not stop.is_set():
                try:
                    c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    r = c.read_response()
                    record(r.status, {k.lower(): v for k, v in r.headers}, r.body)
                    if (r.header("Connection") or "").lower() == "close":
                        c.close()
                        c = RawClient(gw.port)
                except Exception as e:  # noqa: BLE001 - any failure is a dropped request
                    with lock:
                        results["errors"].append(repr(e))
                    c.close()
                    c = RawClient(gw.port)
            c.close()

        def one_shot_client(path):
            while not stop.is_set():
                try:
                    record(*http_request("127.0.0.1", gw.port, "GET", path, timeout=10))
                except Exception as e:  # noqa: BLE001
                    with lock:
                        results["errors"].append(repr(e))

        clients = [threading.Thread(target=client, args=(path,))
                   for client in (keep_alive_client, one_shot_client)
                   for path in ("/fast", "/slow", "/slow")]
        for t in clients:
            t.start()
        fds_at_start = None
        started = time.monotonic()
        try:
            self.assertTrue(wait_until(lambda: results["ok"] >= 20, timeout=20), results)
            fds_at_start = open_fds(gw.proc.pid)
            for i in range(50):
                target = b if i % 2 == 0 else a
                rewrite_config(gw, config(target.url, threads=2, admin="127.0.0.1:0"))
                with lock:
                    before = results["ok"]
                status, _, body = http_request("127.0.0.1", admin_port, "POST", "/reload")
                self.assertEqual(status, 200, body)
                # Some requests complete on every snapshot, so every reload overlaps traffic; the
                # pause makes slow requests (0.3 s) span several reloads.
                self.assertTrue(wait_until(lambda: results["ok"] >= before + 3 or results["errors"], timeout=20),
                                f"no requests completed after reload {i}")
                time.sleep(0.05)
                self.assertIsNone(gw.proc.poll(), f"gateway died at reload {i}: {gw.stderr()[-4000:]}")
                self.assertLess(time.monotonic() - started, 120, "reload loop took too long")
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=15)
        self.assertIsNone(gw.proc.poll(), f"gateway died: {gw.stderr()[-4000:]}")
        self.assertEqual(results["errors"], [])
        self.assertEqual(results["bad"], [])
        self.assertGreater(results["by"][b"a"], 0)
        self.assertGreater(results["by"][b"b"], 0)
        # Old pools close their connections once their last request ended: after 50 reloads and
        # with the clients gone, the gateway holds no more descriptors than under load before
        # the first reload (a leaked pool of each reload would hold one or more).
        self.assertTrue(wait_until(lambda: open_fds(gw.proc.pid) <= fds_at_start, timeout=10),
                        f"fds: {open_fds(gw.proc.pid)} now, {fds_at_start} before the reloads")
        self.stop_cleanly(gw)


if __name__ == "__main__":
    unittest.main()
