#pragma once
#include "problemgate/http1/head_scanner.hpp"
#include "problemgate/http1/head_view.hpp"

namespace problemgate::proxy {

/// True when a request asks for a WebSocket tunnel that this proxy may open: an HTTP/1.1 GET
/// (RFC 6455 §4.1; an Upgrade in HTTP/1.0 is ignored, RFC 9110 §7.8) without a body, whose
/// Connection lists `upgrade` and whose Upgrade lists `websocket`. Every other Upgrade (h2c,
/// one on a request with a body) is treated as hop-by-hop and dropped: the request goes on
/// as plain HTTP, so an upstream can never switch protocols under bytes still to be framed.
inline bool asks_for_websocket(const http1::HeadScan& scan, const http1::HeadView& req) {
  if (scan.version_minor != 1 || req.bytes.substr(0, scan.method_len) != "GET") return false;
  if (scan.chunked || scan.content_length > 0) return false;
  return req.has_token("connection", "upgrade") && req.has_token("upgrade", "websocket");
}

}  // namespace problemgate::proxy
