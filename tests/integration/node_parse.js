// A second, independent HTTP/1.1 parser for the framing battery: Node's http module (llhttp,
// strict mode). Reads a JSON array of base64 byte strings on stdin; for each, replays the bytes
// into a loopback http.Server on one connection and reports the requests Node saw:
// [{"requests": [{"method","url","requestId","body"(base64)}], "error": "..."|null}, ...]
"use strict";
const http = require("http");
const net = require("net");

function parseOne(server, port, bytes) {
  return new Promise((resolve) => {
    const seen = { requests: [], error: null };
    server.current = seen;
    const sock = net.connect(port, "127.0.0.1", () => {
      sock.end(bytes);
    });
    sock.on("data", () => {});
    sock.on("error", () => {});
    sock.on("close", () => setImmediate(() => resolve(seen)));
  });
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const cases = JSON.parse(input).map((b) => Buffer.from(b, "base64"));
  const server = http.createServer({ insecureHTTPParser: false }, (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      server.current.requests.push({
        method: req.method,
        url: req.url,
        requestId: req.headers["x-request-id"] || null,
        body: Buffer.concat(chunks).toString("base64"),
      });
      res.end("ok");
    });
  });
  server.on("clientError", (err, socket) => {
    // Only an error before the bytes ran out counts: a connection closed after complete
    // requests is not a parse failure.
    if (err.code !== "ECONNRESET" && err.code !== "HPE_INVALID_EOF_STATE") server.current.error = err.code || String(err);
    socket.destroy();
  });
  server.keepAliveTimeout = 0;
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const out = [];
  for (const bytes of cases) out.push(await parseOne(server, port, bytes));
  server.close();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e));
  process.exit(2);
});
