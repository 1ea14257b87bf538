#pragma once
#include <string_view>

namespace problemgate::core {

/// The failures the gateway answers itself (spec §8). One row each in gateway_error_info().
enum class GatewayError {
  route_not_found,      ///< no route matches: 404
  malformed_request,    ///< framing or syntax error in the request: 400
  invalid_path,         ///< a path that does not normalize (encoded '/', ".." above the root): 400
  duplicate_limit_key,  ///< the rate-limit key header sent more than once: 400
  upgrade_refused,      ///< Upgrade: websocket on a route with websocket: false: 400
  uri_too_long,         ///< request line over limits.max_request_line: 414
  headers_too_large,    ///< header block or field count over the limit: 431
  payload_too_large,    ///< body over max_body_bytes: 413
  request_timeout,      ///< header deadline passed: 408
  not_implemented,      ///< unknown transfer coding: 501
  rate_limited,         ///< policy denied: 429
  upstream_down,        ///< refused, reset, bad response: 502
  upstream_timeout,     ///< connect or response timeout: 504
  upstream_tls_error,   ///< the TLS handshake to the upstream failed: 502
  gateway_unavailable,  ///< draining or no upstream capacity: 503
  rate_limit_unavailable,  ///< the shared rate-limit store failed and on_error is deny: 503
};

struct GatewayErrorInfo {
  std::string_view name;  ///< the access log's `error` (the enumerator's name)
  int status;
  std::string_view subcode;       ///< empty when the row has none
  std::string_view proxy_status;  ///< RFC 9209 error token for Proxy-Status
  std::string_view detail;        ///< fixed human sentence (never internals)
};

/// The one table that maps a gateway failure to its log name, status, subcode, Proxy-Status
/// token and detail sentence.
GatewayErrorInfo gateway_error_info(GatewayError e) noexcept;

}  // namespace problemgate::core
