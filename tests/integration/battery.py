"""Shared pieces of the reliability battery (issue 7): a strict HTTP/1.1 request parser for the
bytes an upstream captured, an optional second opinion from h11, a stdlib JSON-Schema subset
validator, and small socket helpers. Stdlib only (h11 is used when importable)."""
import subprocess
import shutil
import base64
import json
import os
import re
import socket
import time

try:  # Debian's python3-h11; the tests fall back to the strict parser alone without it.
    import h11  # noqa: F401
    HAVE_H11 = True
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_H11 = False

TOKEN_RE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
REQUEST_LINE_RE = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e\x80-\xff]+) HTTP/1\.1$")
FIELD_VALUE_BAD_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
CHUNK_LINE_RE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
GENERATED_ID_RE = re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$")


class StrictError(Exception):
    pass


class Incomplete(Exception):
    pass


class ParsedRequest:
    def __init__(self, method, target, headers, body, framing):
        self.method = method
        self.target = target
        self.headers = headers  # list of (lower-case name bytes, value bytes)
        self.body = body
        self.framing = framing  # "none" | "length" | "chunked"

    def get_all(self, name):
        name = name.lower().encode() if isinstance(name, str) else name.lower()
        return [v for k, v in self.headers if k == name]

    def get(self, name):
        v = self.get_all(name)
        return v[0].decode("latin-1") if v else None

    def key(self):
        return (self.method, self.target, tuple(self.headers), self.body)


def parse_requests_strict(data):
    """Parses `data` as a sequence of HTTP/1.1 requests as a proxy must emit them: CRLF only,
    no obs-fold, exactly one framing (one Content-Length or `Transfer-Encoding: chunked`),
    chunk lines without extensions, no trailers. Returns (requests, leftover) where leftover
    is a trailing incomplete request (possible when the proxy aborted a body); raises
    StrictError on anything else."""
    reqs = []
    pos = 0
    while pos < len(data):
        try:
            req, pos = _parse_one(data, pos)
        except Incomplete:
            return reqs, data[pos:]
        reqs.append(req)
    return reqs, b""


def _line(data, pos):
    end = data.find(b"\r\n", pos)
    if end < 0:
        if b"\n" in data[pos:]:
            raise StrictError("bare LF")
        raise Incomplete()
    line = data[pos:end]
    if b"\n" in line or b"\r" in line:
        raise StrictError("bare CR/LF inside a line")
    return line, end + 2


def _parse_one(data, pos):
    line, pos = _line(data, pos)
    m = REQUEST_LINE_RE.match(line)
    if not m:
        raise StrictError(f"bad request line {line[:80]!r}")
    method, target = m.group(1), m.group(2)
    headers = []
    while True:
        line, pos = _line(data, pos)
        if line == b"":
            break
        if line[:1] in (b" ", b"\t"):
            raise StrictError("obs-fold")
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.match(name):
            raise StrictError(f"bad field line {line[:80]!r}")
        value = value.strip(b" \t")
        if FIELD_VALUE_BAD_RE.search(value):
            raise StrictError("control character in a field value")
        headers.append((name.lower(), value))
    cls = [v for k, v in headers if k == b"content-length"]
    tes = [v for k, v in headers if k == b"transfer-encoding"]
    if cls and tes:
        raise StrictError("Content-Length and Transfer-Encoding")
    if len(cls) > 1:
        raise StrictError("several Content-Length fields")
    if len(tes) > 1 or (tes and tes[0] != b"chunked"):
        raise StrictError(f"Transfer-Encoding other than exactly chunked: {tes!r}")
    hosts = [v for k, v in headers if k == b"host"]
    if len(hosts) != 1:
        raise StrictError(f"{len(hosts)} Host fields")
    if tes:
        body = b""
        while True:
            line, pos = _line(data, pos)
            if not CHUNK_LINE_RE.match(line):
                raise StrictError(f"bad chunk line {line[:40]!r}")
            size = int(line, 16)
            if size == 0:
                line, pos = _line(data, pos)
                if line != b"":
                    raise StrictError("trailer fields forwarded")
                break
            if len(data) < pos + size + 2:
                raise Incomplete()
            body += data[pos:pos + size]
            if data[pos + size:pos + size + 2] != b"\r\n":
                raise StrictError("chunk data not followed by CRLF")
            pos += size + 2
        return ParsedRequest(method, target, headers, body, "chunked"), pos
    if cls:
        if not re.match(rb"^[0-9]{1,18}$", cls[0]):
            raise StrictError(f"bad Content-Length {cls[0]!r}")
        n = int(cls[0])
        if len(data) < pos + n:
            raise Incomplete()
        return ParsedRequest(method, target, headers, data[pos:pos + n], "length"), pos + n
    return ParsedRequest(method, target, headers, b"", "none"), pos


def parse_requests_h11(data, partial_ok=False):
    """The same bytes through h11 (server side). Returns [(method, target, headers, body)] of
    complete requests; raises h11.RemoteProtocolError when h11 refuses them (with partial_ok:
    returns the complete requests before the refused bytes instead)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    out = []
    cur = None
    while True:
        try:
            ev = conn.next_event()
        except h11.RemoteProtocolError:
            if partial_ok:
                return out
            raise
        if ev is h11.NEED_DATA or ev is h11.PAUSED:
            if ev is h11.PAUSED and conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                continue
            break
        if isinstance(ev, h11.Request):
            cur = [ev.method, ev.target, [(k.lower(), v) for k, v in ev.headers], b""]
        elif isinstance(ev, h11.Data):
            cur[3] += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            out.append(tuple(cur))
            conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break  # Connection: close / HTTP/1.0: nothing after this request counts
            conn.start_next_cycle()
        elif isinstance(ev, h11.ConnectionClosed):
            break
    return out


NODE = shutil.which("node")


def node_parse(captures):
    """Node's http parser (llhttp) over each capture: a list of {"requests", "error"} dicts, or
    None when node is not installed."""
    if not NODE or not captures:
        return None
    script = os.path.join(os.path.dirname(__file__), "node_parse.js")
    payload = json.dumps([base64.b64encode(c).decode() for c in captures]).encode()
    r = subprocess.run([NODE, script], input=payload, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise StrictError(f"node_parse.js failed: {r.stderr.decode()[:400]}")
    return json.loads(r.stdout)


def cross_check(data):
    """Strict parse plus (when available) h11: both must see the same complete requests.
    Returns (requests, leftover)."""
    reqs, leftover = parse_requests_strict(data)
    if HAVE_H11:
        complete = data[:len(data) - len(leftover)]
        other = parse_requests_h11(complete)
        mine = [(r.method, r.target, r.headers, r.body) for r in reqs]
        theirs = [(m, t, [(k, v) for k, v in h if k not in (b"transfer-encoding",)], b)
                  for m, t, h, b in other]
        mine_cmp = [(m, t, [(k, v) for k, v in h if k not in (b"transfer-encoding",)], b)
                    for m, t, h, b in mine]
        if theirs != mine_cmp:
            raise StrictError(f"h11 disagrees: {theirs!r} vs {mine_cmp!r}")
    return reqs, leftover


# ----------------------------------------------------------------------------- JSON Schema subset

def validate_schema(instance, schema, path="$"):
    """A validator for the subset of JSON Schema (2020-12) used by problem.schema.json: type,
    properties, required, additionalProperties (bool/schema), items, enum, const, minimum,
    maximum, minLength, maxLength, pattern, minItems, format=uri-reference (loose).
    Returns a list of error strings."""
    errs = []
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_is_type(instance, x) for x in types):
            return [f"{path}: expected {t}, got {type(instance).__name__}"]
    if "const" in schema and instance != schema["const"]:
        errs.append(f"{path}: expected const {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errs.append(f"{path}: {instance!r} not in enum")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errs.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errs.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errs.append(f"{path}: {instance[:60]!r} does not match {schema['pattern']}")
        if schema.get("format") == "uri-reference" and re.search(r"[\s\x00-\x1f\"<>\\^`{|}]", instance):
            errs.append(f"{path}: not a URI reference: {instance[:60]!r}")
    if _is_type(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            errs.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errs.append(f"{path}: above {schema['maximum']}")
    if isinstance(instance, dict):
        for r in schema.get("required", []):
            if r not in instance:
                errs.append(f"{path}: missing {r}")
        props = schema.get("properties", {})
        for k, v in instance.items():
            if k in props:
                errs += validate_schema(v, props[k], f"{path}.{k}")
            else:
                ap = schema.get("additionalProperties", True)
                if ap is False:
                    errs.append(f"{path}: unexpected member {k}")
                elif isinstance(ap, dict):
                    errs += validate_schema(v, ap, f"{path}.{k}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errs.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, v in enumerate(instance):
                errs += validate_schema(v, schema["items"], f"{path}[{i}]")
    return errs


def _is_type(v, t):
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "null":
        return v is None
    raise ValueError(t)


_SCHEMA = None


def problem_schema():
    global _SCHEMA
    if _SCHEMA is None:
        with open(os.path.join(os.path.dirname(__file__), "problem.schema.json")) as f:
            _SCHEMA = json.load(f)
    return _SCHEMA


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
           413: "Content Too Large", 414: "URI Too Long", 422: "Unprocessable Content",
           429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def check_problem_response(test, resp, expected_status=None):
    """C1: a problem response (harness.Response) is valid against the schema, status member ==
    HTTP status, exact Content-Length, request id present and equal to the header."""
    if expected_status is not None:
        test.assertEqual(resp.status, expected_status, resp.body[:300])
    test.assertIn(resp.header("Content-Type"), ("application/problem+json", "application/json"))
    test.assertEqual(int(resp.header("Content-Length", "-1")), len(resp.body))
    p = json.loads(resp.body)
    errs = validate_schema(p, problem_schema())
    test.assertEqual(errs, [], p)
    test.assertEqual(p["status"], resp.status)
    test.assertEqual(p["requestId"], resp.header("X-Request-Id"))
    if p.get("type", "about:blank") == "about:blank" and resp.status in REASONS:
        # The spec's catalog may choose its own title; RFC 9457 only asks for a summary. Our
        # titles for about:blank are the reason phrases; tolerate the older RFC 7231 names.
        test.assertIn(p["title"], (REASONS[resp.status], resp.reason,
                                   {413: "Payload Too Large", 422: "Unprocessable Entity"}.get(resp.status)))
    return p


# ----------------------------------------------------------------------------- sockets

def recv_until_closed(sock, timeout=3.0, limit=1 << 24):
    """Reads until EOF; returns (bytes, closed)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while len(out) < limit:
            d = sock.recv(65536)
            if not d:
                return out, True
            out += d
    except (ConnectionResetError, BrokenPipeError):
        return out, True
    except socket.timeout:
        return out, False
    return out, False


def get_until_closed(port, path="/x", timeout=30):
    """One GET on a fresh connection, read until the gateway closes it: (bytes, closed, seconds
    until then). For answers that must end in a close (truncated bodies, timeouts)."""
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        t = time.monotonic()
        data, closed = recv_until_closed(s, timeout=timeout)
        return data, closed, time.monotonic() - t
    finally:
        s.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
