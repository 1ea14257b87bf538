"""Issue 21, WebSocket and Upgrade: a WebSocket handshake is forwarded with its Upgrade, and only
the upstream's 101 turns the connection into a byte tunnel (never before). Real clients and
servers on loopback: Debian's python3-websockets (asyncio) on both ends of the echo tests, and a
raw-socket RFC 6455 client and scripted upstreams where exact bytes matter."""
import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import signal
import socket
import struct
import threading
import time
import unittest

import websockets

# Peers that drop connections on purpose make the origin's handler log a traceback each time.
logging.getLogger("websockets").setLevel(logging.CRITICAL)

from harness import Gateway, RawClient, ScriptedUpstream, http_request, response_bytes, wait_until

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def config(upstream_url, limits="", routes=None, upstream_extra="", threads=2, rate_limit=""):
    routes = routes or """
  - name: ws
    match: { prefix: / }
    upstream: app
"""
    return f"""
listen: 127.0.0.1:0
threads: {threads}
admin:
  listen: 127.0.0.1:0
limits:
  header_timeout: 2s
{limits}
{rate_limit}
upstreams:
  app:
    url: {upstream_url}
    connect_timeout: 1s
    timeout: 2s
{upstream_extra}
routes:
{routes}
"""


# ----------------------------------------------------------------------------- origins

class EchoOrigin:
    """A real WebSocket server (python3-websockets) in its own thread and event loop.
    /echo echoes every message; /drop echoes one message, then drops the TCP connection without
    a close frame; /silent accepts and never sends. Records each handshake's request headers."""

    def __init__(self):
        self.handshakes = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def handler(ws, path):
            self.handshakes.append((path, {k.lower(): v for k, v in ws.request_headers.raw_items()}))
            if path.startswith("/drop"):
                msg = await ws.recv()
                await ws.send(msg)
                ws.transport.abort()
                return
            if path.startswith("/silent"):
                await ws.wait_closed()
                return
            async for msg in ws:
                await ws.send(msg)

        async def start():
            self.server = await websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                                 ping_interval=None)
            self.port = self.server.sockets[0].getsockname()[1]

        self.loop.run_until_complete(start())
        ready.set()
        self.loop.run_forever()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def upgrade_upstream(after_101=None, upgrade=b"websocket", status_for=None):
    """A scripted upstream answering a WebSocket handshake with a 101 (to `upgrade`), then
    handing the socket to `after_101(sock)`. `status_for(req)` may return other bytes instead."""
    def handler(req, idx):
        if status_for:
            other = status_for(req)
            if other is not None:
                return other
        m = re.search(rb"(?i)\r\nsec-websocket-key:\s*(\S+)", req)
        key = m.group(1).decode() if m else ""

        def answer(sock):
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + upgrade +
                         b"\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key).encode() +
                         b"\r\nX-Origin: scripted\r\n\r\n")
            if after_101:
                after_101(sock)
        return answer
    return ScriptedUpstream(handler)


# ----------------------------------------------------------------------------- raw RFC 6455 client

def handshake(path="/echo", extra=b""):
    key = base64.b64encode(os.urandom(16)).decode()
    return key, (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n").encode() + extra + b"\r\n"


def frame(payload, opcode=0x1):
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(c):
    """(opcode, payload) of one unmasked server frame read from RawClient `c`."""
    b0, b1 = c._read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c._read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c._read_exact(8))[0]
    return b0 & 0x0F, c._read_exact(n)


def open_raw_tunnel(port, path="/echo"):
    c = RawClient(port, timeout=10)
    key, req = handshake(path)
    c.send(req)
    r = c.read_response()
    return c, key, r


def metrics(gw):
    status, _, body = http_request("127.0.0.1", gw.admin_port(), "GET", "/metrics")
    return body.decode()


def metric(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def log_for(gw, rid):
    for e in gw.access_log(wait_for=rid):
        if e.get("requestId") == rid:
            return e
    return None


# ----------------------------------------------------------------------------- tests

class EchoThroughGateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = EchoOrigin()
        cls.gw = Gateway(config(cls.origin.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.origin.stop()

    def test_real_client_echo_both_ways(self):
        async def run():
            # No permessage-deflate: the byte counts below are of the messages as sent.
            async with websockets.connect(f"ws://127.0.0.1:{self.gw.port}/echo", max_size=None,
                                          ping_interval=None, compression=None) as ws:
                rid = ws.response_headers.get("X-Request-Id")
                out = []
                for msg in ["hello", b"\x00\x01binary\xff", "x" * 200_000, b"y" * 70_000]:
                    await ws.send(msg)
                    out.append((msg, await ws.recv()))
                return rid, out
        rid, out = asyncio.run(run())
        for sent, got in out:
            self.assertEqual(sent, got)
        self.assertIsNotNone(rid)
        # The request id went upstream as for any request.
        self.assertTrue(wait_until(lambda: any(h.get("x-request-id") == rid for _, h in self.origin.handshakes)))
        e = log_for(self.gw, rid)
        self.assertEqual(e["status"], 101)
        self.assertEqual(e["upgrade"], "websocket")
        self.assertGreater(e["tunnel_bytes_up"], 270_000)
        self.assertGreater(e["tunnel_bytes_down"], 270_000)
        self.assertIn(e["tunnel_close"], ("client_closed", "upstream_closed"))
        self.assertIn("tunnel_ms", e)
        m = metrics(self.gw)
        self.assertGreaterEqual(metric(m, "problemgate_tunnels_total", route="ws"), 1)
        self.assertTrue(wait_until(lambda: metric(metrics(self.gw), "problemgate_tunnels_open", route="ws") == 0))

    def test_raw_handshake_101_then_frames_both_ways(self):
        c, key, r = open_raw_tunnel(self.gw.port)
        try:
            self.assertEqual(r.status, 101)
            self.assertEqual(r.header("Sec-WebSocket-Accept"), accept_key(key))
            self.assertEqual(r.header("Upgrade").lower(), "websocket")
            self.assertIn("upgrade", r.header("Connection").lower())
            self.assertIsNone(r.header("Content-Length"))
            for payload in (b"one", b"two" * 1000):
                c.send(frame(payload))
                self.assertEqual(read_frame(c), (0x1, payload))
            c.send(frame(struct.pack("!H", 1000), opcode=0x8))
            op, _ = read_frame(c)
            self.assertEqual(op, 0x8)
            self.assertTrue(c.is_closed())
        finally:
            c.close()

    def test_frames_sent_before_the_101_arrive_after_it(self):
        # A client may send its first frame right behind the handshake; it must reach the
        # upstream only after the 101 (it does: nothing is tunnelled before), and not be lost.
        c = RawClient(self.gw.port, timeout=10)
        try:
            key, req = handshake()
            c.send(req + frame(b"early"))
            r = c.read_response()
            self.assertEqual(r.status, 101)
            self.assertEqual(read_frame(c), (0x1, b"early"))
        finally:
            c.close()


class UpgradeDeclined(unittest.TestCase):
    def test_400_instead_of_101_is_an_ordinary_response_and_the_connection_stays_http(self):
        body = b'{"error": "bad_handshake", "message": "no websockets here"}'

        def status_for(req):
            if req.startswith(b"GET /ws"):
                return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body)) + body
            return response_bytes(200, b"plain")
        up = upgrade_upstream(status_for=status_for)
        gw = Gateway(config(up.url))
        try:
            c = RawClient(gw.port, timeout=10)
            key, req = handshake("/ws")
            c.send(req)
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertEqual(r.header("Content-Type"), "application/problem+json")
            p = json.loads(r.body)
            self.assertEqual(p["status"], 400)
            self.assertEqual(p["detail"], "no websockets here")
            self.assertIsNone(r.header("Upgrade"))
            # Same connection, next request: still HTTP.
            c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = c.read_response()
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.body, b"plain")
            c.close()
            # The upstream was asked for the upgrade.
            first = up.requests[0].lower()
            self.assertIn(b"\r\nupgrade: websocket\r\n", first)
            self.assertIn(b"\r\nconnection: upgrade\r\n", first)
            self.assertIn(b"\r\nsec-websocket-key:", first)
        finally:
            gw.stop()
            up.sock.close()

    def test_101_to_another_protocol_is_a_502(self):
        up = upgrade_upstream(upgrade=b"h2c")
        gw = Gateway(config(up.url))
        try:
            c, _, r = open_raw_tunnel(gw.port, "/ws")
            self.assertEqual(r.status, 502)
            self.assertTrue(c.is_closed())
            c.close()
        finally:
            gw.stop()
            up.sock.close()


class NotTunnelled(unittest.TestCase):
    """Upgrades other than a bodyless HTTP/1.1 GET asking for websocket are dropped (hop-by-hop):
    the upstream never sees them, and a 101 it sends anyway is a bad response."""

    @classmethod
    def setUpClass(cls):
        cls.up = upgrade_upstream(status_for=lambda req: response_bytes(200, b"plain")
                                  if b"/plain" in req.split(b"\r\n", 1)[0] else None)
        cls.gw = Gateway(config(cls.up.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.sock.close()

    def forwarded(self, rid):
        for req in list(self.up.requests):
            if rid.encode() in req:
                return req.lower()
        return None

    def test_h2c_is_not_tunnelled(self):
        rid = "h2c-plain"
        c = RawClient(self.gw.port, timeout=10)
        c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Request-Id: " + rid.encode() + b"\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain")
        c.close()
        fwd = self.forwarded(rid)
        self.assertNotIn(b"upgrade", fwd)
        self.assertNotIn(b"http2-settings", fwd)

    def test_h2c_answered_with_101_is_a_502(self):
        c = RawClient(self.gw.port, timeout=10)
        c.send(b"GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 502)
        c.close()

    def test_upgrade_with_a_body_goes_on_as_plain_http(self):
        for method in (b"GET", b"POST"):
            rid = "body-" + method.decode()
            c = RawClient(self.gw.port, timeout=10)
            c.send(method + b" /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   b"Content-Length: 5\r\nX-Request-Id: " + rid.encode() + b"\r\n\r\nhello")
            r = c.read_response()
            self.assertEqual(r.status, 200, method)
            c.close()
            fwd = self.forwarded(rid)
            self.assertNotIn(b"upgrade", fwd)
            self.assertTrue(fwd.endswith(b"\r\n\r\nhello"))

    def test_http10_and_post_upgrades_answered_with_101_are_502(self):
        for line in (b"GET /ws HTTP/1.0", b"POST /ws HTTP/1.1"):
            c = RawClient(self.gw.port, timeout=10)
            c.send(line + b"\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 502, line)
            c.close()


class TunnelEnds(unittest.TestCase):
    def test_upstream_closing_mid_tunnel_closes_the_client(self):
        def after(sock):
            data = sock.recv(65536)  # one client frame
            sock.sendall(b"\x81\x04echo")
            time.sleep(0.05)
            sock.close()
            self.assertTrue(data)
        up = upgrade_upstream(after_101=after)
        gw = Gateway(config(up.url))
        try:
            c, _, r = open_raw_tunnel(gw.port, "/ws")
            self.assertEqual(r.status, 101)
            self.assertEqual(r.header("X-Origin"), "scripted")
            rid = r.header("X-Request-Id")
            c.send(frame(b"ping"))
            self.assertEqual(read_frame(c), (0x1, b"echo"))
            self.assertTrue(c.is_closed())
            c.close()
            e = log_for(gw, rid)
            self.assertEqual(e["tunnel_close"], "upstream_closed")
            self.assertEqual(e["tunnel_bytes_down"], 6)
            m = metrics(gw)
            self.assertEqual(metric(m, "problemgate_tunnels_closed_total", route="ws", reason="upstream_closed"), 1)
            self.assertEqual(metric(m, "problemgate_tunnels_open", route="ws"), 0)
        finally:
            gw.stop()
            up.sock.close()

    def test_real_server_dropping_the_connection(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url))
        try:
            async def run():
                async with websockets.connect(f"ws://127.0.0.1:{gw.port}/drop", ping_interval=None) as ws:
                    await ws.send("once")
                    self.assertEqual(await ws.recv(), "once")
                    with self.assertRaises(websockets.ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 10)
            asyncio.run(run())
        finally:
            gw.stop()
            origin.stop()

    def test_client_idle_past_the_tunnel_timeout_is_closed(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url, limits="  tunnel_idle_timeout: 300ms"))
        try:
            c, _, r = open_raw_tunnel(gw.port, "/silent")
            self.assertEqual(r.status, 101)
            rid = r.header("X-Request-Id")
            self.assertTrue(c.is_closed(timeout=15))
            c.close()
            e = log_for(gw, rid)
            self.assertEqual(e["tunnel_close"], "idle_timeout")
            self.assertEqual(metric(metrics(gw), "problemgate_tunnels_closed_total", route="ws",
                                    reason="idle_timeout"), 1)
        finally:
            gw.stop()
            origin.stop()

    def test_traffic_keeps_an_idle_timeout_from_firing(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url, limits="  tunnel_idle_timeout: 1s"))
        try:
            c, _, r = open_raw_tunnel(gw.port, "/echo")
            self.assertEqual(r.status, 101)
            # Messages every 0.2 s for 3 s: three times the idle timeout, never idle that long.
            for i in range(15):
                c.send(frame(b"m%d" % i))
                self.assertEqual(read_frame(c), (0x1, b"m%d" % i))
                time.sleep(0.2)
            c.close()
        finally:
            gw.stop()
            origin.stop()


class RouteAndLimits(unittest.TestCase):
    def test_websocket_false_route_refuses_with_400(self):
        origin = EchoOrigin()
        routes = """
  - name: nows
    match: { prefix: /nows }
    upstream: app
    websocket: false
  - name: ws
    match: { prefix: / }
    upstream: app
"""
        gw = Gateway(config(origin.url, routes=routes))
        try:
            c, _, r = open_raw_tunnel(gw.port, "/nows/chat")
            self.assertEqual(r.status, 400)
            p = json.loads(r.body)
            self.assertEqual(p["subcode"], "upgrade_not_allowed")
            self.assertEqual(p["code"], "validation_error")
            self.assertIn("error=http_request_denied", r.header("Proxy-Status"))
            # The connection stays HTTP and open (no body was left unread).
            c.send(b"GET /nows/x HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = c.read_response()
            self.assertEqual(r2.status, 426)  # the origin's answer to a plain GET, rewritten
            self.assertEqual(r2.header("Content-Type"), "application/problem+json")
            c.close()
            self.assertFalse(any(p.startswith("/nows") for p, _ in origin.handshakes))
            self.assertEqual(metric(metrics(gw), "problemgate_upgrades_refused_total", route="nows"), 1)
            # The other route still tunnels.
            c, _, r = open_raw_tunnel(gw.port, "/echo")
            self.assertEqual(r.status, 101)
            c.close()
        finally:
            gw.stop()
            origin.stop()

    def test_rate_limit_applies_to_the_upgrade_request(self):
        origin = EchoOrigin()
        routes = """
  - name: ws
    match: { prefix: / }
    upstream: app
    rate_limit: { limit: 1, window: 1m, key: route }
"""
        gw = Gateway(config(origin.url, routes=routes))
        try:
            c1, _, r1 = open_raw_tunnel(gw.port)
            self.assertEqual(r1.status, 101)
            self.assertEqual(r1.header("X-RateLimit-Limit"), "1")
            c2, _, r2 = open_raw_tunnel(gw.port)
            self.assertEqual(r2.status, 429)
            self.assertEqual(json.loads(r2.body)["subcode"], "rate_limit_exceeded")
            # The tunnel that was allowed still works.
            c1.send(frame(b"still here"))
            self.assertEqual(read_frame(c1), (0x1, b"still here"))
            c1.close()
            c2.close()
            self.assertEqual(len(origin.handshakes), 1)
        finally:
            gw.stop()
            origin.stop()

    def test_a_tunnel_holds_one_of_the_upstreams_max_connections(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url, threads=1, upstream_extra="    max_connections: 1"))
        try:
            c1, _, r1 = open_raw_tunnel(gw.port)
            self.assertEqual(r1.status, 101)
            # The tunnel holds the only upstream connection: a second request finds none.
            c2, _, r2 = open_raw_tunnel(gw.port)
            self.assertEqual(r2.status, 503)
            self.assertEqual(json.loads(r2.body)["subcode"], "gateway_unavailable")
            c2.close()
            c1.send(frame(b"x"))
            self.assertEqual(read_frame(c1), (0x1, b"x"))
            c1.close()
            # Closed, the tunnel's upstream connection is gone (never pooled): a new one opens.
            def reopened():
                c3, _, r3 = open_raw_tunnel(gw.port)
                c3.close()
                return r3.status == 101
            self.assertTrue(wait_until(reopened))
        finally:
            gw.stop()
            origin.stop()

    def test_a_tunnel_holds_one_of_the_clients_max_connections(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url, threads=1, limits="  max_connections: 1"))
        try:
            c1, _, r1 = open_raw_tunnel(gw.port)
            self.assertEqual(r1.status, 101)
            c2 = RawClient(gw.port, timeout=10)
            self.assertTrue(c2.is_closed(timeout=10))  # accepted and closed at once
            c2.close()
            c1.send(frame(b"y"))
            self.assertEqual(read_frame(c1), (0x1, b"y"))
            c1.close()
        finally:
            gw.stop()
            origin.stop()


class Drain(unittest.TestCase):
    def test_sigterm_closes_open_tunnels_after_the_drain_timeout(self):
        origin = EchoOrigin()
        gw = Gateway(config(origin.url, limits="  drain_timeout: 1500ms"))
        try:
            c, _, r = open_raw_tunnel(gw.port)
            self.assertEqual(r.status, 101)
            rid = r.header("X-Request-Id")
            gw.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            # Draining, within the drain timeout: the tunnel still carries messages.
            c.send(frame(b"during drain"))
            self.assertEqual(read_frame(c), (0x1, b"during drain"))
            self.assertTrue(c.is_closed(timeout=20))
            c.close()
            self.assertEqual(gw.proc.wait(timeout=20), 0)
            e = log_for(gw, rid)
            self.assertEqual(e["tunnel_close"], "drain")
        finally:
            gw.stop()
            origin.stop()


if __name__ == "__main__":
    unittest.main()
