"""Issue 7, smuggling and framing rows S1, S2, S3, S4, S6 of the reliability battery
(docs/reliability-battery.md), against the real binary over loopback.

S1: every probe goes on a fresh connection, followed by a canary with its own request id on
the same connection when it is still open. The capturing upstream's bytes, per connection,
must parse (strict parser + h11 when installed) as a sequence of complete requests, each
carrying an id the client sent, none twice."""
import base64
import json
import os
import re
import socket
import threading
import time
import unittest

from battery import (HAVE_H11, NODE, StrictError, check_problem_response, cross_check, node_parse,
                     recv_until_closed)
from harness import Gateway, RawClient, ScriptedUpstream, response_bytes, sidecar_config, wait_until

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


def _probe(idx, framing_lines, body=b"", line=b"POST /p HTTP/1.1", host=b"Host: x\r\n"):
    """A request with the id probe-IDX; framing_lines are raw header lines (with CRLF)."""
    return (line + b"\r\n" + host + b"X-Request-Id: probe-%d\r\n" % idx + b"".join(framing_lines) +
            b"\r\n" + body)


def build_probes():
    """(name, bytes) for S1: at least 150, each complete under the RFC 9112 reading."""
    raw = []
    te_values = [b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"\tchunked",
                 b"chunked\t", b"chunked, gzip", b"gzip, chunked", b"xchunked", b"chunkedx",
                 b"chunked;x", b"chunked; q=1", b"chunked, chunked", b"chunked,", b",chunked",
                 b"identity, chunked", b"identity", b"gzip", b"x-gzip", b"", b"chunk",
                 b"\"chunked\"", b"chunked\x0b", b"chunked\x0c", b"chu\x00nked", b"chunked\x00",
                 b"deflate", b"compress", b"br", b"chunked,,", b"cHuNkEd", b"\x85chunked"]
    for te in te_values:
        raw.append((f"TE {te!r}", [b"Transfer-Encoding: " + te + b"\r\n"], CHUNKED_BODY))
        raw.append((f"CL then TE {te!r}", [b"Content-Length: 5\r\n", b"Transfer-Encoding: " + te + b"\r\n"],
                    CHUNKED_BODY))
        raw.append((f"TE {te!r} then CL", [b"Transfer-Encoding: " + te + b"\r\n", b"Content-Length: 15\r\n"],
                    CHUNKED_BODY))
    te_names = [b"transfer-encoding", b"TRANSFER-ENCODING", b"Transfer-Encoding ", b"Transfer-Encoding\t",
                b" Transfer-Encoding", b"Transfer_Encoding", b"Transfer-Encoding\x00", b"X-Transfer-Encoding"]
    for name in te_names:
        # Names that are not Transfer-Encoding frame nothing: the request has no body.
        body = CHUNKED_BODY if name.lower() == b"transfer-encoding" else b""
        raw.append((f"TE name {name!r}", [name + b": chunked\r\n"], body))
        raw.append((f"TE name {name!r} + CL", [b"Content-Length: 5\r\n", name + b": chunked\r\n"], b"hello"))
    dup_te = [(b"chunked", b"chunked"), (b"gzip", b"chunked"), (b"chunked", b"identity"),
              (b"chunked", b""), (b"chunked", b"gzip")]
    for a, b in dup_te:
        raw.append((f"two TE {a!r} {b!r}", [b"Transfer-Encoding: " + a + b"\r\n",
                                           b"Transfer-Encoding: " + b + b"\r\n"], CHUNKED_BODY))
    cl_values = [b"5", b"05", b"+5", b"-5", b"5 ", b" 5", b"5,5", b"5, 5", b"5,6", b"0x5", b"5.0", b"",
                 b"1e1", b"99999999999999999999", b"18446744073709551621", b"5\x00", b"5\x0b", b"five",
                 b"\t5", b"5;", b"00000000000000000000005"]
    for cl in cl_values:
        raw.append((f"CL {cl!r}", [b"Content-Length: " + cl + b"\r\n"], b"hello"))
    for a, b in [(b"5", b"5"), (b"5", b"6"), (b"6", b"5"), (b"5", b"")]:
        raw.append((f"two CL {a!r} {b!r}", [b"Content-Length: " + a + b"\r\n",
                                           b"Content-Length: " + b + b"\r\n"], b"hello"))
    for name in [b"Content-Length ", b"content-length\t", b"Content_Length", b"CONTENT-LENGTH"]:
        raw.append((f"CL name {name!r}", [name + b": 5\r\n"], b"hello"))
    # HTTP/1.0 and chunked.
    for te in [b"chunked", b"Chunked", b"gzip, chunked"]:
        raw.append((f"1.0 TE {te!r}", [b"Transfer-Encoding: " + te + b"\r\n"], CHUNKED_BODY,
                    b"POST /p HTTP/1.0"))
    raw.append(("1.0 CL", [b"Content-Length: 5\r\n"], b"hello", b"POST /p HTTP/1.0"))
    raw.append(("1.0 CL keep-alive", [b"Content-Length: 5\r\n", b"Connection: keep-alive\r\n"], b"hello",
                b"POST /p HTTP/1.0"))
    # Chunked bodies: extensions, sizes, trailers, long lines.
    chunked = [b"Transfer-Encoding: chunked\r\n"]
    bodies = {
        "ext": b"5;ext=1\r\nhello\r\n0\r\n\r\n",
        "ext quoted": b"5;ext=\"a;b\"\r\nhello\r\n0\r\n\r\n",
        "ext empty": b"5;\r\nhello\r\n0\r\n\r\n",
        "ext space": b"5 ;x\r\nhello\r\n0\r\n\r\n",
        "size trailing space": b"5 \r\nhello\r\n0\r\n\r\n",
        "size tab": b"5\t\r\nhello\r\n0\r\n\r\n",
        "size 0x": b"0x5\r\nhello\r\n0\r\n\r\n",
        "size +": b"+5\r\nhello\r\n0\r\n\r\n",
        "size -": b"-5\r\nhello\r\n0\r\n\r\n",
        "size overflow": b"1" + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n",
        "size leading zeros": b"0000000005\r\nhello\r\n0\r\n\r\n",
        "size 9KiB of zeros": b"0" * 9216 + b"5\r\nhello\r\n0\r\n\r\n",
        "ext 9KiB": b"5;" + b"a" * 9216 + b"\r\nhello\r\n0\r\n\r\n",
        "last ext 9KiB": b"5\r\nhello\r\n0;" + b"a" * 9216 + b"\r\n\r\n",
        "bare LF chunk line": b"5\nhello\n0\n\n",
        "bare LF after data": b"5\r\nhello\n0\r\n\r\n",
        "data longer": b"5\r\nhelloXX\r\n0\r\n\r\n",
        "data shorter": b"5\r\nhel\r\n0\r\n\r\n",
        "no CRLF after data": b"5\r\nhello0\r\n\r\n",
        "ext NUL": b"5;a\x00b\r\nhello\r\n0\r\n\r\n",
        "ext CR": b"5;a\rb\r\nhello\r\n0\r\n\r\n",
        "ext bad token": b"5;a b=c\r\nhello\r\n0\r\n\r\n",
        "last chunk ext": b"5\r\nhello\r\n0;x=y\r\n\r\n",
        "trailer CL": b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
        "trailer TE": b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "trailer Host": b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n",
        "trailer Connection": b"5\r\nhello\r\n0\r\nConnection: close\r\n\r\n",
        "trailer X-Request-Id": b"5\r\nhello\r\n0\r\nX-Request-Id: evil\r\n\r\n",
        "trailer obs-fold": b"5\r\nhello\r\n0\r\nX-A: 1\r\n folded\r\n\r\n",
        "trailer bare LF": b"5\r\nhello\r\n0\r\nX-A: 1\n\r\n",
        "trailer no colon": b"5\r\nhello\r\n0\r\nX-A\r\n\r\n",
        "trailer 9KiB": b"5\r\nhello\r\n0\r\nX-A: " + b"a" * 9216 + b"\r\n\r\n",
        "two chunks": b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        "uppercase hex": b"A\r\nhellohello\r\n0\r\n\r\n",
        "zero only": b"0\r\n\r\n",
    }
    for name, body in bodies.items():
        raw.append((f"chunked body: {name}", chunked, body))
    # Field syntax: obs-fold, bare LF/CR, NUL, space before colon, empty names.
    fields = {
        "obs-fold": [b"X-A: 1\r\n folded\r\n"],
        "obs-fold tab": [b"X-A: 1\r\n\tfolded\r\n"],
        "obs-fold on TE": [b"Transfer-Encoding:\r\n chunked\r\n"],
        "obs-fold on CL": [b"Content-Length:\r\n 5\r\n"],
        "bare LF field": [b"X-A: 1\n"],
        "bare CR field": [b"X-A: 1\rX-B: 2\r\n"],
        "NUL in name": [b"X-\x00A: 1\r\n"],
        "NUL in value": [b"X-A: a\x00b\r\n"],
        "CR in name": [b"X-\rA: 1\r\n"],
        "DEL in value": [b"X-A: a\x7fb\r\n"],
        "VT in value": [b"X-A: a\x0bb\r\n"],
        "space before colon": [b"X-A : 1\r\n"],
        "tab before colon": [b"X-A\t: 1\r\n"],
        "empty name": [b": 1\r\n"],
        "no colon": [b"X-A\r\n"],
        "space in name": [b"X A: 1\r\n"],
        "high byte in name": [b"X-\xc3\xa4: 1\r\n"],
        "obs-text value": [b"X-A: \xc3\xa4\r\n"],
        "long value 9KiB": [b"X-A: " + b"a" * 9216 + b"\r\n"],
        "Expect 100": [b"Expect: 100-continue\r\n"],
        "Connection close": [b"Connection: close\r\n"],
        "Connection names CL": [b"Connection: Content-Length\r\n"],
        "Connection names TE": [b"Connection: Transfer-Encoding\r\n"],
        "Upgrade": [b"Connection: Upgrade\r\n", b"Upgrade: websocket\r\n"],
    }
    for name, lines in fields.items():
        raw.append((f"field: {name}", lines + [b"Content-Length: 5\r\n"], b"hello"))
    # Host rules and request lines.
    raw.append(("no Host", [b"Content-Length: 5\r\n"], b"hello", b"POST /p HTTP/1.1", b""))
    raw.append(("two Host", [b"Host: y\r\n", b"Content-Length: 5\r\n"], b"hello"))
    raw.append(("Host space before colon", [b"Content-Length: 5\r\n"], b"hello", b"POST /p HTTP/1.1",
                b"Host : x\r\n"))
    for line in [b"POST  /p HTTP/1.1", b"POST /p  HTTP/1.1", b"POST /p HTTP/1.1 ", b"POST /p HTTP/1.2",
                 b"POST /p HTTP/2.0", b"POST /p http/1.1", b"POST /p\x00 HTTP/1.1", b"POST\t/p HTTP/1.1",
                 b"post /p HTTP/1.1", b"POST http://x/p HTTP/1.1", b"POST /p HTTP/1.1\r", b"POST /p",
                 b"\r\nPOST /p HTTP/1.1", b"POST /p HTTP/01.1", b"P\x00ST /p HTTP/1.1"]:
        raw.append((f"request line {line!r}", [b"Content-Length: 5\r\n"], b"hello", line))
    raw.append(("bare LF request line", [b"Content-Length: 5\r\n"], b"hello", b"POST /p HTTP/1.1\n"))
    probes = []
    for i, item in enumerate(raw):
        name, lines, body = item[0], item[1], item[2]
        line = item[3] if len(item) > 3 else b"POST /p HTTP/1.1"
        host = item[4] if len(item) > 4 else b"Host: x\r\n"
        probes.append((name, _probe(i, lines, body, line, host)))
    # Bare LF at the end of the head.
    probes.append(("bare LF head end", b"GET /p HTTP/1.1\r\nHost: x\r\nX-Request-Id: probe-%d\r\n\n" % len(probes)))
    probes.append(("bare LF everywhere", b"GET /p HTTP/1.1\nHost: x\nX-Request-Id: probe-%d\n\n" % len(probes)))
    return probes


class S1Probes(unittest.TestCase):
    def test_s1_probes_rejected_or_forwarded_unambiguously(self):
        up = ScriptedUpstream(lambda req, idx: OK)
        gw = Gateway(sidecar_config(up.url).replace("body_idle_timeout: 2s", "body_idle_timeout: 1s"))
        try:
            probes = build_probes()
            self.assertGreaterEqual(len(probes), 150)
            sent_ids = set()
            forwarded_ids = set()
            canaries_ok = set()
            outcomes = {"rejected": 0, "forwarded": 0}
            failures = []
            for i, (name, data) in enumerate(probes):
                pid = f"probe-{i}"
                sent_ids.add(pid)
                # Incomplete probes are answered after the 1 s body / 2 s header timeout; 10 s
                # leaves room for a loaded machine.
                c = RawClient(gw.port, timeout=10)
                try:
                    c.send(data)
                    try:
                        r = c.read_response()
                        while 100 <= r.status < 200:  # 100 Continue for Expect
                            r = c.read_response()
                    except (EOFError, ConnectionResetError):
                        failures.append(f"{name}: connection closed without a response")
                        continue
                    except socket.timeout:
                        failures.append(f"{name}: no response in 10 s")
                        continue
                    if r.header("Proxy-Status"):
                        # A local reply: a 4xx problem, then the connection closes.
                        if not (400 <= r.status < 500 or r.status == 501):
                            failures.append(f"{name}: gateway answered {r.status}")
                        try:
                            check_problem_response(self, r)
                        except AssertionError as e:
                            failures.append(f"{name}: bad problem: {e}")
                        if not c.is_closed(10):
                            failures.append(f"{name}: {r.status} but the connection stayed open")
                        outcomes["rejected"] += 1
                        continue
                    if r.status != 200:
                        failures.append(f"{name}: unexpected {r.status}")
                        continue
                    outcomes["forwarded"] += 1
                    forwarded_ids.add(pid)
                    if (r.header("Connection") or "").lower() == "close":
                        if not c.is_closed(10):
                            failures.append(f"{name}: Connection: close but left open")
                        continue
                    cid = f"canary-{i}"
                    sent_ids.add(cid)
                    c.send(b"GET /canary HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n\r\n" % cid.encode())
                    try:
                        r2 = c.read_response()
                    except (EOFError, ConnectionResetError, socket.timeout) as e:
                        failures.append(f"{name}: canary lost ({e!r})")
                        continue
                    head, _, rest = data.partition(b"\r\n\r\n")
                    framed = re.search(rb"\r\n(content-length|transfer-encoding)[ \t]*:", head.lower())
                    if rest and not framed and r2.status == 400 and r2.header("Proxy-Status"):
                        # The client sent bytes its head did not frame ("Content_Length: 5" +
                        # "hello"): they glue onto the canary ("helloGET /canary"), which the
                        # gateway must reject, not forward.
                        if not c.is_closed(10):
                            failures.append(f"{name}: desynced canary rejected but the connection stayed open")
                        continue
                    if r2.status != 200 or r2.header("X-Request-Id") != cid:
                        failures.append(f"{name}: canary got {r2.status} {r2.header('X-Request-Id')}")
                        continue
                    canaries_ok.add(cid)
                finally:
                    c.close()
            gw.stop()
            # Every byte the upstream received: complete requests only, each one the client sent.
            seen = []
            aborted = 0
            # Node's llhttp is the third opinion: on every capture it must see exactly the
            # complete requests our strict parser (and h11) saw, with the same bodies.
            node_views = node_parse(list(up.received))
            for conn_idx, data in enumerate(up.received):
                try:
                    reqs, leftover = cross_check(data)
                except StrictError as e:
                    failures.append(f"upstream connection {conn_idx}: ambiguous bytes: {e}: {data[:400]!r}")
                    continue
                if node_views is not None:
                    nv = node_views[conn_idx]
                    mine = [(r.method.decode(), r.target.decode(), r.get("X-Request-Id"), r.body) for r in reqs]
                    theirs = [(q["method"], q["url"], q["requestId"], base64.b64decode(q["body"]))
                              for q in nv["requests"]]
                    if theirs != mine:
                        failures.append(f"upstream connection {conn_idx}: node sees {theirs!r}, we see {mine!r}")
                    if nv["error"] and not leftover:
                        failures.append(f"upstream connection {conn_idx}: node rejects complete bytes: {nv['error']}")
                if leftover:
                    # A body the gateway stopped relaying (bad chunk framing found mid-stream):
                    # the request stays incomplete and that connection is closed, never reused.
                    aborted += 1
                for req in reqs:
                    rid = req.get("X-Request-Id")
                    if len(req.get_all("X-Request-Id")) != 1:
                        failures.append(f"request with {len(req.get_all('X-Request-Id'))} ids upstream")
                    seen.append(rid)
                    if rid not in sent_ids:
                        failures.append(f"the upstream got a request the client never sent: {req.key()!r}")
                    if any(b";" in v or b"\r" in v for _, v in req.headers):
                        pass  # values are checked by the strict parser already
            self.assertEqual(failures, [], "\n".join(f[:600] for f in failures[:40]))
            dups = {x for x in seen if seen.count(x) > 1}
            self.assertEqual(dups, set(), "requests executed twice upstream")
            missing = (forwarded_ids | canaries_ok) - set(seen)
            self.assertEqual(missing, set(), "answered 200 but never reached the upstream")
            print(f"\nS1: {len(probes)} probes, {outcomes['rejected']} rejected, {outcomes['forwarded']} "
                  f"forwarded, {len(canaries_ok)} canaries, {aborted} bodies aborted mid-stream, h11={'yes' if HAVE_H11 else 'no'}, node={'yes' if NODE else 'no'}")
        finally:
            gw.stop()
            up.stop()


class S2StatusTable(unittest.TestCase):
    TABLE = [
        ("CL+TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("TE+CL", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
        ("unknown coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 501),
        ("1.0+TE", b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("differing CLs", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("two Host", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        ("no Host 1.1", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400),
        ("bare LF", b"GET / HTTP/1.1\nHost: x\n\n", 400),
        # Found by the head-scanner fuzzer: Beast rejects a Connection value that is not a token
        # list after the scanner had said ok; the scanner now rejects it itself.
        ("Connection not a token list", b"GET / HTTP/1.1\r\nHost: x\r\nC: abc\r\nConnection: 0<<<<close\r\n\r\n", 400),
        ("too many fields", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    ]

    @classmethod
    def setUpClass(cls):
        cls.up = ScriptedUpstream(lambda req, idx: OK)
        cls.gw = Gateway(sidecar_config(cls.up.url))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.stop()

    def test_s2_status_table(self):
        for name, data, want in self.TABLE:
            with self.subTest(name):
                c = RawClient(self.gw.port, timeout=5)
                c.send(data)
                r = c.read_response()
                check_problem_response(self, r, want)
                self.assertTrue(r.header("Proxy-Status"))
                self.assertTrue(c.is_closed(10), "connection closed after the rejection")
                c.close()
        self.assertEqual(self.up.requests, [], "nothing reached the upstream")


# ----------------------------------------------------------------------------- S3

def _late(first, later, delay=0.05):
    """An answer that sends `first`, then `later` after `delay` (on the same connection)."""
    def act(sock):
        sock.sendall(first)
        time.sleep(delay)
        try:
            sock.sendall(later)
            time.sleep(0.5)
        except OSError:
            pass
    return act


S3_CASES = {
    # name: (method, answer, acceptable client statuses)
    "CL+TE": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {502}),
    "TE+CL": ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {502}),
    "two equal CLs": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", {502}),
    "two differing CLs": ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", {502}),
    "obs-fold": ("GET", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 5\r\n\r\nhello", {502}),
    "chunked, chunked": ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {502}),
    "gzip, chunked TE": ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {502}),
    "bare LF": ("GET", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", {502}),
    "error status CL+TE": ("GET", b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {502}),
    "204 with body": ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", {204}),
    "204 with late body": ("GET", _late(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", b"hello"), {204}),
    "204 chunked body": ("GET", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", {204, 502}),
    "304 with body": ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello", {304}),
    "304 with late body": ("GET", _late(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", b"hello"), {304}),
    "HEAD with body": ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", {200}),
    "HEAD with late body": ("HEAD", _late(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello"), {200}),
    "HEAD with late response": ("HEAD", _late(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n",
                                              b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison"), {200}),
    "three responses": ("GET", OK + b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison" +
                        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison", {200}),
    "three responses, late": ("GET", _late(OK, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\npoison" * 2), {200}),
}


class S3ResponseSide(unittest.TestCase):
    def test_s3_bad_responses_never_poison_the_pool(self):
        state = {"case": None, "bad_conns": set(), "good_conns": []}

        def handler(req, idx):
            line = req.split(b"\r\n", 1)[0]
            if b"/bad" in line:
                state["bad_conns"].add(idx)
                return S3_CASES[state["case"]][1]
            state["good_conns"].append(idx)
            return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url))
        failures = []
        try:
            for name, (method, _answer, statuses) in S3_CASES.items():
                state["case"] = name
                state["bad_conns"] = set()
                state["good_conns"] = []
                c = RawClient(gw.port, timeout=5)
                c.send(f"{method} /bad HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                try:
                    r = c.read_response(head_request=(method == "HEAD"))
                except (EOFError, ConnectionResetError) as e:
                    failures.append(f"{name}: no response ({e})")
                    c.close()
                    continue
                if r.status not in statuses:
                    failures.append(f"{name}: got {r.status}, want one of {statuses}")
                if r.status == 502:
                    try:
                        check_problem_response(self, r, 502)
                    except AssertionError as e:
                        failures.append(f"{name}: bad problem {e}")
                if b"poison" in r.body or b"hello" in r.body and r.status in (204, 304):
                    failures.append(f"{name}: a body that must not be there reached the client")
                c.close()
                time.sleep(0.15)  # late bytes arrive while the connection would sit in the pool
                # Ten good requests: none may land on the connection that misbehaved, and each
                # gets its own good answer.
                for k in range(10):
                    status, headers, body = gw.request("GET", "/good")
                    if status != 200 or body != b"good":
                        failures.append(f"{name}: the next request got {status} {body[:80]!r}")
                        break
                reused = state["bad_conns"] & set(state["good_conns"])
                if reused:
                    failures.append(f"{name}: the misbehaving upstream connection was reused")
            self.assertEqual(failures, [], "\n".join(failures))
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- S4

S4_ITERATIONS = int(os.environ.get("PG_S4_ITERATIONS", "200"))


class S4LocalRepliesWithSmuggledBody(unittest.TestCase):
    """A local reply (429, 413, 431, 404) to a request whose body is a whole second request:
    the inner request must never reach the upstream (Pingora CVE-2025-4366)."""

    def test_s4_inner_request_never_reaches_upstream(self):
        up = ScriptedUpstream(lambda req, idx: OK)
        routes_extra = """
  - name: limited
    match: { prefix: /limited }
    upstream: app
    rate_limit: { limit: 1, window: 60s, key: client_ip }
  - name: small
    match: { prefix: /small }
    upstream: app
    max_body_bytes: 16
"""
        cfg = sidecar_config(up.url, limits="  max_header_bytes: 4KiB\n").replace(
            "    match: { prefix: / }\n", "    match: { prefix: /api }\n") + routes_extra
        gw = Gateway(cfg)
        try:
            # Use the single token of the rate-limited route.
            status, _, _ = gw.request("GET", "/limited/first")
            self.assertEqual(status, 200)
            big = b"X-Pad: " + b"p" * 5000 + b"\r\n"
            targets = {404: (b"/nowhere", b""), 429: (b"/limited/x", b""), 413: (b"/small/x", b""),
                       431: (b"/api/x", big)}
            counts = {}
            i = 0
            per_case = -(-S4_ITERATIONS // 12)  # at least S4_ITERATIONS runs in all
            for status, (target, extra) in targets.items():
                for framing in ("cl", "chunked", "expect"):
                    for _ in range(per_case):
                        i += 1
                        inner = (b"GET /api/inner HTTP/1.1\r\nHost: x\r\nX-Request-Id: inner-%d\r\n"
                                 b"Content-Length: 0\r\n\r\n" % i)
                        if framing == "chunked":
                            framed = b"Transfer-Encoding: chunked\r\n"
                            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
                        else:
                            framed = b"Content-Length: %d\r\n" % len(inner)
                            body = inner
                            if framing == "expect":
                                framed += b"Expect: 100-continue\r\n"
                        head = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + framed + b"\r\n"
                        c = RawClient(gw.port, timeout=5)
                        try:
                            if framing == "expect" and i % 2 == 0:
                                # Withhold the body until the gateway answered, then send it anyway.
                                c.send(head)
                                r = c.read_response()
                                try:
                                    c.send(body)
                                except OSError:
                                    pass
                            else:
                                c.send(head + body)
                                r = c.read_response()
                            self.assertEqual(r.status, status, (target, framing, r.body[:200]))
                            counts[r.status] = counts.get(r.status, 0) + 1
                            if status != 431:
                                self.assertEqual(r.header("Connection"), "close")
                            self.assertTrue(c.is_closed(10), (status, framing))
                        finally:
                            c.close()
            time.sleep(0.2)
            leaked = [r for r in up.requests if b"/inner" in r.split(b"\r\n", 1)[0]]
            self.assertEqual(leaked, [], "an inner request reached the upstream")
            for data in up.received:
                reqs, _ = cross_check(data)
                for q in reqs:
                    self.assertNotIn(b"/inner", q.target)
            print(f"\nS4: {i} runs, statuses {counts}, 0 inner requests upstream")
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- regressions

class Regressions(unittest.TestCase):
    """Findings of the battery, each with its raw bytes."""

    def test_chunked_upload_ends_with_exactly_one_last_chunk(self):
        # Found by S1: when the client's last chunk arrived in its own read, the forwarder sent
        # an empty chunk ("0\r\n\r\n") and then the real last chunk: the upstream saw a second,
        # bogus request "0\r\n\r\n..." after every such upload (a request desync).
        up = ScriptedUpstream(lambda req, idx: OK)
        # Streaming (request_buffer_bytes: 0): the body must be relayed before it ends.
        gw = Gateway(sidecar_config(up.url, limits="  request_buffer_bytes: 0\n"))
        try:
            c = RawClient(gw.port)
            c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: reg-1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            # The last chunk must arrive in a read of its own: wait until the gateway relayed the
            # data chunk (a fixed pause did not guarantee that on a loaded machine).
            self.assertTrue(wait_until(lambda: b"5\r\nhello\r\n" in b"".join(up.received)),
                            "the data chunk was not relayed before the body ended")
            c.send(b"0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            c.send(b"GET /next HTTP/1.1\r\nHost: x\r\nX-Request-Id: reg-2\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            c.close()
            data = b"".join(up.received)
            reqs, leftover = cross_check(data)
            self.assertEqual([q.get("X-Request-Id") for q in reqs], ["reg-1", "reg-2"])
            self.assertEqual(reqs[0].body, b"hello")
            self.assertEqual(data.count(b"0\r\n\r\n"), 1, data)
            self.assertEqual(leftover, b"")
        finally:
            gw.stop()
            up.stop()

    def test_http10_without_host_goes_upstream_with_one_host(self):
        # Found by S8: "GET / HTTP/1.0" without Host went upstream as HTTP/1.1 without Host, a
        # request every strict HTTP/1.1 server must reject (RFC 9112 section 3.2).
        up = ScriptedUpstream(lambda req, idx: OK)
        gw = Gateway(sidecar_config(up.url))
        try:
            c = RawClient(gw.port)
            c.send(b"GET /h10 HTTP/1.0\r\nX-Request-Id: reg-h10\r\n\r\n")
            r = c.read_response()
            c.close()
            self.assertEqual(r.status, 200)
            reqs, _ = cross_check(b"".join(up.received))
            self.assertEqual(len(reqs), 1)
            self.assertEqual(reqs[0].get_all("host"), [f"127.0.0.1:{up.port}".encode()])
        finally:
            gw.stop()
            up.stop()

    def test_chunked_response_ends_with_exactly_one_last_chunk(self):
        # The same on the response side: the client saw "0\r\n\r\n0\r\n\r\n" and would read the
        # second last chunk as the start of the next response.
        relayed = threading.Event()  # the client has the data chunk: the gateway relayed it

        def answer(req, idx):
            if b"/next" in req.split(b"\r\n", 1)[0]:
                return OK

            def act(sock):
                sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                relayed.wait(20)  # so the last chunk reaches the gateway in a read of its own
                sock.sendall(b"0\r\n\r\n")
                time.sleep(0.2)
            return act

        up = ScriptedUpstream(answer)
        gw = Gateway(sidecar_config(up.url))
        try:
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"ok"):
                d = s.recv(65536)
                if not d:
                    break
                data += d
                if b"5\r\nhello\r\n" in data:
                    relayed.set()
            s.close()
            first, sep, rest = data.partition(b"\r\n\r\n")
            self.assertTrue(rest.startswith(b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200"), rest)
        finally:
            gw.stop()
            up.stop()


# ----------------------------------------------------------------------------- S6

class S6Pipelining(unittest.TestCase):
    def test_s6_fifty_pipelined_requests(self):
        def handler(req, idx):
            head = req.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            rid = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("x-request-id:")]
            body = (rid[0] if rid else "none").encode()
            if head.startswith("HEAD "):
                return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

        up = ScriptedUpstream(handler)
        gw = Gateway(sidecar_config(up.url))
        try:
            reqs = []
            methods = []
            for i in range(50):
                m = ("GET", "HEAD", "POST")[i % 3]
                methods.append(m)
                if m == "POST":
                    body = b"body-%d" % i
                    reqs.append(b"POST /p/%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-%d\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (i, i, len(body), body))
                else:
                    reqs.append(b"%s /p/%d HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-%d\r\n\r\n" % (m.encode(), i, i))
            c = RawClient(gw.port, timeout=10)
            c.send(b"".join(reqs))
            for i, m in enumerate(methods):
                r = c.read_response(head_request=(m == "HEAD"))
                self.assertEqual(r.status, 200, i)
                self.assertEqual(r.header("X-Request-Id"), f"pipe-{i}")
                if m != "HEAD":
                    self.assertEqual(r.body, f"pipe-{i}".encode())
            self.assertFalse(c.is_closed(0.2))
            c.close()
            ids = []
            for data in up.received:
                for q in cross_check(data)[0]:
                    ids.append(q.get("X-Request-Id"))
            self.assertEqual(sorted(ids), sorted(f"pipe-{i}" for i in range(50)))
        finally:
            gw.stop()
            up.stop()


if __name__ == "__main__":
    unittest.main()
