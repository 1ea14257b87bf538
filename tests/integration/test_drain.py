"""Issue 23 item 1: a drain (SIGTERM) or a reload (SIGHUP) under keep-alive load drops no
request: every response finished during the drain says Connection: close, so no client sends a
request on a connection about to close, and drain.accept_for keeps the listeners open a while."""
import signal
import socket
import threading
import time
import unittest

from harness import Gateway, RawClient, ScriptedUpstream, response_bytes, sidecar_config, wait_until

SLOW = 0.3  # seconds the upstream takes per request, as in the scenario
CLIENTS = 30


def slow_upstream():
    def handler(req, idx):
        time.sleep(SLOW)
        return response_bytes(200, b"ok")
    return ScriptedUpstream(handler)


class LoopingClients:
    """CLIENTS keep-alive connections, each looping GET /slow until the gateway says
    Connection: close (then the client stops: it would reconnect elsewhere) or `stop` is set.
    A connection that ends without a response to a request sent on it is a failure."""

    def __init__(self, port):
        self.port = port
        self.ok = 0
        self.closed_by_server = 0
        self.failures = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            c = RawClient(self.port, timeout=30)
        except OSError as e:
            with self.lock:
                self.failures.append(f"client {i}: connect: {e!r}")
            return
        try:
            while not self.stop.is_set():
                c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    r = c.read_response()
                except Exception as e:  # noqa: BLE001 - a dropped request is what is counted
                    with self.lock:
                        self.failures.append(f"client {i}: no response: {e!r}")
                    return
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"client {i}: status {r.status}")
                if (r.header("connection") or "").lower() == "close":
                    with self.lock:
                        self.closed_by_server += 1
                    return
        finally:
            c.close()

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))


class DrainUnderLoad(unittest.TestCase):
    def test_sigterm_under_keep_alive_load_drops_nothing(self):
        up = slow_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url, limits="  drain_timeout: 20s\n"), keep_access_log=False)
        self.addCleanup(gw.stop)
        clients = LoopingClients(gw.port)
        self.assertTrue(wait_until(lambda: clients.ok >= 2 * CLIENTS, timeout=30), "load never started")
        gw.proc.send_signal(signal.SIGTERM)
        clients.join()
        self.assertEqual(gw.proc.wait(timeout=30), 0)
        self.assertEqual(clients.failures, [])
        # Every connection was told to close by a response, none was cut off.
        self.assertEqual(clients.closed_by_server, CLIENTS)

    def test_sighup_under_keep_alive_load_drops_nothing(self):
        up = slow_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url), keep_access_log=False)
        self.addCleanup(gw.stop)
        clients = LoopingClients(gw.port)
        self.assertTrue(wait_until(lambda: clients.ok >= CLIENTS, timeout=30), "load never started")
        for _ in range(5):
            gw.proc.send_signal(signal.SIGHUP)
            time.sleep(0.2)
        done = clients.ok
        self.assertTrue(wait_until(lambda: clients.ok >= done + 2 * CLIENTS, timeout=30))
        clients.stop.set()
        clients.join()
        self.assertEqual(clients.failures, [])
        self.assertEqual(clients.closed_by_server, 0)  # a reload closes nothing

    def test_request_racing_the_drain_on_an_idle_connection_is_served(self):
        up = slow_upstream()
        self.addCleanup(up.stop)
        gw = Gateway(sidecar_config(up.url), keep_access_log=False)
        self.addCleanup(gw.stop)
        c = RawClient(gw.port)
        self.addCleanup(c.close)
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        # The next request leaves right as the drain begins.
        gw.proc.send_signal(signal.SIGTERM)
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("connection"), "close")
        self.assertTrue(c.is_closed())
        self.assertEqual(gw.proc.wait(timeout=30), 0)


class AcceptFor(unittest.TestCase):
    def test_listeners_stay_open_for_accept_for_while_readyz_says_503(self):
        up = ScriptedUpstream(lambda req, idx: response_bytes(200, b"ok"))
        self.addCleanup(up.stop)
        config = sidecar_config(up.url, extra="drain: { accept_for: 1500ms }\n").replace(
            'admin:\n  listen: "off"', "admin:\n  listen: 127.0.0.1:0")
        gw = Gateway(config)
        self.addCleanup(gw.stop)
        admin = gw.admin_port()
        gw.proc.send_signal(signal.SIGTERM)
        self.assertTrue(wait_until(lambda: _status(admin, "/readyz") == 503, timeout=10))
        # Still accepting: a new connection is served, once, with Connection: close.
        c = RawClient(gw.port)
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("connection"), "close")
        # After the window the listener is closed and the gateway exits.
        self.assertEqual(gw.proc.wait(timeout=30), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()


def _status(port, path):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = s.recv(100)
        s.close()
        return int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


if __name__ == "__main__":
    unittest.main()
