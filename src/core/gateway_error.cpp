#include "problemgate/core/gateway_error.hpp"

namespace problemgate::core {

GatewayErrorInfo gateway_error_info(GatewayError e) noexcept {
  switch (e) {
    case GatewayError::route_not_found:
      return {"route_not_found", 404, "route_not_found", "destination_not_found",
              "No route matches this request."};
    case GatewayError::malformed_request:
      return {"malformed_request", 400, "malformed_request", "http_request_error",
              "The request is not valid HTTP/1.1."};
    case GatewayError::invalid_path:
      return {"invalid_path", 400, "malformed_request", "http_request_error",
              "The request path is not allowed: an encoded slash or backslash, a bad escape, or a "
              "dot segment above the root."};
    case GatewayError::duplicate_limit_key:
      return {"duplicate_limit_key", 400, "malformed_request", "http_request_error",
              "The request carries its rate-limit key header more than once."};
    case GatewayError::upgrade_refused:
      return {"upgrade_refused", 400, "upgrade_not_allowed", "http_request_denied",
              "This route does not accept WebSocket upgrades."};
    case GatewayError::uri_too_long:
      return {"uri_too_long", 414, "uri_too_long", "http_request_error",
              "The request line is too long."};
    case GatewayError::headers_too_large:
      return {"headers_too_large", 431, "headers_too_large", "http_request_error",
              "The request header fields are too large."};
    case GatewayError::payload_too_large:
      return {"payload_too_large", 413, "", "http_request_error", "The request body is too large."};
    case GatewayError::request_timeout:
      return {"request_timeout", 408, "", "http_request_error",
              "The request was not received in time."};
    case GatewayError::not_implemented:
      return {"not_implemented", 501, "unsupported_transfer_coding", "http_request_error",
              "The request uses a transfer coding this gateway does not support."};
    case GatewayError::rate_limited:
      return {"rate_limited", 429, "rate_limit_exceeded", "http_request_denied",
              "Rate limit exceeded."};
    case GatewayError::upstream_down:
      return {"upstream_down", 502, "upstream_down", "connection_refused",
              "The upstream service could not be reached."};
    case GatewayError::upstream_timeout:
      return {"upstream_timeout", 504, "upstream_timeout", "http_response_timeout",
              "The upstream service did not answer in time."};
    case GatewayError::upstream_tls_error:
      // The forwarder names tls_certificate_error instead when the certificate did not verify.
      return {"upstream_tls_error", 502, "upstream_tls_error", "tls_protocol_error",
              "The upstream service could not be reached securely."};
    case GatewayError::gateway_unavailable:
      return {"gateway_unavailable", 503, "gateway_unavailable", "proxy_internal_error",
              "The gateway cannot take this request now."};
    case GatewayError::rate_limit_unavailable:
      return {"rate_limit_unavailable", 503, "gateway_unavailable", "proxy_internal_error",
              "The gateway cannot check this request's rate limit now."};
  }
  return {"internal", 500, "", "proxy_internal_error", "Internal gateway error."};
}

}  // namespace problemgate::core
