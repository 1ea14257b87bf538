"""Test harness: starts the real problemgate binary and real upstreams on 127.0.0.1.

Everything here talks real sockets. Upstreams are either the bundled demo legacy API
(problemgate-demo-api) or a scripted raw-socket upstream (ScriptedUpstream) that records the
exact bytes it receives and answers with whatever bytes a test gives it.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

BUILD_DIR = os.environ.get("PROBLEMGATE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
GATEWAY_BIN = os.environ.get("PROBLEMGATE_BIN", os.path.join(BUILD_DIR, "problemgate"))
DEMO_BIN = os.environ.get("PROBLEMGATE_DEMO_BIN", os.path.join(BUILD_DIR, "problemgate-demo-api"))
# The project's golden corpus (tests/corpus/); CMake passes its path, the default finds it here.
CORPUS_DIR = os.environ.get("PROBLEMGATE_CORPUS_DIR", os.path.join(os.path.dirname(__file__), "..", "corpus"))

REQUEST_ID_RE = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")
PROBLEM_MEMBERS_ORDER = ["type", "title", "status", "detail", "instance", "code", "subcode",
                         "requestId", "traceId", "errors", "retryAfter"]
TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _read_listening_line(proc, what, timeout=20.0, stream=None, seen=None):
    """Reads `stream` (default: stdout; problemgate prints its ready lines on stderr) until
    'listening on HOST:PORT'; returns (host, port). Lines read are appended to `seen`."""
    stream = stream if stream is not None else proc.stdout
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = stream.readline()
        if not line:
            if proc.poll() is not None:
                other = proc.stderr if stream is proc.stdout else proc.stdout
                err = other.read() if other else ""
                raise RuntimeError(f"{what} exited with {proc.returncode}: {''.join(lines)} {err}")
            continue
        lines.append(line)
        if seen is not None:
            seen.append(line)
        m = re.match(r"listening on (\S+):(\d+)", line.strip())
        if m:
            return m.group(1), int(m.group(2))
    raise RuntimeError(f"{what} did not print 'listening on' in time: {lines}")


class DemoApi:
    """The bundled demo legacy API on an ephemeral port."""

    def __init__(self):
        self.proc = subprocess.Popen([DEMO_BIN, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.host, self.port = _read_listening_line(self.proc, "demo api")
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        status, headers, body = http_request("127.0.0.1", self.port, "GET", "/__stats")
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


class Gateway:
    """The real problemgate binary with a config written to a temp file."""

    def __init__(self, config_yaml=None, args=None, env=None, keep_access_log=True):
        """keep_access_log=False: access-log lines are read and dropped (a soak writes tens of
        millions; kept, they would take gigabytes of this process's memory)."""
        self.keep_access_log = keep_access_log
        self.dir = tempfile.mkdtemp(prefix="pg-test-")
        cmd = [GATEWAY_BIN]
        if config_yaml is not None:
            self.config_path = os.path.join(self.dir, "config.yaml")
            with open(self.config_path, "w") as f:
                f.write(config_yaml)
            cmd += ["--config", self.config_path]
        cmd += args or []
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=full_env)
        # Ready lines ('listening on', 'admin listening on') come on stderr with the
        # diagnostics; stdout carries access-log JSON lines only.
        self.stderr_lines = []
        try:
            self.host, self.port = _read_listening_line(self.proc, "problemgate", stream=self.proc.stderr,
                                                        seen=self.stderr_lines)
        finally:
            self._stderr.writelines(self.stderr_lines)
            self._stderr.flush()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()
        self.log_lines = []
        self._reading = threading.Event()  # cleared by pause_stdout(): the pipe is left unread
        self._reading.set()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            self._stderr.write(line)
            self._stderr.flush()

    def _read_stdout(self):
        for line in self.proc.stdout:
            self._reading.wait()
            if self.keep_access_log or not line.startswith("{"):
                self.log_lines.append(line)

    def access_log(self, wait_for=None, timeout=20.0):
        """Parsed access-log lines; waits until there is a line for the request id `wait_for`
        (or for every id, when it is a list). Lines of different connections can be written by
        different worker threads in any order, so wait for each id that is checked."""
        want = [] if wait_for is None else ([wait_for] if isinstance(wait_for, str) else list(wait_for))
        deadline = time.monotonic() + timeout
        while True:
            entries = []
            for line in list(self.log_lines):
                line = line.strip()
                if line.startswith("{"):
                    entries.append(json.loads(line))
            seen = {e.get("requestId") for e in entries}
            if all(w in seen for w in want) or time.monotonic() > deadline:
                return entries
            time.sleep(0.02)

    def pause_stdout(self):
        """Stops reading the gateway's stdout (after the line in hand), as a stalled log
        shipper would: the pipe fills and the gateway's writes to it block."""
        self._reading.clear()

    def resume_stdout(self):
        self._reading.set()

    def admin_port(self, timeout=20.0):
        """The admin listener's real port, from the 'admin listening on HOST:PORT' line (so the
        config can say `admin: { listen: 127.0.0.1:0 }` instead of racing for a free port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr_lines):
                m = re.match(r"admin listening on (\S+):(\d+)", line.strip())
                if m:
                    return int(m.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError(f"problemgate did not print 'admin listening on': {self.stderr_lines[:5]}")

    def request(self, method, path, headers=None, body=None, timeout=10.0):
        return http_request("127.0.0.1", self.port, method, path, headers, body, timeout)

    def connect(self, timeout=10.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self._reading.set()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)
        self._stderr.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()


def sidecar_config(upstream_url, extra="", route_extra="", upstream_extra="", limits=""):
    return f"""
listen: 127.0.0.1:0
threads: 2
admin:
  listen: "off"
{extra}
limits:
  header_timeout: 2s
  body_idle_timeout: 2s
{limits}
upstreams:
  app:
    url: {upstream_url}
    connect_timeout: 1s
    timeout: 2s
{upstream_extra}
routes:
  - name: app
    match: {{ prefix: / }}
    upstream: app
{route_extra}
"""


# ----------------------------------------------------------------------------- raw HTTP

class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


class RawClient:
    """A client connection that reads responses with a small strict parser."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        idx = self.buf.index(marker) + len(marker)
        data, self.buf = self.buf[:idx], self.buf[idx:]
        return data

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_request=False):
        raw_head = self._read_until(b"\r\n\r\n")
        lines = raw_head[:-4].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        status = int(status)
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k, v.strip()))
        r = Response(status, reason[0] if reason else "", headers, b"", raw_head)
        if 100 <= status < 200:
            return r
        if head_request or status in (204, 304):
            return r
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te and te.lower() == "chunked":
            body = b""
            while True:
                size_line = self._read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    self._read_until(b"\r\n")  # no trailers expected
                    break
                body += self._read_exact(size)
                assert self._read_exact(2) == b"\r\n"
            r.body = body
        elif cl is not None:
            r.body = self._read_exact(int(cl))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            r.body, self.buf = self.buf, b""
        return r

    def is_closed(self, timeout=10.0):
        """True when the peer closed the connection (EOF) within timeout. Returns as soon as it
        closes, so a generous timeout costs nothing when it does; asserting that a connection
        stays open needs an explicit short timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_full(port, method, path, headers=None, body=None, timeout=10.0, host="127.0.0.1"):
    """One request on a fresh connection; returns the Response (ordered headers, raw head)."""
    c = RawClient(port, timeout)
    try:
        hdrs = {"Host": f"{host}:{port}", "Connection": "close"}
        hdrs.update(headers or {})
        if body is not None and "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        c.send(head.encode("latin-1") + (body or b""))
        return c.read_response(head_request=(method == "HEAD"))
    finally:
        c.close()


def http_request(host, port, method, path, headers=None, body=None, timeout=10.0):
    """One request on a fresh connection; returns (status, headers dict lowercased, body bytes)."""
    r = request_full(port, method, path, headers, body, timeout, host)
    return r.status, {k.lower(): v for k, v in r.headers}, r.body


# ----------------------------------------------------------------------------- scripted upstream

class ScriptedUpstream:
    """A raw-socket upstream. `handler(request_bytes, conn_index)` returns the bytes to answer
    (or None to answer nothing, or a callable(sock) for custom behaviour). Requests are split by
    a minimal parser (Content-Length / chunked) so keep-alive works. Every connection's raw bytes
    are recorded in `received` (one bytes object per connection)."""

    def __init__(self, handler, keep_alive=True):
        self.handler = handler
        self.keep_alive = keep_alive
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = []
        self.requests = []
        self.connections = 0
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                idx = self.connections
                self.connections += 1
                self.received.append(b"")
            threading.Thread(target=self._serve, args=(conn, idx), daemon=True).start()

    def _serve(self, conn, idx):
        buf = b""
        conn.settimeout(30)
        try:
            while True:
                req, buf = self._read_request(conn, buf, idx)
                if req is None:
                    return
                with self._lock:
                    self.requests.append(req)
                answer = self.handler(req, idx)
                if answer is None:
                    continue
                if callable(answer):
                    answer(conn)
                    return
                conn.sendall(answer)
                if not self.keep_alive:
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _read_request(self, conn, buf, idx):
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None, b""
            with self._lock:
                self.received[idx] += data
            buf += data
        end = buf.index(b"\r\n\r\n") + 4
        head = buf[:end]
        rest = buf[end:]
        lower = head.lower()
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if re.search(rb"\r\ntransfer-encoding:[ \t]*chunked", lower):
            while not re.search(rb"(^|\r\n)0\r\n\r\n", rest):
                data = conn.recv(65536)
                if not data:
                    return None, b""
                with self._lock:
                    self.received[idx] += data
                rest += data
            m2 = re.search(rb"(^|\r\n)0\r\n\r\n", rest)
            end_body = m2.end()
            return head + rest[:end_body], rest[end_body:]
        if m:
            n = int(m.group(1))
            while len(rest) < n:
                data = conn.recv(65536)
                if not data:
                    return None, b""
                with self._lock:
                    self.received[idx] += data
                rest += data
            return head + rest[:n], rest[n:]
        return head, rest

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass


def refused_port():
    """(socket, port): a port that refuses connections for as long as the socket stays open.
    The socket is bound but never listens, so connect() gets a RST, and nothing else can take
    the port in the meantime (a port closed after bind() can be reused by a parallel test)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def wait_until(pred, timeout=20.0, step=0.01):
    """Polls pred() until it is true or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def response_bytes(status, body=b"", headers=None, reason="X"):
    headers = dict(headers or {})
    if isinstance(body, str):
        body = body.encode()
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def assert_problem(test, status, headers, body, expected_status, code=None, subcode=None):
    """Checks a canonical problem response (spec §2)."""
    test.assertEqual(status, expected_status, body)
    ctype = headers.get("content-type", "")
    test.assertIn(ctype, ("application/problem+json", "application/json"))
    test.assertEqual(int(headers.get("content-length", "-1")), len(body))
    p = json.loads(body)
    test.assertEqual(p["status"], expected_status)
    for m in ("type", "title", "code", "requestId"):
        test.assertIn(m, p)
    test.assertEqual(p["requestId"], headers.get("x-request-id"))
    if "traceId" in p:
        test.assertRegex(p["traceId"], TRACE_ID_RE)
    keys = [k for k in p.keys() if k in PROBLEM_MEMBERS_ORDER]
    test.assertEqual(keys, sorted(keys, key=PROBLEM_MEMBERS_ORDER.index), "member order")
    for k, v in p.items():
        test.assertIsNotNone(v, f"member {k} is null")
    if code is not None:
        test.assertEqual(p["code"], code)
    if subcode is not None:
        test.assertEqual(p.get("subcode"), subcode)
    return p
