#pragma once
// The forwarder's decisions that need no I/O: when a failed attempt may be made again, and when
// an upstream connection may go back to its pool. Pure, so each rule has its own test
// (tests/unit/proxy/forward_rules_test.cpp).
#include <cstdint>
#include <string_view>

namespace problemgate::proxy {

/// How an attempt failed before the upstream's response head was complete.
struct AttemptFailure {
  bool reused = false;        ///< the connection came from the idle pool
  bool fresh_only = false;    ///< it was already the retry on a new connection
  bool got_any_byte = false;  ///< some response bytes had arrived
  bool timed_out = false;
  bool has_body = false;  ///< the request has a body
  bool idempotent = false;
};

/// A pooled keep-alive connection that the upstream had closed (the race every keep-alive pool
/// has): the request goes once more, on a new connection to the same endpoint. Only when
/// nothing came back and nothing can have been executed twice by our doing.
constexpr bool is_stale_pooled_close(const AttemptFailure& f) {
  return f.reused && !f.fresh_only && !f.got_any_byte && !f.timed_out && !f.has_body &&
         f.idempotent;
}

/// The `retries.methods` bit of a method (config::kRetryGet...); 0 for every other method.
std::uint8_t retry_method_bit(std::string_view method);

/// A reset before any response byte may move the request to another endpoint when retries are
/// on for resets and the method is listed and has no body (Envoy's reset_before_request, narrowed
/// to what cannot run twice by our doing). A timeout never does: the upstream may be working.
constexpr bool can_retry_reset(const AttemptFailure& f, bool retry_on_reset, std::uint8_t methods,
                               std::uint8_t method_bit) {
  return retry_on_reset && !f.timed_out && !f.got_any_byte && !f.has_body &&
         (methods & method_bit) != 0;
}

/// Whether the upstream keeps the connection open after this response: HTTP/1.1 unless it says
/// `Connection: close`, HTTP/1.0 only with `keep-alive`; never after a body that ends at close.
constexpr bool upstream_keeps_alive(bool no_body, bool chunked, bool has_length, int version_minor,
                                    bool says_close, bool says_keep_alive) {
  return (no_body || chunked || has_length) && (version_minor == 1 ? !says_close : says_keep_alive);
}

/// A 204 that declared a body, or a 204/304 with Transfer-Encoding, broke framing: what it meant
/// to send may still arrive and would be read as the next request's response.
constexpr bool declares_forbidden_body(int status, bool chunked, bool has_length,
                                       std::uint64_t length) {
  return (status == 204 && (chunked || (has_length && length != 0))) || (status == 304 && chunked);
}

/// What is known about an upstream connection when its exchange is over.
struct ExchangeEnd {
  bool response_complete = false;  ///< the response body was read to its end
  bool keeps_alive = false;        ///< upstream_keeps_alive()
  bool request_complete = false;   ///< the request body went out to its end
  bool forbidden_body = false;     ///< declares_forbidden_body()
};

/// The connection goes back to the pool only when both messages ended where their framing
/// said and the upstream keeps it open; anything else is closed, never reused.
constexpr bool reusable(const ExchangeEnd& e) {
  return e.response_complete && e.keeps_alive && e.request_complete && !e.forbidden_body;
}

}  // namespace problemgate::proxy
