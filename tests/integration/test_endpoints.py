"""Issue 21, upstream half: several endpoints per upstream, balancing, passive outlier
ejection, active health checks with panic routing, retries with a budget, and DNS
re-resolution. Every endpoint is a real origin process (origin.py) on a loopback port."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

from harness import Gateway, ScriptedUpstream, _read_listening_line, http_request, refused_port, wait_until

ORIGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "origin.py")


class Origin:
    """One origin.py process. `wait=False` returns at once; ready() then waits for it (start
    several in parallel: an interpreter's start-up is most of a test's time on a busy box)."""

    def __init__(self, name, port=0, host="127.0.0.1", delay=0.0, wait=True):
        self.name = name
        self.host = host
        self.delay = delay
        self._spawn(port)
        if wait:
            self.ready()

    def _spawn(self, port):
        cmd = [sys.executable, "-S", ORIGIN, "--name", self.name, "--host", self.host, "--port", str(port)]
        if self.delay:
            cmd += ["--delay", str(self.delay)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def _start(self, port):
        self._spawn(port)
        self.ready()

    def ready(self):
        _, self.port = _read_listening_line(self.proc, f"origin {self.name}")
        self.url = f"http://{self.host}:{self.port}"
        self.label = f"{self.host}:{self.port}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    def restart(self):
        self._start(self.port)

    def set_health(self, status):
        http_request(self.host, self.port, "GET", f"/__health/{status}")


def config(endpoints, upstream_extra="", threads=1):
    eps = ", ".join(endpoints)
    return f"""
listen: 127.0.0.1:0
threads: {threads}
admin:
  listen: 127.0.0.1:0
upstreams:
  app:
    endpoints: [{eps}]
    connect_timeout: 1s
    timeout: 5s
{upstream_extra}
routes:
  - name: app
    match: {{ prefix: / }}
    upstream: app
"""


def metric(gw, name, **labels):
    """The value of one sample of /metrics (0 when absent)."""
    _, _, body = http_request("127.0.0.1", gw.admin_port(), "GET", "/metrics")
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0
    for line in body.decode().splitlines():
        if not line.startswith(name + "{"):
            continue
        lbl = line[len(name) + 1:line.index("}")]
        if all(f'{k}="{v}"' in lbl.split(",") for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def origin_of(body):
    return json.loads(body)["origin"]


class EndpointTest(unittest.TestCase):
    def setUp(self):
        self.origins = []
        self.gw = None
        self.cleanups = []

    def tearDown(self):
        if self.gw:
            self.gw.stop()
        for o in self.origins:
            o.kill()
        for c in self.cleanups:
            c()

    def start_origins(self, n, **kw):
        started = [Origin(f"o{i}", wait=False, **kw) for i in range(n)]
        for o in started:
            o.ready()
        self.origins += started
        return started

    def get(self, path="/", method="GET", body=None):
        return http_request("127.0.0.1", self.gw.port, method, path, body=body)

    # ------------------------------------------------------------------ balancing

    def test_round_robin_spreads_evenly(self):
        origins = self.start_origins(3)
        self.gw = Gateway(config([o.url for o in origins]))
        seen = {}
        ids = []
        for _ in range(30):
            status, headers, body = self.get()
            self.assertEqual(status, 200)
            seen[origin_of(body)] = seen.get(origin_of(body), 0) + 1
            ids.append(headers["x-request-id"])
        self.assertEqual(seen, {"o0": 10, "o1": 10, "o2": 10})
        # The access log names the endpoint each request went to.
        entries = [e for e in self.gw.access_log(wait_for=ids) if e.get("path") == "/"]
        self.assertEqual({e["endpoints"] for e in entries}, {o.label for o in origins})

    def test_least_request_avoids_the_busy_endpoint(self):
        slow = Origin("slow", delay=0.3, wait=False)
        fast = Origin("fast", wait=False)
        slow.ready()
        fast.ready()
        self.origins += [slow, fast]
        self.gw = Gateway(config([slow.url, fast.url], "    lb: least_request"))
        seen = {"slow": 0, "fast": 0}
        lock = threading.Lock()

        def client():
            for _ in range(10):
                status, _, body = self.get()
                self.assertEqual(status, 200)
                with lock:
                    seen[origin_of(body)] += 1

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(seen["slow"] + seen["fast"], 60)
        # Round robin would give each 30; least request keeps sending to the idle one.
        self.assertGreater(seen["fast"], 2 * seen["slow"], seen)

    # ------------------------------------------------------------------ failover

    def test_endpoint_killed_under_load_fails_no_idempotent_request(self):
        origins = self.start_origins(3)
        extra = """    outlier: { consecutive_failures: 3, ejection_time: 1s, max_ejected_percent: 50 }
    retries: { attempts: 2, budget_percent: 50, budget_reserve: 20 }"""
        self.gw = Gateway(config([o.url for o in origins], extra, threads=2), keep_access_log=True)
        failures = []
        seen = {}
        stop = threading.Event()
        lock = threading.Lock()

        def load():
            conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
            while not stop.is_set():
                try:
                    conn.request("GET", "/load")
                    r = conn.getresponse()
                    body = r.read()
                    with lock:
                        if r.status != 200:
                            failures.append((r.status, body))
                        else:
                            seen[origin_of(body)] = seen.get(origin_of(body), 0) + 1
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        failures.append(repr(e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
            conn.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: sum(seen.values()) >= 200))
        victim = origins[1]
        victim.kill()
        at_kill = sum(seen.values())
        self.assertTrue(wait_until(lambda: sum(seen.values()) >= at_kill + 800, timeout=60))
        self.assertGreaterEqual(metric(self.gw, "problemgate_upstream_ejections_total", upstream="app"), 1)
        # Back: the same port answers again and the endpoint returns to rotation on its own.
        victim.restart()
        before = seen.get("o1", 0)
        self.assertTrue(wait_until(lambda: seen.get("o1", 0) > before + 20, timeout=30))
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        ejections = metric(self.gw, "problemgate_upstream_ejections_total", upstream="app")
        retried = metric(self.gw, "problemgate_upstream_endpoint_retries_total", upstream="app")
        self.assertGreaterEqual(retried, 1)
        # Requests that tried the dead endpoint first and moved on: each ejection took
        # consecutive_failures (3) of them, plus at most one per load client in flight (4).
        total = sum(seen.values())
        load_entries = lambda: [e for e in self.gw.access_log() if e.get("path") == "/load"]
        self.assertTrue(wait_until(lambda: len(load_entries()) >= total))
        entries = load_entries()
        moved_on = [e for e in entries if e["endpoints"].split(" ")[:-1].count(victim.label)]
        self.assertLessEqual(len(moved_on), (3 + 4) * ejections, (len(moved_on), ejections))
        self.assertTrue(all(e["status"] == 200 for e in entries))
        print(f"\n[failover] requests {len(entries)}, failed 0, ejections {int(ejections)}, "
              f"retried {int(retried)}, requests that met the dead endpoint {len(moved_on)}", file=sys.stderr)

    def test_connect_failure_retries_a_buffered_post_but_a_reset_only_idempotent_requests(self):
        refused_sock, refused = refused_port()
        self.cleanups.append(refused_sock.close)
        good = Origin("good")
        self.origins.append(good)
        self.gw = Gateway(config([f"http://127.0.0.1:{refused}", good.url], "    outlier: { consecutive_failures: 0 }"))
        for _ in range(4):
            status, _, body = self.get("/p", "POST", b'{"a":1}')
            self.assertEqual(status, 200)
            self.assertEqual(origin_of(body), "good")

        # An endpoint that accepts and resets before answering.
        def reset(conn):
            conn.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
        resetter = ScriptedUpstream(lambda req, idx: reset)
        self.cleanups.append(resetter.stop)
        self.gw.stop()
        self.gw = Gateway(config([resetter.url, good.url], "    outlier: { consecutive_failures: 0 }"))
        gets = [self.get("/g") for _ in range(4)]
        self.assertEqual([s for s, _, _ in gets], [200] * 4)
        posts = [self.get("/p", "POST", b"x") for _ in range(4)]
        self.assertEqual(sorted(s for s, _, _ in posts), [200, 200, 502, 502])
        bad = [h for s, h, _ in posts if s == 502][0]
        self.assertIn(f'error=connection_terminated; next-hop="127.0.0.1:{resetter.port}"', bad["proxy-status"])
        # PUT is idempotent but retried after a reset only when configured.
        puts = [self.get("/u", "PUT") for _ in range(4)]
        self.assertEqual(sorted(s for s, _, _ in puts), [200, 200, 502, 502])
        self.gw.stop()
        self.gw = Gateway(config([resetter.url, good.url],
                                 "    outlier: { consecutive_failures: 0 }\n    retries: { methods: [GET, PUT] }"))
        puts = [self.get("/u", "PUT") for _ in range(4)]
        self.assertEqual([s for s, _, _ in puts], [200] * 4)

    def test_retry_budget_when_every_endpoint_refuses(self):
        socks = [refused_port() for _ in range(3)]
        for s, _ in socks:
            self.cleanups.append(s.close)
        urls = [f"http://127.0.0.1:{p}" for _, p in socks]
        extra = """    outlier: { consecutive_failures: 0 }
    retries: { attempts: 2, budget_percent: 20, budget_reserve: 2 }"""
        self.gw = Gateway(config(urls, extra))
        n = 50
        ids = []
        for _ in range(n):
            status, headers, body = self.get("/x")
            ids.append(headers["x-request-id"])
            self.assertEqual(status, 502)
            self.assertRegex(headers["proxy-status"], r'^problemgate; error=connection_refused; next-hop="127\.0\.0\.1:\d+"$')
        retried = metric(self.gw, "problemgate_upstream_endpoint_retries_total", upstream="app", reason="connect_failure")
        exhausted = metric(self.gw, "problemgate_upstream_retry_budget_exhausted_total", upstream="app")
        # Without a budget: 2 retries per request (100). With it: the reserve plus 20 %.
        self.assertLessEqual(retried, 2 + n * 20 // 100)
        self.assertGreaterEqual(retried, 2)
        self.assertGreater(exhausted, 0)
        entries = [e for e in self.gw.access_log(wait_for=ids) if e.get("path") == "/x"]
        self.assertEqual(len(entries[0]["endpoints"].split(" ")), 3)  # the reserve: tried all three
        self.assertEqual(len(entries[-1]["endpoints"].split(" ")), 1)

    # ------------------------------------------------------------------ health checks

    def test_health_checks_take_out_503_endpoints_and_panic_when_all_fail(self):
        origins = self.start_origins(3)
        extra = """    health_check: { path: /healthz, interval: 100ms, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 2 }"""
        self.gw = Gateway(config([o.url for o in origins], extra))
        origins[1].set_health(503)
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_upstream_endpoint_state", upstream="app",
                                                  endpoint=origins[1].label, state="unhealthy") == 1))
        seen = {origin_of(self.get()[2]) for _ in range(20)}
        self.assertEqual(seen, {"o0", "o2"})
        self.assertEqual(metric(self.gw, "problemgate_upstream_panic", upstream="app"), 0)
        for o in origins:
            o.set_health(503)
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_upstream_panic", upstream="app") == 1))
        results = [self.get() for _ in range(30)]
        self.assertEqual({s for s, _, _ in results}, {200})
        self.assertEqual({origin_of(b) for _, _, b in results}, {"o0", "o1", "o2"})  # panic: all of them
        self.assertGreaterEqual(metric(self.gw, "problemgate_upstream_panic_requests_total", upstream="app"), 30)
        origins[2].set_health(200)
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_upstream_panic", upstream="app") == 0))
        self.assertEqual({origin_of(self.get()[2]) for _ in range(10)}, {"o2"})
        self.assertGreater(metric(self.gw, "problemgate_upstream_health_checks_total", upstream="app", result="failed"), 0)

    # ------------------------------------------------------------------ DNS

    def test_dns_re_resolution_follows_changing_answers(self):
        a = Origin("a", host="127.0.0.1")
        b = Origin("b", host="127.0.0.2", port=a.port)  # the same port on another address
        self.origins += [a, b]
        d = tempfile.mkdtemp(prefix="pg-hosts-")
        hosts = os.path.join(d, "hosts")

        def answer(text):
            tmp = hosts + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, hosts)

        answer("127.0.0.1 svc.test\n")
        self.gw = Gateway(config([f"http://svc.test:{a.port}"], "    resolve: 100ms"),
                          env={"PROBLEMGATE_HOSTS_FILE": hosts})
        self.assertEqual({origin_of(self.get()[2]) for _ in range(5)}, {"a"})
        answer("127.0.0.2 svc.test\n")
        self.assertTrue(wait_until(lambda: origin_of(self.get()[2]) == "b"))
        self.assertEqual({origin_of(self.get()[2]) for _ in range(5)}, {"b"})
        answer("127.0.0.1 svc.test\n127.0.0.2 svc.test\n")
        self.assertTrue(wait_until(lambda: len({origin_of(self.get()[2]) for _ in range(4)}) == 2))
        # A failed lookup keeps the last good set, and says so once.
        os.remove(hosts)
        self.assertTrue(wait_until(lambda: metric(self.gw, "problemgate_upstream_resolve_failures_total", upstream="app") >= 3))
        self.assertEqual({origin_of(self.get()[2]) for _ in range(4)}, {"a", "b"})
        self.assertEqual(self.gw.stderr().count("keeping the last good endpoint set"), 1)


if __name__ == "__main__":
    unittest.main()
