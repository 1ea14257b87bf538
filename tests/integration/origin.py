"""A small HTTP/1.1 origin for the endpoint tests: one process per endpoint, so a test can kill
one (SIGKILL: its connections are reset, new ones refused) and start it again on its port.

Every answer names the origin ({"origin": NAME}), so a test counts where requests went.
GET /healthz answers the status set by GET /__health/NNN (200 at start). --delay SECONDS
slows every other answer down (a slow endpoint for least_request).
Prints "listening on HOST:PORT" when ready.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    state = {"health": 200}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if self.path == "/healthz":
                with lock:
                    status = state["health"]
                return self._answer(status, {"origin": args.name, "health": status})
            if self.path.startswith("/__health/"):
                with lock:
                    state["health"] = int(self.path.rsplit("/", 1)[1])
                return self._answer(200, {"origin": args.name})
            if args.delay:
                time.sleep(args.delay)
            self._answer(200, {"origin": args.name, "method": self.command, "path": self.path})

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _handle

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
